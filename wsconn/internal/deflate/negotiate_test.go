package deflate

import (
	"errors"
	"fmt"
	"testing"

	"github.com/pollws/pollws/wsconn/internal/handshake"
)

func parseExt(t *testing.T, v string) []handshake.Extension {
	t.Helper()
	if v == "" {
		return nil
	}
	exts, err := handshake.ParseExtensions([]string{v})
	if err != nil {
		t.Fatalf("ParseExtensions(%q): %v", v, err)
	}
	return exts
}

func formatExt(t *testing.T, e handshake.Extension) string {
	t.Helper()
	s, err := handshake.FormatExtensions([]handshake.Extension{e})
	if err != nil {
		t.Fatalf("FormatExtensions(%+v): %v", e, err)
	}
	return s
}

func TestAccept(t *testing.T) {
	takeover := &Options{ContextTakeover: true}
	small := &Options{ContextTakeover: true, MaxWindowBits: 10}
	const (
		pmd  = "permessage-deflate"
		both = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
	)
	tests := []struct {
		name   string
		o      *Options
		offers string
		want   string // the answer; "" when every offer is declined
		p      Params
	}{
		// The examples of RFC 7692 section 7.1.
		{"plain offer", takeover, pmd, pmd, Params{ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}},
		{"client window named, server keeps 15", takeover, "permessage-deflate; client_max_window_bits", pmd,
			Params{ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}},
		{"client window named, server bounds it", small, "permessage-deflate; client_max_window_bits",
			"permessage-deflate; server_max_window_bits=10; client_max_window_bits=10", Params{ServerMaxWindowBits: 10, ClientMaxWindowBits: 10}},
		{"first of two offers", takeover, "permessage-deflate; client_max_window_bits; server_max_window_bits=10, permessage-deflate; client_max_window_bits",
			"permessage-deflate; server_max_window_bits=10", Params{ServerMaxWindowBits: 10, ClientMaxWindowBits: 15}},
		{"server window offered", takeover, "permessage-deflate; server_max_window_bits=10, permessage-deflate",
			"permessage-deflate; server_max_window_bits=10", Params{ServerMaxWindowBits: 10, ClientMaxWindowBits: 15}},
		{"server window 15 offered is answered", takeover, "permessage-deflate; server_max_window_bits=15",
			"permessage-deflate; server_max_window_bits=15", Params{ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}},
		{"smaller of offer and options", small, "permessage-deflate; server_max_window_bits=12; client_max_window_bits=9",
			"permessage-deflate; server_max_window_bits=10; client_max_window_bits=9", Params{ServerMaxWindowBits: 10, ClientMaxWindowBits: 9}},
		{"client window with a value is echoed", takeover, "permessage-deflate; client_max_window_bits=11",
			"permessage-deflate; client_max_window_bits=11", Params{ServerMaxWindowBits: 15, ClientMaxWindowBits: 11}},
		{"client window not named is not answered", small, pmd, "permessage-deflate; server_max_window_bits=10",
			Params{ServerMaxWindowBits: 10, ClientMaxWindowBits: 15}},
		{"quoted value", takeover, `permessage-deflate; server_max_window_bits="9"`, "permessage-deflate; server_max_window_bits=9",
			Params{ServerMaxWindowBits: 9, ClientMaxWindowBits: 15}},
		{"server_no_context_takeover asked", takeover, "permessage-deflate; server_no_context_takeover",
			"permessage-deflate; server_no_context_takeover", Params{ServerNoContextTakeover: true, ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}},
		{"client_no_context_takeover hinted", takeover, "permessage-deflate; client_no_context_takeover",
			"permessage-deflate; client_no_context_takeover", Params{ClientNoContextTakeover: true, ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}},
		{"name in another case", takeover, "PerMessage-Deflate", pmd, Params{ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}},

		// Defaults: no context takeover either way, whatever the offer.
		{"defaults, a browser's offer", &Options{}, "permessage-deflate; client_max_window_bits", both,
			Params{true, true, 15, 15}},
		{"defaults, gorilla's offer", &Options{}, both, both, Params{true, true, 15, 15}},

		// Declined offers: the next one is taken, or none.
		{"off", nil, pmd, "", Params{}},
		{"other extensions only", takeover, "x-webkit-deflate-frame, permessage-foo", "", Params{}},
		{"unknown parameter", takeover, "permessage-deflate; foo", "", Params{}},
		{"unknown parameter, then a good offer", takeover, "permessage-deflate; foo=1, permessage-deflate; server_max_window_bits=12",
			"permessage-deflate; server_max_window_bits=12", Params{ServerMaxWindowBits: 12, ClientMaxWindowBits: 15}},
		{"server window without a value", takeover, "permessage-deflate; server_max_window_bits", "", Params{}},
		{"server window 7", takeover, "permessage-deflate; server_max_window_bits=7", "", Params{}},
		{"server window 16", takeover, "permessage-deflate; server_max_window_bits=16", "", Params{}},
		{"leading zero", takeover, "permessage-deflate; server_max_window_bits=09", "", Params{}},
		{"sign", takeover, "permessage-deflate; client_max_window_bits=+9", "", Params{}},
		{"not a number", takeover, "permessage-deflate; client_max_window_bits=ten", "", Params{}},
		{"three digits", takeover, "permessage-deflate; client_max_window_bits=100", "", Params{}},
		{"client window 16", takeover, "permessage-deflate; client_max_window_bits=16", "", Params{}},
		{"takeover parameter with a value", takeover, "permessage-deflate; server_no_context_takeover=1", "", Params{}},
		{"client takeover parameter with a value", takeover, "permessage-deflate; client_no_context_takeover=yes", "", Params{}},
		{"duplicate parameter", takeover, "permessage-deflate; server_no_context_takeover; server_no_context_takeover", "", Params{}},
		{"duplicate window", takeover, "permessage-deflate; client_max_window_bits; client_max_window_bits=10", "", Params{}},
		{"duplicate in another case", takeover, "permessage-deflate; client_max_window_bits; CLIENT_MAX_WINDOW_BITS", "", Params{}},
		{"duplicate, then good", &Options{}, "permessage-deflate; server_max_window_bits=9; server_max_window_bits=9, permessage-deflate",
			both, Params{true, true, 15, 15}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, p, ok := Accept(parseExt(t, tt.offers), tt.o)
			if !ok {
				if tt.want != "" {
					t.Fatalf("Accept(%q) declined; want %q", tt.offers, tt.want)
				}
				return
			}
			if got := formatExt(t, resp); got != tt.want || p != tt.p {
				t.Fatalf("Accept(%q) = %q, %+v; want %q, %+v", tt.offers, got, p, tt.want, tt.p)
			}
		})
	}
}

