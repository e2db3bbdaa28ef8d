package wire_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/evchat/chatd/adapters/wire"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/ports"
)

func TestCodeOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"invalid input", domain.Errorf(domain.Invalid, "bad"), wire.CodeBadRequest},
		{"a wrapped invalid input", fmt.Errorf("to: %w", domain.Errorf(domain.Invalid, "bad")), wire.CodeBadRequest},
		{"forbidden", domain.Errorf(domain.Forbidden, "no"), wire.CodeForbidden},
		{"not found", conversation.ErrNotFound, wire.CodeNotFound},
		{"rate limited", application.ErrRateLimited, wire.CodeRateLimited},
		{"a port unavailable", fmt.Errorf("store: %w", ports.ErrUnavailable), wire.CodeUnavailable},
		{"out of time", context.DeadlineExceeded, wire.CodeUnavailable},
		{"anything else", errors.New("boom"), wire.CodeInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := wire.CodeOf(tt.err); got != tt.want {
				t.Fatalf("CodeOf(%v) = %s, want %s", tt.err, got, tt.want)
			}
		})
	}
}
