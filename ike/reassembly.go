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

// maxReassemblies bounds the messages of one IKE SA reassembled at once:
// with a message-ID window above one, fragments of several requests (and of
// responses to ours) may arrive interleaved.
const maxReassemblies = 4

// reassemblies holds the messages of one IKE SA being reassembled, each
// named by its message ID and whether it is a response (a request and a
// response may share a message ID), at most maxReassemblies; a fragment of
// another message then evicts the one started first. Memory is bounded by
// maxReassemblies times the reassembled size limit.
type reassemblies struct {
	bufs []reassembly // in the order they were started
}

// add stores a fragment of the message (mid, response); see reassembly.add.
func (rs *reassemblies) add(mid uint32, response bool, num, total uint16, nextPayload uint8, content []byte, maxFrags, maxSize int) (msg []byte, first uint8, done bool, err error) {
	i := rs.find(mid, response)
	if i < 0 {
		if len(rs.bufs) == maxReassemblies {
			rs.remove(0)
		}
		rs.bufs = append(rs.bufs, reassembly{mid: mid, response: response})
		i = len(rs.bufs) - 1
	}
	r := &rs.bufs[i]
	msg, first, done, err = r.add(mid, num, total, nextPayload, content, maxFrags, maxSize)
	if !r.active {
		rs.remove(i) // complete, or dropped for its size
	}
	return msg, first, done, err
}

// drop forgets the message (mid, response), if it is being reassembled.
func (rs *reassemblies) drop(mid uint32, response bool) {
	if i := rs.find(mid, response); i >= 0 {
		rs.remove(i)
	}
}

func (rs *reassemblies) find(mid uint32, response bool) int {
	for i := range rs.bufs {
		if rs.bufs[i].mid == mid && rs.bufs[i].response == response {
			return i
		}
	}
	return -1
}

func (rs *reassemblies) remove(i int) {
	copy(rs.bufs[i:], rs.bufs[i+1:])
	rs.bufs[len(rs.bufs)-1] = reassembly{}
	rs.bufs = rs.bufs[:len(rs.bufs)-1]
}

// reassembly collects the decrypted contents of the SKF fragments of one
// message (RFC 7383 Section 2.6). Fragments are authenticated and decrypted
// before they are added, so only a peer holding the SA keys can fill it; it
// is still bounded in count and bytes. The zero value is empty.
type reassembly struct {
	mid         uint32
	response    bool // set by reassemblies, kept by reset
	active      bool
	total       uint16
	got         uint16
	size        int
	nextPayload uint8 // from fragment 1
	parts       [][]byte
}

// reset drops whatever is buffered.
func (r *reassembly) reset() { *r = reassembly{mid: r.mid, response: r.response} }

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
	*r = reassembly{mid: mid, response: r.response, active: true, total: total, parts: make([][]byte, total)}
}
