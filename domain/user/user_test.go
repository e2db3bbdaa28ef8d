package user_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/evchat/chatd/domain/user"
)

func TestParseID(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"seed numeric id", "1001", true},
		{"letters digits and punctuation", "Alice_B.c-9", true},
		{"64 characters", strings.Repeat("a", 64), true},
		{"empty", "", false},
		{"65 characters", strings.Repeat("a", 65), false},
		{"space", "a b", false},
		{"slash", "a/b", false},
		{"operator-like", "$gt", false},
		{"non-ASCII letter", "müller", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := user.ParseID(tt.in)
			if tt.ok && (err != nil || string(id) != tt.in) {
				t.Fatalf("ParseID(%q) = %q, %v; want it accepted", tt.in, id, err)
			}
			if !tt.ok && !errors.Is(err, user.ErrInvalidID) {
				t.Fatalf("ParseID(%q) err = %v; want ErrInvalidID", tt.in, err)
			}
		})
	}
}
