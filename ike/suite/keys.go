package suite

import (
	"errors"
	"fmt"

	"github.com/pqlab/pqlab/ike/wire"
)

// SPISize is the length of an IKE SA SPI (RFC 7296 Section 3.1).
const SPISize = 8

// IKEKeys is the keying material of an IKE SA at one stage: after
// IKE_SA_INIT, after each IKE_INTERMEDIATE, or after a rekey (RFC 7296
// Section 2.14, RFC 9370 Section 2.2.2). SK_ai and SK_ar are empty with AEAD
// transforms.
type IKEKeys struct {
	SKEYSEED                  []byte
	D, Ai, Ar, Ei, Er, Pi, Pr []byte
}

// ChildKeys is the keying material of a Child SA (RFC 7296 Section 2.17):
// KEYMAT split into the keys protecting initiator-to-responder traffic
// (EncrI, IntegI) and responder-to-initiator traffic (EncrR, IntegR). AEAD
// encryption keys end with their 4-octet salt; integrity keys are empty with
// AEAD.
type ChildKeys struct {
	KEYMAT        []byte
	EncrI, IntegI []byte
	EncrR, IntegR []byte
}

func checkSPIs(spiI, spiR []byte) error {
	if len(spiI) != SPISize || len(spiR) != SPISize {
		return fmt.Errorf("suite: IKE SPIs must be %d octets, got %d and %d", SPISize, len(spiI), len(spiR))
	}
	return nil
}

// expand derives SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr =
// prf+(SKEYSEED, Ni | Nr | SPIi | SPIr) (RFC 7296 Section 2.14).
func (s *Suite) expand(prf *PRF, skeyseed, ni, nr, spiI, spiR []byte) (*IKEKeys, error) {
	if err := checkSPIs(spiI, spiR); err != nil {
		return nil, err
	}
	l, err := s.KeyLengths()
	if err != nil {
		return nil, err
	}
	seed := concat(ni, nr, spiI, spiR)
	km, err := prf.Plus(skeyseed, seed, l.D+2*l.A+2*l.E+2*l.P)
	if err != nil {
		return nil, err
	}
	k := &IKEKeys{SKEYSEED: skeyseed}
	for _, f := range []struct {
		dst *[]byte
		n   int
	}{{&k.D, l.D}, {&k.Ai, l.A}, {&k.Ar, l.A}, {&k.Ei, l.E}, {&k.Er, l.E}, {&k.Pi, l.P}, {&k.Pr, l.P}} {
		*f.dst, km = km[:f.n:f.n], km[f.n:]
	}
	return k, nil
}

func (s *Suite) ikePRF() (*PRF, error) {
	if s.Protocol != wire.ProtocolIKE {
		return nil, errors.New("suite: IKE keys need an IKE suite")
	}
	return PRFByID(s.PRF)
}

// InitialKeys derives the keys after IKE_SA_INIT from the shared secret g^ir
// of the first key exchange (RFC 7296 Section 2.14):
//
//	SKEYSEED = prf(Ni | Nr, g^ir)
func (s *Suite) InitialKeys(gir, ni, nr, spiI, spiR []byte) (*IKEKeys, error) {
	prf, err := s.ikePRF()
	if err != nil {
		return nil, err
	}
	return s.expand(prf, prf.Sum(concat(ni, nr), gir), ni, nr, spiI, spiR)
}

// IntermediateKeys derives the keys after the IKE_INTERMEDIATE exchange that
// ran additional key exchange n, from the previous stage's keys and that
// exchange's shared secret SK(n) (RFC 9370 Section 2.2.2). Ni and Nr are the
// IKE_SA_INIT nonces:
//
//	SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr)
func (s *Suite) IntermediateKeys(prev *IKEKeys, skN, ni, nr, spiI, spiR []byte) (*IKEKeys, error) {
	prf, err := s.ikePRF()
	if err != nil {
		return nil, err
	}
	if prev == nil {
		return nil, errors.New("suite: IntermediateKeys needs the previous stage's keys")
	}
	return s.expand(prf, prf.Sum(prev.D, skN, ni, nr), ni, nr, spiI, spiR)
}

// RekeyKeys derives the keys of the new IKE SA in an IKE SA rekey (RFC 7296
// Section 2.18, RFC 9370 Section 2.2.4). s is the new SA's suite; oldPRF and
// oldSKd belong to the SA being rekeyed, whose PRF computes SKEYSEED.
// secrets are the shared secrets of the rekey's key exchanges in order
// (CREATE_CHILD_SA first, then each IKE_FOLLOWUP_KE); ni, nr and the SPIs
// are the new ones:
//
//	SKEYSEED = prf(SK_d (old), SK(0) | Ni | Nr | SK(1) | ... | SK(n))
func (s *Suite) RekeyKeys(oldPRF *PRF, oldSKd []byte, secrets [][]byte, ni, nr, spiI, spiR []byte) (*IKEKeys, error) {
	prf, err := s.ikePRF()
	if err != nil {
		return nil, err
	}
	if len(secrets) == 0 {
		return nil, errors.New("suite: an IKE SA rekey needs a key exchange")
	}
	if oldPRF == nil {
		return nil, errors.New("suite: RekeyKeys needs the old IKE SA's PRF")
	}
	return s.expand(prf, oldPRF.Sum(oldSKd, rekeyInput(secrets, ni, nr)), ni, nr, spiI, spiR)
}

// rekeyInput returns SK(0) | Ni | Nr | SK(1) | ... | SK(n), or Ni | Nr
// without shared secrets.
func rekeyInput(secrets [][]byte, ni, nr []byte) []byte {
	if len(secrets) == 0 {
		return concat(ni, nr)
	}
	parts := append([][]byte{secrets[0], ni, nr}, secrets[1:]...)
	return concat(parts...)
}

// ChildKeys derives the keys of a Child SA with suite s (RFC 7296 Section
// 2.17, RFC 9370 Section 2.2.4). prf and skd are the IKE SA's PRF and SK_d;
// ni and nr are the nonces of the exchange that creates the Child SA (the
// IKE_SA_INIT nonces for the Child SA of IKE_AUTH). secrets are the shared
// secrets of its key exchanges in order, none without PFS:
//
//	KEYMAT = prf+(SK_d, [SK(0) |] Ni | Nr [| SK(1) | ... | SK(n)])
//
// KEYMAT is split, initiator-to-responder first, into encryption key then
// integrity key for each direction.
func (s *Suite) ChildKeys(prf *PRF, skd []byte, secrets [][]byte, ni, nr []byte) (*ChildKeys, error) {
	if prf == nil {
		return nil, errors.New("suite: ChildKeys needs the IKE SA's PRF")
	}
	l, err := s.KeyLengths()
	if err != nil {
		return nil, err
	}
	km, err := prf.Plus(skd, rekeyInput(secrets, ni, nr), 2*(l.E+l.A))
	if err != nil {
		return nil, err
	}
	k := &ChildKeys{KEYMAT: km}
	k.EncrI = km[:l.E:l.E]
	k.IntegI = km[l.E : l.E+l.A : l.E+l.A]
	rest := km[l.E+l.A:]
	k.EncrR = rest[:l.E:l.E]
	k.IntegR = rest[l.E:]
	return k, nil
}

func concat(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]byte, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
