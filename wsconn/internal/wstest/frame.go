package wstest

import "github.com/pollws/pollws/wsconn/internal/frame"

// Frame encodes a frame by hand, for tests that send what a library
// would not: first header byte b0 (FIN, RSV and opcode bits, any of
// them), payload, and, when masked, the mask a client sets, with a fixed
// key.
func Frame(b0 byte, payload []byte, masked bool) []byte {
	h := frame.Header{Fin: b0&0x80 != 0, Rsv: b0 >> 4 & 7, Op: b0 & 0xf, Masked: masked, Mask: [4]byte{0x37, 0xfa, 0x21, 0x3d}, Length: int64(len(payload))}
	var hb [frame.MaxHeader]byte
	b := make([]byte, 0, frame.MaxHeader+len(payload))
	b = append(b, hb[:frame.Put(&hb, &h)]...)
	b = append(b, payload...)
	if masked {
		frame.Mask(b[len(b)-len(payload):], h.Mask, 0)
	}
	return b
}
