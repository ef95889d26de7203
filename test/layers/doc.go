// Package layers holds the test of the module's import rules: shared
// leaves import no other project package, the store knows nothing of HTTP
// or the engine, the engine has no pointer back to the HTTP server, and
// the host side links no control-plane code (docs/architecture.md).
package layers
