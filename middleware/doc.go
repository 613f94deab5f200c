// Package middleware holds the cross-cutting defenses that wrap handlers:
// request IDs, authentication and the per-route authorization policy, the
// query-parameter allowlist and content negotiation. Later defenses (security
// headers, CORS, rate limits, quotas, audit) live here too.
//
// Each middleware follows echo's own pattern where it has options: an
// XxxConfig, a DefaultXxxConfig and XxxWithConfig(cfg), with a Skipper.
// Middleware returns errors (*models.Error); it never writes a response
// body. The handlers package's error handler writes every error.
//
// Dependency rule: middleware imports models (and echo); never handlers or
// app.
package middleware
