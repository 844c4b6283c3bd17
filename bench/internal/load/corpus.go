package load

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// MinJSONSize is the smallest message [JSONMessages] makes: room for its
// header fields, one item and a few words of its note.
const MinJSONSize = 512

// deflateTail is the empty stored block that ends a sync flush, which a
// sender strips from each compressed message (RFC 7692 section 7.2.1).
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff}

// Corpus is a set of messages that a loop sends in turn instead of
// stamped ones ([EchoOptions].Corpus), each also compressed on its own,
// as permessage-deflate without context takeover sends it. A Corpus is
// read-only once made: safe for use by multiple goroutines.
type Corpus struct {
	msgs [][]byte
	// deflated holds each message compressed with compress/flate at its
	// default level (zlib's, which browsers use), the sync flush's tail
	// stripped.
	deflated [][]byte
}

// NewCorpus compresses msgs, which the Corpus keeps, each on its own.
func NewCorpus(msgs [][]byte) (*Corpus, error) {
	if len(msgs) == 0 {
		return nil, errors.New("load: an empty corpus")
	}
	cp := &Corpus{msgs: msgs}
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, flate.DefaultCompression)
	if err != nil {
		return nil, err
	}
	for i, m := range msgs {
		b.Reset()
		w.Reset(&b)
		if _, err := w.Write(m); err != nil {
			return nil, err
		}
		if err := w.Flush(); err != nil {
			return nil, err
		}
		d, ok := bytes.CutSuffix(b.Bytes(), deflateTail)
		if !ok {
			return nil, fmt.Errorf("load: corpus message %d: a sync flush without its tail", i)
		}
		cp.deflated = append(cp.deflated, bytes.Clone(d))
	}
	return cp, nil
}

// Len is how many messages the corpus holds.
func (cp *Corpus) Len() int { return len(cp.msgs) }

// Message returns message i, which the caller must not modify.
func (cp *Corpus) Message(i int) []byte { return cp.msgs[i] }

// Deflated returns message i compressed as a permessage-deflate payload,
// which the caller must not modify.
func (cp *Corpus) Deflated(i int) []byte { return cp.deflated[i] }

// Size is the total size in bytes of the messages, plain and compressed.
func (cp *Corpus) Size() (plain, deflated int) {
	for i := range cp.msgs {
		plain += len(cp.msgs[i])
		deflated += len(cp.deflated[i])
	}
	return plain, deflated
}

// JSONMessages returns n distinct messages of exactly size bytes (at
// least [MinJSONSize]), made from seed the same way every time: JSON
// events of a shop (an order with its customer, its items and a note in
// words), as an application's WebSocket traffic carries them. They have
// the redundancy of real JSON (the same keys in every message, values
// from small vocabularies, digits) and no more: DEFLATE takes each, on
// its own, to about a third of its size.
func JSONMessages(n, size int, seed uint64) ([][]byte, error) {
	if size < MinJSONSize {
		return nil, fmt.Errorf("%w: a JSON message of %d bytes, below %d", ErrSize, size, MinJSONSize)
	}
	if n < 1 {
		return nil, fmt.Errorf("load: %d JSON messages", n)
	}
	rng := rand.New(rand.NewPCG(seed, 0x6a736f6e))
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = jsonMessage(rng, i, size)
	}
	return msgs, nil
}

var (
	jsonEvents    = []string{"order.created", "order.paid", "order.shipped", "cart.updated", "order.refunded"}
	jsonFirst     = []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Niklaus", "Radia", "John"}
	jsonLast      = []string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton", "Wirth", "Perlman", "Backus"}
	jsonCountries = []string{"DE", "FR", "GB", "US", "JP", "BR", "IN", "NL", "SE", "ES"}
	jsonCurrency  = []string{"EUR", "USD", "GBP", "JPY"}
	jsonProducts  = []string{"Wireless Mouse", "USB-C Cable", "Mechanical Keyboard", "27in Monitor", "Laptop Stand", "Noise Cancelling Headphones", "Webcam HD", "Desk Lamp", "Ergonomic Chair", "Portable SSD 1TB"}
	jsonTags      = []string{"gift", "priority", "fragile", "bulk", "promo", "returning"}
	jsonWords     = []string{"please", "deliver", "to", "the", "back", "door", "before", "noon", "ring", "twice", "leave", "with", "neighbour", "call", "on", "arrival", "thanks", "office", "reception", "floor"}
)

// jsonMessage returns message i: header fields, as many items as fit,
// then a note of words that makes it exactly size bytes.
func jsonMessage(rng *rand.Rand, i, size int) []byte {
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	price := func() string { return strconv.FormatFloat(float64(rng.IntN(50000))/100+0.99, 'f', 2, 64) }
	var id [8]byte
	binary.LittleEndian.PutUint64(id[:], rng.Uint64())
	first, last := pick(jsonFirst), pick(jsonLast)
	b := fmt.Appendf(nil, `{"id":"evt_%x","seq":%d,"type":%q,"ts":"2026-%02d-%02dT%02d:%02d:%02d.%03dZ",`,
		id, i, pick(jsonEvents), 1+rng.IntN(12), 1+rng.IntN(28), rng.IntN(24), rng.IntN(60), rng.IntN(60), rng.IntN(1000))
	b = fmt.Appendf(b, `"customer":{"id":%d,"name":"%s %s","email":"%s.%s@example.com","country":%q,"premium":%t},"currency":%q,"items":[`,
		10000+rng.IntN(90000), first, last, strings.ToLower(first), strings.ToLower(last), pick(jsonCountries), rng.IntN(3) == 0, pick(jsonCurrency))
	const noteOpen, end = `],"note":"`, `"}`
	for k := 0; ; k++ {
		item := fmt.Appendf(nil, `{"sku":"SKU-%05d","title":%q,"qty":%d,"price":%s,"tags":[%q,%q]}`,
			rng.IntN(100000), pick(jsonProducts), 1+rng.IntN(5), price(), pick(jsonTags), pick(jsonTags))
		if k > 0 {
			item = append([]byte{','}, item...)
		}
		// Keep room for the note: at least a few words of it.
		if k > 0 && len(b)+len(item)+len(noteOpen)+len(end)+24 > size {
			break
		}
		b = append(b, item...)
	}
	b = append(b, noteOpen...)
	for room := size - len(b) - len(end); room > 0; room = size - len(b) - len(end) {
		w := pick(jsonWords)
		if len(b) > 0 && b[len(b)-1] != '"' {
			w = " " + w
		}
		b = append(b, w[:min(len(w), room)]...)
	}
	return append(b, end...)
}
