package generator

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// view is what the templates render: the resource with every name, type,
// SQL fragment and test value worked out, so that the templates only lay
// them out.
type view struct {
	Command string // the command line that generates this resource

	Name, Go, Lower, Human, Article  string // note, Note, note, note, a
	Plural, GoPlural, HumanPlural    string // notes, Notes, notes
	LowerPlural                      string // notes, lineItems
	Table, PathSeg, Tag              string // notes, notes, notes
	Var                              string // the variable of one object in handlers: "note"
	Collection, Item, ItemParam      string // echo paths and the object's path parameter
	CollectionTest, ItemTest         string // Go expressions of the same paths in tests
	Parent                           *parentView
	Fields                           []fieldView
	Refs                             []fieldView // the ref fields
	Sorts                            []fieldView // the fields lists can be ordered by
	Indexes                          []indexView
	Unique                           bool // some field is unique per owner (409 on a clash)
	BodyCap                          string
	BodyCapBytes                     int
	Create, List, Show, Update, Del  bool
	NeedsTime, NeedsTx, CreateTx     bool   // a time field; Update, Create run in a transaction
	ThroughParent                    bool   // no owner_id column: scoped through the parent's owner
	Quota, QuotaWhat                 string // the models.Quotas field bounding Create, and what it counts
	Migrated                         bool   // hand-written migrations and tests: the generator writes neither
	Where, WhereArgs                 string // the condition (and its arguments) that finds one owned object
	ListColumns                      string // the select list of a --through-parent list: x.seq, p.id AS …
	Columns                          string // the select list: seq, id, …
	AliasedColumns                   string // the same with the alias x.
	Version                          int    // the migration number
	Migration                        string // its file name without extension: 0004_notes
	SQLiteColumns, PostgresColumns   []string
	InsertColumns, InsertValues      string
	InsertArgs                       string
	UpdateSet, UpdateSetTx           string // the SET list, indented for a statement at two or three tabs
	UpdateArgs                       string
	InvalidCases                     []invalidCase
	FirstInvalid, FirstUpdateInvalid *invalidCase // the conformance suite's 422 bodies
	UnknownMembers                   []string
	TestMembers                      string
	TooLong                          string // a member and value that make a body larger than the cap
}

type parentView struct {
	Name, Go, Lower, Human, Table, PathSeg string
	Article                                string // a or an
	Column, GoField                        string // project_id, ProjectID
	Sample                                 bool   // the sample's project (created with createProject in tests)
}

type fieldView struct {
	Name, Go, Var, Human string
	Type                 string
	Required             bool
	Default              bool   // never null; absent is the zero value
	Clearable            bool   // an optional date: null in a PATCH clears it (Set<Go> in the patch)
	RowType, FromRow     string // a --through-parent list row's type, and the model value from row
	Deref                bool   // the create request holds a pointer, the model a value
	ModelType            string // in package models
	PatchType            string // in package models
	ReqType, ReqTag      string // create request
	PatchReqType         string
	PatchReqTag          string
	CreateConv           string // "" or a call returning (value, error)
	PatchConv            string
	Resp                 string // the response value, from m
	RespType             string
	SQLite, Postgres     string // column definitions (type and constraints)
	RefTable, RefHuman   string
	RefSample            bool
	RefGo                string
	Index                string
	CreateValue          string // Go expression of a valid JSON value (n int64, refs map[string]string in scope)
	UpdateValue          string
	Invalid              []invalidCase
}

type indexView struct {
	Name, Columns string
	Unique        bool
}

// invalidCase is a body that breaks one rule of one field: 422 naming it.
type invalidCase struct {
	What   string
	Field  string
	Value  string // a Go expression; "" removes the member
	Update bool   // also refused by PATCH
}

// String defaults: a text field without a max gets one, so that no field
// is unbounded.
const (
	defaultStringMax = 255
	defaultTextMax   = 10000
	bodyLimit        = 64 << 10
)

// resolver answers questions about other resources: whether a name is a
// parent or ref target that exists and is top-level, and its table.
type resolver func(name string) (table string, sample bool, err error)

