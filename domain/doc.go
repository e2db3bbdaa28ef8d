// Package domain is the core of the chat service: the Conversation and Message
// aggregates, their events and value objects, and the error kinds every layer
// maps to a protocol error code. It imports the standard library only, so the
// rules it enforces hold the same whichever store, bus or transport runs it.
package domain

import (
	"errors"
	"fmt"
)

// Kind sorts domain errors by what the caller did wrong, so that inbound
// adapters can answer with a protocol code without knowing every rule.
type Kind int

const (
	// Invalid input: a malformed id, an empty or oversized body.
	Invalid Kind = iota + 1
	// Forbidden means the actor may not do this, such as marking read a message
	// sent to someone else.
	Forbidden
	// NotFound means the addressed conversation does not exist, or not for this
	// actor: to a non-participant it is as absent as one never started.
	NotFound
)

func (k Kind) String() string {
	switch k {
	case Invalid:
		return "invalid"
	case Forbidden:
		return "forbidden"
	case NotFound:
		return "not found"
	}
	return "unknown"
}

// Error is a rule violation with its kind; compare with errors.Is against a
// sentinel of the same kind and message, or read the kind with KindOf.
type Error struct {
	Kind    Kind
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf makes a domain error of the given kind.
func Errorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind of the first domain error in err's chain, or 0.
func KindOf(err error) Kind {
	var de *Error
	if errors.As(err, &de) {
		return de.Kind
	}
	return 0
}
