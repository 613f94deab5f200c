// Package templates holds the HTML templates (rendered with html/template,
// which encodes every value for its context) and the endpoint generator's
// templates (generator/*.tmpl, rendered with text/template by
// app/generator), embedded into the binary.
//
// It is a leaf: it imports nothing of this module.
package templates

import "embed"

// FS holds the templates.
//
//go:embed *.html generator/*.tmpl
var FS embed.FS
