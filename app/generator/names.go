package generator

import (
	"strings"
)

// initialisms are written in capitals in Go names (CONVENTIONS.md).
var initialisms = map[string]string{"id": "ID", "url": "URL", "http": "HTTP", "api": "API", "uuid": "UUID", "json": "JSON", "sql": "SQL", "ip": "IP"}

// goName turns snake_case into an exported Go name: "owner_id" → "OwnerID".
func goName(snake string) string {
	var b strings.Builder
	for _, w := range strings.Split(snake, "_") {
		if up, ok := initialisms[w]; ok {
			b.WriteString(up)
			continue
		}
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	return b.String()
}

// lowerName turns snake_case into an unexported Go name: "line_item" →
// "lineItem".
func lowerName(snake string) string {
	g := goName(snake)
	first, _, _ := strings.Cut(snake, "_")
	if up, ok := initialisms[first]; ok {
		return strings.ToLower(up) + g[len(up):]
	}
	return strings.ToLower(g[:1]) + g[1:]
}

// plural returns the English plural of a snake_case noun (its last word).
func plural(snake string) string {
	switch {
	case strings.HasSuffix(snake, "y") && len(snake) > 1 && !strings.ContainsAny(snake[len(snake)-2:len(snake)-1], "aeiou"):
		return snake[:len(snake)-1] + "ies"
	case strings.HasSuffix(snake, "s"), strings.HasSuffix(snake, "x"), strings.HasSuffix(snake, "z"),
		strings.HasSuffix(snake, "ch"), strings.HasSuffix(snake, "sh"):
		return snake + "es"
	}
	return snake + "s"
}

// human turns snake_case into words: "line_item" → "line item".
func human(snake string) string { return strings.ReplaceAll(snake, "_", " ") }

// article returns "a" or "an" for a word.
func article(word string) string {
	if strings.ContainsAny(word[:1], "aeiou") {
		return "an"
	}
	return "a"
}
