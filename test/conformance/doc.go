// Package conformance drives a real poolserver over real HTTP with the
// official Okta SDKs and checks that every response decodes into the SDK's
// types with the values the Agent Pools API seeds describe. It holds only
// tests; run them with `go test ./test/conformance/`.
package conformance
