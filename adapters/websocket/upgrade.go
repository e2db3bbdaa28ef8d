package websocket

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/websocket"

	"github.com/evchat/chatd/adapters/wire"
)

// refusal is what the upgrader would refuse r for, in the upgrader's order,
// as a status and a message; 0 when the upgrade may go ahead.
func (s *Server) refusal(r *http.Request) (status int, msg string) {
	switch {
	case !websocket.IsWebSocketUpgrade(r):
		return http.StatusBadRequest, "not a WebSocket upgrade: the 'Connection: upgrade' and 'Upgrade: websocket' headers are required"
	case r.Method != http.MethodGet:
		return http.StatusMethodNotAllowed, "a WebSocket upgrade is a GET"
	case !headerHasToken(r.Header, "Sec-Websocket-Version", "13"):
		return http.StatusBadRequest, "unsupported WebSocket version: 13 is required"
	case !s.upgrader.CheckOrigin(r):
		return http.StatusForbidden, "origin not allowed"
	case !validChallengeKey(r.Header.Get("Sec-Websocket-Key")):
		return http.StatusBadRequest, "the Sec-WebSocket-Key header must be 16 bytes in base64"
	}
	return 0, ""
}

// codeOfRefusal is the protocol code of a refused upgrade's status: a
// forbidden origin, or a request that is no upgrade the server can make.
func codeOfRefusal(status int) string {
	if status == http.StatusForbidden {
		return wire.CodeForbidden
	}
	return wire.CodeBadRequest
}

// headerHasToken: one of the comma-separated values of header name is token.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func validChallengeKey(key string) bool {
	decoded, err := base64.StdEncoding.DecodeString(key)
	return err == nil && len(decoded) == 16
}

// originChecker allows requests without Origin, same-host requests and the
// configured origins; gorilla's own check covers the first two.
func originChecker(allowed []string) func(*http.Request) bool {
	set := map[string]bool{}
	for _, o := range allowed {
		if o == "*" {
			return func(*http.Request) bool { return true }
		}
		set[strings.ToLower(strings.TrimSuffix(o, "/"))] = true
	}
	return func(r *http.Request) bool {
		origin := r.Header.Get("Origin")
		if origin == "" || set[strings.ToLower(origin)] {
			return true
		}
		u, err := url.Parse(origin)
		return err == nil && strings.EqualFold(u.Host, r.Host)
	}
}

// writeHTTPError answers an upgrade refused before it began, as the REST
// API answers its errors.
func writeHTTPError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(wire.Error{Code: code, Message: msg})
}
