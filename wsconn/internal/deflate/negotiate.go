package deflate

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pollws/pollws/wsconn/internal/handshake"
)

// Name is the extension's token in Sec-WebSocket-Extensions.
const Name = "permessage-deflate"

// The extension's parameters (RFC 7692 section 7.1).
const (
	ServerNoContextTakeover = "server_no_context_takeover"
	ClientNoContextTakeover = "client_no_context_takeover"
	ServerMaxWindowBits     = "server_max_window_bits"
	ClientMaxWindowBits     = "client_max_window_bits"
)

// Params are the permessage-deflate parameters two endpoints agreed on,
// the same on both sides.
type Params struct {
	// ServerNoContextTakeover: the server compresses each message on its
	// own, so the client keeps no window between messages.
	ServerNoContextTakeover bool
	// ClientNoContextTakeover: the same for the client's messages.
	ClientNoContextTakeover bool
	// ServerMaxWindowBits bounds the server's LZ77 window, as a base-2
	// logarithm from 8 to 15; zero means 15.
	ServerMaxWindowBits int
	// ClientMaxWindowBits bounds the client's, the same way.
	ClientMaxWindowBits int
}

// Accept is a server's side of the negotiation (RFC 7692 section 7): from
// the extensions a client offers, in its order of preference, it takes
// the first permessage-deflate offer it can accept under o and returns
// the extension to answer with and what was agreed. ok is false when o is
// nil or no offer is acceptable: the connection goes uncompressed.
//
// An offer with an unknown parameter, a parameter twice, a value where
// none belongs or a window outside 8 to 15 is declined, and the next one
// considered; the handshake goes on. The answer always carries
// server_no_context_takeover when the client asked for it, and both
// no_context_takeover parameters unless o allows context takeover. Window
// bits are answered with the smaller of the offer's and o's: the server's
// always when the client named it and whenever o's is below 15, the
// client's only when the client named it, as the RFC requires.
func Accept(offers []handshake.Extension, o *Options) (resp handshake.Extension, p Params, ok bool) {
	if o == nil {
		return handshake.Extension{}, Params{}, false
	}
	c := newConfig(o)
	for _, e := range offers {
		if !strings.EqualFold(e.Name, Name) {
			continue
		}
		f, err := parseParams(e.Params, false)
		if err != nil {
			continue
		}
		p = Params{
			ServerNoContextTakeover: f.serverNoTakeover || !c.takeover,
			ClientNoContextTakeover: f.clientNoTakeover || !c.takeover,
			ServerMaxWindowBits:     min(orDefault(f.serverBits), c.bits),
			ClientMaxWindowBits:     maxWindowBits,
		}
		resp = handshake.Extension{Name: Name}
		if p.ServerNoContextTakeover {
			resp.Params = append(resp.Params, handshake.Param{Name: ServerNoContextTakeover})
		}
		if p.ClientNoContextTakeover {
			resp.Params = append(resp.Params, handshake.Param{Name: ClientNoContextTakeover})
		}
		if f.serverBits != 0 || p.ServerMaxWindowBits < maxWindowBits {
			resp.Params = append(resp.Params, handshake.Param{Name: ServerMaxWindowBits, Value: strconv.Itoa(p.ServerMaxWindowBits)})
		}
		if f.clientBitsNamed {
			p.ClientMaxWindowBits = min(orDefault(f.clientBits), c.bits)
			if p.ClientMaxWindowBits < maxWindowBits {
				resp.Params = append(resp.Params, handshake.Param{Name: ClientMaxWindowBits, Value: strconv.Itoa(p.ClientMaxWindowBits)})
			}
		}
		return resp, p, true
	}
	return handshake.Extension{}, Params{}, false
}

// Offer is the permessage-deflate offer a client sends under o; ok is
// false when o is nil. It names client_max_window_bits, without a value
// unless o bounds the window, so that the server may bound the client's
// window; without context takeover it asks for none on both sides; with a
// window below 15 bits it asks the server for that window too.
func Offer(o *Options) (e handshake.Extension, ok bool) {
	if o == nil {
		return handshake.Extension{}, false
	}
	c := newConfig(o)
	e = handshake.Extension{Name: Name}
	if !c.takeover {
		e.Params = append(e.Params, handshake.Param{Name: ServerNoContextTakeover}, handshake.Param{Name: ClientNoContextTakeover})
	}
	if c.bits < maxWindowBits {
		v := strconv.Itoa(c.bits)
		e.Params = append(e.Params, handshake.Param{Name: ServerMaxWindowBits, Value: v}, handshake.Param{Name: ClientMaxWindowBits, Value: v})
	} else {
		e.Params = append(e.Params, handshake.Param{Name: ClientMaxWindowBits})
	}
	return e, true
}

