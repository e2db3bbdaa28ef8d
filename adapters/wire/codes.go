package wire

import (
	"context"
	"errors"

	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain"
	"github.com/evchat/chatd/ports"
)

// The error codes of PROTOCOL.md, one per kind of failure, whichever
// transport answers with them.
const (
	CodeBadRequest   = "bad_request"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeNotFound     = "not_found"
	CodeTooLarge     = "too_large"
	CodeRateLimited  = "rate_limited"
	CodeUnavailable  = "unavailable"
	CodeInternal     = "internal"
	// CodeTooManySessions refuses a WebSocket upgrade past the per-user
	// session cap; it answers the upgrade's HTTP request, never a frame.
	CodeTooManySessions = "too_many_sessions"
)

// Error is the body of every error answer: the REST API's JSON error and
// the refusal of a WebSocket upgrade.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// CodeOf maps an error of a use case to its protocol code: a domain error
// by its kind, the failures of the ports by what a client may do about
// them, and anything else is the server's own fault.
func CodeOf(err error) string {
	switch domain.KindOf(err) {
	case domain.Invalid:
		return CodeBadRequest
	case domain.Forbidden:
		return CodeForbidden
	case domain.NotFound:
		return CodeNotFound
	}
	switch {
	case errors.Is(err, application.ErrRateLimited):
		return CodeRateLimited
	case errors.Is(err, ports.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return CodeUnavailable
	}
	return CodeInternal
}
