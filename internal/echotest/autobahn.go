package echotest

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// Autobahn runs the cases of Autobahn|Testsuite's sections 1 to 10 (the
// fuzzing client's cases against an echo server) as Go tests, each on a
// connection of its own: framing (1), pings and pongs (2), reserved bits
// (3) and opcodes (4), fragmentation (5), UTF-8 handling (6), the closing
// handshake and close codes (7), large messages (9) and auto-fragmented
// ones (10). A case passes only as Autobahn's strict verdict "OK" does:
// the frames the server sends are exactly those expected, in order, and
// where the server must fail the connection it does so with the expected
// close code, before the rest of the input when the case says so (6.4.x),
// and then ends the connection promptly.
//
// Cases are named "Autobahn/<case>", as "Autobahn/3.2", in known.
func Autobahn(t *testing.T, start Start, known Known) {
	s := start(t)
	for _, tc := range autobahnCases() {
		t.Run(tc.id, func(t *testing.T) {
			check(t, known, "Autobahn/"+tc.id, func() error {
				c, err := dialRaw(s)
				if err != nil {
					return err
				}
				defer c.Close()
				if err := tc.run(&ab{c}); err != nil {
					return fmt.Errorf("%s (%s): %w", tc.id, tc.what, err)
				}
				return nil
			})
		})
	}
}

type abCase struct {
	id   string
	what string
	run  func(c *ab) error
}

// ab is a connection driven the way Autobahn's fuzzing client drives it.
type ab struct{ *rawConn }

// frameWait bounds the wait for each frame the server sends; large
// messages under the race detector take a while.
const frameWait = 30 * time.Second

// endWait bounds the wait for the end of the connection after the
// closing handshake: well under the usual 5 s close timeout, so that a
// server that waits it out fails.
const endWait = 3 * time.Second

// send writes frames in one write. A server that failed the connection
// may have closed it before taking everything: the frames it sent are
// still there to read, and the steps that read them judge it.
func (c *ab) send(frames ...[]byte) error {
	return sent(c.Write(cat(frames...)))
}

// sendChopped writes frames in writes of chop bytes, as send does.
func (c *ab) sendChopped(chop int, frames ...[]byte) error {
	p := cat(frames...)
	for len(p) > 0 {
		n := min(chop, len(p))
		if _, err := c.Write(p[:n]); err != nil {
			return sent(0, err)
		}
		p = p[n:]
	}
	return nil
}

func sent(_ int, err error) error {
	if err != nil && connEnded(err) {
		return nil
	}
	return err
}

func describe(f ws.Frame) string {
	switch f.Header.OpCode {
	case ws.OpClose:
		return fmt.Sprintf("close %d", closeCode(f.Payload))
	case ws.OpText:
		return fmt.Sprintf("text of %d bytes %.40q", len(f.Payload), f.Payload)
	}
	return fmt.Sprintf("%v of %d bytes", f.Header.OpCode, len(f.Payload))
}

// message expects the next frames to be one data message of type op
// with payload want, whole or in fragments.
func (c *ab) message(op ws.OpCode, want []byte) error {
	var got []byte
	for first := true; ; first = false {
		f, err := c.readFrame(frameWait)
		if err != nil {
			return fmt.Errorf("want the echo (%v of %d bytes): %w", op, len(want), err)
		}
		switch {
		case first && f.Header.OpCode != op, !first && f.Header.OpCode != ws.OpContinuation:
			return fmt.Errorf("got %s, want the echo (%v of %d bytes)", describe(f), op, len(want))
		}
		got = append(got, f.Payload...)
		if f.Header.Fin {
			break
		}
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("echo of %d bytes differs: %d bytes %.40q, want %.40q", len(want), len(got), got, want)
	}
	return nil
}

// pong expects the next frame to be a pong with payload want.
func (c *ab) pong(want []byte) error {
	f, err := c.readFrame(frameWait)
	switch {
	case err != nil:
		return fmt.Errorf("want a pong of %q: %w", want, err)
	case f.Header.OpCode != ws.OpPong || !bytes.Equal(f.Payload, want):
		return fmt.Errorf("got %s %q, want a pong of %q", describe(f), f.Payload, want)
	}
	return nil
}

