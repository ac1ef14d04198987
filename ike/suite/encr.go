package suite

import (
	"fmt"

	"github.com/pqlab/pqlab/ike/wire"
)

// Sizes of the SK payload transforms.
const (
	aesBlockSize    = 16 // AES block, and the CBC IV (RFC 3602 Section 3)
	aeadIVSize      = 8  // explicit IV of AES-GCM and ChaCha20-Poly1305 (RFC 5282 Section 3.1, RFC 7634 Section 2)
	aeadSaltSize    = 4  // salt taken from the end of the keying material (RFC 5282 Section 7.1, RFC 7634 Section 2)
	chachaKeySize   = 32 // RFC 7634 Section 2
	chachaICVSize   = 16
	gcmFullTagSize  = 16
	gcmNonceSize    = aeadSaltSize + aeadIVSize
	chachaNonceSize = aeadSaltSize + aeadIVSize
)

// encrAlg is an encryption transform (Transform Type 1) usable for SK.
type encrAlg struct {
	id      uint16
	name    string // strongSwan name without key length, e.g. "aes" or "aes%dgcm16"
	aead    bool
	icvSize int   // AEAD tag length
	keyBits []int // allowed Key Length attribute values; nil when the transform has none
}

var encrTable = []*encrAlg{
	{id: wire.EncrAESCBC, name: "aes", keyBits: []int{128, 192, 256}},
	{id: wire.EncrAESGCM8, name: "gcm8", aead: true, icvSize: 8, keyBits: []int{128, 192, 256}},
	{id: wire.EncrAESGCM12, name: "gcm12", aead: true, icvSize: 12, keyBits: []int{128, 192, 256}},
	{id: wire.EncrAESGCM16, name: "gcm16", aead: true, icvSize: 16, keyBits: []int{128, 192, 256}},
	{id: wire.EncrChaCha20Poly1305, name: "chacha20poly1305", aead: true, icvSize: chachaICVSize},
}

func encrByID(id uint16) (*encrAlg, error) {
	for _, a := range encrTable {
		if a.id == id {
			return a, nil
		}
	}
	return nil, fmt.Errorf("suite: unsupported encryption transform %d", id)
}

// checkKeyBits validates a Key Length attribute value for the transform.
// ChaCha20-Poly1305 has no Key Length attribute (RFC 7634 Section 2); 0 and
// 256 are both accepted for it.
func (a *encrAlg) checkKeyBits(bits int) error {
	if a.keyBits == nil {
		if bits == 0 || bits == 8*chachaKeySize {
			return nil
		}
		return fmt.Errorf("suite: %s takes no key length, got %d", a.name, bits)
	}
	for _, b := range a.keyBits {
		if b == bits {
			return nil
		}
	}
	return fmt.Errorf("suite: invalid key length %d for encryption transform %d", bits, a.id)
}

// keySize is the length of keying material in octets: the cipher key plus,
// for AEAD transforms, the 4-octet salt.
func (a *encrAlg) keySize(bits int) int {
	if a.keyBits == nil {
		return chachaKeySize + aeadSaltSize
	}
	if a.aead {
		return bits/8 + aeadSaltSize
	}
	return bits / 8
}

// EncrKeySize returns the keying material length in octets for an
// encryption transform with the given Key Length attribute in bits: the AES
// key for CBC (RFC 3602), the key plus a 4-octet salt for AES-GCM (RFC 5282
// Section 7.1) and 32 + 4 octets for ChaCha20-Poly1305 (RFC 7634 Section 2).
func EncrKeySize(id uint16, keyBits int) (int, error) {
	a, err := encrByID(id)
	if err != nil {
		return 0, err
	}
	if err := a.checkKeyBits(keyBits); err != nil {
		return 0, err
	}
	return a.keySize(keyBits), nil
}

// IsAEAD reports whether encryption transform id is a combined-mode (AEAD)
// cipher, which is negotiated without an integrity transform (RFC 5282
// Section 8).
func IsAEAD(id uint16) bool {
	a, err := encrByID(id)
	return err == nil && a.aead
}
