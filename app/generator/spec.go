package generator

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Resource is one owned resource as the command line describes it: its
// name, fields, optional parent and the actions it serves.
type Resource struct {
	Name    string   // singular, snake_case: "note", "line_item"
	Fields  []Field  // in command-line order
	Parent  string   // the parent resource's singular name; "" for a top-level one
	Actions []string // a subset of allActions, in that order

	// ThroughParent makes a child without an owner_id column: it is
	// reached only through its parent, whose owner every statement binds
	// (--through-parent; needs --parent).
	ThroughParent bool
	// Quota names a field of models.Quotas that bounds how many of the
	// resource one owner (or, for a child, one parent) holds; Create
	// counts under a lock of the owner's or the parent's row (--quota).
	Quota string
	// Migrated says that hand-written migrations already create the table
	// and hand-written tests cover the endpoints: the generator writes
	// neither (--migrated; the sample's projects and tasks).
	Migrated bool
	// BodyKiB raises the request body cap above the longest valid body,
	// in KiB (--body-limit); 0 keeps the generator's cap.
	BodyKiB int
}

// Field is one column of a resource.
type Field struct {
	Name     string   // snake_case: the column and the JSON member
	Type     string   // string, text, int, bigint, bool, decimal, time, date, uuid, enum, ref
	Args     []string // decimal: precision and scale; enum: the values; ref: the resource
	Rules    []string // validator rules, without required/optional
	Required bool     // NOT NULL and required on create; otherwise nullable and optional
	Default  bool     // optional but never null: absent means the zero value ('', 0, false), the column's default
	Index    string   // "", "index" or "unique"
}

// allActions are the actions a resource can serve, in route order.
var allActions = []string{"create", "list", "show", "update", "delete"}

var (
	namePattern  = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	quotaPattern = regexp.MustCompile(`^[A-Z][A-Za-z0-9]{0,39}$`)
)

// reservedFields are the columns every resource gets from the generator.
var reservedFields = []string{"id", "owner_id", "created_at", "updated_at", "seq"}

// goKeywords and predeclared names that a snake_case name could spell.
var goWords = strings.Fields(`break case chan const continue default defer else fallthrough for func go goto if
	import interface map package range return select struct switch type var
	any bool byte comparable complex64 complex128 error false float32 float64 int int8 int16 int32 int64 iota
	nil rune string true uint uint8 uint16 uint32 uint64 uintptr append cap clear close complex copy delete imag
	len make max min new panic print println real recover`)

// sqlWords are reserved words of SQLite and PostgreSQL (the common SQL
// ones): a table or column of that name needs quoting everywhere.
var sqlWords = strings.Fields(`abort action add all alter analyze and as asc attach authorization autoincrement
	before begin between both by cascade case cast check collate column commit conflict constraint create cross
	current current_date current_time current_timestamp current_user database default deferrable deferred delete
	desc detach distinct do drop each else end escape except exclusive exists explain fail fetch filter for foreign
	from full glob grant group having if ignore immediate in index indexed initially inner insert instead intersect
	into is isnull join key lateral leading left like limit match natural no not nothing notnull null of offset on
	only or order outer over partition placing plan pragma primary query raise range recursive references regexp
	reindex release rename replace restrict returning right rollback row rows savepoint select session_user set
	some symmetric table temp temporary then to trailing transaction trigger union unique update user using vacuum
	values verbose view virtual when where window with without`)

// ourWords are names the project itself uses: its resources and tables,
// the packages and identifiers generated code refers to.
var ourWords = strings.Fields(`project projects task tasks user users session sessions api_key api_keys apikey
	audit audit_event audit_events audit_batch audit_batches audit_head admin me auth account accounts report reports quota quotas webhook webhooks
	service services meta health openapi internal change changes page pages cursor cursors
	context time http echo models middleware handlers app main fmt strings testing errors url json server route
	routes kit validate decoder problem generated schema_migrations
	req resp patch page scope sort refs rows err ctx in id c h r m t q n f x p`)

