package handshake

import (
	"fmt"
	"strings"
)

// Extension is one element of a Sec-WebSocket-Extensions list (RFC 6455
// section 9.1): an extension's name and its parameters, in order.
type Extension struct {
	Name   string
	Params []Param
}

// Param is a parameter of an [Extension]. Value is empty for a parameter
// without a value: a value is never empty, as RFC 6455 requires a token
// even when it is written as a quoted-string.
type Param struct {
	Name, Value string
}

// ParseExtensions parses the lines of a Sec-WebSocket-Extensions header
// field into its extensions, in order:
//
//	extension-list = 1#extension
//	extension      = token *( OWS ";" OWS extension-param )
//	extension-param = token [ OWS "=" OWS ( token / quoted-string ) ]
//
// A quoted-string's value, unescaped, must be a token. Empty list elements
// are skipped (RFC 7230 section 7). The error wraps [ErrExtensions] and
// says where parsing stopped.
func ParseExtensions(values []string) ([]Extension, error) {
	exts, err := parseExtensions(values)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrExtensions, err)
	}
	return exts, nil
}

// parseExtensions is ParseExtensions with an error that does not wrap
// ErrExtensions.
func parseExtensions(values []string) ([]Extension, error) {
	var exts []Extension
	for _, v := range values {
		var err error
		if exts, err = parseExtensionLine(exts, v); err != nil {
			return nil, fmt.Errorf("%v in %q", err, v)
		}
	}
	return exts, nil
}

func parseExtensionLine(exts []Extension, s string) ([]Extension, error) {
	p := parser{s: s}
	for {
		p.skipOWS()
		switch {
		case p.done():
			return exts, nil
		case p.s[p.i] == ',':
			p.i++
			continue
		}
		e := Extension{Name: p.token()}
		if e.Name == "" {
			return nil, p.errorf("an extension name")
		}
		for p.skipOWS(); !p.done() && p.s[p.i] == ';'; p.skipOWS() {
			p.i++
			p.skipOWS()
			prm := Param{Name: p.token()}
			if prm.Name == "" {
				return nil, p.errorf("a parameter name")
			}
			if p.skipOWS(); !p.done() && p.s[p.i] == '=' {
				p.i++
				p.skipOWS()
				var err error
				if prm.Value, err = p.value(); err != nil {
					return nil, err
				}
			}
			e.Params = append(e.Params, prm)
		}
		if !p.done() && p.s[p.i] != ',' {
			return nil, p.errorf(`";", "," or the end`)
		}
		exts = append(exts, e)
	}
}

// parser reads s from i on.
type parser struct {
	s string
	i int
}

func (p *parser) done() bool { return p.i == len(p.s) }

func (p *parser) skipOWS() {
	for !p.done() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// token reads the longest token at i, which may be empty.
func (p *parser) token() string {
	j := p.i
	for j < len(p.s) && tokenChars[p.s[j]] {
		j++
	}
	t := p.s[p.i:j]
	p.i = j
	return t
}

// value reads a parameter's value: a token, or a quoted-string whose
// unescaped text is a token.
func (p *parser) value() (string, error) {
	if p.done() || p.s[p.i] != '"' {
		if v := p.token(); v != "" {
			return v, nil
		}
		return "", p.errorf("a value")
	}
	start := p.i
	var b strings.Builder
	for p.i++; ; p.i++ {
		if p.done() {
			return "", fmt.Errorf("unterminated quoted-string at byte %d", start)
		}
		c := p.s[p.i]
		if c == '"' {
			p.i++
			break
		}
		if c == '\\' {
			if p.i++; p.done() {
				return "", fmt.Errorf("unterminated quoted-string at byte %d", start)
			}
			c = p.s[p.i]
		}
		b.WriteByte(c)
	}
	if v := b.String(); isToken(v) {
		return v, nil
	}
	return "", fmt.Errorf("quoted-string at byte %d is not a token once unescaped", start)
}

func (p *parser) errorf(want string) error {
	if p.done() {
		return fmt.Errorf("want %s at the end", want)
	}
	return fmt.Errorf("want %s at byte %d, found %q", want, p.i, p.s[p.i])
}

// FormatExtensions writes exts as one Sec-WebSocket-Extensions value,
// values as tokens. A name or value that is not a token is an error
// wrapping [ErrExtensions].
func FormatExtensions(exts []Extension) (string, error) {
	var b strings.Builder
	for i, e := range exts {
		if !isToken(e.Name) {
			return "", fmt.Errorf("%w: extension name %q is not a token", ErrExtensions, e.Name)
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(e.Name)
		for _, prm := range e.Params {
			if !isToken(prm.Name) || prm.Value != "" && !isToken(prm.Value) {
				return "", fmt.Errorf("%w: parameter %q=%q of %s is not a token", ErrExtensions, prm.Name, prm.Value, e.Name)
			}
			b.WriteString("; ")
			b.WriteString(prm.Name)
			if prm.Value != "" {
				b.WriteByte('=')
				b.WriteString(prm.Value)
			}
		}
	}
	return b.String(), nil
}
