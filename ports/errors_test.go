package ports_test

import (
	"errors"
	"testing"

	"github.com/evchat/chatd/ports"
)

func TestStoreErrorsNameTheirStore(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"event store", &ports.StoreError{Op: "load", Stream: "c_x", Version: 3, Err: ports.ErrUnavailable},
			"event store load c_x@3: unavailable"},
		{"read model", &ports.ReadSideError{Store: "read model", Op: "list views", Key: "alice", Err: ports.ErrUnavailable},
			"read model list views alice: unavailable"},
		{"last seen, no key", &ports.ReadSideError{Store: "last seen", Op: "touch", Err: ports.ErrUnavailable},
			"last seen touch: unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
			if !errors.Is(tt.err, ports.ErrUnavailable) {
				t.Error("the cause is not found by errors.Is")
			}
		})
	}
}
