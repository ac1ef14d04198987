package suite

import (
	"bytes"
	"crypto/ecdh"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/cloudflare/circl/dh/x448"

	"github.com/pqlab/pqlab/ike/wire"
)

// maxKeygenTries bounds rejection sampling of private scalars; a uniformly
// random candidate fails with probability below 2^-32 for every curve here.
const maxKeygenTries = 64

// MODP groups (RFC 3526, RFC 7296 Section 3.4).

// modpMethod is a MODP Diffie-Hellman group with generator 2. Public values
// and the shared secret are left-padded with zeros to the prime's length
// (RFC 7296 Section 3.4, RFC 2631 Section 2.1.2).
type modpMethod struct {
	id     uint16
	name   string
	p      *big.Int
	pm1    *big.Int // p - 1
	size   int      // octets of the prime
	expLen int      // octets of the private exponent
}

var (
	modp2048 = newMODP(wire.KEMODP2048, "modp2048", modp2048Prime, 48)
	modp3072 = newMODP(wire.KEMODP3072, "modp3072", modp3072Prime, 48)
	modp4096 = newMODP(wire.KEMODP4096, "modp4096", modp4096Prime, 64)
)

// newMODP builds a group. The private exponent lengths (384, 384 and 512
// bits) are those strongSwan uses; each is at least twice the group's
// estimated strength (RFC 3526 Section 8).
func newMODP(id uint16, name, primeHex string, expLen int) *modpMethod {
	p, ok := new(big.Int).SetString(primeHex, 16)
	if !ok {
		panic("suite: bad MODP prime constant")
	}
	return &modpMethod{id: id, name: name, p: p, pm1: new(big.Int).Sub(p, big.NewInt(1)),
		size: (p.BitLen() + 7) / 8, expLen: expLen}
}

func (m *modpMethod) ID() uint16             { return m.id }
func (m *modpMethod) Name() string           { return m.name }
func (m *modpMethod) InitiatorDataSize() int { return m.size }
func (m *modpMethod) ResponderDataSize() int { return m.size }
func (m *modpMethod) SharedSize() int        { return m.size }

// keygen reads a private exponent x >= 2 and returns x and g^x mod p.
func (m *modpMethod) keygen(rand io.Reader) (*big.Int, []byte, error) {
	buf := make([]byte, m.expLen)
	for range maxKeygenTries {
		if _, err := io.ReadFull(rand, buf); err != nil {
			return nil, nil, fmt.Errorf("suite: %s key generation: %w", m.name, err)
		}
		x := new(big.Int).SetBytes(buf)
		if x.Cmp(big.NewInt(2)) < 0 {
			continue
		}
		y := new(big.Int).Exp(big.NewInt(2), x, m.p)
		return x, y.FillBytes(make([]byte, m.size)), nil
	}
	return nil, nil, fmt.Errorf("suite: %s key generation: random source is degenerate", m.name)
}

// shared validates the peer value (1 < y < p-1, exact length; RFC 7296
// Section 3.4, NIST SP 800-56A Section 5.6.2.3.1) and returns y^x mod p.
func (m *modpMethod) shared(x *big.Int, peer []byte) ([]byte, error) {
	if err := checkLen(m, "public value", len(peer), m.size); err != nil {
		return nil, err
	}
	y := new(big.Int).SetBytes(peer)
	if y.Cmp(big.NewInt(1)) <= 0 || y.Cmp(m.pm1) >= 0 {
		return nil, fmt.Errorf("%w: %s public value out of range", ErrInvalidKEData, m.name)
	}
	z := new(big.Int).Exp(y, x, m.p)
	return z.FillBytes(make([]byte, m.size)), nil
}

func (m *modpMethod) Initiate(rand io.Reader) (InitiatorState, []byte, error) {
	x, pub, err := m.keygen(rand)
	if err != nil {
		return nil, nil, err
	}
	return &modpState{m, x}, pub, nil
}

func (m *modpMethod) Respond(rand io.Reader, peer []byte) ([]byte, []byte, error) {
	if err := checkLen(m, "public value", len(peer), m.size); err != nil {
		return nil, nil, err
	}
	x, pub, err := m.keygen(rand)
	if err != nil {
		return nil, nil, err
	}
	z, err := m.shared(x, peer)
	if err != nil {
		return nil, nil, err
	}
	return pub, z, nil
}

