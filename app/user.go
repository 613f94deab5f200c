package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/rampart-go/rampart/models"
)

// maxPasswordLine bounds what `user create` reads from stdin.
const maxPasswordLine = 4096

// userCmd runs `rampart user create --email E --role R --password-stdin`.
// The password is read from stdin only: never from an argument, which
// would land in shell history and process listings.
func userCmd(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 || args[0] != "create" {
		return usageError{"user needs the subcommand create"}
	}
	fs := newFlagSet("user create")
	email := fs.String("email", "", "e-mail address")
	role := fs.String("role", "user", "user or admin")
	display := fs.String("display-name", "", "display name (default: the part of the e-mail before @)")
	stdin := fs.Bool("password-stdin", false, "read the password from stdin")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{"user create: " + err.Error()}
	}
	switch {
	case fs.NArg() > 0:
		return usageError{"user create takes no positional arguments"}
	case *email == "":
		return usageError{"user create needs --email"}
	case !*stdin:
		return usageError{"user create needs --password-stdin (passwords are never taken from arguments)"}
	case !models.Role(*role).Valid():
		return usageError{"--role must be user or admin"}
	}
	if *display == "" {
		*display, _, _ = strings.Cut(*email, "@")
	}
	password, err := readPassword(env.Stdin)
	if err != nil {
		return err
	}

	cfg, err := LoadConfig(env.Getenv)
	if err != nil {
		return err
	}
	dbURL, err := databaseFor(ctx, cfg, env)
	if err != nil {
		return err
	}
	if err := migrateUp(dbURL); err != nil {
		return err
	}
	db, err := models.OpenDB(ctx, dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	policy, err := models.NewPasswordPolicy()
	if err != nil {
		return err
	}
	accounts, err := models.NewAccounts(ctx, db, models.AccountsConfig{Hasher: models.NewPasswordHasher(models.DefaultArgon2Params), Policy: policy})
	if err != nil {
		return err
	}
	u, err := accounts.CreateUser(ctx, models.NewUser{Email: *email, DisplayName: *display, Password: password, Role: models.Role(*role)})
	if err != nil {
		return cliError(err)
	}
	fmt.Fprintf(env.Stdout, "created %s %s (id %s)\n", u.Role, u.Email, u.ID)
	return nil
}

// readPassword reads one line from r, without its line ending.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReaderSize(io.LimitReader(r, maxPasswordLine+1), maxPasswordLine+1).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from stdin: %w", err)
	}
	if len(line) > maxPasswordLine {
		return "", errors.New("the password on stdin is too long")
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password on stdin")
	}
	return line, nil
}

// cliError turns a domain error into one line a person can act on: its
// client-safe detail and field messages, never its internal cause.
func cliError(err error) error {
	var e *models.Error
	if !errors.As(err, &e) || e.Kind == models.KindInternal {
		return err
	}
	msg := e.Detail
	if msg == "" {
		msg = e.Kind.String()
	}
	for _, f := range e.Fields {
		msg += " " + f.Field + " " + f.Message + "."
	}
	return errors.New(msg)
}
