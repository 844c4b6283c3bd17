package wstest

import (
	"compress/flate"
	"io"
	"net"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	"github.com/gobwas/ws/wsutil"
)

// GobwasDeflateEcho serves conn with gobwas's own compressed echo, as
// its Autobahn server does it: wsflate with no context takeover either
// way, over compress/flate (level 9). It returns when conn fails.
func GobwasDeflateEcho(conn net.Conn) {
	ext := wsflate.Extension{Parameters: wsflate.Parameters{ServerNoContextTakeover: true, ClientNoContextTakeover: true}}
	u := ws.Upgrader{Negotiate: ext.Negotiate}
	if _, err := u.Upgrade(conn); err != nil {
		return
	}
	if _, ok := ext.Accepted(); !ok {
		return
	}
	fw := wsflate.NewWriter(nil, func(w io.Writer) wsflate.Compressor {
		f, _ := flate.NewWriter(w, 9)
		return f
	})
	fr := wsflate.NewReader(nil, func(r io.Reader) wsflate.Decompressor { return flate.NewReader(r) })
	var msg wsflate.MessageState
	control := wsutil.ControlFrameHandler(conn, ws.StateServerSide)
	rd := wsutil.Reader{Source: conn, State: ws.StateServerSide | ws.StateExtended, OnIntermediate: control,
		Extensions: []wsutil.RecvExtension{&msg}}
	wr := wsutil.NewWriterSize(conn, ws.StateServerSide|ws.StateExtended, 0, 4096)
	wr.SetExtensions(&msg)
	for {
		h, err := rd.NextFrame()
		if err != nil {
			return
		}
		if h.OpCode.IsControl() {
			if control(h, &rd) != nil {
				return
			}
			continue
		}
		wr.ResetOp(h.OpCode)
		var src io.Reader = &rd
		var dst io.Writer = wr
		if msg.IsCompressed() {
			fr.Reset(src)
			fw.Reset(dst)
			src, dst = fr, fw
		}
		if _, err := io.Copy(dst, src); err != nil {
			return
		}
		if msg.IsCompressed() && fw.Close() != nil {
			return
		}
		if wr.Flush() != nil {
			return
		}
	}
}
