package suite

// SK and SKF payload protection (RFC 7296 Section 3.14, RFC 5282 for AES-GCM,
// RFC 7634 for ChaCha20-Poly1305, RFC 7383 Section 2.5 for fragments).
//
// A protected payload body is
//
//	IV | encrypt(inner payloads | Padding | Pad Length) | ICV
//
// and follows the associated data: the IKE header and the SK generic payload
// header, or for SKF the generic header plus the Fragment Number and Total
// Fragments fields. With AEAD transforms the associated data is the AAD
// (RFC 5282 Section 5.1); with AES-CBC the ICV is the truncated HMAC over the
// associated data, the IV and the ciphertext (RFC 7296 Section 3.14).

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/pqlab/pqlab/ike/wire"
)

// Errors returned by SK.Open. Neither says why beyond its class, so a
// caller can count drops without learning anything an attacker could use.
var (
	// ErrSKMalformed reports a body too short or misaligned for the cipher,
	// or a Pad Length larger than the decrypted data.
	ErrSKMalformed = errors.New("suite: malformed SK payload")
	// ErrSKIntegrity reports an ICV mismatch.
	ErrSKIntegrity = errors.New("suite: SK integrity check failed")
	// ErrIVExhausted reports that an SK has sealed as many messages as its
	// IV counter allows; the IKE SA must be rekeyed.
	ErrIVExhausted = errors.New("suite: SK IV counter exhausted")
)

// maxAEADMessages bounds the AEAD IV counter, which starts below 2^63, so
// that it can never wrap.
const maxAEADMessages = 1 << 63

// zeroPad supplies padding octets; RFC 7296 Section 3.14 lets the sender
// choose their value.
var zeroPad [aesBlockSize]byte

// SK protects and unprotects the SK/SKF payloads of one direction of an IKE
// SA with one set of keys (SK_ei/SK_ai or SK_er/SK_ar). Keep one SK for as
// long as its keys are in use: AEAD IVs come from its counter, and a second
// SK built from the same keys would start its own sequence.
//
// Open may be called concurrently. Seal reads the random reader for CBC IVs
// and so is safe for concurrent use only when that reader is.
type SK struct {
	encr      *encrAlg
	integ     *integAlg // nil with AEAD
	integKey  []byte
	block     cipher.Block // AES; nil for ChaCha20-Poly1305
	aead      cipher.AEAD  // nil for CBC; full 16-octet tag for AES-GCM-8
	truncated bool         // AES-GCM with 8-octet ICV
	salt      [aeadSaltSize]byte
	ivSize    int
	icvSize   int
	blockSize int
	rand      io.Reader
	ivStart   uint64
	ivUsed    atomic.Uint64
}

