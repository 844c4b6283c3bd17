package gorillaws

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// preparedFrame returns pm's frame as a server sends it, uncompressed.
// gorilla makes that frame once per prepared message and keeps it; the
// frame is taken from a gorilla connection over a connection that only
// records what is written to it, so it is pm's own and never changes.
func preparedFrame(pm *websocket.PreparedMessage) ([]byte, error) {
	f, err := getFramer()
	if err != nil {
		return nil, err
	}
	defer framers.Put(f)
	f.rec.frame = nil
	if err := f.c.WritePreparedMessage(pm); err != nil {
		return nil, err
	}
	frame := f.rec.frame
	f.rec.frame = nil
	if len(frame) < 2 {
		return nil, errors.New("gorillaws: prepared message gave no frame")
	}
	return frame, nil
}

// framer is a server-side gorilla connection over a recorder.
type framer struct {
	c   *websocket.Conn
	rec *recorder
}

var framers sync.Pool

func getFramer() (*framer, error) {
	if f, ok := framers.Get().(*framer); ok {
		return f, nil
	}
	rec := new(recorder)
	req := &http.Request{Method: http.MethodGet, Header: http.Header{
		"Connection":            {"Upgrade"},
		"Upgrade":               {"websocket"},
		"Sec-Websocket-Version": {"13"},
		"Sec-Websocket-Key":     {"AAAAAAAAAAAAAAAAAAAAAA=="},
	}}
	u := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	c, err := u.Upgrade(recorderResponse{rec}, req, nil)
	if err != nil {
		return nil, err
	}
	return &framer{c: c, rec: rec}, nil
}

// recorder is a net.Conn that keeps what is written to it and reads
// nothing.
type recorder struct {
	frame []byte
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.frame == nil {
		r.frame = p // gorilla hands a prepared frame over whole, in one write
	} else {
		r.frame = append(slices.Clip(r.frame), p...)
	}
	return len(p), nil
}

func (r *recorder) Read([]byte) (int, error)           { return 0, io.EOF }
func (r *recorder) Close() error                       { return nil }
func (r *recorder) LocalAddr() net.Addr                { return recorderAddr{} }
func (r *recorder) RemoteAddr() net.Addr               { return recorderAddr{} }
func (r *recorder) SetDeadline(time.Time) error        { return nil }
func (r *recorder) SetReadDeadline(time.Time) error    { return nil }
func (r *recorder) SetWriteDeadline(t time.Time) error { return nil }

type recorderAddr struct{}

func (recorderAddr) Network() string { return "recorder" }
func (recorderAddr) String() string  { return "recorder" }

// recorderResponse is the ResponseWriter gorilla's Upgrader needs to make
// a connection over a recorder.
type recorderResponse struct{ rec *recorder }

func (r recorderResponse) Header() http.Header         { return http.Header{} }
func (r recorderResponse) Write(p []byte) (int, error) { return len(p), nil }
func (r recorderResponse) WriteHeader(int)             {}
func (r recorderResponse) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return r.rec, bufio.NewReadWriter(bufio.NewReader(r.rec), bufio.NewWriter(r.rec)), nil
}