func TestOffer(t *testing.T) {
	tests := []struct {
		o    *Options
		want string
	}{
		{&Options{}, "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits"},
		{&Options{ContextTakeover: true}, "permessage-deflate; client_max_window_bits"},
		{&Options{ContextTakeover: true, MaxWindowBits: 10}, "permessage-deflate; server_max_window_bits=10; client_max_window_bits=10"},
		{&Options{MaxWindowBits: 15}, "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits"},
	}
	for _, tt := range tests {
		e, ok := Offer(tt.o)
		if got := formatExt(t, e); !ok || got != tt.want {
			t.Errorf("Offer(%+v) = %q, %v; want %q", *tt.o, got, ok, tt.want)
		}
	}
	if _, ok := Offer(nil); ok {
		t.Errorf("Offer(nil) offers compression")
	}
}

func TestCheckResponse(t *testing.T) {
	def := &Options{}
	small := &Options{ContextTakeover: true, MaxWindowBits: 10}
	const both = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
	tests := []struct {
		name string
		o    *Options
		resp string
		p    Params
		ok   bool
		err  bool
	}{
		{"declined", def, "", Params{}, false, false},
		{"both", def, both, Params{true, true, 15, 15}, true, false},
		{"server only", def, "permessage-deflate; server_no_context_takeover", Params{true, false, 15, 15}, true, false},
		{"client window bounded", def, "permessage-deflate; server_no_context_takeover; client_max_window_bits=10", Params{true, false, 15, 10}, true, false},
		{"server window told", def, "permessage-deflate; server_no_context_takeover; server_max_window_bits=9", Params{true, false, 9, 15}, true, false},
		{"quoted", def, `permessage-deflate; server_no_context_takeover; server_max_window_bits="9"`, Params{true, false, 9, 15}, true, false},
		{"small answered", small, "permessage-deflate; server_max_window_bits=10", Params{false, false, 10, 10}, true, false},
		{"small answered smaller", small, "permessage-deflate; server_max_window_bits=8; client_max_window_bits=9", Params{false, false, 8, 9}, true, false},

		{"server_no_context_takeover not answered", def, "permessage-deflate", Params{}, false, true},
		{"server window not answered", small, "permessage-deflate", Params{}, false, true},
		{"server window above the offer", small, "permessage-deflate; server_max_window_bits=11", Params{}, false, true},
		{"client window above the offer", small, "permessage-deflate; server_max_window_bits=10; client_max_window_bits=12", Params{}, false, true},
		{"client window without a value", def, both + "; client_max_window_bits", Params{}, false, true},
		{"server window without a value", def, both + "; server_max_window_bits", Params{}, false, true},
		{"window 16", def, both + "; server_max_window_bits=16", Params{}, false, true},
		{"window 7", def, both + "; client_max_window_bits=7", Params{}, false, true},
		{"leading zero", def, both + "; client_max_window_bits=010", Params{}, false, true},
		{"unknown parameter", def, both + "; foo", Params{}, false, true},
		{"value on a flag", def, "permessage-deflate; server_no_context_takeover=1", Params{}, false, true},
		{"repeated parameter", def, both + "; server_no_context_takeover", Params{}, false, true},
		{"accepted twice", def, both + ", " + both, Params{}, false, true},
		{"not offered", nil, both, Params{}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok, err := CheckResponse(parseExt(t, tt.resp), tt.o)
			if tt.err {
				if !errors.Is(err, ErrResponse) {
					t.Fatalf("CheckResponse(%q) = %+v, %v, %v; want an error wrapping ErrResponse", tt.resp, p, ok, err)
				}
				return
			}
			if err != nil || ok != tt.ok || p != tt.p {
				t.Fatalf("CheckResponse(%q) = %+v, %v, %v; want %+v, %v", tt.resp, p, ok, err, tt.p, tt.ok)
			}
		})
	}
}

