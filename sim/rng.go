package sim

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"sync"
)

// DeriveSeed derives an independent 64-bit seed for a named component from the
// run seed. Seeds depend only on (seed, label), so adding a link or a node does
// not change the random streams of the others.
func DeriveSeed(seed uint64, label string) uint64 {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seed)
	h := sha256.New()
	h.Write(b[:])
	h.Write([]byte(label))
	sum := h.Sum(nil)
	return binary.BigEndian.Uint64(sum[:8])
}

// NewRand returns a PCG generator seeded from (seed, label). It is not safe
// for concurrent use.
func NewRand(seed uint64, label string) *rand.Rand {
	d := DeriveSeed(seed, label)
	return rand.New(rand.NewPCG(d, DeriveSeed(d, "pcg-stream")))
}

// chachaSeed derives a 32-byte ChaCha8 seed from (seed, label).
func chachaSeed(seed uint64, label string) [32]byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seed)
	h := sha256.New()
	h.Write(b[:])
	h.Write([]byte("chacha8:"))
	h.Write([]byte(label))
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// DeterministicReader is a seeded, concurrency-safe io.Reader producing a
// ChaCha8 key stream. It stands in for crypto/rand in simulated nodes (the
// gVisor stack's SecureRNG, and the IKE engine's randomness) so that runs are
// reproducible. It is not a source of secrets.
type DeterministicReader struct {
	mu sync.Mutex
	c  *rand.ChaCha8
}

// NewDeterministicReader returns a reader seeded from (seed, label).
func NewDeterministicReader(seed uint64, label string) *DeterministicReader {
	return &DeterministicReader{c: rand.NewChaCha8(chachaSeed(seed, label))}
}

// Read fills p and never fails.
func (r *DeterministicReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.c.Read(p)
}

// lockedSource is a math/rand (v1) Source safe for concurrent use, as gVisor's
// stack.Options.RandSource requires.
type lockedSource struct {
	mu sync.Mutex
	r  *rand.PCG
}

func newLockedSource(seed uint64, label string) *lockedSource {
	d := DeriveSeed(seed, label)
	return &lockedSource{r: rand.NewPCG(d, DeriveSeed(d, "pcg-stream"))}
}

// Int63 implements math/rand.Source.
func (s *lockedSource) Int63() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(s.r.Uint64() >> 1)
}

// Uint64 implements math/rand.Source64.
func (s *lockedSource) Uint64() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.r.Uint64()
}

// Seed implements math/rand.Source.
func (s *lockedSource) Seed(seed int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.r.Seed(uint64(seed), DeriveSeed(uint64(seed), "pcg-stream"))
}