// fails expects the server to fail the connection: its next frame is a
// close with one of codes; the client answers it, and the server then
// ends the connection.
func (c *ab) fails(codes ...int) error { return c.failsBefore(nil, codes...) }

// failsBefore is fails, with rest (the end of a message cut short) sent
// after the server's close and before the client's answer.
func (c *ab) failsBefore(rest []byte, codes ...int) error {
	code, err := c.closeFrame(codes)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		c.send(rest) // the server may be gone already
	}
	var body []byte
	if code != int(ws.StatusNoStatusRcvd) {
		body = closeBody(uint16(code), "")
	}
	c.send(frame(bFin|bClos, body)) // the server may be gone already
	return c.end()
}

// closes sends close code (with reason) and expects the server's answer,
// one of codes, and then the connection's end.
func (c *ab) closes(code uint16, reason string, codes ...int) error {
	if err := c.send(frame(bFin|bClos, closeBody(code, reason))); err != nil {
		return err
	}
	return c.closed(codes...)
}

// closed expects the server's close frame, one of codes, in answer to
// the client's, and then the connection's end.
func (c *ab) closed(codes ...int) error {
	if _, err := c.closeFrame(codes); err != nil {
		return err
	}
	return c.end()
}

// normalClose is the end of every case in which the server does not fail
// the connection: close 1000, answered with 1000.
func (c *ab) normalClose() error { return c.closes(1000, "", 1000) }

func (c *ab) closeFrame(codes []int) (int, error) {
	f, err := c.readFrame(frameWait)
	if err != nil {
		return 0, fmt.Errorf("want close %v: %w", codes, err)
	}
	if f.Header.OpCode != ws.OpClose {
		return 0, fmt.Errorf("got %s, want close %v", describe(f), codes)
	}
	if code := closeCode(f.Payload); !slices.Contains(codes, code) {
		return 0, fmt.Errorf("got close %d, want close %v", code, codes)
	}
	return closeCode(f.Payload), nil
}

// end expects the server to end the connection, sending nothing more,
// within endWait.
func (c *ab) end() error {
	begin := time.Now()
	f, err := c.readFrame(endWait)
	switch {
	case err == nil:
		return fmt.Errorf("got %s after the close", describe(f))
	case !connEnded(err):
		return fmt.Errorf("the connection did not end within %v of the closing handshake: %w", time.Since(begin).Round(time.Millisecond), err)
	}
	return nil
}

// seq runs steps in order, stopping at the first error.
func seq(steps ...func() error) error {
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	return nil
}