type modpState struct {
	m *modpMethod
	x *big.Int
}

func (s *modpState) Complete(peer []byte) ([]byte, error) { return s.m.shared(s.x, peer) }

// ECP groups (RFC 5903). The KE data is x | y, each coordinate padded to the
// field length, without the SEC 1 point format octet (RFC 5903 Section 7);
// the shared secret is the x coordinate of the shared point (Section 9).

type ecpMethod struct {
	id    uint16
	name  string
	curve ecdh.Curve
	field int  // octets of a coordinate and of a private scalar
	mask  byte // mask for the first scalar octet (P-521 has 521 bits)
}

var (
	ecp256 = &ecpMethod{wire.KEECP256, "ecp256", ecdh.P256(), 32, 0xff}
	ecp384 = &ecpMethod{wire.KEECP384, "ecp384", ecdh.P384(), 48, 0xff}
	ecp521 = &ecpMethod{wire.KEECP521, "ecp521", ecdh.P521(), 66, 0x01}
)

func (m *ecpMethod) ID() uint16             { return m.id }
func (m *ecpMethod) Name() string           { return m.name }
func (m *ecpMethod) InitiatorDataSize() int { return 2 * m.field }
func (m *ecpMethod) ResponderDataSize() int { return 2 * m.field }
func (m *ecpMethod) SharedSize() int        { return m.field }

// keygen reads private scalars from rand until one is in [1, n-1] (rejection
// sampling, FIPS 186-5 Appendix A.4.2) and returns the key and its x | y.
func (m *ecpMethod) keygen(rand io.Reader) (*ecdh.PrivateKey, []byte, error) {
	buf := make([]byte, m.field)
	for range maxKeygenTries {
		if _, err := io.ReadFull(rand, buf); err != nil {
			return nil, nil, fmt.Errorf("suite: %s key generation: %w", m.name, err)
		}
		buf[0] &= m.mask
		k, err := m.curve.NewPrivateKey(buf)
		if err != nil {
			continue
		}
		return k, k.PublicKey().Bytes()[1:], nil
	}
	return nil, nil, fmt.Errorf("suite: %s key generation: random source is degenerate", m.name)
}

// shared validates the peer point (on the curve, not the identity: RFC 5903
// Section 7, RFC 6989 Section 2.3) and returns the x coordinate.
func (m *ecpMethod) shared(k *ecdh.PrivateKey, peer []byte) ([]byte, error) {
	if err := checkLen(m, "public value", len(peer), 2*m.field); err != nil {
		return nil, err
	}
	pub, err := m.curve.NewPublicKey(append([]byte{4}, peer...))
	if err != nil {
		return nil, fmt.Errorf("%w: %s public value is not a curve point", ErrInvalidKEData, m.name)
	}
	z, err := k.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidKEData, m.name, err)
	}
	return z, nil
}

func (m *ecpMethod) Initiate(rand io.Reader) (InitiatorState, []byte, error) {
	k, pub, err := m.keygen(rand)
	if err != nil {
		return nil, nil, err
	}
	return &ecpState{m, k}, pub, nil
}

func (m *ecpMethod) Respond(rand io.Reader, peer []byte) ([]byte, []byte, error) {
	if err := checkLen(m, "public value", len(peer), 2*m.field); err != nil {
		return nil, nil, err
	}
	k, pub, err := m.keygen(rand)
	if err != nil {
		return nil, nil, err
	}
	z, err := m.shared(k, peer)
	if err != nil {
		return nil, nil, err
	}
	return pub, z, nil
}

type ecpState struct {
	m *ecpMethod
	k *ecdh.PrivateKey
}

func (s *ecpState) Complete(peer []byte) ([]byte, error) { return s.m.shared(s.k, peer) }

// Curve25519 and Curve448 (RFC 8031, RFC 7748). The KE data is the
// u-coordinate; an all-zero shared secret is rejected (RFC 8031 Section 2).

// X25519Size and X448Size are the lengths of public values and shared
// secrets (RFC 7748 Section 5).
const (
	X25519Size = 32
	X448Size   = x448.Size
)

type x25519Method struct{}

func (x25519Method) ID() uint16             { return wire.KECurve25519 }
func (x25519Method) Name() string           { return "x25519" }
func (x25519Method) InitiatorDataSize() int { return X25519Size }
func (x25519Method) ResponderDataSize() int { return X25519Size }
func (x25519Method) SharedSize() int        { return X25519Size }

