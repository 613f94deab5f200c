package handlers

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/rampart-go/rampart/middleware"
)

// openAPIDocument renders the OpenAPI 3.1 document of the route table. It is
// generated from the same table the router is built from, so the document
// cannot list a route the server does not have or miss one it has. Request
// schemas are derived from the request types and carry the validator's
// limits.
func openAPIDocument(routes []route, version string) []byte {
	if version == "" {
		version = "dev"
	}
	paths := map[string]map[string]any{}
	for _, r := range routes {
		p := openAPIPath(r.path)
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		paths[p][strings.ToLower(r.method)] = operation(r)
	}
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
				"bearer": map[string]any{
					"type": "http", "scheme": "bearer",
					"description": "A session token from POST /v1/auth/login. The listed roles are API-key scopes a route needs.",
				},
				"mtls": map[string]any{
					"type":        "mutualTLS",
					"description": "A client certificate from the pinned client CA, on the mTLS listener; its Common Name names the service.",
				},
			},
			"schemas": map[string]any{"Problem": problemSchema()},
		},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic("openapi: " + err.Error()) // the document is built from static types only
	}
	return b
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

func operation(r route) map[string]any {
	op := map[string]any{
		"operationId":      r.doc.id,
		"summary":          r.doc.summary,
		"tags":             []string{r.doc.tag},
		"x-rampart-policy": r.policy.String(),
		"responses":        responses(r),
		"security":         []map[string][]string{},
	}
	switch {
	case r.policy.IsService():
		op["security"] = []map[string][]string{{"mtls": {}}}
		op["servers"] = []map[string]string{{"url": "/", "description": "the mTLS listener (APP_MTLS_ADDR) only"}}
	case !r.policy.IsPublic():
		scopes := []string{}
		if s := r.policy.Scope(); s != "" {
			scopes = append(scopes, string(s))
		}
		op["security"] = []map[string][]string{{"bearer": scopes}}
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
		op["requestBody"] = map[string]any{
			"required": true,
			"content":  map[string]any{"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(r.doc.request), true)}},
		}
	}
	return op
}

func queryParam(name string) map[string]any {
	switch name {
	case "limit":
		return map[string]any{"name": name, "in": "query", "schema": map[string]any{
			"type": "integer", "minimum": 1, "maximum": MaxPageLimit, "default": DefaultPageLimit}}
	case "cursor":
		return map[string]any{"name": name, "in": "query", "description": "Opaque; from next_cursor of the previous page of the same list.",
			"schema": map[string]any{"type": "string", "maxLength": 64}}
	}
	return map[string]any{"name": name, "in": "query", "schema": map[string]any{"type": "string"}}
}

func responses(r route) map[string]any {
	out := map[string]any{}
	ok := map[string]any{"description": http.StatusText(r.doc.status)}
	switch {
	case r.doc.response != nil:
		ok["content"] = map[string]any{r.mediaType(): map[string]any{"schema": schemaOf(reflect.TypeOf(r.doc.response), false)}}
	case r.mediaType() != "application/json":
		ok["content"] = map[string]any{strings.Split(r.mediaType(), ";")[0]: map[string]any{"schema": map[string]any{"type": "string"}}}
	case r.doc.id == "openapi":
		ok["content"] = map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}
	}
	out[strconv.Itoa(r.doc.status)] = ok
	// Every route is rate-limited per client IP (and per user or key when
	// authenticated), and every request has a deadline.
	statuses := []int{http.StatusNotAcceptable, http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusServiceUnavailable}
	if !r.policy.IsPublic() {
		statuses = append(statuses, http.StatusUnauthorized, http.StatusForbidden)
	}
	if strings.Contains(r.path, ":") {
		statuses = append(statuses, http.StatusNotFound)
	}
	if r.doc.request != nil {
		statuses = append(statuses, http.StatusBadRequest, http.StatusRequestEntityTooLarge,
			http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity)
	}
	if len(r.query) > 0 {
		statuses = append(statuses, http.StatusBadRequest, http.StatusUnprocessableEntity)
	}
	statuses = append(statuses, r.doc.errors...)
	slices.Sort(statuses)
	for _, s := range slices.Compact(statuses) {
		resp := map[string]any{
			"description": http.StatusText(s),
			"content":     map[string]any{MIMEProblemJSON: map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Problem"}}},
		}
		if s == http.StatusTooManyRequests {
			resp["description"] = "Rate limited (type " + middleware.ProblemTypeRateLimited + ", with Retry-After, " +
				"RateLimit-Policy and RateLimit) or a resource quota is full (type " + ProblemTypeQuota + ", no Retry-After)"
			resp["headers"] = map[string]any{
				"Retry-After":      map[string]any{"schema": map[string]any{"type": "integer"}},
				"RateLimit-Policy": map[string]any{"schema": map[string]any{"type": "string"}},
				"RateLimit":        map[string]any{"schema": map[string]any{"type": "string"}},
			}
		}
		out[strconv.Itoa(s)] = resp
	}
	return out
}

func problemSchema() map[string]any {
	str := map[string]any{"type": "string"}
	return map[string]any{
		"type":     "object",
		"required": []string{"type", "title", "status"},
		"properties": map[string]any{
			"type": str, "title": str, "detail": str, "request_id": str,
			"status":            map[string]any{"type": "integer"},
			"violated-policies": map[string]any{"type": "array", "items": str},
			"errors": map[string]any{"type": "array", "items": map[string]any{
				"type": "object", "required": []string{"field", "message"},
				"properties": map[string]any{"field": str, "message": str},
			}},
		},
	}
}

// schemaOf derives a JSON Schema from a Go type. For request types it maps
// the validate tags the validator enforces (required, min, max, email,
// date) to their JSON Schema keywords and forbids additional properties.
func schemaOf(t reflect.Type, request bool) map[string]any {
	if reflect.PointerTo(t).Implements(nullableType) {
		inner := schemaOf(t.Field(2).Type, request) // nullable[T].V
		inner["type"] = []string{inner["type"].(string), "null"}
		return inner
	}
	switch t.Kind() {
	case reflect.Pointer:
		s := schemaOf(t.Elem(), request)
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
		return map[string]any{"type": "array", "items": schemaOf(t.Elem(), request)}
	case reflect.Struct:
		props := map[string]any{}
		required := []string{}
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				// An embedded struct's fields are inlined, as encoding/json does.
				inner := schemaOf(f.Type, request)
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
			s := schemaOf(f.Type, request)
			rules := strings.Split(f.Tag.Get("validate"), ",")
			applyRules(s, rules)
			props[name] = s
			if slices.Contains(rules, "required") || !request {
				required = append(required, name)
			}
		}
		s := map[string]any{"type": "object", "properties": props, "required": required}
		if request {
			s["additionalProperties"] = false
		}
		return s
	}
	return map[string]any{}
}

// applyRules maps validate rules onto s. min and max bound a string's
// length, an array's item count or an integer's value, as the validator
// reads them; the rules after dive apply to an array's items.
func applyRules(s map[string]any, rules []string) {
	for _, rule := range rules {
		name, param, _ := strings.Cut(rule, "=")
		n, _ := strconv.Atoi(param)
		switch name {
		case "dive":
			if items, ok := s["items"].(map[string]any); ok {
				s = items
			}
		case "min":
			s[boundKeyword(s, "minLength", "minItems", "minimum")] = n
		case "max":
			s[boundKeyword(s, "maxLength", "maxItems", "maximum")] = n
		case "unique":
			s["uniqueItems"] = true
		case "oneof":
			s["enum"] = strings.Fields(param)
		case "email":
			s["format"] = "email"
		case "date":
			s["format"] = "date"
		}
	}
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
