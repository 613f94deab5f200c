// Package templates holds the HTML templates (rendered with html/template,
// which encodes every value for its context) and, later, the endpoint
// generator's templates, embedded into the binary.
//
// It is a leaf: it imports nothing of this module.
package templates

import "embed"

// FS holds the templates.
//
//go:embed *.html
var FS embed.FS