// CheckResponse is a client's check of the extensions a server accepted,
// against the offer [Offer] made under o. ok is false when the server
// did not accept permessage-deflate: the connection goes uncompressed. A
// response the offer does not allow (RFC 7692 section 7) is an error
// wrapping [ErrResponse], and the client fails the handshake: an unknown
// or repeated parameter, a missing or invalid window value, a window
// larger than the one offered, the absence of server_no_context_takeover
// or of server_max_window_bits that the offer asked for, or the extension
// accepted twice or without an offer.
func CheckResponse(accepted []handshake.Extension, o *Options) (p Params, ok bool, err error) {
	var found *handshake.Extension
	for i := range accepted {
		if !strings.EqualFold(accepted[i].Name, Name) {
			continue
		}
		if found != nil {
			return Params{}, false, fmt.Errorf("%w: %s accepted twice", ErrResponse, Name)
		}
		found = &accepted[i]
	}
	if found == nil {
		return Params{}, false, nil
	}
	if o == nil {
		return Params{}, false, fmt.Errorf("%w: %s accepted but not offered", ErrResponse, Name)
	}
	c := newConfig(o)
	f, err := parseParams(found.Params, true)
	if err != nil {
		return Params{}, false, fmt.Errorf("%w: %v", ErrResponse, err)
	}
	switch {
	case !c.takeover && !f.serverNoTakeover:
		return Params{}, false, fmt.Errorf("%w: %s offered and not answered", ErrResponse, ServerNoContextTakeover)
	case c.bits < maxWindowBits && f.serverBits == 0:
		return Params{}, false, fmt.Errorf("%w: %s offered and not answered", ErrResponse, ServerMaxWindowBits)
	case f.serverBits > c.bits:
		return Params{}, false, fmt.Errorf("%w: %s=%d above the %d offered", ErrResponse, ServerMaxWindowBits, f.serverBits, c.bits)
	case f.clientBits > c.bits:
		return Params{}, false, fmt.Errorf("%w: %s=%d above the %d offered", ErrResponse, ClientMaxWindowBits, f.clientBits, c.bits)
	}
	return Params{
		ServerNoContextTakeover: f.serverNoTakeover,
		ClientNoContextTakeover: f.clientNoTakeover,
		ServerMaxWindowBits:     orDefault(f.serverBits),
		ClientMaxWindowBits:     min(orDefault(f.clientBits), c.bits),
	}, true, nil
}

// parsed holds the parameters of an offer or a response.
type parsed struct {
	serverNoTakeover bool
	clientNoTakeover bool
	serverBits       int // 0 when absent
	clientBits       int // 0 when absent or without a value
	clientBitsNamed  bool
}

// parseParams reads the parameters of an offer or, with response, of a
// response, where client_max_window_bits needs a value.
func parseParams(params []handshake.Param, response bool) (parsed, error) {
	var f parsed
	var seen [4]bool
	for _, prm := range params {
		var k int
		switch {
		case strings.EqualFold(prm.Name, ServerNoContextTakeover):
			k = 0
			f.serverNoTakeover = true
		case strings.EqualFold(prm.Name, ClientNoContextTakeover):
			k = 1
			f.clientNoTakeover = true
		case strings.EqualFold(prm.Name, ServerMaxWindowBits):
			k = 2
		case strings.EqualFold(prm.Name, ClientMaxWindowBits):
			k = 3
			f.clientBitsNamed = true
		default:
			return f, fmt.Errorf("unknown parameter %q", prm.Name)
		}
		if seen[k] {
			return f, fmt.Errorf("parameter %s twice", prm.Name)
		}
		seen[k] = true
		switch k {
		case 0, 1:
			if prm.Value != "" {
				return f, fmt.Errorf("parameter %s with a value", prm.Name)
			}
		case 2, 3:
			if prm.Value == "" {
				if k == 2 || response {
					return f, fmt.Errorf("parameter %s without a value", prm.Name)
				}
				continue
			}
			bits, err := parseBits(prm.Value)
			if err != nil {
				return f, fmt.Errorf("parameter %s: %v", prm.Name, err)
			}
			if k == 2 {
				f.serverBits = bits
			} else {
				f.clientBits = bits
			}
		}
	}
	return f, nil
}

// parseBits reads a window size: a decimal integer without leading zeros
// from 8 to 15 (RFC 7692 section 7.1.2).
func parseBits(v string) (int, error) {
	if len(v) > 2 || v[0] == '0' || strings.Trim(v, "0123456789") != "" {
		return 0, errors.New("window bits " + strconv.Quote(v) + " is not 8 to 15")
	}
	n, _ := strconv.Atoi(v)
	if n < minWindowBits || n > maxWindowBits {
		return 0, fmt.Errorf("window bits %d is not 8 to 15", n)
	}
	return n, nil
}

// orDefault is bits, or 15 when it is absent.
func orDefault(bits int) int {
	if bits == 0 {
		return maxWindowBits
	}
	return bits
}
