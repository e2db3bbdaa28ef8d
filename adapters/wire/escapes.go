package wire

import "bytes"

// ValidEscapes reports whether the \u escapes of the JSON text data spell
// valid UTF-16: every surrogate escape a high one (\ud800-\udbff) followed
// at once by an escaped low one (\udc00-\udfff). encoding/json decodes a
// lone surrogate to U+FFFD without a word, which would store a body the
// client never wrote; a transport refuses such a body instead, as it does
// invalid UTF-8. Escapes of anything else, and malformed JSON, are left to
// the decoder.
//
// It runs on every frame and request body before decoding, so it jumps
// from backslash to backslash and allocates nothing: a body without one
// costs a single bytes.IndexByte.
func ValidEscapes(data []byte) bool {
	for i := 0; ; {
		j := bytes.IndexByte(data[i:], '\\')
		if j < 0 {
			return true
		}
		i += j
		r, ok := escapedUnit(data[i:])
		if !ok {
			// Another escape (\" \\ \n ...): skip the backslash and the
			// character it escapes, which may itself be a backslash.
			i += 2
			if i >= len(data) {
				return true
			}
			continue
		}
		i += 6
		switch {
		case r < 0xd800 || r > 0xdfff:
			continue
		case r >= 0xdc00:
			return false
		}
		low, ok := escapedUnit(data[i:])
		if !ok || low < 0xdc00 || low > 0xdfff {
			return false
		}
		i += 6
	}
}

// escapedUnit reads the UTF-16 code unit of a \uXXXX escape at the start
// of b.
func escapedUnit(b []byte) (rune, bool) {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range b[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