func newView(r Resource, version int, resolve resolver) (*view, error) {
	v := &view{
		Command: "rampart generate resource " + strings.Join(r.Args(), " "),
		Name:    r.Name, Go: goName(r.Name), Lower: lowerName(r.Name), Human: human(r.Name), Article: article(r.Name),
		Plural: plural(r.Name), Var: lowerName(r.Name),
		Create: r.has("create"), List: r.has("list"), Show: r.has("show"), Update: r.has("update"), Del: r.has("delete"),
		Version: version, ThroughParent: r.ThroughParent, Quota: r.Quota, Migrated: r.Migrated,
	}
	v.GoPlural, v.HumanPlural, v.Table, v.LowerPlural = goName(v.Plural), human(v.Plural), v.Plural, lowerName(v.Plural)
	v.PathSeg, v.Tag = strings.ReplaceAll(v.Plural, "_", "-"), strings.ReplaceAll(v.Plural, "_", "-")
	v.Migration = fmt.Sprintf("%04d_%s", version, v.Table)
	if r.Parent != "" {
		table, sample, err := resolve(r.Parent)
		if err != nil {
			return nil, fmt.Errorf("--parent %s: %w", r.Parent, err)
		}
		p := &parentView{Name: r.Parent, Go: goName(r.Parent), Lower: lowerName(r.Parent), Human: human(r.Parent), Article: article(r.Parent),
			Table: table, PathSeg: strings.ReplaceAll(table, "_", "-"), Column: r.Parent + "_id", GoField: goName(r.Parent + "_id"), Sample: sample}
		v.Parent = p
		v.Collection = "/v1/" + p.PathSeg + "/:id/" + v.PathSeg
		v.ItemParam = r.Name + "_id"
		v.Item = v.Collection + "/:" + v.ItemParam
	} else {
		v.Collection = "/v1/" + v.PathSeg
		v.ItemParam = "id"
		v.Item = v.Collection + "/:id"
	}
	cols := []string{"seq", "id"}
	if v.Parent != nil {
		cols = append(cols, v.Parent.Column)
	}
	total := 512
	for _, f := range r.Fields {
		fv, err := newFieldView(f, resolve)
		if err != nil {
			return nil, err
		}
		v.Fields = append(v.Fields, fv)
		cols = append(cols, f.Name)
		if f.Type == "ref" {
			v.Refs = append(v.Refs, fv)
		}
		if f.Type == "time" {
			v.NeedsTime = true
		}
		v.InvalidCases = append(v.InvalidCases, fv.Invalid...)
		if f.Index != "" {
			v.Indexes = append(v.Indexes, indexView{Name: v.Table + "_" + f.Name, Columns: "owner_id, " + f.Name, Unique: f.Index == "unique"})
			if f.Required && f.sortable() {
				v.Sorts = append(v.Sorts, fv)
			}
		}
		if f.Index == "unique" {
			v.Unique = true
		}
		if f.Type == "ref" && f.Index == "" {
			v.Indexes = append(v.Indexes, indexView{Name: v.Table + "_" + f.Name, Columns: f.Name})
		}
		total += 64 + len(f.Name) + maxBytes(f)
	}
	if total > bodyLimit {
		return nil, fmt.Errorf("resource %s: the fields' longest values add up to about %d bytes, more than the 64 KiB body limit; lower some max rules", r.Name, total)
	}
	// The body cap: the longest valid body, rounded up to whole KiB, at
	// least 4 KiB.
	v.BodyCapBytes = max(4, (total+1023)/1024) << 10
	if r.BodyKiB > 0 {
		if r.BodyKiB<<10 < v.BodyCapBytes {
			return nil, fmt.Errorf("resource %s: --body-limit %d is below the longest valid body; give at least %d", r.Name, r.BodyKiB, v.BodyCapBytes>>10)
		}
		v.BodyCapBytes = r.BodyKiB << 10
	}
	v.BodyCap = fmt.Sprintf("%d << 10", v.BodyCapBytes>>10)
	v.NeedsTx, v.CreateTx = len(v.Refs) > 0, len(v.Refs) > 0 || v.Quota != ""
	if v.Quota != "" {
		v.QuotaWhat = v.HumanPlural
		if v.Parent != nil {
			v.QuotaWhat += " in this " + v.Parent.Human
		}
	}
	switch {
	case v.ThroughParent:
		// No owner column: the parent, in the same statement, carries it.
		v.Where = "WHERE id = ? AND " + v.Parent.Column + " = ?\n  AND EXISTS (SELECT 1 FROM " + v.Parent.Table + " p WHERE p.id = " +
			v.Table + "." + v.Parent.Column + " AND p.owner_id = ?)"
		v.WhereArgs = "id, " + v.Parent.Lower + "ID, r.owner"
	case v.Parent != nil:
		v.Where = "WHERE id = ? AND owner_id = ? AND " + v.Parent.Column + " = ?"
		v.WhereArgs = "id, r.owner, " + v.Parent.Lower + "ID"
	default:
		v.Where, v.WhereArgs = "WHERE id = ? AND owner_id = ?", "id, r.owner"
	}
	cols = append(cols, "created_at", "updated_at")
	v.Columns = strings.Join(cols, ", ")
	aliased := make([]string, len(cols))
	for i, c := range cols {
		aliased[i] = "x." + c
	}
	v.AliasedColumns = strings.Join(aliased, ", ")
	if v.ThroughParent {
		listed := slices.Clone(aliased)
		listed[2] = "p.id AS " + v.Parent.Column
		v.ListColumns = strings.Join(listed, ", ")
	}
	v.sql()
	v.tests()
	for i, c := range v.InvalidCases {
		if v.FirstInvalid == nil {
			v.FirstInvalid = &v.InvalidCases[i]
		}
		if v.FirstUpdateInvalid == nil && c.Update {
			v.FirstUpdateInvalid = &v.InvalidCases[i]
		}
	}
	if v.FirstUpdateInvalid == nil {
		return nil, fmt.Errorf("resource %s: no field has a limit a client can break (every body would be valid); give it a string or text field, or an int with min/max", r.Name)
	}
	return v, nil
}

