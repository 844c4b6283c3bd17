package fanout

import "strconv"

// Notice is the message that tells a subscriber what it missed, sent as
// JSON text before the first message after the gap:
//
//	{"type":"missed","frames":12,"bytes":12288}
//
// A subscriber misses messages when the hub overtook it (it fell more than
// the topic's ring behind) or when the bus lost messages of another
// instance on their way here; one notice may count both.
type Notice struct {
	Type   string `json:"type"`   // "missed"
	Frames uint64 `json:"frames"` // messages missed
	Bytes  uint64 `json:"bytes"`  // their payload bytes
}

// appendNotice appends the notice of frames messages (bytes payload bytes)
// missed to b.
func appendNotice(b []byte, frames, bytes uint64) []byte {
	b = append(b, `{"type":"missed","frames":`...)
	b = strconv.AppendUint(b, frames, 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendUint(b, bytes, 10)
	return append(b, '}')
}