// reserved says why a name cannot be used, or "" if it can.
func reserved(name string) string {
	switch {
	case slices.Contains(goWords, name):
		return "a Go keyword or predeclared name"
	case slices.Contains(sqlWords, name):
		return "an SQL reserved word"
	case slices.Contains(ourWords, name):
		return "a name Rampart itself uses"
	}
	return ""
}

// checkName checks a resource or field name.
func checkName(what, name string) error {
	if !namePattern.MatchString(name) || strings.Contains(name, "__") || strings.HasSuffix(name, "_") {
		return fmt.Errorf("%s name %q: use lower case letters, digits and single underscores, starting with a letter", what, safe(name))
	}
	if len(name) > 40 {
		return fmt.Errorf("%s name %q is longer than 40 characters", what, safe(name))
	}
	if why := reserved(name); why != "" {
		return fmt.Errorf("%s name %q is %s; choose another", what, name, why)
	}
	return nil
}

// safe shortens a command-line value for a message and replaces control
// characters, so that an error stays one line.
func safe(s string) string {
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// ruleKinds are the validator rules a field may carry, each with whether it
// takes a parameter and the field types it applies to.
var ruleKinds = map[string]struct {
	param string // "", "int" or "words"
	types []string
}{
	"min":      {"int", []string{"string", "text", "int", "bigint"}},
	"max":      {"int", []string{"string", "text", "int", "bigint"}},
	"len":      {"int", []string{"string", "text"}},
	"gte":      {"int", []string{"int", "bigint"}},
	"lte":      {"int", []string{"int", "bigint"}},
	"email":    {"", []string{"string"}},
	"url":      {"", []string{"string"}},
	"uuid4":    {"", []string{"string"}},
	"alphanum": {"", []string{"string"}},
	"oneof":    {"words", []string{"string"}},
}

// knownRules lists the rule names for messages.
func knownRules() string {
	names := []string{"required", "optional", "default"}
	for name := range ruleKinds {
		names = append(names, name)
	}
	slices.Sort(names[3:])
	return strings.Join(names, ", ")
}

var (
	decimalPattern = regexp.MustCompile(`^decimal\(([0-9]{1,2}),([0-9]{1,2})\)$`)
	enumPattern    = regexp.MustCompile(`^enum\(([a-z0-9_]+(\|[a-z0-9_]+)*)\)$`)
	refPattern     = regexp.MustCompile(`^ref\(([a-z][a-z0-9_]*)\)$`)
	oneofWord      = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
)

// zeroValues are the defaults a default= rule may name, by field type: a
// field that is absent from a request is the Go zero value, so the column's
// default must be that value too.
var zeroValues = map[string]string{"string": "''", "text": "''", "int": "0", "bigint": "0", "bool": "false"}

var simpleTypes = []string{"string", "text", "int", "bigint", "bool", "time", "date", "uuid"}

// ParseField reads one FIELD argument: name:type[:rules][:index|unique].
func ParseField(arg string) (Field, error) {
	parts := strings.Split(arg, ":")
	if len(parts) < 2 || len(parts) > 4 {
		return Field{}, fmt.Errorf("field %q: write name:type[:rules][:index|unique]", safe(arg))
	}
	f := Field{Name: parts[0]}
	if err := checkName("field", f.Name); err != nil {
		return Field{}, err
	}
	if slices.Contains(reservedFields, f.Name) {
		return Field{}, fmt.Errorf("field %q is added by the generator; leave it out", f.Name)
	}
	typ := parts[1]
	switch {
	case slices.Contains(simpleTypes, typ):
		f.Type = typ
	case decimalPattern.MatchString(typ):
		m := decimalPattern.FindStringSubmatch(typ)
		p, _ := strconv.Atoi(m[1])
		s, _ := strconv.Atoi(m[2])
		if p < 1 || p > 18 || s > p {
			return Field{}, fmt.Errorf("field %s: decimal(p,s) needs 1 <= p <= 18 and 0 <= s <= p", f.Name)
		}
		f.Type, f.Args = "decimal", []string{m[1], m[2]}
	case enumPattern.MatchString(typ):
		values := strings.Split(enumPattern.FindStringSubmatch(typ)[1], "|")
		if len(slices.Compact(slices.Sorted(slices.Values(values)))) != len(values) {
			return Field{}, fmt.Errorf("field %s: enum values repeat", f.Name)
		}
		f.Type, f.Args = "enum", values
	case refPattern.MatchString(typ):
		target := refPattern.FindStringSubmatch(typ)[1]
		if !strings.HasSuffix(f.Name, "_id") {
			return Field{}, fmt.Errorf("field %s: a ref field is named after what it points to, ending in _id (e.g. %s_id)", f.Name, target)
		}
		f.Type, f.Args = "ref", []string{target}
	default:
		return Field{}, fmt.Errorf("field %s: unknown type %q; use string, text, int, bigint, bool, decimal(p,s), time, date, uuid, enum(a|b) or ref(resource)", f.Name, safe(typ))
	}
	rest := parts[2:]
	if n := len(rest); n > 0 && (rest[n-1] == "index" || rest[n-1] == "unique") {
		f.Index, rest = rest[n-1], rest[:n-1]
	}
	if len(rest) > 1 {
		return Field{}, fmt.Errorf("field %s: %q is not index or unique", f.Name, safe(rest[1]))
	}
	if len(rest) == 1 {
		if err := f.parseRules(rest[0]); err != nil {
			return Field{}, err
		}
	}
	if f.Index != "" && !f.sortable() {
		return Field{}, fmt.Errorf("field %s: a %s field cannot be indexed here; index string, int, bigint, time, date, uuid, enum or ref fields", f.Name, f.Type)
	}
	return f, nil
}

func (f *Field) parseRules(s string) error {
	var required, optional bool
	seen := map[string]bool{}
	for _, rule := range strings.Split(s, ",") {
		name, param, hasParam := strings.Cut(rule, "=")
		switch name {
		case "required":
			required = true
			continue
		case "optional":
			optional = true
			continue
		case "default":
			zero, ok := zeroValues[f.Type]
			if !ok {
				return fmt.Errorf("field %s: a %s field has no default; default applies to string, text, int, bigint and bool", f.Name, f.Type)
			}
			if param != zero {
				return fmt.Errorf("field %s: the default of a %s field is its zero value: default=%s", f.Name, f.Type, zero)
			}
			f.Default = true
			continue
		}
		kind, ok := ruleKinds[name]
		if !ok {
			return fmt.Errorf("field %s: unknown rule %q; known rules: %s", f.Name, safe(rule), knownRules())
		}
		if seen[name] {
			return fmt.Errorf("field %s: rule %s given twice", f.Name, name)
		}
		seen[name] = true
		if !slices.Contains(kind.types, f.Type) {
			return fmt.Errorf("field %s: rule %s does not apply to a %s field", f.Name, name, f.Type)
		}
		switch kind.param {
		case "":
			if hasParam {
				return fmt.Errorf("field %s: rule %s takes no value", f.Name, name)
			}
		case "int":
			n, err := strconv.ParseInt(param, 10, 64)
			if err != nil || !hasParam {
				return fmt.Errorf("field %s: rule %s needs a whole number, e.g. %s=10", f.Name, name, name)
			}
			if (f.Type == "string" || f.Type == "text") && (n < 0 || n > 1_000_000) {
				return fmt.Errorf("field %s: rule %s needs a length between 0 and 1000000", f.Name, rule)
			}
			if f.Type == "int" && (n < -1<<31 || n > 1<<31-1) {
				return fmt.Errorf("field %s: rule %s is outside the range of an int (32 bits); use bigint", f.Name, rule)
			}
		case "words":
			words := strings.Fields(strings.ReplaceAll(param, "|", " "))
			if len(words) == 0 {
				return fmt.Errorf("field %s: rule oneof needs values, e.g. oneof=a|b", f.Name)
			}
			for _, w := range words {
				if !oneofWord.MatchString(w) {
					return fmt.Errorf("field %s: oneof value %q: use letters, digits, '_', '.' and '-'", f.Name, safe(w))
				}
			}
			rule = "oneof=" + strings.Join(words, " ")
		}
		f.Rules = append(f.Rules, rule)
	}
	if required && optional || f.Default && (required || optional) {
		return fmt.Errorf("field %s: a field is either required, optional or default=, only one of them", f.Name)
	}
	f.Required = required
	if lo, hi, ok := f.bounds(); ok && lo > hi {
		return fmt.Errorf("field %s: the rules allow no value (%d > %d)", f.Name, lo, hi)
	}
	return nil
}

// rule returns the parameter of a rule and whether the field has it.
func (f Field) rule(name string) (string, bool) {
	for _, r := range f.Rules {
		n, p, _ := strings.Cut(r, "=")
		if n == name {
			return p, true
		}
	}
	return "", false
}

func (f Field) intRule(name string) (int64, bool) {
	p, ok := f.rule(name)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(p, 10, 64)
	return n, err == nil
}

// bounds returns the lowest and highest allowed length (strings) or value
// (integers), and whether both are bounded.
func (f Field) bounds() (lo, hi int64, both bool) {
	lo, hi = -1<<63, 1<<63-1
	hasLo, hasHi := false, false
	for _, name := range []string{"min", "gte", "len"} {
		if n, ok := f.intRule(name); ok {
			lo, hasLo = max(lo, n), true
		}
	}
	for _, name := range []string{"max", "lte", "len"} {
		if n, ok := f.intRule(name); ok {
			hi, hasHi = min(hi, n), true
		}
	}
	return lo, hi, hasLo && hasHi
}

// sortable reports whether lists can be ordered by the field (when it is
// indexed): a type whose stored form orders like its values in both
// dialects.
func (f Field) sortable() bool {
	return slices.Contains([]string{"string", "int", "bigint", "time", "date", "uuid", "enum", "ref"}, f.Type)
}

// ParseArgs reads the arguments of `generate resource`: NAME FIELD... and
// the options, in any order after NAME.
func ParseArgs(args []string) (Resource, Options, error) {
	var r Resource
	var o Options
	var fields []string
	actions := ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		value := func() (string, error) {
			if v, ok := strings.CutPrefix(a, "--"+strings.TrimPrefix(strings.SplitN(a, "=", 2)[0], "--")+"="); ok {
				return v, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("%s needs a value", a)
			}
			i++
			return args[i], nil
		}
		name := strings.SplitN(a, "=", 2)[0]
		switch {
		case name == "--parent":
			v, err := value()
			if err != nil {
				return r, o, err
			}
			r.Parent = v
		case name == "--actions":
			v, err := value()
			if err != nil {
				return r, o, err
			}
			actions = v
		case name == "--quota":
			v, err := value()
			if err != nil {
				return r, o, err
			}
			r.Quota = v
		case name == "--body-limit":
			v, err := value()
			if err != nil {
				return r, o, err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 64 {
				return r, o, fmt.Errorf("--body-limit %q: give whole KiB between 1 and 64", safe(v))
			}
			r.BodyKiB = n
		case a == "--through-parent":
			r.ThroughParent = true
		case a == "--migrated":
			r.Migrated = true
		case name == "--overwrite":
			v, err := value()
			if err != nil {
				return r, o, err
			}
			o.Overwrite = append(o.Overwrite, v)
		case a == "--dry-run":
			o.DryRun = true
		case a == "--diff":
			o.Diff = true
		case a == "--force":
			o.Force = true
		case strings.HasPrefix(a, "-"):
			return r, o, fmt.Errorf("unknown option %q", safe(a))
		case r.Name == "":
			r.Name = a
		default:
			fields = append(fields, a)
		}
	}
	if r.Name == "" {
		return r, o, fmt.Errorf("generate resource needs a NAME and at least one FIELD")
	}
	if err := checkName("resource", r.Name); err != nil && !(r.Migrated && slices.Contains(ourWords, r.Name)) {
		// A migrated resource names a table the project already has, which
		// may be one of the sample's own (projects, tasks).
		return r, o, err
	}
	if len(fields) == 0 {
		return r, o, fmt.Errorf("resource %s needs at least one FIELD (name:type[:rules][:index|unique])", r.Name)
	}
	seen := map[string]bool{}
	for _, arg := range fields {
		f, err := ParseField(arg)
		if err != nil {
			return r, o, err
		}
		if seen[f.Name] {
			return r, o, fmt.Errorf("field %s is given twice", f.Name)
		}
		seen[f.Name] = true
		r.Fields = append(r.Fields, f)
	}
	if r.Parent != "" {
		if err := checkParentName(r.Parent); err != nil {
			return r, o, err
		}
		if seen[r.Parent+"_id"] {
			return r, o, fmt.Errorf("field %s_id is added by --parent %s; leave it out", r.Parent, r.Parent)
		}
		if r.Parent == r.Name {
			return r, o, fmt.Errorf("resource %s cannot be its own parent", r.Name)
		}
	}
	if r.ThroughParent && r.Parent == "" {
		return r, o, fmt.Errorf("--through-parent needs --parent: only a child can be reached through its parent")
	}
	if r.ThroughParent {
		for _, f := range r.Fields {
			if f.Index != "" {
				return r, o, fmt.Errorf("field %s: a --through-parent resource has no owner column to index with; leave out :%s", f.Name, f.Index)
			}
		}
	}
	if r.Quota != "" && !quotaPattern.MatchString(r.Quota) {
		return r, o, fmt.Errorf("--quota %q: name a field of models.Quotas, e.g. NotesPerUser", safe(r.Quota))
	}
	var err error
	if r.Actions, err = parseActions(actions); err != nil {
		return r, o, err
	}
	return r, o, nil
}

// checkParentName checks the name given to --parent or ref(): the sample's
// project, or a generated resource (checked against the manifest later).
func checkParentName(name string) error {
	if name == "project" {
		return nil
	}
	return checkName("parent", name)
}

func parseActions(s string) ([]string, error) {
	if s == "" {
		return allActions, nil
	}
	want := map[string]bool{}
	for _, a := range strings.Split(s, ",") {
		if !slices.Contains(allActions, a) {
			return nil, fmt.Errorf("unknown action %q; use list, show, create, update, delete", safe(a))
		}
		want[a] = true
	}
	if !want["create"] || !want["show"] {
		return nil, fmt.Errorf("--actions needs at least create and show: the tests and the Location header use them")
	}
	var out []string
	for _, a := range allActions {
		if want[a] {
			out = append(out, a)
		}
	}
	return out, nil
}

// Args renders the resource back as command-line arguments, in a canonical
// form: the manifest keeps them, and `generate check` replays them.
func (r Resource) Args() []string {
	out := []string{r.Name}
	for _, f := range r.Fields {
		out = append(out, f.spec())
	}
	if r.Parent != "" {
		out = append(out, "--parent", r.Parent)
	}
	if r.ThroughParent {
		out = append(out, "--through-parent")
	}
	if r.Quota != "" {
		out = append(out, "--quota", r.Quota)
	}
	if r.BodyKiB != 0 {
		out = append(out, "--body-limit", strconv.Itoa(r.BodyKiB))
	}
	if r.Migrated {
		out = append(out, "--migrated")
	}
	if !slices.Equal(r.Actions, allActions) {
		out = append(out, "--actions", strings.Join(r.Actions, ","))
	}
	return out
}

func (f Field) spec() string {
	typ := f.Type
	switch f.Type {
	case "decimal":
		typ = "decimal(" + f.Args[0] + "," + f.Args[1] + ")"
	case "enum":
		typ = "enum(" + strings.Join(f.Args, "|") + ")"
	case "ref":
		typ = "ref(" + f.Args[0] + ")"
	}
	var rules []string
	switch {
	case f.Required:
		rules = append(rules, "required")
	case f.Default:
		rules = append(rules, "default="+zeroValues[f.Type])
	default:
		rules = append(rules, "optional")
	}
	for _, r := range f.Rules {
		if v, ok := strings.CutPrefix(r, "oneof="); ok {
			r = "oneof=" + strings.ReplaceAll(v, " ", "|")
		}
		rules = append(rules, r)
	}
	s := f.Name + ":" + typ + ":" + strings.Join(rules, ",")
	if f.Index != "" {
		s += ":" + f.Index
	}
	return s
}

// has reports whether the resource serves action.
func (r Resource) has(action string) bool { return slices.Contains(r.Actions, action) }
