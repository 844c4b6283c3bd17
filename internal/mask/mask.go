// Package mask XORs bytes with a repeating four-byte key: the masking of
// a WebSocket client's frames, done where bytes are copied.
package mask

import "encoding/binary"

// XOR applies key, repeating, to p in place; off is the offset of p[0]
// in the keyed stream. Applying it twice undoes it.
func XOR(p []byte, key [4]byte, off int) {
	if len(p) == 0 {
		return
	}
	// Rotate the key so that k[0] applies to p[0].
	var k [4]byte
	for i := range k {
		k[i] = key[(off+i)&3]
	}
	if len(p) >= 8 {
		k32 := binary.LittleEndian.Uint32(k[:])
		k64 := uint64(k32) | uint64(k32)<<32
		for len(p) >= 32 {
			binary.LittleEndian.PutUint64(p, binary.LittleEndian.Uint64(p)^k64)
			binary.LittleEndian.PutUint64(p[8:], binary.LittleEndian.Uint64(p[8:])^k64)
			binary.LittleEndian.PutUint64(p[16:], binary.LittleEndian.Uint64(p[16:])^k64)
			binary.LittleEndian.PutUint64(p[24:], binary.LittleEndian.Uint64(p[24:])^k64)
			p = p[32:]
		}
		for len(p) >= 8 {
			binary.LittleEndian.PutUint64(p, binary.LittleEndian.Uint64(p)^k64)
			p = p[8:]
		}
	}
	for i := range p {
		p[i] ^= k[i&3]
	}
}