// NewSK builds the SK protection for one direction from an encryption
// transform (with its Key Length attribute in bits, 0 for ChaCha20-Poly1305),
// an integrity transform (IntegNone with AEAD), and the keys of that
// direction. AEAD keying material ends with the 4-octet salt.
//
// rand supplies the CBC IVs and, for AEAD transforms, the starting value of
// the IV counter (8 octets, read once here); the counter then increases by
// one for every sealed message, so IVs never repeat under a key.
func NewSK(encrID uint16, keyBits int, integID uint16, encrKey, integKey []byte, rand io.Reader) (*SK, error) {
	if rand == nil {
		return nil, errors.New("suite: NewSK needs a random reader")
	}
	e, err := encrByID(encrID)
	if err != nil {
		return nil, err
	}
	if err := e.checkKeyBits(keyBits); err != nil {
		return nil, err
	}
	if want := e.keySize(keyBits); len(encrKey) != want {
		return nil, fmt.Errorf("suite: encryption key is %d octets, want %d", len(encrKey), want)
	}
	c := &SK{encr: e, rand: rand}
	if e.aead {
		if integID != wire.IntegNone || len(integKey) != 0 {
			return nil, fmt.Errorf("suite: AEAD transform %d with integrity transform %d", encrID, integID)
		}
		key := encrKey[:len(encrKey)-aeadSaltSize]
		copy(c.salt[:], encrKey[len(key):])
		c.ivSize, c.icvSize, c.blockSize = aeadIVSize, e.icvSize, 1
		if e.id == wire.EncrChaCha20Poly1305 {
			c.aead, err = chacha20poly1305.New(key)
		} else {
			c.block, err = aes.NewCipher(key)
			if err == nil {
				switch e.icvSize {
				case gcmFullTagSize:
					c.aead, err = cipher.NewGCM(c.block)
				case 8:
					// crypto/cipher has no 8-octet tags: seal with the full
					// tag and truncate it (NIST SP 800-38D Section 5.2.1.2).
					c.aead, err = cipher.NewGCM(c.block)
					c.truncated = true
				default:
					c.aead, err = cipher.NewGCMWithTagSize(c.block, e.icvSize)
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("suite: %v", err)
		}
		var b [8]byte
		if _, err := io.ReadFull(rand, b[:]); err != nil {
			return nil, fmt.Errorf("suite: reading IV counter start: %w", err)
		}
		c.ivStart = binary.BigEndian.Uint64(b[:]) &^ (1 << 63)
		return c, nil
	}
	c.integ, err = integByID(integID)
	if err != nil {
		return nil, fmt.Errorf("suite: CBC needs an integrity transform: %w", err)
	}
	if len(integKey) != c.integ.keySize {
		return nil, fmt.Errorf("suite: integrity key is %d octets, want %d", len(integKey), c.integ.keySize)
	}
	c.integKey = slices.Clone(integKey)
	if c.block, err = aes.NewCipher(encrKey); err != nil {
		return nil, fmt.Errorf("suite: %v", err)
	}
	c.ivSize, c.icvSize, c.blockSize = aesBlockSize, c.integ.icvSize, aesBlockSize
	return c, nil
}

// IVSize returns the length of the IV that starts a protected body.
func (c *SK) IVSize() int { return c.ivSize }

// ICVSize returns the length of the ICV that ends a protected body.
func (c *SK) ICVSize() int { return c.icvSize }

// BlockSize returns the alignment of inner payloads, padding and Pad Length
// together: the cipher block size for CBC, 1 for AEAD transforms.
func (c *SK) BlockSize() int { return c.blockSize }

// padLen returns the padding Seal adds to n octets of inner payloads: none
// with AEAD, the minimum that block-aligns the data and Pad Length with CBC.
func (c *SK) padLen(n int) int {
	return (c.blockSize - (n+1)%c.blockSize) % c.blockSize
}

// SealedLen returns the length of the body (IV, encrypted data, ICV) that
// Seal produces for n octets of inner payloads.
func (c *SK) SealedLen(n int) int {
	return c.ivSize + n + c.padLen(n) + 1 + c.icvSize
}

// Overhead returns the octets that protection adds to n octets of inner
// payloads: IV, padding, Pad Length and ICV.
func (c *SK) Overhead(n int) int { return c.SealedLen(n) - n }

// MaxPlaintext returns the largest length of inner payloads whose sealed
// body fits in sealedLen octets, or -1 if none does. Use it to size
// fragments (RFC 7383 Section 2.5.1).
func (c *SK) MaxPlaintext(sealedLen int) int {
	room := sealedLen - c.ivSize - c.icvSize
	if room < 1 {
		return -1
	}
	room -= room % c.blockSize
	return room - 1
}

// Seal appends the protected body IV | ciphertext | ICV to header and
// returns the result, the complete message or fragment. header is the
// associated data: the IKE header and the SK generic payload header (for
// SKF also Fragment Number and Total Fragments), with the IKE header Length
// and the Payload Length already counting the body, whose length is
// SealedLen(len(plaintext)). plaintext is the inner payloads. Like append,
// Seal writes into header's spare capacity if it has any.
func (c *SK) Seal(header, plaintext []byte) ([]byte, error) {
	var iv [aesBlockSize]byte
	if c.aead != nil {
		n := c.ivUsed.Add(1)
		if n > maxAEADMessages {
			return nil, ErrIVExhausted
		}
		binary.BigEndian.PutUint64(iv[:], c.ivStart+n-1)
	} else if _, err := io.ReadFull(c.rand, iv[:c.ivSize]); err != nil {
		return nil, fmt.Errorf("suite: reading CBC IV: %w", err)
	}
	return c.seal(header, plaintext, iv[:c.ivSize], zeroPad[:c.padLen(len(plaintext))]), nil
}

// seal protects plaintext with the given IV and padding octets (without the
// Pad Length octet); len(plaintext)+len(padding)+1 must be block-aligned.
func (c *SK) seal(header, plaintext, iv, padding []byte) []byte {
	out := c.begin(header, iv, len(plaintext)+len(padding)+1)
	out = append(out, plaintext...)
	out = append(out, padding...)
	out = append(out, byte(len(padding)))
	return c.finish(out, len(header), len(header)+len(iv))
}

// begin appends iv to header with room for inner octets of data to encrypt
// and the ICV.
func (c *SK) begin(header, iv []byte, inner int) []byte {
	extra := c.icvSize
	if c.truncated {
		extra = gcmFullTagSize
	}
	return append(slices.Grow(header, c.ivSize+inner+extra), iv...)
}

// finish encrypts out[ivEnd:] in place, the inner payloads, padding and Pad
// Length, and appends the ICV; out[:hlen] is the associated data.
func (c *SK) finish(out []byte, hlen, ivEnd int) []byte {
	iv, hdr := out[hlen:ivEnd], out[:hlen]
	if c.aead == nil {
		cipher.NewCBCEncrypter(c.block, iv).CryptBlocks(out[ivEnd:], out[ivEnd:])
		return append(out, c.integ.mac(c.integKey, out)...)
	}
	var nonce [gcmNonceSize]byte
	copy(nonce[:], c.salt[:])
	copy(nonce[aeadSaltSize:], iv)
	out = c.aead.Seal(out[:ivEnd], nonce[:], out[ivEnd:], hdr)
	if c.truncated {
		out = out[:len(out)-gcmFullTagSize+c.icvSize]
	}
	return out
}

// Open verifies and decrypts a protected body (IV | ciphertext | ICV) that
// followed header, the associated data as described for Seal, and returns
// the inner payloads without padding. It checks the lengths and the ICV
// before it uses any decrypted octet, never panics and never modifies body.
func (c *SK) Open(header, body []byte) ([]byte, error) {
	minLen := c.ivSize + 1 + c.icvSize
	if c.aead == nil {
		minLen = c.ivSize + c.blockSize + c.icvSize
	}
	if len(body) < minLen {
		return nil, ErrSKMalformed
	}
	iv := body[:c.ivSize]
	var pt []byte
	switch {
	case c.truncated:
		ct := body[c.ivSize : len(body)-c.icvSize]
		var ctr [aesBlockSize]byte
		copy(ctr[:], c.salt[:])
		copy(ctr[aeadSaltSize:], iv)
		ctr[aesBlockSize-1] = 2 // inc32(J0) starts the GCM keystream (SP 800-38D Section 7.1)
		pt = make([]byte, len(ct), len(ct)+gcmFullTagSize)
		cipher.NewCTR(c.block, ctr[:]).XORKeyStream(pt, ct)
		full := c.aead.Seal(nil, ctr[:gcmNonceSize], pt, header)
		if subtle.ConstantTimeCompare(full[len(ct):len(ct)+c.icvSize], body[len(body)-c.icvSize:]) != 1 {
			clear(pt)
			return nil, ErrSKIntegrity
		}
	case c.aead != nil:
		var nonce [gcmNonceSize]byte
		copy(nonce[:], c.salt[:])
		copy(nonce[aeadSaltSize:], iv)
		var err error
		if pt, err = c.aead.Open(nil, nonce[:], body[c.ivSize:], header); err != nil {
			return nil, ErrSKIntegrity
		}
	default:
		ct := body[c.ivSize : len(body)-c.icvSize]
		if len(ct)%c.blockSize != 0 {
			return nil, ErrSKMalformed
		}
		mac := c.integ.mac(c.integKey, header, body[:len(body)-c.icvSize])
		if subtle.ConstantTimeCompare(mac, body[len(body)-c.icvSize:]) != 1 {
			return nil, ErrSKIntegrity
		}
		pt = make([]byte, len(ct))
		cipher.NewCBCDecrypter(c.block, iv).CryptBlocks(pt, ct)
	}
	pad := int(pt[len(pt)-1])
	if pad+1 > len(pt) {
		return nil, ErrSKMalformed
	}
	return pt[:len(pt)-1-pad], nil
}
