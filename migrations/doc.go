// Package migrations holds the schema as SQL files, one folder per dialect
// (sqlite/ and postgres/), embedded into the binary so that `rampart migrate`
// and the start-up migration need nothing on disk.
//
// It is a leaf: it imports nothing of this module. The files follow
// golang-migrate's naming (NNNN_name.up.sql / NNNN_name.down.sql); both
// dialects always carry the same version numbers, which a test checks.
package migrations

import "embed"

// FS holds the migration files of both dialects. Callers take the
// sub-folder of their dialect with fs.Sub.
//
//go:embed sqlite/*.sql postgres/*.sql
var FS embed.FS
