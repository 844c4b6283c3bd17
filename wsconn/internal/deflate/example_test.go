package deflate_test

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/pollws/pollws/wsconn/internal/deflate"
	"github.com/pollws/pollws/wsconn/internal/handshake"
)

// A server accepts a browser's offer, compresses a message, and the
// client inflates it frame by frame as the frames arrive.
func Example() {
	offers, _ := handshake.ParseExtensions([]string{"permessage-deflate; client_max_window_bits"})
	resp, params, ok := deflate.Accept(offers, &deflate.Options{})
	answer, _ := handshake.FormatExtensions([]handshake.Extension{resp})
	fmt.Println(ok, answer)

	server := deflate.NewCompressor(params, false, nil)
	client := deflate.NewDecompressor(params, true)
	defer server.Release()
	defer client.Release()

	msg := bytes.Repeat([]byte(`{"event":"tick","symbol":"ACME","price":42.5}`), 20)
	fmt.Println("compress:", server.ShouldCompress(len(msg)))
	payload, _ := server.Compress(nil, msg)
	fmt.Println(len(msg), "bytes sent as", len(payload))

	const limit = 1 << 20
	out := make([]byte, 0, 4096)
	for _, frame := range [][]byte{payload[:10], payload[10:]} {
		var err error
		if out, _, err = client.Inflate(out, frame, limit); err != nil {
			fmt.Println(err)
			return
		}
	}
	out, err := client.Finish(out, limit)
	fmt.Println(bytes.Equal(out, msg), err)
	// Output:
	// true permessage-deflate; server_no_context_takeover; client_no_context_takeover
	// compress: true
	// 900 bytes sent as 57
	// true <nil>
}

// A client offers permessage-deflate and checks the server's answer: an
// answer its offer does not allow fails the handshake.
func ExampleCheckResponse() {
	o := &deflate.Options{ContextTakeover: true, MaxWindowBits: 10}
	offer, _ := deflate.Offer(o)
	v, _ := handshake.FormatExtensions([]handshake.Extension{offer})
	fmt.Println("offer:", v)

	for _, answer := range []string{
		"permessage-deflate; server_max_window_bits=10",
		"permessage-deflate; server_max_window_bits=12",
	} {
		accepted, _ := handshake.ParseExtensions([]string{answer})
		p, ok, err := deflate.CheckResponse(accepted, o)
		fmt.Printf("%+v %v %v\n", p, ok, errors.Is(err, deflate.ErrResponse))
	}
	// Output:
	// offer: permessage-deflate; server_max_window_bits=10; client_max_window_bits=10
	// {ServerNoContextTakeover:false ClientNoContextTakeover:false ServerMaxWindowBits:10 ClientMaxWindowBits:10} true false
	// {ServerNoContextTakeover:false ClientNoContextTakeover:false ServerMaxWindowBits:0 ClientMaxWindowBits:0} false true
}

// A message that inflates beyond the limit stops there with ErrTooBig,
// however small its compressed form: the receiver closes with 1009.
func ExampleDecompressor_Inflate() {
	c := deflate.NewCompressor(deflate.Params{}, false, nil)
	payload, _ := c.Compress(nil, make([]byte, 1<<20)) // 1 MiB of zeros
	fmt.Println("payload:", len(payload), "bytes")

	d := deflate.NewDecompressor(deflate.Params{}, true)
	out := make([]byte, 0, 64<<10)
	out, _, err := d.Inflate(out, payload, 64<<10)
	fmt.Println(len(out), errors.Is(err, deflate.ErrTooBig))
	// Output:
	// payload: 1071 bytes
	// 65536 true
}
