package handshake

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseExtensions(t *testing.T) {
	pd := func(params ...Param) Extension { return Extension{Name: "permessage-deflate", Params: params} }
	for _, tc := range []struct {
		lines []string
		want  []Extension // nil with ok false: an error
		ok    bool
	}{
		{nil, nil, true},
		{[]string{""}, nil, true},
		{[]string{" , ,\t"}, nil, true},
		{[]string{"permessage-deflate"}, []Extension{pd()}, true},
		{[]string{"permessage-deflate; client_max_window_bits"}, []Extension{pd(Param{"client_max_window_bits", ""})}, true},
		{[]string{"permessage-deflate;client_max_window_bits=10;server_no_context_takeover"},
			[]Extension{pd(Param{"client_max_window_bits", "10"}, Param{"server_no_context_takeover", ""})}, true},
		{[]string{`permessage-deflate ; client_max_window_bits = "10"`}, []Extension{pd(Param{"client_max_window_bits", "10"})}, true},
		{[]string{`x; p="a\bc"`}, []Extension{{"x", []Param{{"p", "abc"}}}}, true},
		{[]string{"permessage-deflate; server_max_window_bits=10, permessage-deflate"},
			[]Extension{pd(Param{"server_max_window_bits", "10"}), pd()}, true},
		{[]string{"a", "b; c", ", d ,"}, []Extension{{"a", nil}, {"b", []Param{{"c", ""}}}, {"d", nil}}, true},
		{[]string{"a b"}, nil, false},
		{[]string{";a"}, nil, false},
		{[]string{"a;"}, nil, false},
		{[]string{"a;,b"}, nil, false},
		{[]string{"a; p="}, nil, false},
		{[]string{"a; p=,b"}, nil, false},
		{[]string{"a; p=b=c"}, nil, false},
		{[]string{`a; p=""`}, nil, false},
		{[]string{`a; p="b c"`}, nil, false},
		{[]string{`a; p="b,c"`}, nil, false},
		{[]string{`a; p="b`}, nil, false},
		{[]string{`a; p="b\"`}, nil, false},
		{[]string{`a; p="b"c`}, nil, false},
		{[]string{`a; p="\""`}, nil, false},
		{[]string{"a; p=\"b\x01\""}, nil, false},
		{[]string{"a/b"}, nil, false},
		{[]string{"a", "b;"}, nil, false},
		{[]string{"é"}, nil, false},
	} {
		got, err := ParseExtensions(tc.lines)
		if !tc.ok {
			if err == nil || !errors.Is(err, ErrExtensions) {
				t.Errorf("ParseExtensions(%q) = %v, %v; want an error wrapping ErrExtensions", tc.lines, got, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseExtensions(%q) = %v, %v; want %v", tc.lines, got, err, tc.want)
		}
	}
}

func TestParseExtensionsErrorSaysWhere(t *testing.T) {
	_, err := ParseExtensions([]string{"a; p=b=c"})
	if want := `handshake: malformed Sec-WebSocket-Extensions: want ";", "," or the end at byte 6, found '=' in "a; p=b=c"`; err == nil || err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestFormatExtensions(t *testing.T) {
	got, err := FormatExtensions([]Extension{
		{"permessage-deflate", []Param{{"client_max_window_bits", ""}, {"server_max_window_bits", "10"}}},
		{"x", nil},
	})
	if want := "permessage-deflate; client_max_window_bits; server_max_window_bits=10, x"; err != nil || got != want {
		t.Errorf("FormatExtensions = %q, %v; want %q", got, err, want)
	}
	for _, bad := range [][]Extension{
		{{"", nil}},
		{{"a b", nil}},
		{{"a", []Param{{"", "1"}}}},
		{{"a", []Param{{"p", "1 2"}}}},
		{{"a", []Param{{"p", `"1"`}}}},
	} {
		if s, err := FormatExtensions(bad); !errors.Is(err, ErrExtensions) {
			t.Errorf("FormatExtensions(%q) = %q, %v; want an error wrapping ErrExtensions", bad, s, err)
		}
	}
}

// modelExtensions parses as ParseExtensions does, the simple way. In a
// valid list a quoted-string holds a token once unescaped, hence no comma,
// semicolon or equals sign: splitting on them first is exact.
func modelExtensions(lines []string) ([]Extension, bool) {
	var exts []Extension
	for elem := range strings.SplitSeq(strings.Join(lines, ","), ",") {
		elem = strings.Trim(elem, " \t")
		if elem == "" {
			continue
		}
		parts := strings.Split(elem, ";")
		e := Extension{Name: strings.Trim(parts[0], " \t")}
		if !modelToken(e.Name) {
			return nil, false
		}
		for _, part := range parts[1:] {
			name, value, hasValue := strings.Cut(part, "=")
			prm := Param{Name: strings.Trim(name, " \t")}
			if !modelToken(prm.Name) {
				return nil, false
			}
			if hasValue {
				v := strings.Trim(value, " \t")
				if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
					var ok bool
					if v, ok = modelUnquote(v[1 : len(v)-1]); !ok {
						return nil, false
					}
				}
				if !modelToken(v) {
					return nil, false
				}
				prm.Value = v
			}
			e.Params = append(e.Params, prm)
		}
		exts = append(exts, e)
	}
	return exts, true
}

func modelUnquote(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			if i++; i == len(s) {
				return "", false
			}
		}
		b.WriteByte(s[i])
	}
	return b.String(), true
}

func modelToken(s string) bool {
	const delims = `"(),/:;<=>?@[\]{}`
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(delims, c) >= 0 {
			return false
		}
	}
	return s != ""
}

// FuzzParseExtensions compares ParseExtensions with the model on header
// lines (the input split at newlines), and checks that what it parses
// formats to a value that parses to the same extensions.
func FuzzParseExtensions(f *testing.F) {
	for _, s := range []string{
		"permessage-deflate; client_max_window_bits",
		"permessage-deflate; client_max_window_bits=15; server_no_context_takeover, permessage-deflate",
		`a; p="v", b;q = "\w"` + "\n" + "c",
		`a; p="b,c"`, `a; p=""`, `a; p="\"`, "a;;b", ", ,", "a\tb", "a; p\t=\t1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lines := strings.Split(s, "\n")
		got, err := ParseExtensions(lines)
		want, ok := modelExtensions(lines)
		if ok != (err == nil) || ok && !reflect.DeepEqual(got, want) {
			t.Fatalf("ParseExtensions(%q) = %v, %v; the model gives %v, %v", lines, got, err, want, ok)
		}
		if err != nil {
			if !errors.Is(err, ErrExtensions) {
				t.Fatalf("error %v does not wrap ErrExtensions", err)
			}
			return
		}
		v, err := FormatExtensions(got)
		if err != nil {
			t.Fatalf("FormatExtensions(%v) = %v", got, err)
		}
		again, err := ParseExtensions([]string{v})
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Fatalf("%v formats as %q, which parses to %v, %v", got, v, again, err)
		}
	})
}
