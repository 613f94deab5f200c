// Package generator is the endpoint generator behind `rampart generate`:
// it adds owned resources that are secure by construction. From a resource
// name and its fields (name:type[:rules][:index|unique]) it renders the
// templates in templates/generator into a model with an owner-scoped
// repository (models/), handlers with strict request types and their
// end-to-end tests (handlers/), migrations for both dialects with the next
// free number (migrations/), and the registry of generated routes
// (handlers/routes_gen.go) that the hand-written route table appends, so
// that every generated route carries its policy and is documented,
// audited and held to the conformance suite.
//
// It plans before it writes: each target is new, identical, changed by the
// generator (safe to update), edited by someone since it was generated, or
// a file it did not write; any of the last two refuses the whole run with
// nothing written. The hashes that tell them apart are kept in the
// checked-in manifest generate.json. Files are written atomically.
//
// It imports templates (the embedded templates) and nothing else of ours:
// app calls it; handlers and models know nothing of it.
package generator
