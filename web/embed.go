// Package web holds the static assets (CSS, JS, images), embedded in the binary
// and served under /static/.
package web

import "embed"

// Static is the static/ folder.
//
//go:embed static
var Static embed.FS
