// Package migrations embeds the PostgreSQL schema of the registration
// projection (spec section 5) as golang-migrate files, numbered NNNNNN_name
// with an .up.sql and a .down.sql each.
package migrations

import "embed"

// FS holds every migration file.
//
//go:embed *.sql
var FS embed.FS
