package wire_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/evchat/chatd/adapters/wire"
)

func TestValidEscapes(t *testing.T) {
	tests := []struct {
		name, json string
		valid      bool
	}{
		{"no escapes", `{"type":"send","body":"hi"}`, true},
		{"empty", ``, true},
		{"common escapes", `{"body":"a\"b\\c\/d\n\t\r\b\f"}`, true},
		{"a BMP escape", `{"body":"caf\u00e9 \uffff \ud7ff \ue000"}`, true},
		{"a surrogate pair", `{"body":"\ud83d\ude00"}`, true},
		{"a surrogate pair in capitals", `{"body":"\uD83D\uDE00"}`, true},
		{"a pair at the very end", `"\udbff\udfff"`, true},
		{"two pairs in a row", `"\ud83d\ude00\ud83d\ude01"`, true},
		{"an escaped backslash before u", `{"body":"\\ud800"}`, true},
		{"an escaped backslash before a pair", `{"body":"\\\ud83d\ude00"}`, true},
		{"U+FFFD itself", `{"body":"\ufffd �"}`, true},
		{"a lone high surrogate", `{"body":"\ud800"}`, false},
		{"a lone low surrogate", `{"body":"\udc00"}`, false},
		{"the last low surrogate alone", `{"body":"\uDFFF"}`, false},
		{"a high then a letter", `{"body":"\ud800x"}`, false},
		{"a high then a BMP escape", `{"body":"\ud800\u0041"}`, false},
		{"a high then a pair", `{"body":"\ud800\ud800\udc00"}`, false},
		{"a high then another escape", `{"body":"\ud800\n"}`, false},
		{"a high then an escaped backslash", `{"body":"\ud800\\"}`, false},
		{"a pair reversed", `{"body":"\udc00\ud800"}`, false},
		{"a high at the end of the data", `"\ud83d`, false},
		{"a lone surrogate in a key", `{"\ud800":1}`, false},
		{"after an escaped backslash", `{"body":"\\\ud800"}`, false},
		{"malformed hex is the decoder's", `{"body":"\uzzzz"}`, true},
		{"a trailing backslash is the decoder's", `"\`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := wire.ValidEscapes([]byte(tt.json)); got != tt.valid {
				t.Fatalf("ValidEscapes(%s) = %v, want %v", tt.json, got, tt.valid)
			}
		})
	}
}

// FuzzValidEscapes checks the checker against encoding/json itself: on a
// JSON string of valid UTF-8 (the transports refuse the rest first), it
// says valid exactly when decoding makes no U+FFFD the text did not spell.
func FuzzValidEscapes(f *testing.F) {
	for _, seed := range []string{`"hi"`, `"\ud83d\ude00"`, `"\ud800"`, `"\udc00\ud800"`, `"\\ud800"`, `"\ufffd"`, `"\ud800\u0041"`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s string
		if !utf8.Valid(data) || json.Unmarshal(data, &s) != nil {
			return
		}
		rewritten := strings.Count(s, "\ufffd") > spelledReplacements(data)
		if wire.ValidEscapes(data) == rewritten {
			t.Fatalf("ValidEscapes(%s) = %v, but decoding rewrote it: %v", data, !rewritten, rewritten)
		}
	})
}

// spelledReplacements counts the U+FFFD a JSON string spells, raw or as
// an escape.
func spelledReplacements(data []byte) int {
	n := bytes.Count(data, []byte("\ufffd"))
	for i := 0; i+1 < len(data); i++ {
		if data[i] != '\\' {
			continue
		}
		if data[i+1] == 'u' && i+6 <= len(data) && strings.EqualFold(string(data[i+2:i+6]), "fffd") {
			n++
		}
		i++
	}
	return n
}

func BenchmarkValidEscapes(b *testing.B) {
	for _, bf := range []struct{ name, frame string }{
		{"plain", `{"type":"send","id":"k-1732950000123","to":"1002","body":"hello there, see you at eight? bring the map"}`},
		{"escaped", `{"type":"send","id":"k-1732950000123","to":"1002","body":"hello\nthere \ud83d\ude00 see you at eight?"}`},
	} {
		data := []byte(bf.frame)
		b.Run(bf.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if !wire.ValidEscapes(data) {
					b.Fatal("refused")
				}
			}
		})
	}
}
