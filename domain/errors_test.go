package domain_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/evchat/chatd/domain"
)

func TestKindOf(t *testing.T) {
	sentinel := domain.Errorf(domain.Forbidden, "no")
	tests := []struct {
		name string
		err  error
		want domain.Kind
	}{
		{"direct", domain.Errorf(domain.Invalid, "bad %d", 1), domain.Invalid},
		{"wrapped", fmt.Errorf("context: %w", sentinel), domain.Forbidden},
		{"not found", domain.Errorf(domain.NotFound, "gone"), domain.NotFound},
		{"not a domain error", errors.New("io"), 0},
		{"nil", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := domain.KindOf(tt.err); got != tt.want {
				t.Fatalf("KindOf = %v, want %v", got, tt.want)
			}
		})
	}
	if !errors.Is(fmt.Errorf("x: %w", sentinel), sentinel) {
		t.Fatal("a wrapped sentinel is not found by errors.Is")
	}
}
