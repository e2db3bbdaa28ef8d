package httpapi

import (
	_ "embed"
	"net/http"
)

// openAPIDocument describes every route a node serves over HTTP, these and
// the WebSocket upgrade and the web page beside them. It is embedded so
// that the document a node serves is the one its build was tested against.
//
//go:embed openapi.yaml
var openAPIDocument []byte

// OpenAPIDocument returns the OpenAPI 3.1 document of the node's HTTP
// routes, for tools and tests that check answers against it.
func OpenAPIDocument() []byte { return append([]byte(nil), openAPIDocument...) }

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	// RFC 9512's media type for YAML.
	h.Set("Content-Type", "application/yaml")
	h.Set("X-Content-Type-Options", "nosniff")
	// A new release may change the document: revalidate, as the web page does.
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(openAPIDocument)
}
