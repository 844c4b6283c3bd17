//go:build !race

package wsconn

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/pollws/pollws/asyncio"
)

// TestPreparedWriteAllocs: once a message has its form, writing it on a
// compressing connection with room allocates nothing, and neither does
// a message read back from its encoding into a reused PreparedMessage.
func TestPreparedWriteAllocs(t *testing.T) {
	srv, cli := zPair(t, &UpgradeOptions{Options: zOn(CompressionOptions{})}, &DialOptions{Options: zOn(CompressionOptions{})})
	go func() {
		for {
			if _, err := cli.ReadMessage(context.Background()); err != nil {
				return
			}
		}
	}()
	data := zJSON(rand.New(rand.NewPCG(71, 72)), 1024)
	m := NewPreparedMessage(Text, data)
	if err := m.Prepare(srv.PrepareKey()); err != nil {
		t.Fatal(err)
	}
	enc, err := m.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	var v PreparedMessage
	write := func(m *PreparedMessage) {
		if r, err := srv.PollWritePrepared(nil, m); err != nil {
			t.Fatal(err)
		} else if !r.Ready {
			if _, err := asyncio.BlockOn(context.Background(), srv.PollFlush); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, f := range map[string]func(){
		"shared":  func() { write(m) },
		"decoded": func() { v.ResetBinary(enc); write(&v) },
	} {
		if n := testing.AllocsPerRun(200, f); n != 0 {
			t.Errorf("%s: %v allocations per write, want 0", name, n)
		}
	}
	if got := m.Compressions() + v.Compressions(); got != 1 {
		t.Errorf("%d compressions, want the one Prepare made", got)
	}
}
