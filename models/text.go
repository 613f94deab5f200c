package models

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// NormalizeText returns the canonical form of free text: Unicode NFC. Input
// is normalised once, before validation, so that rules and uniqueness apply
// to what is stored.
func NormalizeText(s string) string { return norm.NFC.String(s) }

// EmailKey is the form under which an e-mail address is unique: NFC, trimmed
// and lower-cased, so that Alice@Example.com and alice@example.com are the
// same account.
func EmailKey(email string) string {
	return strings.ToLower(strings.TrimSpace(NormalizeText(email)))
}

// HasControl reports whether s holds a control or format character (Unicode
// Cc or Cf: NUL, escape sequences, bidirectional overrides, zero-width
// spaces) that could hide or reorder text when shown. Line breaks and tabs
// count too; multiline fields use HasControlExceptNewlines. The zero-width
// (non-)joiners U+200C and U+200D are allowed: Persian, Indic scripts and
// emoji sequences need them.
func HasControl(s string) bool { return hasControl(s, false) }

// HasControlExceptNewlines is HasControl allowing '\n', '\r' and '\t'.
func HasControlExceptNewlines(s string) bool { return hasControl(s, true) }

func hasControl(s string, newlines bool) bool {
	for _, r := range s {
		switch {
		case newlines && (r == '\n' || r == '\r' || r == '\t'):
		case r == '\u200c' || r == '\u200d':
		case unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r):
			return true
		}
	}
	return false
}