// maxBytes is the most a valid value of f takes in a JSON body.
func maxBytes(f Field) int {
	switch f.Type {
	case "string", "text":
		_, hi, _ := f.bounds()
		if _, ok := f.rule("max"); !ok {
			if _, ok := f.rule("len"); !ok {
				hi = defaultStringMax
				if f.Type == "text" {
					hi = defaultTextMax
				}
			}
		}
		return int(hi) * 4 // the longest UTF-8 encoding of a character
	case "enum":
		n := 0
		for _, a := range f.Args {
			n = max(n, len(a))
		}
		return n
	}
	return 40
}

func newFieldView(f Field, resolve resolver) (fieldView, error) {
	// A required text must not be empty, and no text is unbounded.
	if f.Type == "string" || f.Type == "text" {
		_, hasMin := f.rule("min")
		_, hasMax := f.rule("max")
		_, hasLen := f.rule("len")
		f.Rules = slices.Clone(f.Rules)
		if f.Required && !hasMin && !hasLen {
			f.Rules = append(f.Rules, "min=1")
		}
		if !hasMax && !hasLen {
			f.Rules = append(f.Rules, "max="+strconv.Itoa(map[string]int{"string": defaultStringMax, "text": defaultTextMax}[f.Type]))
		}
	}
	fv := fieldView{Name: f.Name, Go: goName(f.Name), Var: lowerName(f.Name), Human: human(f.Name), Type: f.Type,
		Required: f.Required, Default: f.Default, Index: f.Index, Clearable: f.Type == "date" && !f.Required}
	ptr := func(t string) string {
		if f.Required || f.Default {
			return t
		}
		return "*" + t
	}
	rules := append([]string{}, f.Rules...)
	notNull := ""
	if f.Required {
		notNull = " NOT NULL"
	}
	if f.Default {
		notNull = " NOT NULL DEFAULT " + zeroValues[f.Type]
	}
	switch f.Type {
	case "string", "text":
		if f.Type == "string" {
			rules = append(rules, "nocontrol")
		} else {
			rules = append(rules, "nocontrolml")
		}
		fv.ModelType, fv.PatchType, fv.RespType = ptr("string"), "*string", ptr("string")
		fv.SQLite, fv.Postgres = "TEXT\x00"+notNull, "text\x00"+notNull
	case "int":
		fv.ModelType, fv.PatchType, fv.RespType = ptr("int32"), "*int32", ptr("int32")
		fv.SQLite, fv.Postgres = "INTEGER\x00"+notNull, "integer\x00"+notNull
	case "bigint":
		fv.ModelType, fv.PatchType, fv.RespType = ptr("int64"), "*int64", ptr("int64")
		fv.SQLite, fv.Postgres = "INTEGER\x00"+notNull, "bigint\x00"+notNull
	case "bool":
		fv.ModelType, fv.PatchType, fv.RespType = ptr("bool"), "*bool", ptr("bool")
		fv.SQLite = "INTEGER\x00" + strings.Replace(notNull, "false", "0", 1) + " CHECK (" + f.Name + " IN (0, 1))"
		fv.Postgres = "boolean\x00" + notNull
	case "decimal":
		rules = append(rules, "decimal="+f.Args[0]+"."+f.Args[1])
		fv.ModelType, fv.PatchType, fv.RespType = ptr("string"), "*string", ptr("string")
		fv.CreateConv = "decimalField(" + strconv.Quote(f.Name) + ", r." + fv.Go + ", " + f.Args[1] + ")"
		if !f.Required {
			fv.CreateConv = "optional" + upperFirst(fv.CreateConv)
		}
		fv.PatchConv = "optionalDecimalField(" + strconv.Quote(f.Name) + ", r." + fv.Go + ", " + f.Args[1] + ")"
		// Stored as text in SQLite, which keeps the canonical form the
		// handler wrote; as an exact numeric in PostgreSQL.
		fv.SQLite = "TEXT\x00" + notNull
		fv.Postgres = "numeric(" + f.Args[0] + ", " + f.Args[1] + ")\x00" + notNull
	case "time":
		rules = append(rules, "timestamp")
		fv.ModelType, fv.PatchType, fv.RespType = ptr("time.Time"), "*time.Time", ptr("string")
		fv.CreateConv = "timestampField(" + strconv.Quote(f.Name) + ", r." + fv.Go + ")"
		if !f.Required {
			fv.CreateConv = "optional" + upperFirst(fv.CreateConv)
		}
		fv.PatchConv = "optionalTimestampField(" + strconv.Quote(f.Name) + ", r." + fv.Go + ")"
		fv.SQLite, fv.Postgres = "DATETIME\x00"+notNull, "timestamptz\x00"+notNull
	case "date":
		rules = append(rules, "date")
		fv.ModelType, fv.PatchType, fv.RespType = "NullDate", "NullDate", ptr("string")
		fv.CreateConv = "dateField(" + strconv.Quote(f.Name) + ", r." + fv.Go + ")"
		if !f.Required {
			fv.CreateConv = "optional" + upperFirst(fv.CreateConv)
		}
		fv.PatchConv = "optionalDateField(" + strconv.Quote(f.Name) + ", r." + fv.Go + ")"
		if fv.Clearable {
			// Optional dates admit null, on create (none) and in a PATCH
			// (clear it).
			fv.CreateConv = "nullableDateField(" + strconv.Quote(f.Name) + ", r." + fv.Go + ")"
			fv.PatchConv = fv.CreateConv
		}
		fv.SQLite = "TEXT\x00" + notNull + " CHECK (" + f.Name + " IS NULL OR length(" + f.Name + ") = 10)"
		fv.Postgres = "date\x00" + notNull
	case "uuid":
		rules = append(rules, "uuid4")
		fv.ModelType, fv.PatchType, fv.RespType = ptr("string"), "*string", ptr("string")
		fv.SQLite, fv.Postgres = "TEXT\x00"+notNull, "uuid\x00"+notNull
	case "enum":
		rules = append(rules, "oneof="+strings.Join(f.Args, " "))
		fv.ModelType, fv.PatchType, fv.RespType = ptr("string"), "*string", ptr("string")
		quoted := make([]string, len(f.Args))
		for i, a := range f.Args {
			quoted[i] = "'" + a + "'"
		}
		check := " CHECK (" + f.Name + " IN (" + strings.Join(quoted, ", ") + "))"
		fv.SQLite, fv.Postgres = "TEXT\x00"+notNull+check, "text\x00"+notNull+check
	case "ref":
		table, sample, err := resolve(f.Args[0])
		if err != nil {
			return fv, fmt.Errorf("field %s: ref(%s): %w", f.Name, f.Args[0], err)
		}
		if f.Index == "unique" {
			return fv, fmt.Errorf("field %s: a ref cannot be unique here; use index", f.Name)
		}
		fv.RefTable, fv.RefHuman, fv.RefSample, fv.RefGo = table, human(table), sample, goName(f.Args[0])
		rules = append(rules, "uuid4")
		fv.ModelType, fv.PatchType, fv.RespType = ptr("string"), "*string", ptr("string")
		// A required reference goes with its target; an optional one is
		// cleared.
		onDelete := "CASCADE"
		if !f.Required {
			onDelete = "SET NULL"
		}
		fv.SQLite = "TEXT\x00" + notNull + " REFERENCES " + table + " (id) ON DELETE " + onDelete
		fv.Postgres = "uuid\x00" + notNull + " REFERENCES " + table + " (id) ON DELETE " + onDelete
	}
	if f.Index == "unique" && (f.Type == "enum" || f.Type == "bool" || slices.ContainsFunc(f.Rules, func(r string) bool { return strings.HasPrefix(r, "oneof=") })) {
		return fv, fmt.Errorf("field %s: a field with a fixed set of values cannot be unique per owner; use index", f.Name)
	}
	if f.Index == "unique" && f.Type == "int" {
		if lo, hi, _ := f.bounds(); hi-lo < 1_000_000 && (hi != 1<<63-1 || lo != -1<<63) {
			return fv, fmt.Errorf("field %s: a unique int needs a range of at least 1000000 values", f.Name)
		}
	}
	tag := strings.Join(rules, ",")
	switch {
	case f.Required && (f.Type == "string" || f.Type == "text" || f.Type == "decimal" || f.Type == "time" || f.Type == "date" ||
		f.Type == "uuid" || f.Type == "enum" || f.Type == "ref"):
		// A required text-like field: absent or "" is refused.
		fv.ReqType, fv.ReqTag = "string", joinRules("required", tag)
	case f.Required:
		// A required number or boolean is a pointer, so that 0 and false
		// are values and only an absent member is refused.
		fv.ReqType, fv.ReqTag, fv.Deref = "*"+goScalar(f.Type), joinRules("required", tag), true
	case f.Default:
		// Absent is the zero value, which is also the column's default.
		fv.ReqType, fv.ReqTag = goScalar(f.Type), tag
	case fv.Clearable:
		fv.ReqType, fv.ReqTag = "nullable[string]", tag
	default:
		fv.ReqType, fv.ReqTag = "*"+goScalar(f.Type), joinRules("omitnil", tag)
	}
	fv.PatchReqType, fv.PatchReqTag = "*"+goScalar(f.Type), joinRules("omitnil", tag)
	if fv.Clearable {
		fv.PatchReqType, fv.PatchReqTag = "nullable[string]", tag
	}
	// A --through-parent list reads rows through a LEFT JOIN, where every
	// column of the child may be NULL.
	fv.RowType, fv.FromRow = fv.ModelType, "row."+fv.Go
	if f.Required || f.Default {
		fv.RowType, fv.FromRow = "*"+fv.ModelType, "*row."+fv.Go
	}
	switch f.Type {
	case "time":
		fv.Resp = "timestamp(m." + fv.Go + ")"
		if !f.Required {
			fv.Resp = "optionalTimestamp(m." + fv.Go + ")"
		}
	case "date":
		fv.Resp = "m." + fv.Go + ".Date.String()"
		if !f.Required {
			fv.Resp = "optionalDate(m." + fv.Go + ")"
		}
	default:
		fv.Resp = "m." + fv.Go
	}
	if err := testValues(f, &fv); err != nil {
		return fv, err
	}
	fv.Invalid = invalidCases(f, fv.ReqTag)
	return fv, nil
}

