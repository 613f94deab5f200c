package models

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	pgxmigrate "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	sqlitemigrate "github.com/golang-migrate/migrate/v4/database/sqlite"
	"github.com/golang-migrate/migrate/v4/source/iofs"
)

// Migrator applies the embedded schema migrations of one dialect. It uses
// its own connection, which Close releases.
type Migrator struct {
	m        *migrate.Migrate
	versions []uint
}

// MigrationStatus describes where a database stands.
type MigrationStatus struct {
	Current  uint   // the applied version; 0 when none is applied
	Dirty    bool   // a migration failed halfway and needs a manual fix
	Versions []uint // every version the binary carries, in order
}

// NewMigrator prepares migrations for the database u from files, which holds
// one folder per dialect ("sqlite", "postgres"), as package migrations does.
func NewMigrator(u DatabaseURL, files fs.FS) (*Migrator, error) {
	sub, err := fs.Sub(files, string(u.Dialect))
	if err != nil {
		return nil, fmt.Errorf("migrations for %s: %w", u.Dialect, err)
	}
	src, err := iofs.New(sub, ".")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	versions, err := sourceVersions(src)
	if err != nil {
		return nil, err
	}
	if u.Dialect == SQLite {
		if err := os.MkdirAll(filepath.Dir(u.Path), 0o700); err != nil {
			return nil, fmt.Errorf("create the database folder: %w", err)
		}
	}
	raw, err := OpenRawDB(u)
	if err != nil {
		return nil, err
	}
	var drv database.Driver
	switch u.Dialect {
	case SQLite:
		drv, err = sqlitemigrate.WithInstance(raw, &sqlitemigrate.Config{})
	case Postgres:
		drv, err = pgxmigrate.WithInstance(raw, &pgxmigrate.Config{})
	}
	if err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("prepare migrations: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, string(u.Dialect), drv)
	if err != nil {
		_ = drv.Close()
		return nil, fmt.Errorf("prepare migrations: %w", err)
	}
	return &Migrator{m: m, versions: versions}, nil
}

func sourceVersions(src interface {
	First() (uint, error)
	Next(uint) (uint, error)
}) ([]uint, error) {
	v, err := src.First()
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	versions := []uint{v}
	for {
		next, err := src.Next(v)
		if errors.Is(err, fs.ErrNotExist) {
			return versions, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read migrations: %w", err)
		}
		versions = append(versions, next)
		v = next
	}
}

// Up applies every pending migration. Several instances may start at once:
// on PostgreSQL an advisory lock serialises them.
func (mg *Migrator) Up() error {
	if err := mg.m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate up: %w", err)
	}
	return nil
}

// Down rolls back the most recent migration only. Rolling back drops data,
// so the CLI asks for confirmation in production.
func (mg *Migrator) Down() error {
	if err := mg.m.Steps(-1); err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, migrate.ErrNilVersion) {
			return errors.New("migrate down: no migration is applied")
		}
		return fmt.Errorf("migrate down: %w", err)
	}
	return nil
}

// Status reports the applied version and the versions the binary carries.
func (mg *Migrator) Status() (MigrationStatus, error) {
	st := MigrationStatus{Versions: mg.versions}
	v, dirty, err := mg.m.Version()
	switch {
	case errors.Is(err, migrate.ErrNilVersion):
		return st, nil
	case err != nil:
		return st, fmt.Errorf("migrate status: %w", err)
	}
	st.Current, st.Dirty = v, dirty
	return st, nil
}

// Close releases the migrator's connection.
func (mg *Migrator) Close() error {
	srcErr, dbErr := mg.m.Close()
	return errors.Join(srcErr, dbErr)
}
