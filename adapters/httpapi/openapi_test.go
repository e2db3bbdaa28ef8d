package httpapi

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

func loadOpenAPI(t *testing.T, data []byte) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		t.Fatalf("loading openapi.yaml: %v", err)
	}
	return doc
}

// TestOpenAPIDocumentIsValid loads openapi.yaml and validates it as an
// OpenAPI 3.1 document, references and examples included.
func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc := loadOpenAPI(t, OpenAPIDocument())
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi: %s, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(t.Context(), openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("openapi.yaml is not valid: %v", err)
	}
	if s := doc.Components.SecuritySchemes["bearer"]; s == nil || s.Value.Scheme != "bearer" {
		t.Fatalf("no bearer security scheme: %+v", s)
	}
}

// TestOpenAPIDocumentsEveryRoute holds the document to the API's routes:
// each pattern Register mounts is an operation of the document.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t, OpenAPIDocument())
	h := newHarness(t, options{})
	for _, r := range h.api.routes() {
		method, path, _ := strings.Cut(r.pattern, " ")
		item := doc.Paths.Value(path)
		if item == nil || item.GetOperation(method) == nil {
			t.Errorf("route %q is not in openapi.yaml", r.pattern)
		}
	}
}

// TestOpenAPIIsServed: GET /api/openapi.yaml answers the embedded document
// as YAML, and what it answers loads.
func TestOpenAPIIsServed(t *testing.T) {
	h := newHarness(t, options{})
	var body []byte
	resp := h.do("GET", "/api/openapi.yaml", "", "", &body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/yaml" {
		t.Fatalf("GET /api/openapi.yaml = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !bytes.Equal(body, OpenAPIDocument()) {
		t.Fatal("GET /api/openapi.yaml is not the embedded document")
	}
	loadOpenAPI(t, body)
}
