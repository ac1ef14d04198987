package ike

import "errors"

// Reassembly bounds (RFC 7383 Section 2.6 leaves them to the implementation).
const (
	// DefaultMaxFragments bounds the Total Fragments a message may announce.
	DefaultMaxFragments = 128
	// DefaultMaxReassembledSize bounds the sum of the decrypted fragment
	// contents of one message.
	DefaultMaxReassembledSize = 64 * 1024
)

// Reassembly errors. They are reasons to drop one fragment, never to touch
// the IKE SA.
var (
	errFragNumber   = errors.New("ike: fragment number out of range")
	errFragTotal    = errors.New("ike: fragment total above limit")
	errFragStale    = errors.New("ike: fragment of an older fragmentation")
	errFragDup      = errors.New("ike: duplicate fragment")
	errFragTooLarge = errors.New("ike: reassembled message too large")
	errFragFirstNP  = errors.New("ike: first fragment without next payload")
)

// reassembly collects the decrypted contents of the SKF fragments of one
// message (RFC 7383 Section 2.6). Fragments are authenticated and decrypted
// before they are added, so only a peer holding the SA keys can fill it; it
// is still bounded in count and bytes. The zero value is empty.
type reassembly struct {
	mid         uint32
	active      bool
	total       uint16
	got         uint16
	size        int
	nextPayload uint8 // from fragment 1
	parts       [][]byte
}

// reset drops whatever is buffered.
func (r *reassembly) reset() { *r = reassembly{} }

// add stores the content of fragment num of total for message mid and
// reports whether the message is complete. When it is, the returned slice is
// the concatenated plaintext of the inner payloads and nextPayload is the
// type of the first one. maxFrags and maxSize are the bounds.
//
// RFC 7383 Section 2.6: a fragment announcing more fragments than the
// fragments already buffered for the same message restarts reassembly (the
// sender re-fragmented a retransmission); one announcing fewer is dropped.
func (r *reassembly) add(mid uint32, num, total uint16, nextPayload uint8, content []byte, maxFrags, maxSize int) (msg []byte, first uint8, done bool, err error) {
	if total == 0 || num == 0 || num > total {
		return nil, 0, false, errFragNumber
	}
	if int(total) > maxFrags {
		return nil, 0, false, errFragTotal
	}
	if num == 1 && nextPayload == 0 {
		return nil, 0, false, errFragFirstNP
	}
	if !r.active || r.mid != mid {
		r.start(mid, total)
	} else if total > r.total {
		r.start(mid, total)
	} else if total < r.total {
		return nil, 0, false, errFragStale
	}
	if r.parts[num-1] != nil {
		return nil, 0, false, errFragDup
	}
	if r.size+len(content) > maxSize {
		r.reset()
		return nil, 0, false, errFragTooLarge
	}
	c := make([]byte, len(content), len(content)+1) // +1: never nil for empty content
	copy(c, content)
	r.parts[num-1] = c
	r.size += len(content)
	r.got++
	if num == 1 {
		r.nextPayload = nextPayload
	}
	if r.got < r.total {
		return nil, 0, false, nil
	}
	out := make([]byte, 0, r.size)
	for _, p := range r.parts {
		out = append(out, p...)
	}
	first = r.nextPayload
	r.reset()
	return out, first, true, nil
}

func (r *reassembly) start(mid uint32, total uint16) {
	*r = reassembly{mid: mid, active: true, total: total, parts: make([][]byte, total)}
}
