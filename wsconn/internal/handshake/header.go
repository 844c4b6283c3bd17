package handshake

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// tokenChars marks the bytes of a token (RFC 7230 section 3.2.6): visible
// ASCII but for the delimiters.
var tokenChars = func() (t [256]bool) {
	for c := 0x21; c < 0x7f; c++ {
		t[c] = !strings.ContainsRune(`"(),/:;<=>?@[\]{}`, rune(c))
	}
	return t
}()

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if !tokenChars[s[i]] {
			return false
		}
	}
	return true
}

// trimOWS removes optional whitespace (RFC 7230 section 3.2.3: spaces and
// tabs) from both ends of s.
func trimOWS(s string) string { return strings.Trim(s, " \t") }

// hasToken reports whether the comma-separated lists in values (the lines
// of one header field) hold token, compared without regard to case.
// Elements that are not tokens are skipped, not errors: the fields it
// reads (Connection, Upgrade) may carry more than this package needs.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for e := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(trimOWS(e), token) {
				return true
			}
		}
	}
	return false
}

// tokenList returns the elements of the comma-separated lists in values,
// in order, without the empty ones (RFC 7230 section 7); an element that
// is not a token is an error.
func tokenList(values []string) ([]string, error) {
	var list []string
	for _, v := range values {
		for e := range strings.SplitSeq(v, ",") {
			e = trimOWS(e)
			if e == "" {
				continue
			}
			if !isToken(e) {
				return nil, fmt.Errorf("%q is not a token", e)
			}
			list = append(list, e)
		}
	}
	return list, nil
}

// validValue reports whether v may be written as a header field's value:
// no control characters but horizontal tab, so no line break.
func validValue(v string) bool {
	for i := range len(v) {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// checkExtra checks the extra header fields h before they are written:
// names must be tokens, values free of line breaks and other controls, and
// no name among reserved (in any case), which the handshake writes
// itself.
func checkExtra(h http.Header, reserved ...string) error {
	for name, vs := range h {
		if !isToken(name) {
			return fmt.Errorf("%w: name %q", ErrHeader, name)
		}
		if slices.ContainsFunc(reserved, func(r string) bool { return strings.EqualFold(r, name) }) {
			return fmt.Errorf("%w: %s is written by the handshake", ErrHeader, name)
		}
		for _, v := range vs {
			if !validValue(v) {
				return fmt.Errorf("%w: value %q of %s", ErrHeader, v, name)
			}
		}
	}
	return nil
}

// appendHeader appends h as header lines, in the order of their names.
func appendHeader(b []byte, h http.Header) []byte {
	if len(h) == 0 {
		return b
	}
	for _, name := range slices.Sorted(maps.Keys(h)) {
		for _, v := range h[name] {
			b = appendLine(b, name, v)
		}
	}
	return b
}

func appendLine(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, "\r\n"...)
}
