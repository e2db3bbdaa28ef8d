package httpapi

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/evchat/chatd/adapters/wire"
)

func TestJSONErrors(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /things/{id}", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("id") {
		case "plain":
			http.Error(w, "teapot here", http.StatusTeapot)
		case "json":
			writeError(w, http.StatusForbidden, "forbidden", "not yours")
		case "gone":
			http.NotFound(w, r)
		case "broken":
			http.Error(w, "it broke", http.StatusInternalServerError)
		default:
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "thing "+r.PathValue("id"))
		}
	})
	h := JSONErrors(mux)

	tests := []struct {
		method, path string
		status       int
		code         string // "" when the answer is not an error
		message      string
		allow        string
	}{
		{"GET", "/nowhere", http.StatusNotFound, "not_found", "404 page not found", ""},
		{"POST", "/things/1", http.StatusMethodNotAllowed, "bad_request", "Method Not Allowed", "GET, HEAD"},
		{"GET", "/things/plain", http.StatusTeapot, "bad_request", "teapot here", ""},
		{"GET", "/things/json", http.StatusForbidden, "forbidden", "not yours", ""},
		{"GET", "/things/gone", http.StatusNotFound, "not_found", "404 page not found", ""},
		{"GET", "/things/broken", http.StatusInternalServerError, "internal", "it broke", ""},
		{"GET", "/things/7", http.StatusOK, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d; body %q", rec.Code, tt.status, rec.Body)
			}
			if got := rec.Header().Get("Allow"); got != tt.allow {
				t.Errorf("Allow %q, want %q", got, tt.allow)
			}
			if tt.code == "" {
				if rec.Body.String() != "thing 7" {
					t.Fatalf("body %q passed through changed", rec.Body)
				}
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var e wire.Error
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
				t.Fatalf("body %q is not one JSON error: %v", rec.Body, err)
			}
			if e.Code != tt.code || e.Message != tt.message {
				t.Fatalf("error %+v, want %s %q", e, tt.code, tt.message)
			}
		})
	}
}

func TestJSONErrorsLetsAHandlerHijack(t *testing.T) {
	srv := httptest.NewServer(JSONErrors(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		conn, rw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		defer conn.Close()
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\n\r\nhijacked")
		_ = rw.Flush()
	})))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(bufio.NewReader(conn))
	if err != nil || !strings.HasSuffix(string(got), "hijacked") {
		t.Fatalf("read %q, %v; want the hijacker's bytes", got, err)
	}
}