func repeat(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

func autobahnCases() []abCase {
	var cs []abCase
	add := func(id, what string, run func(c *ab) error) { cs = append(cs, abCase{id, what, run}) }

	// 1: framing. Text and binary messages of the sizes around each
	// length encoding's bounds; the last one sent in chops of 997 bytes.
	for sec, op := range []ws.OpCode{ws.OpText, ws.OpBinary} {
		fill := byte('*')
		if op == ws.OpBinary {
			fill = 0xfe
		}
		for i, n := range []int{0, 125, 126, 127, 128, 65535, 65536, 65536} {
			p := repeat(fill, n)
			chop := 0
			if i == 7 {
				chop = 997
			}
			add(fmt.Sprintf("1.%d.%d", sec+1, i+1), fmt.Sprintf("%v message of %d bytes", op, n), func(c *ab) error {
				return seq(func() error {
					if chop > 0 {
						return c.sendChopped(chop, frame(bFin|byte(op), p))
					}
					return c.send(frame(bFin|byte(op), p))
				}, func() error { return c.message(op, p) }, c.normalClose)
			})
		}
	}

	// 2: pings and pongs.
	hello := []byte("Hello, world!")
	binPing := []byte{0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff}
	for _, tc := range []struct {
		id, what string
		p        []byte
		chop     int
	}{
		{"2.1", "ping without payload", nil, 0},
		{"2.2", "ping with a text payload", hello, 0},
		{"2.3", "ping with a binary payload", binPing, 0},
		{"2.4", "ping with 125 bytes", repeat(0xfe, 125), 0},
		{"2.6", "ping with 125 bytes, sent in chops of 1 byte", repeat(0xfe, 125), 1},
	} {
		add(tc.id, tc.what, func(c *ab) error {
			return seq(func() error {
				if tc.chop > 0 {
					return c.sendChopped(tc.chop, frame(bFin|bPing, tc.p))
				}
				return c.send(frame(bFin|bPing, tc.p))
			}, func() error { return c.pong(tc.p) }, c.normalClose)
		})
	}
	add("2.5", "ping with 126 bytes", func(c *ab) error {
		return seq(func() error { return c.send(frame(bFin|bPing, repeat(0xfe, 126))) }, func() error { return c.fails(1002) })
	})
	add("2.7", "unsolicited pong without payload", func(c *ab) error {
		return seq(func() error { return c.send(frame(bFin|bPong, nil)) }, c.normalClose)
	})
	add("2.8", "unsolicited pong with payload", func(c *ab) error {
		return seq(func() error { return c.send(frame(bFin|bPong, []byte("unsolicited pong payload"))) }, c.normalClose)
	})
	add("2.9", "unsolicited pong, then a ping", func(c *ab) error {
		return seq(func() error {
			return c.send(frame(bFin|bPong, []byte("unsolicited pong payload")), frame(bFin|bPing, []byte("ping payload")))
		}, func() error { return c.pong([]byte("ping payload")) }, c.normalClose)
	})
	for _, tc := range []struct {
		id   string
		chop int
	}{{"2.10", 0}, {"2.11", 1}} {
		add(tc.id, fmt.Sprintf("10 pings back to back (chops of %d)", tc.chop), func(c *ab) error {
			var pings [][]byte
			steps := []func() error{func() error {
				if tc.chop > 0 {
					return c.sendChopped(tc.chop, pings...)
				}
				return c.send(pings...)
			}}
			for i := range 10 {
				p := fmt.Appendf(nil, "payload-%d", i)
				pings = append(pings, frame(bFin|bPing, p))
				steps = append(steps, func() error { return c.pong(p) })
			}
			return seq(append(steps, c.normalClose)...)
		})
	}

	// 3: reserved bits, set without an extension that defines them.
	add("3.1", "text with RSV1", func(c *ab) error {
		return seq(func() error { return c.send(frame(bFin|bRsv1|bText, hello)) }, func() error { return c.fails(1002) })
	})
	for _, tc := range []struct {
		id, how string
	}{{"3.2", "at once"}, {"3.3", "frame by frame"}, {"3.4", "in chops of 1 byte"}} {
		add(tc.id, "text, then text with RSV2, then a ping, "+tc.how, func(c *ab) error {
			good, bad := frame(bFin|bText, hello), frame(bFin|bRsv2|bText, hello)
			ping := frame(bFin|bPing, hello)
			switch tc.id {
			case "3.3":
				return seq(func() error { return c.send(good) }, func() error { return c.message(ws.OpText, hello) },
					func() error { return c.send(bad, ping) }, func() error { return c.fails(1002) })
			case "3.4":
				return seq(func() error { return c.sendChopped(1, good, bad, ping) }, func() error { return c.message(ws.OpText, hello) },
					func() error { return c.fails(1002) })
			}
			return seq(func() error { return c.send(good, bad, ping) }, func() error { return c.message(ws.OpText, hello) },
				func() error { return c.fails(1002) })
		})
	}
	for _, tc := range []struct {
		id, what string
		f        []byte
	}{
		{"3.5", "binary with RSV1 and RSV3", frame(bFin|bRsv1|bRsv3|bBin, []byte{0, 1, 2, 3, 254, 255})},
		{"3.6", "ping with RSV2 and RSV3", frame(bFin|bRsv2|bRsv3|bPing, hello)},
		{"3.7", "close with all RSV bits", frame(bFin|bRsv1|bRsv2|bRsv3|bClos, closeBody(1000, ""))},
	} {
		add(tc.id, tc.what, func(c *ab) error {
			return seq(func() error { return c.send(tc.f) }, func() error { return c.fails(1002) })
		})
	}

	// 4: reserved opcodes, data (3-7) and control (11-15).
	for sec, base := range []byte{3, 11} {
		for i := range 5 {
			op := base + byte(i)
			id := fmt.Sprintf("4.%d.%d", sec+1, i+1)
			var p []byte
			if i%2 == 1 {
				p = []byte("reserved opcode payload")
			}
			if i < 2 {
				add(id, fmt.Sprintf("reserved opcode %d", op), func(c *ab) error {
					return seq(func() error { return c.send(frame(bFin|op, p)) }, func() error { return c.fails(1002) })
				})
				continue
			}
			chop := 0
			if i == 4 {
				chop = 1
			}
			add(id, fmt.Sprintf("text, then reserved opcode %d, then a ping", op), func(c *ab) error {
				in := [][]byte{frame(bFin|bText, hello), frame(bFin|op, p), frame(bFin|bPing, hello)}
				return seq(func() error {
					if chop > 0 {
						return c.sendChopped(chop, in...)
					}
					return c.send(in...)
				}, func() error { return c.message(ws.OpText, hello) }, func() error { return c.fails(1002) })
			})
		}
	}

	// 5: fragmentation.
	f1, f2 := text(bText, "fragment1"), text(bFin|bCont, "fragment2")
	add("5.1", "ping in 2 fragments", func(c *ab) error {
		return seq(func() error { return c.send(text(bPing, "fragment1"), f2) }, func() error { return c.fails(1002) })
	})
	add("5.2", "pong in 2 fragments", func(c *ab) error {
		return seq(func() error { return c.send(text(bPong, "fragment1"), f2) }, func() error { return c.fails(1002) })
	})
	for _, tc := range []struct {
		id  string
		how int // 0 at once, 1 frame by frame, 2 in chops of 1 byte
	}{{"5.3", 0}, {"5.4", 1}, {"5.5", 2}} {
		add(tc.id, "text in 2 fragments", func(c *ab) error {
			return seq(func() error {
				switch tc.how {
				case 1:
					if err := c.send(f1); err != nil {
						return err
					}
					return c.send(f2)
				case 2:
					return c.sendChopped(1, f1, f2)
				}
				return c.send(f1, f2)
			}, func() error { return c.message(ws.OpText, []byte("fragment1fragment2")) }, c.normalClose)
		})
	}
	ping := frame(bFin|bPing, []byte("ping payload"))
	for _, tc := range []struct {
		id  string
		how int
	}{{"5.6", 0}, {"5.7", 1}, {"5.8", 2}} {
		add(tc.id, "text in 2 fragments with a ping between them", func(c *ab) error {
			pong := func() error { return c.pong([]byte("ping payload")) }
			msg := func() error { return c.message(ws.OpText, []byte("fragment1fragment2")) }
			switch tc.how {
			case 1:
				return seq(func() error { return c.send(f1, ping) }, pong, func() error { return c.send(f2) }, msg, c.normalClose)
			case 2:
				return seq(func() error { return c.sendChopped(1, f1, ping, f2) }, pong, msg, c.normalClose)
			}
			return seq(func() error { return c.send(f1, ping, f2) }, pong, msg, c.normalClose)
		})
	}
	for i, fin := range []byte{bFin, 0} {
		for j := range 3 {
			id := fmt.Sprintf("5.%d", 9+3*i+j)
			orphan := text(fin|bCont, "non-continuation payload")
			after := text(bFin|bText, "Hello, world!")
			add(id, "continuation with nothing to continue, then text", func(c *ab) error {
				return seq(func() error {
					switch j {
					case 1:
						if err := c.send(orphan); err != nil {
							return err
						}
						return c.send(after)
					case 2:
						return c.sendChopped(1, orphan, after)
					}
					return c.send(orphan, after)
				}, func() error { return c.fails(1002) })
			})
		}
	}
	add("5.15", "text in 2 fragments, then a continuation with nothing to continue, then text", func(c *ab) error {
		return seq(func() error {
			return c.send(f1, f2, text(bCont, "fragment3"), text(bFin|bText, "fragment4"))
		}, func() error { return c.message(ws.OpText, []byte("fragment1fragment2")) }, func() error { return c.fails(1002) })
	})
	for _, tc := range []struct {
		id  string
		fin byte
	}{{"5.16", 0}, {"5.17", bFin}} {
		add(tc.id, "twice: a continuation with nothing to continue, then text in 2 fragments", func(c *ab) error {
			round := cat(text(tc.fin|bCont, "fragment1"), text(bText, "fragment2"), text(bFin|bCont, "fragment3"))
			return seq(func() error { return c.send(round, round) }, func() error { return c.fails(1002) })
		})
	}
	add("5.18", "text in 2 fragments, both with the text opcode", func(c *ab) error {
		return seq(func() error { return c.send(f1, text(bFin|bText, "fragment2")) }, func() error { return c.fails(1002) })
	})
	for _, tc := range []struct {
		id       string
		separate bool
	}{{"5.19", false}, {"5.20", true}} {
		add(tc.id, "text in 5 fragments with 2 pings between them, each answered before the rest is sent", func(c *ab) error {
			send := func(frames ...[]byte) func() error {
				return func() error {
					if !tc.separate {
						return c.send(frames...)
					}
					for _, f := range frames {
						if err := c.send(f); err != nil {
							return err
						}
					}
					return nil
				}
			}
			return seq(
				send(text(bText, "fragment1"), text(bCont, "fragment2"), text(bFin|bPing, "pongme 1!")),
				func() error { return c.pong([]byte("pongme 1!")) },
				send(text(bCont, "fragment3"), text(bCont, "fragment4"), text(bFin|bPing, "pongme 2!")),
				func() error { return c.pong([]byte("pongme 2!")) },
				send(text(bFin|bCont, "fragment5")),
				func() error { return c.message(ws.OpText, []byte("fragment1fragment2fragment3fragment4fragment5")) },
				c.normalClose)
		})
	}

	// 6: UTF-8 handling.
	echoes := func(frames ...[]byte) func(c *ab, want string) error {
		return func(c *ab, want string) error {
			return seq(func() error { return c.send(frames...) }, func() error { return c.message(ws.OpText, []byte(want)) }, c.normalClose)
		}
	}
	add("6.1.1", "empty text", func(c *ab) error { return echoes(text(bFin|bText, ""))(c, "") })
	add("6.1.2", "empty text in 3 empty fragments", func(c *ab) error {
		return echoes(text(bText, ""), text(bCont, ""), text(bFin|bCont, ""))(c, "")
	})
	add("6.1.3", "text with empty first and last fragments", func(c *ab) error {
		return echoes(text(bText, ""), text(bCont, "middle frame payload"), text(bFin|bCont, ""))(c, "middle frame payload")
	})
	valid := "Hello-µ@ßöäüàá-UTF-8!!"
	kosme := "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
	add("6.2.1", "valid UTF-8 in one frame", func(c *ab) error { return echoes(text(bFin|bText, valid))(c, valid) })
	add("6.2.2", "valid UTF-8 in 2 fragments, cut between characters", func(c *ab) error {
		return echoes(text(bText, valid[:12]), text(bFin|bCont, valid[12:]))(c, valid)
	})
	add("6.2.3", "valid UTF-8 in fragments of 1 byte", func(c *ab) error { return echoes(byteFragments(valid)...)(c, valid) })
	add("6.2.4", "valid UTF-8 of 2 and 3 byte characters in fragments of 1 byte", func(c *ab) error {
		return echoes(byteFragments(kosme)...)(c, kosme)
	})
	invalid := kosme + "\xed\xa0\x80edited"
	add("6.3.1", "invalid UTF-8 in one frame", func(c *ab) error {
		return seq(func() error { return c.send(text(bFin|bText, invalid)) }, func() error { return c.fails(1007) })
	})
	add("6.3.2", "invalid UTF-8 in fragments of 1 byte", func(c *ab) error {
		return seq(func() error { return c.send(byteFragments(invalid)...) }, func() error { return c.fails(1007) })
	})
	// 6.4: the server must fail the connection as soon as the invalid byte
	// arrives, before the client sends the rest of the message.
	for _, tc := range []struct {
		id, what    string
		first, rest []byte
	}{
		{"6.4.1", "invalid UTF-8 in the 2nd of 3 fragments", cat(text(bText, kosme), text(bCont, "\xf4\x90\x80\x80")), text(bFin|bCont, "edited")},
		{"6.4.2", "invalid UTF-8 at the start of the 2nd of 3 fragments", cat(text(bText, kosme+"\xf4"), text(bCont, "\x90")), text(bFin|bCont, "\x80\x80edited")},
		{"6.4.3", "invalid UTF-8 in the 2nd of 3 chops of one frame", nil, nil},
		{"6.4.4", "invalid UTF-8 at the start of the 2nd of 3 chops of one frame", nil, nil},
	} {
		first, rest := tc.first, tc.rest
		if first == nil {
			f := text(bFin|bText, kosme+"\xf4\x90\x80\x80edited")
			cut := 6 + len(kosme) + 4 // header and mask, κόσμε, the invalid sequence
			if tc.id == "6.4.4" {
				cut = 6 + len(kosme) + 2
			}
			first, rest = f[:cut], f[cut:]
		}
		add(tc.id, tc.what+", failed before the rest is sent", func(c *ab) error {
			return seq(func() error { return c.send(first) }, func() error { return c.failsBefore(rest, 1007) })
		})
	}
	for i, group := range utf8Sequences() {
		for j, p := range group {
			id := fmt.Sprintf("6.%d.%d", i+5, j+1)
			if utf8.ValidString(p) {
				add(id, fmt.Sprintf("valid UTF-8 %x", p), func(c *ab) error { return echoes(text(bFin|bText, p))(c, p) })
				continue
			}
			add(id, fmt.Sprintf("invalid UTF-8 %x", p), func(c *ab) error {
				return seq(func() error { return c.send(text(bFin|bText, p)) }, func() error { return c.fails(1007) })
			})
		}
	}

	// 7: the closing handshake and close codes.
	add("7.1.1", "text, then a normal close", func(c *ab) error {
		return seq(func() error { return c.send(text(bFin|bText, "Hello World!")) },
			func() error { return c.message(ws.OpText, []byte("Hello World!")) }, c.normalClose)
	})
	add("7.1.2", "two close frames", func(c *ab) error {
		return seq(func() error {
			return c.send(frame(bFin|bClos, closeBody(1000, "")), frame(bFin|bClos, closeBody(1000, "")))
		},
			func() error { return c.closed(1000) })
	})
	add("7.1.3", "a close, then a ping", func(c *ab) error {
		return seq(func() error { return c.send(frame(bFin|bClos, closeBody(1000, "")), ping) }, func() error { return c.closed(1000) })
	})
	add("7.1.4", "a close, then text", func(c *ab) error {
		return seq(func() error { return c.send(frame(bFin|bClos, closeBody(1000, "")), text(bFin|bText, "Hello World!")) },
			func() error { return c.closed(1000) })
	})
	add("7.1.5", "a close between two fragments of a text", func(c *ab) error {
		return seq(func() error { return c.send(f1, frame(bFin|bClos, closeBody(1000, "")), f2) }, func() error { return c.closed(1000) })
	})
	add("7.3.1", "a close without payload", func(c *ab) error {
		return seq(func() error { return c.send(frame(bFin|bClos, nil)) }, func() error { return c.closed(1000, int(ws.StatusNoStatusRcvd)) })
	})
	add("7.3.2", "a close with a payload of 1 byte", func(c *ab) error {
		return seq(func() error { return c.send(frame(bFin|bClos, []byte{0x03})) }, func() error { return c.fails(1002) })
	})
	add("7.3.3", "close 1000", func(c *ab) error { return c.closes(1000, "", 1000) })
	add("7.3.4", "close 1000 with a reason", func(c *ab) error { return c.closes(1000, "Hello World!", 1000) })
	add("7.3.5", "close 1000 with a reason of 123 bytes", func(c *ab) error { return c.closes(1000, strings.Repeat("*", 123), 1000) })
	add("7.3.6", "close 1000 with a reason of 124 bytes (a payload over 125)", func(c *ab) error {
		return seq(func() error { return c.send(frame(bFin|bClos, closeBody(1000, strings.Repeat("*", 124)))) }, func() error { return c.fails(1002) })
	})
	add("7.5.1", "close with a reason that is not UTF-8", func(c *ab) error {
		return seq(func() error { return c.send(frame(bFin|bClos, closeBody(1000, invalid))) }, func() error { return c.fails(1007) })
	})
	for i, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999} {
		add(fmt.Sprintf("7.7.%d", i+1), fmt.Sprintf("close %d, a valid code", code), func(c *ab) error {
			return c.closes(uint16(code), "", code, 1000)
		})
	}
	for i, code := range []int{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999} {
		add(fmt.Sprintf("7.9.%d", i+1), fmt.Sprintf("close %d, a code that may not be sent", code), func(c *ab) error {
			return seq(func() error { return c.send(frame(bFin|bClos, closeBody(uint16(code), ""))) }, func() error { return c.fails(1002) })
		})
	}
	for i, code := range []int{5000, 65535} {
		add(fmt.Sprintf("7.13.%d", i+1), fmt.Sprintf("close %d, a code out of range", code), func(c *ab) error {
			return seq(func() error { return c.send(frame(bFin|bClos, closeBody(uint16(code), ""))) }, func() error { return c.fails(1002) })
		})
	}

	// 9: large messages, whole, fragmented, chopped, and many small ones.
	sizes := []int{64 << 10, 256 << 10, 1 << 20, 4 << 20, 8 << 20, 16 << 20}
	for sec, op := range []ws.OpCode{ws.OpText, ws.OpBinary} {
		fill := byte('*')
		if op == ws.OpBinary {
			fill = 0xfe
		}
		for i, n := range sizes {
			add(fmt.Sprintf("9.%d.%d", sec+1, i+1), fmt.Sprintf("%v message of %d bytes", op, n), func(c *ab) error {
				p := repeat(fill, n)
				return seq(func() error { return c.send(frame(bFin|byte(op), p)) }, func() error { return c.message(op, p) }, c.normalClose)
			})
		}
		for i, fs := range []int{64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20} {
			add(fmt.Sprintf("9.%d.%d", sec+3, i+1), fmt.Sprintf("%v message of 4 MiB in frames of %d bytes", op, fs), func(c *ab) error {
				p := repeat(fill, 4<<20)
				return seq(func() error { return c.send(fragments(byte(op), p, fs)...) }, func() error { return c.message(op, p) }, c.normalClose)
			})
		}
		for i, chop := range []int{64, 128, 256, 512, 1024, 2048} {
			add(fmt.Sprintf("9.%d.%d", sec+5, i+1), fmt.Sprintf("%v message of 1 MiB in chops of %d bytes", op, chop), func(c *ab) error {
				p := repeat(fill, 1<<20)
				return seq(func() error { return c.sendChopped(chop, frame(bFin|byte(op), p)) }, func() error { return c.message(op, p) }, c.normalClose)
			})
		}
		for i, n := range []int{0, 16, 64, 256, 1024, 4096} {
			add(fmt.Sprintf("9.%d.%d", sec+7, i+1), fmt.Sprintf("1000 %v messages of %d bytes, one at a time", op, n), func(c *ab) error {
				p := repeat(fill, n)
				for range 1000 {
					if err := seq(func() error { return c.send(frame(bFin|byte(op), p)) }, func() error { return c.message(op, p) }); err != nil {
						return err
					}
				}
				return c.normalClose()
			})
		}
	}

	// 10: a message the client fragments by itself.
	add("10.1.1", "text of 65536 bytes in frames of 1300", func(c *ab) error {
		p := repeat('*', 65536)
		return seq(func() error { return c.send(fragments(bText, p, 1300)...) }, func() error { return c.message(ws.OpText, p) }, c.normalClose)
	})
	return cs
}

