// Package migrations holds the app's schema as numbered SQL files, applied in
// lexical order by internal/store, one transaction per file.
package migrations

import "embed"

// FS holds every NNN_name.up.sql file.
//
//go:embed *.up.sql
var FS embed.FS
