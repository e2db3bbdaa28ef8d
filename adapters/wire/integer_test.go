package wire_test

import (
	"testing"

	"github.com/evchat/chatd/adapters/wire"
)

func TestParseInteger(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0", 0, true},
		{"7", 7, true},
		{"9007199254740991", wire.MaxInteger, true},
		{"9007199254740992", 0, false},
		{"18446744073709551615", 0, false},
		{"18446744073709551616", 0, false},
		{"-1", 0, false},
		{"-0", 0, false},
		{"+1", 0, false},
		{"1.5", 0, false},
		{"1.0", 0, false},
		{"1e3", 0, false},
		{"0x10", 0, false},
		{"1_000", 0, false},
		{" 1", 0, false},
		{`"7"`, 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := wire.ParseInteger(tt.in)
			if ok != tt.ok || (ok && got != tt.want) {
				t.Fatalf("ParseInteger(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}