func (m x25519Method) keygen(rand io.Reader) (*ecdh.PrivateKey, []byte, error) {
	buf := make([]byte, X25519Size)
	if _, err := io.ReadFull(rand, buf); err != nil {
		return nil, nil, fmt.Errorf("suite: x25519 key generation: %w", err)
	}
	k, err := ecdh.X25519().NewPrivateKey(buf)
	if err != nil {
		return nil, nil, fmt.Errorf("suite: x25519 key generation: %v", err)
	}
	return k, k.PublicKey().Bytes(), nil
}

func (m x25519Method) shared(k *ecdh.PrivateKey, peer []byte) ([]byte, error) {
	if err := checkLen(m, "public value", len(peer), X25519Size); err != nil {
		return nil, err
	}
	pub, err := ecdh.X25519().NewPublicKey(peer)
	if err != nil {
		return nil, fmt.Errorf("%w: x25519: %v", ErrInvalidKEData, err)
	}
	z, err := k.ECDH(pub)
	if err != nil { // crypto/ecdh refuses the all-zero value
		return nil, fmt.Errorf("%w: x25519 shared secret is all zero", ErrInvalidKEData)
	}
	return z, nil
}

func (m x25519Method) Initiate(rand io.Reader) (InitiatorState, []byte, error) {
	k, pub, err := m.keygen(rand)
	if err != nil {
		return nil, nil, err
	}
	return x25519State{k}, pub, nil
}

func (m x25519Method) Respond(rand io.Reader, peer []byte) ([]byte, []byte, error) {
	if err := checkLen(m, "public value", len(peer), X25519Size); err != nil {
		return nil, nil, err
	}
	k, pub, err := m.keygen(rand)
	if err != nil {
		return nil, nil, err
	}
	z, err := m.shared(k, peer)
	if err != nil {
		return nil, nil, err
	}
	return pub, z, nil
}

type x25519State struct{ k *ecdh.PrivateKey }

func (s x25519State) Complete(peer []byte) ([]byte, error) { return x25519Method{}.shared(s.k, peer) }

type x448Method struct{}

func (x448Method) ID() uint16             { return wire.KECurve448 }
func (x448Method) Name() string           { return "x448" }
func (x448Method) InitiatorDataSize() int { return X448Size }
func (x448Method) ResponderDataSize() int { return X448Size }
func (x448Method) SharedSize() int        { return X448Size }

func (m x448Method) keygen(rand io.Reader) (*x448.Key, []byte, error) {
	var k, pub x448.Key
	if _, err := io.ReadFull(rand, k[:]); err != nil {
		return nil, nil, fmt.Errorf("suite: x448 key generation: %w", err)
	}
	x448.KeyGen(&pub, &k)
	return &k, pub[:], nil
}

var errX448Zero = errors.New("x448 shared secret is all zero")

func (m x448Method) shared(k *x448.Key, peer []byte) ([]byte, error) {
	if err := checkLen(m, "public value", len(peer), X448Size); err != nil {
		return nil, err
	}
	var pub, z x448.Key
	copy(pub[:], peer)
	ok := x448.Shared(&z, k, &pub)
	if !ok || subtle.ConstantTimeCompare(z[:], make([]byte, X448Size)) == 1 {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKEData, errX448Zero)
	}
	return bytes.Clone(z[:]), nil
}

func (m x448Method) Initiate(rand io.Reader) (InitiatorState, []byte, error) {
	k, pub, err := m.keygen(rand)
	if err != nil {
		return nil, nil, err
	}
	return x448State{k}, pub, nil
}

func (m x448Method) Respond(rand io.Reader, peer []byte) ([]byte, []byte, error) {
	if err := checkLen(m, "public value", len(peer), X448Size); err != nil {
		return nil, nil, err
	}
	k, pub, err := m.keygen(rand)
	if err != nil {
		return nil, nil, err
	}
	z, err := m.shared(k, peer)
	if err != nil {
		return nil, nil, err
	}
	return pub, z, nil
}

type x448State struct{ k *x448.Key }

func (s x448State) Complete(peer []byte) ([]byte, error) { return x448Method{}.shared(s.k, peer) }
