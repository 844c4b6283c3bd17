package handshake_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/pollws/pollws/wsconn/internal/handshake"
)

// A server reads a client's opening handshake and answers it with a 101;
// the client checks the answer.
func Example() {
	u, _ := url.Parse("ws://example.com/chat")
	req, key, err := handshake.NewRequest(u, []string{"v2.chat", "chat"}, nil, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	var wire bytes.Buffer
	req.Write(&wire)

	// The server's side, on the request as net/http reads it.
	r, _ := http.ReadRequest(bufio.NewReader(&wire))
	hs, err := handshake.ParseRequest(r)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("offered:", hs.Protocols)
	answer, _ := handshake.AppendResponse(nil, hs.Key, handshake.ChooseProtocol(hs.Protocols, []string{"chat"}), nil, nil)

	// The client's side.
	resp, _ := http.ReadResponse(bufio.NewReader(bytes.NewReader(answer)), req)
	got, err := handshake.CheckResponse(resp, key, []string{"v2.chat", "chat"}, nil)
	fmt.Printf("%s, subprotocol %q, %v\n", resp.Status, got.Protocol, err)
	// Output:
	// offered: [v2.chat chat]
	// 101 Switching Protocols, subprotocol "chat", <nil>
}

// A refused request carries the status to answer and the reason.
func ExampleParseRequest_refused() {
	raw := "GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"
	r, _ := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	_, err := handshake.ParseRequest(r)
	var rerr *handshake.RequestError
	if errors.As(err, &rerr) {
		fmt.Println(rerr.Status, errors.Is(err, handshake.ErrVersion))
		fmt.Println(err)
	}
	// Output:
	// 426 true
	// handshake: Sec-WebSocket-Version is not 13: "8"
}

func ExampleParseExtensions() {
	exts, err := handshake.ParseExtensions([]string{
		`permessage-deflate; client_max_window_bits; server_max_window_bits="10"`,
		"x-webkit-deflate-frame",
	})
	for _, e := range exts {
		fmt.Println(e.Name, e.Params)
	}
	fmt.Println(err)
	// Output:
	// permessage-deflate [{client_max_window_bits } {server_max_window_bits 10}]
	// x-webkit-deflate-frame []
	// <nil>
}
