// Package api holds poolserver's wire formats: the Okta (okta), SailPoint
// (sailpoint) and appliance types, and the OpenAPI 3.0 document that
// describes every route poolserver serves.
package api

import _ "embed"

// OpenAPI is the OpenAPI 3.0 document of poolserver's HTTP API (YAML),
// served at GET /openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte
