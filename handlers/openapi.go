package handlers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/models"
)

// openAPIDocument renders the OpenAPI 3.1 document of the route table. It is
// generated from the same table the router is built from, so the document
// cannot list a route the server does not have or miss one it has. Request
// schemas are derived from the request types and carry the validator's
// limits; a validation rule the document cannot express is an error, so
// that a limit is never silently left out (start-up fails instead).
func openAPIDocument(routes []route, version string) ([]byte, error) {
	if version == "" {
		version = "dev"
	}
	b := &docBuilder{}
	paths := map[string]map[string]any{}
	for _, r := range routes {
		p := openAPIPath(r.path)
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		paths[p][strings.ToLower(r.method)] = b.operation(r)
	}
	if len(b.errs) > 0 {
		return nil, fmt.Errorf("openapi: %w", joinErrors(b.errs))
	}
	str := map[string]any{"type": "string"}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":   "Rampart sample API",
			"version": version,
			"description": "A secure-by-default REST API: every route states its policy; " +
				"bodies are strict JSON (415/413/400/422); errors are RFC 9457 problem+json; " +
				"another owner's object is 404.",
		},
		"paths": paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{
				schemeSession: map[string]any{
					"type": "http", "scheme": "bearer", "bearerFormat": models.SessionTokenPrefix + "…",
					"description": "A session token from POST /v1/auth/login. Admin operations list the role they need (admin).",
				},
				schemeAPIKey: map[string]any{
					"type": "http", "scheme": "bearer", "bearerFormat": models.APIKeyPrefix + "…",
					"description": "An API key from POST /v1/api-keys, sent as a bearer token. An operation lists the scope " +
						"the key must carry; keys reach only the project and task operations (403 elsewhere).",
				},
				schemeMTLS: map[string]any{
					"type":        "mutualTLS",
					"description": "A client certificate from the pinned client CA, on the mTLS listener; its Common Name names the service.",
				},
			},
			"headers": map[string]any{
				"X-Request-Id": map[string]any{"required": true, "schema": str,
					"description": "The request's ID (the client's own when it is a short token of safe characters); also in every problem's request_id."},
				"RateLimit-Policy": map[string]any{"schema": str,
					"description": `The rate-limit policies that applied (draft-ietf-httpapi-ratelimit-headers-10), e.g. "ip";q=600;w=60.`},
				"RateLimit": map[string]any{"schema": str,
					"description": `What is left of each policy, e.g. "ip";r=598;t=1.`},
				"Retry-After": map[string]any{"schema": map[string]any{"type": "integer", "minimum": 0},
					"description": "Seconds to wait; sent with a rate-limit 429 and a 503, never with a full quota."},
				"WWW-Authenticate": map[string]any{"required": true, "schema": str,
					"description": `A Bearer challenge (RFC 6750), e.g. Bearer realm="rampart", error="invalid_token".`},
			},
			"schemas": map[string]any{"Problem": problemSchema()},
		},
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	return out, nil
}

// Security scheme names of the document.
const (
	schemeSession = "bearer"
	schemeAPIKey  = "apiKey"
	schemeMTLS    = "mtls"
)

// docBuilder collects what the document cannot express while it is built.
type docBuilder struct {
	errs []error
}

