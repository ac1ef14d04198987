package suite

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/pqlab/pqlab/ike/wire"
)

// MaxAddKE is the number of Additional Key Exchange transform types,
// ADDKE1..ADDKE7 = Transform Types 6..12 (RFC 9370 Section 2.2.1).
const MaxAddKE = 7

// Suite is a negotiated transform set: one transform of each type, as chosen
// for an IKE SA or a Child SA. Zero means absent (KENone, IntegNone, and
// for ADDKEn also the negotiated NONE of an optional round).
type Suite struct {
	// Protocol is wire.ProtocolIKE or wire.ProtocolESP.
	Protocol wire.ProtocolID
	// Encr is the encryption transform (Type 1), EncrKeyBits its Key Length
	// attribute (0 for ChaCha20-Poly1305, which has none).
	Encr        uint16
	EncrKeyBits int
	// PRF is the pseudorandom function (Type 2); IKE SAs only.
	PRF uint16
	// Integ is the integrity transform (Type 3); IntegNone with AEAD.
	Integ uint16
	// KE is the key exchange method (Type 4); KENone for a Child SA
	// without PFS.
	KE uint16
	// AddKE holds ADDKE1..ADDKE7 (Types 6..12, RFC 9370).
	AddKE [MaxAddKE]uint16
	// ESN tells whether extended sequence numbers are used (Type 5); ESP only.
	ESN bool
}

// Validate checks that the suite is complete and consistent and that this
// package implements every transform in it.
func (s *Suite) Validate() error {
	e, err := encrByID(s.Encr)
	if err != nil {
		return err
	}
	if err := e.checkKeyBits(s.EncrKeyBits); err != nil {
		return err
	}
	switch {
	case e.aead && s.Integ != wire.IntegNone:
		return fmt.Errorf("suite: AEAD transform %d with integrity transform %d (RFC 5282 Section 8)", s.Encr, s.Integ)
	case !e.aead && s.Integ == wire.IntegNone:
		return fmt.Errorf("suite: encryption transform %d needs an integrity transform", s.Encr)
	case !e.aead:
		if _, err := integByID(s.Integ); err != nil {
			return err
		}
	}
	switch s.Protocol {
	case wire.ProtocolIKE:
		if _, err := PRFByID(s.PRF); err != nil {
			return err
		}
		if s.KE == wire.KENone {
			return errors.New("suite: an IKE SA needs a key exchange method")
		}
		if s.ESN {
			return errors.New("suite: ESN is not a transform of IKE SAs")
		}
	case wire.ProtocolESP:
		if s.PRF != 0 {
			return errors.New("suite: PRF is not a transform of ESP SAs")
		}
	default:
		return fmt.Errorf("suite: unsupported protocol %d", s.Protocol)
	}
	for _, id := range s.KeyExchanges() {
		if _, err := MethodByID(id); err != nil {
			return err
		}
	}
	return nil
}

// IsAEAD reports whether the encryption transform is an AEAD cipher.
func (s *Suite) IsAEAD() bool { return IsAEAD(s.Encr) }

// PRFAlg returns the suite's PRF.
func (s *Suite) PRFAlg() (*PRF, error) { return PRFByID(s.PRF) }

// KeyExchanges returns the key exchange methods to run, in order: KE in the
// initial exchange, then ADDKE1..ADDKE7 skipping NONE, each in its own
// IKE_INTERMEDIATE or IKE_FOLLOWUP_KE exchange (RFC 9370 Section 2.2.2).
func (s *Suite) KeyExchanges() []uint16 {
	var out []uint16
	if s.KE != wire.KENone {
		out = append(out, s.KE)
	}
	for _, id := range s.AddKE {
		if id != wire.KENone {
			out = append(out, id)
		}
	}
	return out
}

// AdditionalKeyExchanges returns the ADDKE methods that are not NONE, in
// order: the rounds that follow the first key exchange.
func (s *Suite) AdditionalKeyExchanges() []uint16 {
	var out []uint16
	for _, id := range s.AddKE {
		if id != wire.KENone {
			out = append(out, id)
		}
	}
	return out
}

// KeyLengths holds key lengths in octets.
type KeyLengths struct {
	// D is the length of SK_d, and P of SK_pi and SK_pr: the PRF's
	// preferred key length (RFC 7296 Section 2.14). Both are zero for ESP.
	D, P int
	// A is the length of each integrity key, zero with AEAD.
	A int
	// E is the length of each encryption key, with the salt for AEAD.
	E int
}

// KeyLengths returns the lengths of the keys the suite takes.
func (s *Suite) KeyLengths() (KeyLengths, error) {
	var l KeyLengths
	var err error
	if l.E, err = EncrKeySize(s.Encr, s.EncrKeyBits); err != nil {
		return l, err
	}
	if l.A, err = IntegKeySize(s.Integ); err != nil {
		return l, err
	}
	if s.Protocol == wire.ProtocolIKE {
		p, err := PRFByID(s.PRF)
		if err != nil {
			return l, err
		}
		l.D, l.P = p.Size(), p.Size()
	}
	return l, nil
}

// NewSK builds the SK protection of one direction from its keys.
func (s *Suite) NewSK(encrKey, integKey []byte, rand io.Reader) (*SK, error) {
	return NewSK(s.Encr, s.EncrKeyBits, s.Integ, encrKey, integKey, rand)
}

// SKPair builds the SK protection of both directions of an IKE SA from its
// keys: out protects what this side sends, in opens what it receives. The
// initiator sends with SK_ei/SK_ai and receives with SK_er/SK_ar (RFC 7296
// Section 2.14).
func (s *Suite) SKPair(k *IKEKeys, initiator bool, rand io.Reader) (out, in *SK, err error) {
	ei, ai, er, ar := k.Ei, k.Ai, k.Er, k.Ar
	if !initiator {
		ei, ai, er, ar = er, ar, ei, ai
	}
	if out, err = s.NewSK(ei, ai, rand); err != nil {
		return nil, nil, err
	}
	if in, err = s.NewSK(er, ar, rand); err != nil {
		return nil, nil, err
	}
	return out, in, nil
}

// String formats the suite in strongSwan's proposal syntax, for example
// "aes256gcm16-prfsha384-x25519-ke1_mlkem768" or "aes128-sha256-noesn".
// ParseProposal reads it back.
func (s *Suite) String() string {
	var parts []string
	parts = append(parts, encrToken(s.Encr, s.EncrKeyBits))
	if s.Integ != wire.IntegNone {
		parts = append(parts, tokenFor(integTokens, s.Integ, "integ"))
	}
	if s.Protocol == wire.ProtocolIKE {
		parts = append(parts, tokenFor(prfTokens, s.PRF, "prf"))
	}
	if s.KE != wire.KENone {
		parts = append(parts, tokenFor(keTokens, s.KE, "ke"))
	}
	for i, id := range s.AddKE {
		if id != wire.KENone {
			parts = append(parts, fmt.Sprintf("ke%d_%s", i+1, tokenFor(keTokens, id, "ke")))
		}
	}
	if s.Protocol == wire.ProtocolESP {
		if s.ESN {
			parts = append(parts, "esn")
		} else {
			parts = append(parts, "noesn")
		}
	}
	return strings.Join(parts, "-")
}
