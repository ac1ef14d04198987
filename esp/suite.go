package esp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/pqlab/pqlab/ike/wire"
)

// Sizes of the fixed ESP fields and of the cryptographic parameters used by
// the supported transforms.
const (
	// SPISize and SeqSize are the ESP header fields (RFC 4303 Section 2).
	SPISize = 4
	SeqSize = 4
	// HeaderSize is SPI plus sequence number.
	HeaderSize = SPISize + SeqSize
	// TrailerSize is Pad Length plus Next Header (RFC 4303 Section 2.4).
	TrailerSize = 2
	// SaltSize is the implicit nonce part taken from the end of the
	// encryption key material (RFC 4106 Section 8.1, RFC 7634 Section 2).
	SaltSize = 4
	// AEADIVSize is the explicit IV of AES-GCM and ChaCha20-Poly1305
	// (RFC 4106 Section 3.1, RFC 7634 Section 2).
	AEADIVSize = 8
	// AEADICVSize is the ICV of AES-GCM-16 and ChaCha20-Poly1305.
	AEADICVSize = 16
	// CBCIVSize is the IV of AES-CBC (RFC 3602 Section 2.1).
	CBCIVSize = aes.BlockSize
	// MaxPadding is the largest padding the Pad Length octet can express.
	MaxPadding = 255

	aeadAlign  = 4 // RFC 4303 Section 2.4: 4-octet alignment
	nonceSize  = SaltSize + AEADIVSize
	maxICVSize = 32
	maxIVSize  = CBCIVSize
)

// Suite is the set of transforms negotiated for a Child SA, named by the
// IKEv2 transform IDs of github.com/pqlab/pqlab/ike/wire.
//
// Supported: wire.EncrAESGCM16 with KeyBits 128 or 256 (RFC 4106),
// wire.EncrChaCha20Poly1305 (RFC 7634, KeyBits 0 or 256), and wire.EncrAESCBC
// with KeyBits 128, 192 or 256 (RFC 3602) combined with
// wire.IntegHMACSHA2256128, wire.IntegHMACSHA2384192 or
// wire.IntegHMACSHA2512256 (RFC 4868). AEAD transforms take
// wire.IntegNone.
type Suite struct {
	Encr    uint16 // Transform Type 1 ID
	KeyBits int    // Key Length attribute; 0 for ChaCha20-Poly1305
	Integ   uint16 // Transform Type 3 ID; wire.IntegNone with AEAD
	ESN     bool   // Transform Type 5: extended sequence numbers (RFC 4304)
}

// String names the suite the way strongSwan proposals do.
func (s Suite) String() string {
	var b string
	switch s.Encr {
	case wire.EncrAESGCM16:
		b = fmt.Sprintf("aes%dgcm16", s.KeyBits)
	case wire.EncrChaCha20Poly1305:
		b = "chacha20poly1305"
	case wire.EncrAESCBC:
		b = fmt.Sprintf("aes%d", s.KeyBits)
	default:
		b = fmt.Sprintf("encr%d-%d", s.Encr, s.KeyBits)
	}
	switch s.Integ {
	case wire.IntegNone:
	case wire.IntegHMACSHA2256128:
		b += "-sha256"
	case wire.IntegHMACSHA2384192:
		b += "-sha384"
	case wire.IntegHMACSHA2512256:
		b += "-sha512"
	default:
		b += fmt.Sprintf("-integ%d", s.Integ)
	}
	if s.ESN {
		b += "-esn"
	}
	return b
}

// AEAD reports whether the suite uses a combined-mode algorithm.
func (s Suite) AEAD() bool {
	return s.Encr == wire.EncrAESGCM16 || s.Encr == wire.EncrChaCha20Poly1305
}

// KeyLengths returns the lengths of the encryption key material (including
// the 4-octet salt of AES-GCM and ChaCha20-Poly1305) and of the integrity
// key that each direction of a Child SA takes from KEYMAT.
// See RFC 4106 Section 8.1, RFC 7634 Section 4, RFC 4868 Section 2.1.1.
func (s Suite) KeyLengths() (encr, integ int, err error) {
	switch s.Encr {
	case wire.EncrAESGCM16:
		if s.KeyBits != 128 && s.KeyBits != 256 {
			return 0, 0, fmt.Errorf("esp: AES-GCM key length %d not supported", s.KeyBits)
		}
		encr = s.KeyBits/8 + SaltSize
	case wire.EncrChaCha20Poly1305:
		if s.KeyBits != 0 && s.KeyBits != 256 {
			return 0, 0, fmt.Errorf("esp: ChaCha20-Poly1305 key length %d not supported", s.KeyBits)
		}
		encr = chacha20poly1305.KeySize + SaltSize
	case wire.EncrAESCBC:
		if s.KeyBits != 128 && s.KeyBits != 192 && s.KeyBits != 256 {
			return 0, 0, fmt.Errorf("esp: AES-CBC key length %d not supported", s.KeyBits)
		}
		encr = s.KeyBits / 8
	default:
		return 0, 0, fmt.Errorf("esp: encryption transform %d not supported", s.Encr)
	}
	if s.AEAD() {
		if s.Integ != wire.IntegNone {
			return 0, 0, errors.New("esp: an AEAD transform takes no integrity transform")
		}
		return encr, 0, nil
	}
	_, keyLen, _, err := integParams(s.Integ)
	if err != nil {
		return 0, 0, err
	}
	return encr, keyLen, nil
}

