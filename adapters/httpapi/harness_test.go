package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/evchat/chatd/adapters/auth"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/tests/embedded"
)

var testSecret = []byte("httpapi-test-secret-of-at-least-32")

type pinger struct{ err error }

func (p pinger) Ping(context.Context) error { return p.err }

type harness struct {
	t      *testing.T
	node   *embedded.Node
	app    *application.Application
	api    *API
	url    string
	issuer *auth.Issuer
}

type options struct {
	jwtMode bool
	appCfg  application.Config
	cfg     Config
	checks  []Check
}

// newHarness serves the API over the application built on the in-memory
// adapters, as the embedded default wires it.
func newHarness(t *testing.T, o options) *harness {
	t.Helper()
	n := embedded.New(t, o.appCfg, testSecret)
	app, issuer := n.App, n.Issuer
	deps := Deps{App: app, Verifier: n.Verifier, Issuer: issuer, Gatherer: n.Registry, Metrics: n.Metrics,
		Checks: append([]Check{{"store", n.Store}, {"broker", n.Bus}}, o.checks...)}
	if o.jwtMode {
		deps.Issuer = nil
	}
	api, err := New(o.cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return &harness{t: t, node: n, app: app, api: api, url: hs.URL, issuer: issuer}
}

func (h *harness) token(u string) string {
	h.t.Helper()
	tok, _, err := h.issuer.Issue(user.ID(u))
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// do sends a request as u ("" for none) and decodes the JSON answer into
// out, or copies the answer into it when out is a *[]byte.
func (h *harness) do(method, path, u, body string, out any) *http.Response {
	h.t.Helper()
	req, err := http.NewRequest(method, h.url+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if u != "" {
		req.Header.Set("Authorization", "Bearer "+h.token(u))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = data
	} else if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			h.t.Fatalf("%s %s: %d %q: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp
}

type apiError struct{ Code, Message string }

// wantError checks an error answer's status and code.
func (h *harness) wantError(method, path, u, body string, status int, code string) {
	h.t.Helper()
	var e apiError
	resp := h.do(method, path, u, body, &e)
	if resp.StatusCode != status || e.Code != code || e.Message == "" {
		h.t.Fatalf("%s %s %s = %d %+v; want %d %s", method, path, body, resp.StatusCode, e, status, code)
	}
}

type ack struct {
	ID, MessageID, Conversation, SentAt string
	Seq                                 uint64
}

func (h *harness) send(from, id, to, body string) ack {
	h.t.Helper()
	var a ack
	payload, _ := json.Marshal(map[string]string{"id": id, "to": to, "body": body})
	if resp := h.do("POST", "/api/messages", from, string(payload), &a); resp.StatusCode != http.StatusCreated {
		h.t.Fatalf("send = %d %+v", resp.StatusCode, a)
	}
	return a
}
