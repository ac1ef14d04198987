package suite

import (
	"fmt"
	"io"

	"github.com/cloudflare/circl/kem"
	"github.com/cloudflare/circl/kem/mlkem/mlkem1024"
	"github.com/cloudflare/circl/kem/mlkem/mlkem512"
	"github.com/cloudflare/circl/kem/mlkem/mlkem768"

	"github.com/pqlab/pqlab/ike/wire"
)

// ML-KEM (FIPS 203) as an IKEv2 key exchange method
// (draft-ietf-ipsecme-ikev2-mlkem): the initiator sends an encapsulation key,
// the responder encapsulates to it and sends the ciphertext, and the 32-octet
// shared key is the method's shared secret. Key generation draws the 64-octet
// seed d | z, and encapsulation the 32-octet message m, from the injected
// reader, so runs are reproducible.

// MLKEMSharedSize is the length of an ML-KEM shared secret (FIPS 203 Section 8).
const MLKEMSharedSize = 32

type mlkemMethod struct {
	id     uint16
	name   string
	scheme kem.Scheme
}

var (
	keMLKEM512  = &mlkemMethod{wire.KEMLKEM512, "mlkem512", mlkem512.Scheme()}
	keMLKEM768  = &mlkemMethod{wire.KEMLKEM768, "mlkem768", mlkem768.Scheme()}
	keMLKEM1024 = &mlkemMethod{wire.KEMLKEM1024, "mlkem1024", mlkem1024.Scheme()}
)

func (m *mlkemMethod) ID() uint16             { return m.id }
func (m *mlkemMethod) Name() string           { return m.name }
func (m *mlkemMethod) InitiatorDataSize() int { return m.scheme.PublicKeySize() }
func (m *mlkemMethod) ResponderDataSize() int { return m.scheme.CiphertextSize() }
func (m *mlkemMethod) SharedSize() int        { return m.scheme.SharedKeySize() }

// Initiate runs ML-KEM.KeyGen_internal on a seed read from rand and returns
// the encapsulation key.
func (m *mlkemMethod) Initiate(rand io.Reader) (InitiatorState, []byte, error) {
	seed := make([]byte, m.scheme.SeedSize())
	if _, err := io.ReadFull(rand, seed); err != nil {
		return nil, nil, fmt.Errorf("suite: %s key generation: %w", m.name, err)
	}
	pk, sk := m.scheme.DeriveKeyPair(seed)
	clear(seed)
	ek, err := pk.MarshalBinary()
	if err != nil {
		return nil, nil, fmt.Errorf("suite: %s: %v", m.name, err)
	}
	return &mlkemState{m, sk}, ek, nil
}

// Respond runs the encapsulation key check (FIPS 203 Section 7.2: length
// and modulus) and ML-KEM.Encaps_internal with a message read from rand; it
// returns the ciphertext and the shared key.
func (m *mlkemMethod) Respond(rand io.Reader, peer []byte) ([]byte, []byte, error) {
	if err := checkLen(m, "encapsulation key", len(peer), m.scheme.PublicKeySize()); err != nil {
		return nil, nil, err
	}
	pk, err := m.scheme.UnmarshalBinaryPublicKey(peer)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s encapsulation key check failed (FIPS 203 Section 7.2)", ErrInvalidKEData, m.name)
	}
	seed := make([]byte, m.scheme.EncapsulationSeedSize())
	if _, err := io.ReadFull(rand, seed); err != nil {
		return nil, nil, fmt.Errorf("suite: %s encapsulation: %w", m.name, err)
	}
	ct, ss, err := m.scheme.EncapsulateDeterministically(pk, seed)
	clear(seed)
	if err != nil {
		return nil, nil, fmt.Errorf("suite: %s encapsulation: %v", m.name, err)
	}
	return ct, ss, nil
}

type mlkemState struct {
	m  *mlkemMethod
	sk kem.PrivateKey
}

// Complete runs the ciphertext check (FIPS 203 Section 7.3: length) and
// ML-KEM.Decaps. Decapsulation itself never fails: a forged ciphertext
// yields an unrelated key (implicit rejection) and the AUTH exchange fails.
func (s *mlkemState) Complete(peer []byte) ([]byte, error) {
	if err := checkLen(s.m, "ciphertext", len(peer), s.m.scheme.CiphertextSize()); err != nil {
		return nil, err
	}
	ss, err := s.m.scheme.Decapsulate(s.sk, peer)
	if err != nil {
		return nil, fmt.Errorf("suite: %s decapsulation: %v", s.m.name, err)
	}
	return ss, nil
}