// integParams returns the hash, key length and ICV length of an RFC 4868
// integrity transform.
func integParams(id uint16) (func() hash.Hash, int, int, error) {
	switch id {
	case wire.IntegHMACSHA2256128:
		return sha256.New, 32, 16, nil
	case wire.IntegHMACSHA2384192:
		return sha512.New384, 48, 24, nil
	case wire.IntegHMACSHA2512256:
		return sha512.New, 64, 32, nil
	case wire.IntegNone:
		return nil, 0, 0, errors.New("esp: AES-CBC needs an integrity transform")
	}
	return nil, 0, 0, fmt.Errorf("esp: integrity transform %d not supported", id)
}

// Keys is the key material of one direction of a Child SA.
type Keys struct {
	// Encr is the encryption key; for AES-GCM and ChaCha20-Poly1305 it
	// ends with the 4-octet salt.
	Encr []byte
	// Integ is the integrity key (empty with AEAD transforms).
	Integ []byte
}

// SplitKEYMAT splits the KEYMAT of a Child SA into the keys of the two
// directions. RFC 7296 Section 2.17: keys for the initiator-to-responder
// direction come first, and in each direction the encryption key comes
// before the integrity key. The returned slices alias keymat.
func SplitKEYMAT(keymat []byte, s Suite) (initToResp, respToInit Keys, err error) {
	el, il, err := s.KeyLengths()
	if err != nil {
		return Keys{}, Keys{}, err
	}
	if len(keymat) < 2*(el+il) {
		return Keys{}, Keys{}, fmt.Errorf("esp: KEYMAT has %d octets, %s needs %d", len(keymat), s, 2*(el+il))
	}
	k := keymat
	initToResp = Keys{Encr: k[:el:el], Integ: k[el : el+il : el+il]}
	k = k[el+il:]
	respToInit = Keys{Encr: k[:el:el], Integ: k[el : el+il : el+il]}
	return initToResp, respToInit, nil
}

// transform is the keyed cryptographic state of one SA.
type transform struct {
	suite  Suite
	ivLen  int
	icvLen int
	align  int // block size the trailer aligns to

	// AEAD transforms: stateless, safe for concurrent use.
	aead cipher.AEAD
	salt [SaltSize]byte

	// Nonce and AAD scratch for callers whose buffers lack spare
	// capacity (see scratch).
	busy atomic.Bool
	own  aeadScratch

	// AES-CBC + HMAC: stateful, guarded by the owning SA's cryptoMu.
	block cipher.Block
	cbc   cipher.BlockMode // encrypter or decrypter with SetIV
	mac   hash.Hash
	sum   [64]byte
	hi    [4]byte
}

const scratchSize = nonceSize + 12

type aeadScratch [scratchSize]byte

var scratchPool = sync.Pool{New: func() any { return new(aeadScratch) }}

type scratchKind uint8

const (
	scratchSpare scratchKind = iota
	scratchOwn
	scratchPooled
)

// scratchBuf holds the AEAD nonce and additional data during one call.
// Slices handed to the cipher.AEAD interface escape to the heap, so a stack
// array would cost an allocation per packet. The scratch comes from the
// caller's spare buffer capacity when there is room (append-style APIs may
// write there; the zero kind, scratchSpare), else from the transform's own
// buffer (try-lock), else from a pool.
type scratchBuf struct {
	b    []byte
	kind scratchKind
}

// scratch returns spare as the scratch when it has room (the caller has
// checked that it may be written), else the transform's own scratch
// (try-lock) or a pooled one; release gives those back.
func (t *transform) scratch(spare []byte) scratchBuf {
	if len(spare) >= scratchSize {
		return scratchBuf{b: spare[:scratchSize]}
	}
	return t.scratchSlow()
}

func (t *transform) scratchSlow() scratchBuf {
	if t.busy.CompareAndSwap(false, true) {
		return scratchBuf{t.own[:], scratchOwn}
	}
	return scratchBuf{scratchPool.Get().(*aeadScratch)[:], scratchPooled}
}

