package httpapi

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"strings"

	"github.com/evchat/chatd/adapters/wire"
)

// maxPlainErrorBytes is as much of a plain-text error as becomes its
// message; http.Error writes one short line.
const maxPlainErrorBytes = 512

// JSONErrors turns the plain-text errors that net/http writes on its own
// (the ServeMux's 404 for an unknown route and 405 for a known route with
// another method, http.Error and http.NotFound in handlers, the range and
// precondition failures of http.ServeContent) into the protocol's JSON
// `{"code","message"}`, keeping their status and headers such as Allow.
// Wrap the whole mux with it, so that every route of the listener answers
// errors one way. A 405 is `bad_request`: the route exists, the request
// does not fit it, and Allow says what would.
func JSONErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		jw := &jsonErrorWriter{ResponseWriter: w}
		next.ServeHTTP(jw, r)
		jw.finish()
	})
}

// jsonErrorWriter holds back a plain-text error response until the
// handler returns, then writes it as JSON; anything else passes through.
type jsonErrorWriter struct {
	http.ResponseWriter
	committed bool // a status other than a held error went out
	status    int  // the held error's status; 0 when none is held
	text      bytes.Buffer
}

func (w *jsonErrorWriter) WriteHeader(status int) {
	if !w.committed && w.status == 0 && status >= http.StatusBadRequest &&
		strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		w.status = status
		return
	}
	if w.status != 0 {
		return
	}
	if status >= http.StatusOK {
		w.committed = true
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *jsonErrorWriter) Write(p []byte) (int, error) {
	if w.status != 0 {
		w.text.Write(p[:min(len(p), max(0, maxPlainErrorBytes-w.text.Len()))])
		return len(p), nil
	}
	w.committed = true
	return w.ResponseWriter.Write(p)
}

// Hijack lets the WebSocket upgrader take the connection.
func (w *jsonErrorWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *jsonErrorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *jsonErrorWriter) finish() {
	if w.status == 0 {
		return
	}
	msg := strings.TrimSpace(w.text.String())
	if msg == "" {
		msg = strings.ToLower(http.StatusText(w.status))
	}
	writeError(w.ResponseWriter, w.status, codeOfStatus(w.status), msg)
}

// codeOfStatus is the protocol error code of an HTTP error status, the
// inverse of statusOf where there is one.
func codeOfStatus(status int) string {
	for _, e := range errorStatuses {
		if e.status == status {
			return e.code
		}
	}
	if status < http.StatusInternalServerError {
		return wire.CodeBadRequest
	}
	return wire.CodeInternal
}
