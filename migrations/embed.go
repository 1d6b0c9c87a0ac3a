// Package migrations holds the app's schema as numbered SQL files
// (NNN_name.up.sql), applied by internal/store in the order of their names,
// one transaction per file, each recorded by its name in schema_migrations.
//
// Numbering. A new file takes a number above every existing one.
// A released file is never renamed or renumbered, and its statements never
// change: deployed databases know it by name (not by content), so a renamed
// file would run a second time and a changed one would never run again.
// store applies every file whose name is not yet recorded, not only those
// above the highest applied: that is how 005_call_log, written after 050
// and numbered below it, reached databases that already had 050 (it depends
// only on 001). The order on a fresh database is
// the numbers' order (internal/store's migrations_test.go checks both).
package migrations

import "embed"

// FS holds every NNN_name.up.sql file.
//
//go:embed *.up.sql
var FS embed.FS