func joinRules(first, rest string) string {
	if rest == "" {
		return first
	}
	return first + "," + rest
}

func upperFirst(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

// goScalar is the request type of a field type.
func goScalar(typ string) string {
	switch typ {
	case "int":
		return "int32"
	case "bigint":
		return "int64"
	case "bool":
		return "bool"
	}
	return "string"
}

// sql works out the statements' column lists and arguments.
func (v *view) sql() {
	ins := []string{"id", "owner_id"}
	vals := []string{"?", "?"}
	args := []string{"id", "r.owner"}
	if v.Parent != nil {
		ins = append(ins, v.Parent.Column)
		vals = []string{"?", "p.owner_id", "p.id"}
		args = []string{"id"}
	}
	if v.ThroughParent {
		ins, vals = []string{"id", v.Parent.Column}, []string{"?", "p.id"}
	}
	var set, setArgs []string
	for _, f := range v.Fields {
		ins = append(ins, f.Name)
		vals = append(vals, "?")
		args = append(args, "in."+f.Go)
		if f.Clearable {
			set = append(set, f.Name+" = CASE WHEN ? THEN ? ELSE "+f.Name+" END")
			setArgs = append(setArgs, "patch.Set"+f.Go, "patch."+f.Go)
			continue
		}
		set = append(set, f.Name+" = COALESCE(?, "+f.Name+")")
		setArgs = append(setArgs, "patch."+f.Go)
	}
	ins = append(ins, "created_at", "updated_at")
	vals = append(vals, "?", "?")
	args = append(args, "t", "t")
	v.InsertColumns, v.InsertValues, v.InsertArgs = strings.Join(ins, ", "), strings.Join(vals, ", "), strings.Join(args, ", ")
	set = append(set, "updated_at = ?")
	v.UpdateSet, v.UpdateSetTx = strings.Join(set, ",\n\t\t    "), strings.Join(set, ",\n\t\t\t    ")
	v.UpdateArgs = strings.Join(setArgs, ", ")

	// Column definitions, aligned like the hand-written migrations: name,
	// type, constraints. A definition is "TYPE\x00 CONSTRAINTS".
	type col struct{ name, sqlite, postgres string }
	cols := []col{
		{"seq", "INTEGER\x00 PRIMARY KEY", "bigint\x00 GENERATED ALWAYS AS IDENTITY PRIMARY KEY"},
		{"id", "TEXT\x00 NOT NULL UNIQUE", "uuid\x00 NOT NULL UNIQUE"},
		{"owner_id", "TEXT\x00 NOT NULL REFERENCES users (id) ON DELETE CASCADE", "uuid\x00 NOT NULL REFERENCES users (id) ON DELETE CASCADE"},
	}
	if v.ThroughParent {
		cols = cols[:2]
	}
	if v.Parent != nil {
		cols = append(cols, col{v.Parent.Column, "TEXT\x00 NOT NULL REFERENCES " + v.Parent.Table + " (id) ON DELETE CASCADE",
			"uuid\x00 NOT NULL REFERENCES " + v.Parent.Table + " (id) ON DELETE CASCADE"})
	}
	for _, f := range v.Fields {
		cols = append(cols, col{f.Name, f.SQLite, f.Postgres})
	}
	cols = append(cols, col{"created_at", "DATETIME\x00 NOT NULL", "timestamptz\x00 NOT NULL"}, col{"updated_at", "DATETIME\x00 NOT NULL", "timestamptz\x00 NOT NULL"})
	layout := func(defs []string) []string {
		width, typeWidth := 0, 0
		for i, d := range defs {
			width = max(width, len(cols[i].name))
			typ, _, _ := strings.Cut(d, "\x00")
			if !strings.HasPrefix(d, "INTEGER\x00 PRIMARY") && !strings.HasPrefix(d, "bigint\x00 GENERATED") {
				typeWidth = max(typeWidth, len(typ))
			}
		}
		out := make([]string, len(defs))
		for i, d := range defs {
			typ, rest, _ := strings.Cut(d, "\x00")
			line := fmt.Sprintf("    %-*s %-*s%s", width, cols[i].name, typeWidth, typ, rest)
			if i == 0 {
				line = fmt.Sprintf("    %-*s %s%s", width, cols[i].name, typ, rest)
			}
			line = strings.TrimRight(line, " ")
			if i < len(defs)-1 {
				line += ","
			}
			out[i] = line
		}
		return out
	}
	var lite, pg []string
	for _, c := range cols {
		lite, pg = append(lite, c.sqlite), append(pg, c.postgres)
	}
	v.SQLiteColumns, v.PostgresColumns = layout(lite), layout(pg)
}

// WhereAt is Where for a statement indented by tabs: its continuation
// lines line up under the WHERE.
func (v *view) WhereAt(tabs int) string {
	return strings.ReplaceAll(v.Where, "\n", "\n"+strings.Repeat("\t", tabs))
}
