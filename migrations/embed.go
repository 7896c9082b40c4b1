// Package migrations embeds moor's schema changes: numbered up/down SQL pairs,
// never edited after they land.
package migrations

import "embed"

// FS holds NNNN_name.up.sql and NNNN_name.down.sql.
//
//go:embed *.sql
var FS embed.FS