// fragments cuts p into frames of size bytes, the first with opcode op.
func fragments(op byte, p []byte, size int) [][]byte {
	var fs [][]byte
	for first := true; first || len(p) > 0; first = false {
		n := min(size, len(p))
		b0 := bCont
		if first {
			b0 = op
		}
		if n == len(p) {
			b0 |= bFin
		}
		fs = append(fs, frame(b0, p[:n]))
		p = p[n:]
	}
	return fs
}

// byteFragments is s as a text message in fragments of 1 byte.
func byteFragments(s string) [][]byte { return fragments(bText, []byte(s), 1) }

// utf8Sequences are the byte sequences of Autobahn's cases 6.5 to 6.23,
// after Markus Kuhn's UTF-8 decoder stress test, one group per case
// number: each is sent as one text message, and must be echoed if it is
// UTF-8 and fail the connection with 1007 if not.
func utf8Sequences() [][]string {
	kosme := "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
	var prefixes []string // 6.6: every prefix of κόσμε
	for i := 1; i <= len(kosme); i++ {
		prefixes = append(prefixes, kosme[:i])
	}
	var conts []string // 6.12: unexpected continuation bytes
	for i := 1; i <= 7; i++ {
		conts = append(conts, strings.Repeat("\x80\xbf", 4)[:i])
	}
	var all []byte
	for b := 0x80; b <= 0xbf; b++ {
		all = append(all, byte(b))
	}
	conts = append(conts, string(all))
	var lonely []string // 6.13: lonely start bytes, each followed by a space
	for _, r := range [][2]int{{0xc0, 0xdf}, {0xe0, 0xef}, {0xf0, 0xf7}, {0xf8, 0xfb}, {0xfc, 0xfd}} {
		var s []byte
		for b := r[0]; b <= r[1]; b++ {
			s = append(s, byte(b), ' ')
		}
		lonely = append(lonely, string(s))
	}
	missing := []string{"\xc0", "\xe0\x80", "\xf0\x80\x80", "\xf8\x80\x80\x80", "\xfc\x80\x80\x80\x80",
		"\xdf", "\xef\xbf", "\xf7\xbf\xbf", "\xfb\xbf\xbf\xbf", "\xfd\xbf\xbf\xbf\xbf"}
	var nonchars []string // 6.22: noncharacters, which are valid
	for plane := 0; plane <= 0x10; plane++ {
		for _, low := range []rune{0xfffe, 0xffff} {
			nonchars = append(nonchars, string(rune(plane<<16)|low))
		}
	}
	for r := rune(0xfdd0); r <= 0xfdef; r += 8 {
		nonchars = append(nonchars, string(r))
	}
	return [][]string{
		{kosme}, // 6.5
		prefixes,
		{"\x00", "\xc2\x80", "\xe0\xa0\x80", "\xf0\x90\x80\x80"},                                 // 6.7: first of each length
		{"\xf8\x88\x80\x80\x80", "\xfc\x84\x80\x80\x80\x80"},                                     // 6.8: 5 and 6 bytes
		{"\x7f", "\xdf\xbf", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf"},                                 // 6.9: last of each length
		{"\xf7\xbf\xbf\xbf", "\xfb\xbf\xbf\xbf\xbf", "\xfd\xbf\xbf\xbf\xbf\xbf"},                 // 6.10
		{"\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbd", "\xf4\x8f\xbf\xbf", "\xf4\x90\x80\x80"}, // 6.11: boundaries
		conts,
		lonely,
		missing,
		{strings.Join(missing, "")},          // 6.15
		{"\xfe", "\xff", "\xfe\xfe\xff\xff"}, // 6.16: impossible bytes
		{"\xc0\xaf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf", "\xf8\x80\x80\x80\xaf", "\xfc\x80\x80\x80\x80\xaf"},             // 6.17: overlong
		{"\xc1\xbf", "\xe0\x9f\xbf", "\xf0\x8f\xbf\xbf", "\xf8\x87\xbf\xbf\xbf", "\xfc\x83\xbf\xbf\xbf\xbf"},             // 6.18
		{"\xc0\x80", "\xe0\x80\x80", "\xf0\x80\x80\x80", "\xf8\x80\x80\x80\x80", "\xfc\x80\x80\x80\x80\x80"},             // 6.19: NUL
		{"\xed\xa0\x80", "\xed\xad\xbf", "\xed\xae\x80", "\xed\xaf\xbf", "\xed\xb0\x80", "\xed\xbe\x80", "\xed\xbf\xbf"}, // 6.20
		{"\xed\xa0\x80\xed\xb0\x80", "\xed\xa0\x80\xed\xbf\xbf", "\xed\xad\xbf\xed\xb0\x80", "\xed\xad\xbf\xed\xbf\xbf",
			"\xed\xae\x80\xed\xb0\x80", "\xed\xae\x80\xed\xbf\xbf", "\xed\xaf\xbf\xed\xb0\x80", "\xed\xaf\xbf\xed\xbf\xbf"}, // 6.21
		nonchars,
		{"\xef\xbf\xb9", "\xef\xbf\xba", "\xef\xbf\xbb", "\xef\xbf\xbc", "\xef\xbf\xbd", "\xef\xbf\xbe", "\xef\xbf\xbf"}, // 6.23
	}
}
