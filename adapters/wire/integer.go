package wire

import "strconv"

// MaxInteger is the largest integer a client may send: 2^53 - 1, the largest
// that every JSON reader (JavaScript's numbers among them) holds exactly. A
// larger one could mean one number to the client and another to the server,
// so it is refused rather than wrapped or clamped.
const MaxInteger = 1<<53 - 1

// ParseInteger reads the plain decimal digits of an integer from 0 to
// MaxInteger, as a JSON number's text or a query parameter spells it; a
// sign, a fraction or an exponent (-1, 1.5, 1e3) is refused, not rounded.
func ParseInteger(s string) (uint64, bool) {
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil && n <= MaxInteger
}
