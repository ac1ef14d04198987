package suite

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"

	"github.com/pqlab/pqlab/ike/wire"
)

// MaxPRFPlusBlocks is the number of PRF output blocks prf+ can produce: the
// block counter is a single octet that starts at 0x01 (RFC 7296 Section 2.13).
const MaxPRFPlusBlocks = 255

// ErrPRFPlusTooLong is returned when more keying material is requested from
// prf+ than 255 PRF blocks can provide (RFC 7296 Section 2.13).
var ErrPRFPlusTooLong = errors.New("suite: prf+ output longer than 255 PRF blocks")

// PRF is an IKEv2 pseudorandom function (Transform Type 2). All PRFs here
// are HMACs, which accept keys of any length; their preferred key length
// equals their output length (RFC 7296 Section 2.13, RFC 4868 Section 2.1.2).
// The values returned by PRFByID are shared and immutable.
type PRF struct {
	id   uint16
	name string
	hash func() hash.Hash
	size int
}

var prfTable = []*PRF{
	{wire.PRFHMACSHA1, "prfsha1", sha1.New, sha1.Size},
	{wire.PRFHMACSHA2256, "prfsha256", sha256.New, sha256.Size},
	{wire.PRFHMACSHA2384, "prfsha384", sha512.New384, sha512.Size384},
	{wire.PRFHMACSHA2512, "prfsha512", sha512.New, sha512.Size},
}

// PRFByID returns the PRF with the given Transform Type 2 ID.
func PRFByID(id uint16) (*PRF, error) {
	for _, p := range prfTable {
		if p.id == id {
			return p, nil
		}
	}
	return nil, fmt.Errorf("suite: unsupported PRF transform %d", id)
}

// ID returns the Transform Type 2 ID.
func (p *PRF) ID() uint16 { return p.id }

// Size returns the output length in octets, which is also the length of
// SK_d, SK_pi and SK_pr (RFC 7296 Section 2.14).
func (p *PRF) Size() int { return p.size }

// String returns the strongSwan name of the PRF, for example "prfsha256".
func (p *PRF) String() string { return p.name }

// Sum returns prf(key, data[0] | data[1] | ...).
func (p *PRF) Sum(key []byte, data ...[]byte) []byte {
	m := hmac.New(p.hash, key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(make([]byte, 0, p.size))
}

// Plus returns the first n octets of prf+(key, seed) (RFC 7296 Section 2.13):
//
//	prf+ (K,S) = T1 | T2 | T3 | T4 | ...
//	T1 = prf (K, S | 0x01)
//	T2 = prf (K, T1 | S | 0x02)
//
// It fails with ErrPRFPlusTooLong when n exceeds 255 blocks.
func (p *PRF) Plus(key, seed []byte, n int) ([]byte, error) {
	if n < 0 {
		return nil, fmt.Errorf("suite: negative prf+ length %d", n)
	}
	if n > MaxPRFPlusBlocks*p.size {
		return nil, fmt.Errorf("%w (%d octets requested, %d available)", ErrPRFPlusTooLong, n, MaxPRFPlusBlocks*p.size)
	}
	out := make([]byte, 0, (n+p.size-1)/p.size*p.size)
	m := hmac.New(p.hash, key)
	var t []byte
	for i := 1; len(out) < n; i++ {
		m.Reset()
		m.Write(t)
		m.Write(seed)
		m.Write([]byte{byte(i)})
		t = m.Sum(out)[len(out):]
		out = out[:len(out)+p.size]
	}
	return out[:n], nil
}