// TestNegotiationAgrees: whatever the options on each side, a client's
// offer, the server's answer and the client's check agree on the same
// parameters, and each side's compressor stays within what the other
// side's decompressor reads.
func TestNegotiationAgrees(t *testing.T) {
	var opts []*Options
	for _, tk := range []bool{false, true} {
		for _, bits := range []int{0, 8, 9, 12, 15} {
			opts = append(opts, &Options{ContextTakeover: tk, MaxWindowBits: bits})
		}
	}
	for _, co := range opts {
		for _, so := range opts {
			name := fmt.Sprintf("client %+v server %+v", *co, *so)
			offer, _ := Offer(co)
			resp, sp, ok := Accept(parseExt(t, formatExt(t, offer)), so)
			if !ok {
				t.Fatalf("%s: the server declined %q", name, formatExt(t, offer))
			}
			cp, ok, err := CheckResponse(parseExt(t, formatExt(t, resp)), co)
			if err != nil || !ok || cp != sp {
				t.Fatalf("%s: answer %q: client agreed %+v, %v, %v; server %+v", name, formatExt(t, resp), cp, ok, err, sp)
			}
			for _, client := range []bool{false, true} {
				o := so
				if client {
					o = co
				}
				c := NewCompressor(sp, client, o)
				d := NewDecompressor(sp, !client)
				if c.takeover && !d.takeover {
					t.Errorf("%s: the %s compresses with context takeover, its peer reads without", name, side(client))
				}
				if c.takeover && !o.ContextTakeover {
					t.Errorf("%s: the %s compresses with context takeover against its options", name, side(client))
				}
				if 1<<c.bits > d.window && d.takeover {
					t.Errorf("%s: the %s compresses with a window of %d bits, its peer keeps %d bytes", name, side(client), c.bits, d.window)
				}
				if limit := max(o.MaxWindowBits, 0); limit != 0 && c.bits > limit {
					t.Errorf("%s: the %s compresses with a window of %d bits, its options allow %d", name, side(client), c.bits, limit)
				}
			}
		}
	}
}

func side(client bool) string {
	if client {
		return "client"
	}
	return "server"
}

func TestShouldCompress(t *testing.T) {
	both := Params{ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}
	tests := []struct {
		o       *Options
		p       Params
		minSize int
	}{
		{nil, both, defaultMinSize},
		{&Options{}, both, defaultMinSize},
		{&Options{ContextTakeover: true}, both, defaultMinSizeTakeover},
		{&Options{ContextTakeover: true}, Params{ServerNoContextTakeover: true}, defaultMinSize},
		{&Options{MinSize: 1000}, both, 1000},
		{&Options{MinSize: -1}, both, 0},
	}
	for _, tt := range tests {
		c := NewCompressor(tt.p, false, tt.o)
		if c.ShouldCompress(tt.minSize-1) || !c.ShouldCompress(tt.minSize) {
			t.Errorf("%+v, %+v: ShouldCompress switches at %d, want %d", tt.o, tt.p, c.minSize, tt.minSize)
		}
	}
}