func (t *transform) release(s scratchBuf) {
	if s.kind != scratchSpare {
		t.releaseSlow(s)
	}
}

func (t *transform) releaseSlow(s scratchBuf) {
	switch s.kind {
	case scratchOwn:
		t.busy.Store(false)
	case scratchPooled:
		scratchPool.Put((*aeadScratch)(s.b))
	}
}

// nonceAAD fills the scratch with salt|IV and returns the additional
// data: SPI and sequence number, with the high-order 32 bits in between
// when ESN is on (RFC 4106 Sections 4 and 5, RFC 7634 Section 2.1).
// Without ESN the additional data is the packet's first 8 octets as they
// stand, so hdr (SPI and sequence number, already written) is returned
// instead of a copy.
func (s scratchBuf) nonceAAD(salt *[SaltSize]byte, iv, hdr []byte, seq uint64, esn bool) (nonce, aad []byte) {
	nonce = s.b[:nonceSize]
	copy(nonce[:SaltSize], salt[:])
	copy(nonce[SaltSize:], iv)
	if !esn {
		return nonce, hdr[:HeaderSize]
	}
	aad = s.b[nonceSize:scratchSize]
	copy(aad[0:4], hdr[0:4])
	binary.BigEndian.PutUint64(aad[4:12], seq)
	return nonce, aad
}

type ivSetter interface{ SetIV([]byte) }

func newTransform(s Suite, k Keys, encrypt bool) (*transform, error) {
	el, il, err := s.KeyLengths()
	if err != nil {
		return nil, err
	}
	if len(k.Encr) != el {
		return nil, fmt.Errorf("esp: %s encryption key must be %d octets, got %d", s, el, len(k.Encr))
	}
	if len(k.Integ) != il {
		return nil, fmt.Errorf("esp: %s integrity key must be %d octets, got %d", s, il, len(k.Integ))
	}
	t := &transform{suite: s}
	switch s.Encr {
	case wire.EncrAESGCM16:
		b, err := aes.NewCipher(k.Encr[:el-SaltSize])
		if err != nil {
			return nil, fmt.Errorf("esp: %w", err)
		}
		t.aead, err = cipher.NewGCM(b)
		if err != nil {
			return nil, fmt.Errorf("esp: %w", err)
		}
	case wire.EncrChaCha20Poly1305:
		t.aead, err = chacha20poly1305.New(k.Encr[:el-SaltSize])
		if err != nil {
			return nil, fmt.Errorf("esp: %w", err)
		}
	case wire.EncrAESCBC:
		t.block, err = aes.NewCipher(k.Encr)
		if err != nil {
			return nil, fmt.Errorf("esp: %w", err)
		}
		var zero [CBCIVSize]byte
		if encrypt {
			t.cbc = cipher.NewCBCEncrypter(t.block, zero[:])
		} else {
			t.cbc = cipher.NewCBCDecrypter(t.block, zero[:])
		}
		h, _, icv, _ := integParams(s.Integ)
		t.mac = hmac.New(h, k.Integ)
		t.icvLen = icv
		t.ivLen = CBCIVSize
		t.align = aes.BlockSize
		return t, nil
	}
	copy(t.salt[:], k.Encr[el-SaltSize:])
	t.ivLen = AEADIVSize
	t.icvLen = AEADICVSize
	t.align = aeadAlign
	return t, nil
}

// setIV sets the CBC IV, reusing the BlockMode when the standard library
// allows it (it does for crypto/aes) so that no allocation happens.
func (t *transform) setIV(iv []byte, encrypt bool) {
	if s, ok := t.cbc.(ivSetter); ok {
		s.SetIV(iv)
		return
	}
	if encrypt {
		t.cbc = cipher.NewCBCEncrypter(t.block, iv)
	} else {
		t.cbc = cipher.NewCBCDecrypter(t.block, iv)
	}
}

// Overhead returns the ESP header, IV, minimum trailer and ICV octets a
// suite adds to a payload, not counting padding.
func (s Suite) Overhead() int {
	if s.AEAD() {
		return HeaderSize + AEADIVSize + TrailerSize + AEADICVSize
	}
	_, _, icv, err := integParams(s.Integ)
	if err != nil {
		return 0
	}
	return HeaderSize + CBCIVSize + TrailerSize + icv
}

// MaxOverhead returns the most octets a suite adds to a payload with
// minimal padding (header, IV, trailer, padding up to the block size, ICV).
func (s Suite) MaxOverhead() int {
	if s.AEAD() {
		return s.Overhead() + aeadAlign - 1
	}
	return s.Overhead() + aes.BlockSize - 1
}
