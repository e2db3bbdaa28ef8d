package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"unicode/utf8"

	"github.com/evchat/chatd/adapters/wire"
)

// decode reads a JSON object body of at most MaxBodyBytes into v, or
// answers the error and returns false.
func (a *API) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, wire.CodeTooLarge, fmt.Sprintf("body larger than %d bytes", a.cfg.MaxBodyBytes))
		return false
	case err != nil:
		writeError(w, http.StatusBadRequest, wire.CodeBadRequest, "body could not be read")
		return false
	case !utf8.Valid(data):
		// encoding/json would replace invalid bytes with U+FFFD unnoticed.
		writeError(w, http.StatusBadRequest, wire.CodeBadRequest, "body is not valid UTF-8")
		return false
	case !wire.ValidEscapes(data):
		// And an escaped lone surrogate too.
		writeError(w, http.StatusBadRequest, wire.CodeBadRequest, "body escapes a lone UTF-16 surrogate")
		return false
	}
	if err := json.Unmarshal(data, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		msg := "body is not a JSON object"
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			msg = "field " + typeErr.Field + " has the wrong type"
		}
		writeError(w, http.StatusBadRequest, wire.CodeBadRequest, msg)
		return false
	}
	return true
}

// fail answers a use case's error with its protocol code.
func (a *API) fail(w http.ResponseWriter, err error) {
	code := wire.CodeOf(err)
	msg := err.Error()
	switch code {
	case wire.CodeInternal:
		a.log.Error("http request failed", "err", err)
		msg = "internal error"
	case wire.CodeUnavailable:
		a.log.Warn("http request failed", "err", err)
		msg = "service unavailable, try again"
		w.Header().Set("Retry-After", "1")
	case wire.CodeRateLimited:
		w.Header().Set("Retry-After", "1")
	}
	writeError(w, statusOf(code), code, msg)
}

// statusOf is the HTTP status of a protocol error code.
func statusOf(code string) int {
	for _, e := range errorStatuses {
		if e.code == code {
			return e.status
		}
	}
	return http.StatusInternalServerError
}

// errorStatuses pairs each protocol error code with its HTTP status, one
// way for statusOf and the other for codeOfStatus.
var errorStatuses = []struct {
	code   string
	status int
}{
	{wire.CodeBadRequest, http.StatusBadRequest},
	{wire.CodeUnauthorized, http.StatusUnauthorized},
	{wire.CodeForbidden, http.StatusForbidden},
	{wire.CodeNotFound, http.StatusNotFound},
	{wire.CodeTooLarge, http.StatusRequestEntityTooLarge},
	{wire.CodeRateLimited, http.StatusTooManyRequests},
	{wire.CodeUnavailable, http.StatusServiceUnavailable},
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, wire.Error{Code: code, Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	// Answers carry tokens and private messages: no cache may keep them.
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
