package wsconn

import (
	"bytes"
	"context"
	"math/rand/v2"
	"sync"
	"testing"
)

// TestCompressEchoOwnPeers: a compressing client and server of this
// package agree and echo messages of every size, compressed both ways.
func TestCompressEchoOwnPeers(t *testing.T) {
	for _, o := range []CompressionOptions{{}, {ContextTakeover: true}, {MaxWindowBits: 9}, {ContextTakeover: true, MaxWindowBits: 8, MinSize: -1}} {
		t.Run("", func(t *testing.T) {
			srv, cli := zPair(t, &UpgradeOptions{Options: zOn(o)}, &DialOptions{Options: zOn(o)})
			if srv.z == nil || cli.z == nil {
				t.Fatalf("compression not agreed: server %v, client %v", srv.z != nil, cli.z != nil)
			}
			if srv.z.params != cli.z.params {
				t.Fatalf("server agreed %+v, client %+v", srv.z.params, cli.z.params)
			}
			var wg sync.WaitGroup
			wg.Go(func() { zEcho(srv) })
			r := rand.New(rand.NewPCG(1, 2))
			for _, n := range []int{0, 16, 300, 1024, 70000, 131072} {
				for _, typ := range []MessageType{Text, Binary} {
					msg := zJSON(r, n)
					if typ == Binary {
						msg = zRandom(r, n)
					}
					if err := zWrite(cli, typ, msg); err != nil {
						t.Fatal(err)
					}
					m, err := cli.ReadMessage(context.Background())
					if err != nil || m.Type != typ || !bytes.Equal(m.Data, msg) {
						t.Fatalf("echo of %d bytes: %v %d bytes, %v", n, m.Type, len(m.Data), err)
					}
				}
			}
			cli.Close()
			wg.Wait()
			t.Logf("%+v: server read %d compressed, sent %d; client sent %d, read %d", srv.z.params, srv.z.read, srv.z.sent, cli.z.sent, cli.z.read)
		})
	}
}
