// Package handlers is the HTTP surface: the route table (every route with
// its policy), one file per resource with its request and response types,
// the strict JSON decoder, the validator, the problem+json error writer and
// the OpenAPI document generated from the route table.
//
// Handlers get their dependencies through New (no globals, no c.Get("db")),
// decode bodies only through decodeJSON (never c.Bind), and never serialise
// a model directly: responses list their fields.
//
// Dependency rule: handlers imports middleware, models and templates (and
// echo); never app.
package handlers
