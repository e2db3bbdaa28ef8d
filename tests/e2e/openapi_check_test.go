package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/evchat/chatd/adapters/httpapi"
)

// openAPI is adapters/httpapi/openapi.yaml, loaded once for every check.
var openAPI = sync.OnceValues(func() (*openAPIDocument, error) {
	doc, err := openapi3.NewLoader().LoadFromData(httpapi.OpenAPIDocument())
	if err != nil {
		return nil, fmt.Errorf("loading openapi.yaml: %w", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("routing openapi.yaml: %w", err)
	}
	return &openAPIDocument{doc: doc, router: router}, nil
})

type openAPIDocument struct {
	doc    *openapi3.T
	router routers.Router
}

// openAPIChecked is an http.RoundTripper that checks every response
// against openapi.yaml: its status is documented for its operation, and
// its headers and body fit the document. A response that breaks the
// document comes back as the call's error, so the test that made the call
// fails and says why. A route the document does not have must answer as
// the server answers unknown routes: 404, or 405 with Allow, and an Error.
type openAPIChecked struct{ base http.RoundTripper }

func (c openAPIChecked) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if err != nil || req.Method == http.MethodHead {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err := checkOpenAPI(req, resp, body); err != nil {
		return nil, fmt.Errorf("%s %s answered %d %s, which breaks openapi.yaml: %w", req.Method, req.URL.RequestURI(), resp.StatusCode, body, err)
	}
	return resp, nil
}

func checkOpenAPI(req *http.Request, resp *http.Response, body []byte) error {
	api, err := openAPI()
	if err != nil {
		return err
	}
	route, params, err := api.router.FindRoute(req)
	var notRouted *routers.RouteError
	if errors.As(err, &notRouted) {
		return api.checkUnknownRoute(resp, body)
	}
	if err != nil {
		return err
	}
	return openapi3filter.ValidateResponse(req.Context(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	})
}

// checkUnknownRoute checks the answer to a method and path the document
// does not have: 404, or 405 with Allow when the path exists with other
// methods, and an Error body.
func (api *openAPIDocument) checkUnknownRoute(resp *http.Response, body []byte) error {
	switch {
	case resp.StatusCode == http.StatusMethodNotAllowed && resp.Header.Get("Allow") == "":
		return errors.New("a 405 needs an Allow header")
	case resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed:
		return fmt.Errorf("an undocumented route answered %d, want 404 or 405", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		return fmt.Errorf("Content-Type %q, want application/json", ct)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return err
	}
	return api.doc.Components.Schemas["Error"].Value.VisitJSON(v, openapi3.EnableJSONSchema2020())
}

// TestOpenAPICheckRefusesBrokenAnswers shows that the suite's client fails
// a call whose answer breaks the document, and lets one that fits it pass.
func TestOpenAPICheckRefusesBrokenAnswers(t *testing.T) {
	t.Parallel()
	answers := map[string]struct {
		status int
		body   string
	}{
		"/healthz":           {http.StatusOK, `{"status":"ok"}`},
		"/readyz":            {http.StatusOK, `{"status":"napping"}`},
		"/api/conversations": {http.StatusTeapot, `{"code":"bad_request","message":"undocumented status"}`},
		"/no/such/route":     {http.StatusOK, `{}`},
		"/api/presence":      {http.StatusUnauthorized, `{"code":"unauthorized"}`},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := answers[r.URL.Path]
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("WWW-Authenticate", "Bearer")
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	defer srv.Close()
	for path := range answers {
		resp, err := httpClient.Get(srv.URL + path)
		if err == nil {
			resp.Body.Close()
		}
		if fits := path == "/healthz"; fits != (err == nil) {
			t.Errorf("GET %s: error %v; the answer fits the document: %v", path, err, fits)
		}
	}
}

// TestRoutesSchemathesisLeavesOut checks, through the suite's checking
// client, the answers schemathesis never asks for: /ws is left out of its
// run (and the WebSocket dialer has no RoundTripper to check with), so the
// upgrade's refusals are asked here, and schemathesis does not test the
// document's own route.
func TestRoutesSchemathesisLeavesOut(t *testing.T) {
	t.Parallel()
	n := StartNode(t, nil)
	token := n.Token(t, "alice")
	for _, tt := range []struct {
		name, token string
		status      int
		code        string
	}{
		{"/ws with no token", "", http.StatusUnauthorized, "unauthorized"},
		{"/ws not as an upgrade", token, http.StatusBadRequest, "bad_request"},
	} {
		status, body := n.Do(t, http.MethodGet, "/ws", tt.token, nil)
		expectError(t, tt.name, status, body, tt.status, tt.code)
	}
	if status, body := n.Do(t, http.MethodGet, "/api/openapi.yaml", "", nil); status != http.StatusOK ||
		!bytes.Equal(body, httpapi.OpenAPIDocument()) {
		t.Errorf("GET /api/openapi.yaml: %d, and the body is not the embedded document", status)
	}
}