func joinErrors(errs []error) error {
	msgs := make([]string, len(errs))
	for i, err := range errs {
		msgs[i] = err.Error()
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}

func openAPIPath(echoPath string) string {
	parts := strings.Split(echoPath, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, ":") {
			parts[i] = "{" + p[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}

// security is the security requirement of a route: who may call it, as
// alternatives (any one of them suffices). Public routes have none, which
// the empty list says explicitly.
func security(p middleware.Policy) []map[string][]string {
	switch {
	case p.IsPublic():
		return []map[string][]string{}
	case p.IsService():
		return []map[string][]string{{schemeMTLS: {}}}
	case p.IsAdmin():
		return []map[string][]string{{schemeSession: {"admin"}}}
	case p.Scope() != "":
		// The owner's session, or one of the owner's API keys with the scope.
		return []map[string][]string{{schemeSession: {}}, {schemeAPIKey: {string(p.Scope())}}}
	}
	return []map[string][]string{{schemeSession: {}}}
}

// policyText says in words who may call a route.
func policyText(p middleware.Policy) string {
	switch {
	case p.IsPublic():
		return "Public: no credentials are read."
	case p.IsService():
		return "Services only: a verified client certificate on the mTLS listener."
	case p.IsAdmin():
		return "Administrators, with a session (API keys get 403, other users 403)."
	case p.Scope() != "":
		return "The owner, with a session or an API key with the scope " + string(p.Scope()) +
			" (403 without it). Another owner's object is 404."
	}
	return "A signed-in user with a session (API keys get 403)."
}

func (b *docBuilder) operation(r route) map[string]any {
	op := map[string]any{
		"operationId":      r.doc.id,
		"summary":          r.doc.summary,
		"description":      policyText(r.policy),
		"tags":             []string{r.doc.tag},
		"x-rampart-policy": r.policy.String(),
		"responses":        b.responses(r),
		"security":         security(r.policy),
	}
	if r.policy.IsService() {
		op["servers"] = []map[string]string{{"url": "/", "description": "the mTLS listener (APP_MTLS_ADDR) only"}}
	}
	var params []map[string]any
	for _, part := range strings.Split(r.path, "/") {
		if name, ok := strings.CutPrefix(part, ":"); ok {
			params = append(params, map[string]any{"name": name, "in": "path", "required": true,
				"schema": map[string]any{"type": "string", "format": "uuid"}})
		}
	}
	for _, q := range r.query {
		params = append(params, queryParam(q))
	}
	if params != nil {
		op["parameters"] = params
	}
	if r.doc.request != nil {
		s := b.schemaOf(reflect.TypeOf(r.doc.request), true, r.doc.id)
		for name, extra := range r.doc.limits {
			prop, ok := s["properties"].(map[string]any)[name].(map[string]any)
			if !ok {
				b.errs = append(b.errs, fmt.Errorf("%s: limits name %q, which the request does not have", r.doc.id, name))
				continue
			}
			for k, v := range extra {
				prop[k] = v
			}
		}
		op["requestBody"] = map[string]any{
			"required": true,
			"content":  map[string]any{"application/json": map[string]any{"schema": s}},
		}
	}
	return op
}

func queryParam(name string) map[string]any {
	var s map[string]any
	desc := ""
	switch name {
	case "limit":
		s = map[string]any{"type": "integer", "minimum": 1, "maximum": MaxPageLimit, "default": DefaultPageLimit}
		desc = "Page size; not an integer is 400, outside 1–100 is 422."
	case "cursor":
		s = map[string]any{"type": "string", "maxLength": 64}
		desc = "Opaque; from next_cursor of the previous page of the same list (400 otherwise)."
	case "actor":
		s = map[string]any{"type": "string", "maxLength": 128}
		desc = "The ID of the actor or of the acting user."
	case "action":
		s = map[string]any{"type": "string", "pattern": auditActionPattern.String()}
		desc = "An action name of the OWASP Logging Vocabulary, e.g. authn_login_fail."
	case "outcome":
		s = map[string]any{"type": "string", "enum": []string{models.OutcomeAllow, models.OutcomeDeny, models.OutcomeError}}
	case "sort":
		s = map[string]any{"type": "string"}
		desc = "An indexed field to order by (then oldest first); another value is 422."
	case "since":
		s = map[string]any{"type": "string", "format": "date-time"}
		desc = "Events at or after this RFC 3339 time."
	default:
		s = map[string]any{"type": "string"}
	}
	p := map[string]any{"name": name, "in": "query", "schema": s}
	if desc != "" {
		p["description"] = desc
	}
	return p
}

// headerRef points at one of the document's shared headers.
func headerRef(name string) map[string]any {
	return map[string]any{"$ref": "#/components/headers/" + name}
}

// errorStatuses lists the error answers route r can give. Every route
// takes only its own query parameters (400), refuses a body over its cap
// (413, checked on every request), negotiates its media type (406), is
// rate-limited (429) and can fail (500, 503).
func errorStatuses(r route) []int {
	statuses := []int{http.StatusBadRequest, http.StatusNotAcceptable, http.StatusRequestEntityTooLarge,
		http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusServiceUnavailable}
	if !r.policy.IsPublic() {
		statuses = append(statuses, http.StatusUnauthorized)
		if !r.policy.IsService() {
			// A wrong role, a key without the scope, a key on a
			// session-only route.
			statuses = append(statuses, http.StatusForbidden)
		}
	}
	if strings.Contains(r.path, ":") {
		statuses = append(statuses, http.StatusNotFound)
	}
	if r.doc.request != nil {
		statuses = append(statuses, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity)
	}
	if slices.Contains(r.query, "limit") || len(r.query) > 0 {
		statuses = append(statuses, http.StatusUnprocessableEntity)
	}
	statuses = append(statuses, r.doc.errors...)
	slices.Sort(statuses)
	return slices.Compact(statuses)
}

func (b *docBuilder) responses(r route) map[string]any {
	out := map[string]any{}
	common := func() map[string]any {
		return map[string]any{
			"X-Request-Id":     headerRef("X-Request-Id"),
			"RateLimit-Policy": headerRef("RateLimit-Policy"),
			"RateLimit":        headerRef("RateLimit"),
		}
	}
	ok := map[string]any{"description": http.StatusText(r.doc.status), "headers": common()}
	switch {
	case r.doc.response != nil:
		ok["content"] = map[string]any{r.mediaType(): map[string]any{"schema": b.schemaOf(reflect.TypeOf(r.doc.response), false, r.doc.id)}}
	case r.mediaType() != "application/json":
		ok["content"] = map[string]any{strings.Split(r.mediaType(), ";")[0]: map[string]any{"schema": map[string]any{"type": "string"}}}
	case r.doc.id == "openapi":
		ok["content"] = map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}
	}
	out[strconv.Itoa(r.doc.status)] = ok
	for _, s := range errorStatuses(r) {
		headers := common()
		resp := map[string]any{
			"description": http.StatusText(s),
			"headers":     headers,
			"content":     map[string]any{MIMEProblemJSON: map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Problem"}}},
		}
		switch s {
		case http.StatusUnauthorized:
			headers["WWW-Authenticate"] = headerRef("WWW-Authenticate")
		case http.StatusTooManyRequests:
			resp["description"] = "Rate limited (type " + middleware.ProblemTypeRateLimited + ", with Retry-After and " +
				"violated-policies) or a resource quota is full (type " + ProblemTypeQuota + ", no Retry-After)"
			headers["Retry-After"] = headerRef("Retry-After")
		case http.StatusServiceUnavailable:
			headers["Retry-After"] = headerRef("Retry-After")
		}
		out[strconv.Itoa(s)] = resp
	}
	return out
}

// problemSchema is RFC 9457 problem details with the members this API
// uses; no other member is ever sent.
func problemSchema() map[string]any {
	str := map[string]any{"type": "string"}
	return map[string]any{
		"type":                 "object",
		"required":             []string{"type", "title", "status", "request_id"},
		"additionalProperties": false,
		"properties": map[string]any{
			"type":       map[string]any{"type": "string", "format": "uri-reference"},
			"title":      str,
			"detail":     str,
			"request_id": str,
			"status":     map[string]any{"type": "integer", "minimum": 400, "maximum": 599},
			"violated-policies": map[string]any{"type": "array", "items": str, "minItems": 1,
				"description": "The rate-limit policies a 429 broke."},
			"errors": map[string]any{"type": "array", "items": map[string]any{
				"type": "object", "required": []string{"field", "message"}, "additionalProperties": false,
				"properties": map[string]any{"field": str, "message": str},
			}},
		},
	}
}

// schemaOf derives a JSON Schema from a Go type. For request types it maps
// the validate tags the validator enforces to their JSON Schema keywords.
// Objects admit no other members, in either direction. where names the
// operation in errors.
func (b *docBuilder) schemaOf(t reflect.Type, request bool, where string) map[string]any {
	if reflect.PointerTo(t).Implements(nullableType) {
		inner := b.schemaOf(t.Field(2).Type, request, where) // nullable[T].V
		inner["type"] = []string{inner["type"].(string), "null"}
		return inner
	}
	switch t.Kind() {
	case reflect.Pointer:
		s := b.schemaOf(t.Elem(), request, where)
		if !request { // a nil pointer in a response is JSON null
			if typ, ok := s["type"].(string); ok {
				s["type"] = []string{typ, "null"}
			}
		}
		return s
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64, reflect.Int32:
		return map[string]any{"type": "integer"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": b.schemaOf(t.Elem(), request, where)}
	case reflect.Struct:
		props := map[string]any{}
		required := []string{}
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				// An embedded struct's fields are inlined, as encoding/json does.
				inner := b.schemaOf(f.Type, request, where)
				for k, v := range inner["properties"].(map[string]any) {
					props[k] = v
				}
				required = append(required, inner["required"].([]string)...)
				continue
			}
			if !f.IsExported() {
				continue
			}
			name := jsonName(f)
			s := b.schemaOf(f.Type, request, where)
			rules := strings.Split(f.Tag.Get("validate"), ",")
			if err := applyRules(s, rules); err != nil {
				b.errs = append(b.errs, fmt.Errorf("%s: field %s: %w", where, name, err))
			}
			props[name] = s
			// An answer always has its members, but those marked
			// omitempty (a secret shown only once).
			_, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			omitted := slices.Contains(strings.Split(opts, ","), "omitempty")
			if slices.Contains(rules, "required") || (!request && !omitted) {
				required = append(required, name)
			}
		}
		// Requests: an unknown member is refused (400). Answers: a member
		// not listed here is never sent.
		return map[string]any{"type": "object", "properties": props, "required": required, "additionalProperties": false}
	}
	b.errs = append(b.errs, fmt.Errorf("%s: no schema for the Go type %s", where, t))
	return map[string]any{}
}

// ruleDescriptions are the validate rules that JSON Schema has no keyword
// for; the document says them in words.
var ruleDescriptions = map[string]string{
	"nocontrol":   "No control or format characters, no line breaks.",
	"nocontrolml": "No control or format characters; line breaks and tabs are allowed.",
}

// applyRules maps validate rules onto s. min and max bound a string's
// length, an array's item count or an integer's value, as the validator
// reads them; the rules after dive apply to an array's items. A rule it
// does not know is an error: the document must not lose a limit.
func applyRules(s map[string]any, rules []string) error {
	for _, rule := range rules {
		name, param, _ := strings.Cut(rule, "=")
		switch name {
		case "", "required", "omitnil":
			// required is the schema's required list; omitnil means
			// "absent is fine", which a non-required property already says.
		case "dive":
			items, ok := s["items"].(map[string]any)
			if !ok {
				return fmt.Errorf("dive on a value that is not an array")
			}
			s = items
		case "min", "max":
			n, err := strconv.Atoi(param)
			if err != nil {
				return fmt.Errorf("rule %q: %w", rule, err)
			}
			if name == "min" {
				s[boundKeyword(s, "minLength", "minItems", "minimum")] = n
			} else {
				s[boundKeyword(s, "maxLength", "maxItems", "maximum")] = n
			}
		case "unique":
			s["uniqueItems"] = true
		case "oneof":
			s["enum"] = strings.Fields(param)
		case "email":
			s["format"] = "email"
		case "date":
			s["format"] = "date"
		case "len":
			n, err := strconv.Atoi(param)
			if err != nil {
				return fmt.Errorf("rule %q: %w", rule, err)
			}
			s[boundKeyword(s, "minLength", "minItems", "minimum")] = n
			s[boundKeyword(s, "maxLength", "maxItems", "maximum")] = n
		case "gte":
			n, err := strconv.Atoi(param)
			if err != nil {
				return fmt.Errorf("rule %q: %w", rule, err)
			}
			s["minimum"] = n
		case "lte":
			n, err := strconv.Atoi(param)
			if err != nil {
				return fmt.Errorf("rule %q: %w", rule, err)
			}
			s["maximum"] = n
		case "url":
			s["format"] = "uri"
		case "uuid4":
			s["format"] = "uuid"
		case "timestamp":
			s["format"] = "date-time"
		case "alphanum":
			s["pattern"] = "^[A-Za-z0-9]*$"
		case "decimal":
			pattern, err := decimalPattern(param)
			if err != nil {
				return fmt.Errorf("rule %q: %w", rule, err)
			}
			s["pattern"] = pattern
		default:
			text, ok := ruleDescriptions[name]
			if !ok {
				return fmt.Errorf("the validate rule %q has no JSON Schema form: teach applyRules", rule)
			}
			if d, _ := s["description"].(string); d != "" {
				text = d + " " + text
			}
			s["description"] = text
		}
	}
	return nil
}

// boundKeyword picks the JSON Schema keyword for a bound on s by its type.
func boundKeyword(s map[string]any, str, array, number string) string {
	typ, _ := s["type"].(string)
	if types, ok := s["type"].([]string); ok && len(types) > 0 {
		typ = types[0]
	}
	switch typ {
	case "array":
		return array
	case "integer", "number":
		return number
	}
	return str
}
