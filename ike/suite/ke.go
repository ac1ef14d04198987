package suite

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/pqlab/pqlab/ike/wire"
)

// ErrInvalidKEData reports Key Exchange Data from the peer that failed
// validation: a wrong length, a DH value out of range or not on the curve, an
// all-zero X25519/X448 result, or a failed FIPS 203 check on an ML-KEM
// encapsulation key (Section 7.2) or ciphertext (Section 7.3). A responder
// answers it with INVALID_SYNTAX (draft-ietf-ipsecme-ikev2-mlkem Section 3,
// RFC 7296 Section 3.4); an initiator fails the exchange. Test with errors.Is.
var ErrInvalidKEData = errors.New("suite: invalid key exchange data")

// Method is a key exchange method (Transform Types 4 and 6..12, RFC 9370).
// It serves both roles: the initiator calls Initiate and later Complete on
// the returned state; the responder calls Respond once.
//
// For Diffie-Hellman methods the KE data of both sides is a public value.
// For ML-KEM the initiator sends its encapsulation key and the responder the
// ciphertext (draft-ietf-ipsecme-ikev2-mlkem Section 2).
//
// All randomness comes from the reader passed in.
type Method interface {
	// ID returns the Transform ID.
	ID() uint16
	// Name returns the strongSwan name, for example "x25519" or "mlkem768".
	Name() string
	// InitiatorDataSize is the length of the initiator's KE data.
	InitiatorDataSize() int
	// ResponderDataSize is the length of the responder's KE data.
	ResponderDataSize() int
	// SharedSize is the length of the shared secret.
	SharedSize() int
	// Initiate makes the initiator's KE data and the state that completes
	// the exchange.
	Initiate(rand io.Reader) (InitiatorState, []byte, error)
	// Respond validates the initiator's KE data and returns the responder's
	// KE data and the shared secret. Invalid peer data yields an error
	// wrapping ErrInvalidKEData.
	Respond(rand io.Reader, peer []byte) (pub, shared []byte, err error)
}

// InitiatorState is the initiator's side of one key exchange in progress.
type InitiatorState interface {
	// Complete validates the responder's KE data and returns the shared
	// secret. Invalid peer data yields an error wrapping ErrInvalidKEData.
	Complete(peer []byte) (shared []byte, err error)
}

var methodTable = []Method{
	modp2048, modp3072, modp4096,
	ecp256, ecp384, ecp521,
	x25519Method{}, x448Method{},
	keMLKEM512, keMLKEM768, keMLKEM1024,
}

// MethodByID returns the key exchange method with the given Transform ID.
func MethodByID(id uint16) (Method, error) {
	for _, m := range methodTable {
		if m.ID() == id {
			return m, nil
		}
	}
	return nil, fmt.Errorf("suite: unsupported key exchange method %d", id)
}

// Methods returns every supported key exchange method.
func Methods() []Method { return append([]Method(nil), methodTable...) }

func isMLKEM(id uint16) bool {
	return id == wire.KEMLKEM512 || id == wire.KEMLKEM768 || id == wire.KEMLKEM1024
}

// checkLen rejects peer KE data of the wrong length.
func checkLen(m Method, what string, got, want int) error {
	if got != want {
		return fmt.Errorf("%w: %s %s is %d octets, want %d", ErrInvalidKEData, m.Name(), what, got, want)
	}
	return nil
}

// Fixed is a Method that hands out recorded values instead of computing
// them, so that tests can replay captured exchanges (for example the
// strongSwan records) through the engine. Initiate returns InitiatorData and
// Complete returns Shared; Respond returns ResponderData and Shared. When
// the expected peer value is set, a different peer value is rejected with
// ErrInvalidKEData. It consumes no randomness.
type Fixed struct {
	MethodID      uint16
	InitiatorData []byte
	ResponderData []byte
	Shared        []byte
}

var _ Method = (*Fixed)(nil)

// ID returns MethodID.
func (f *Fixed) ID() uint16 { return f.MethodID }

// Name returns the name of the real method with the same ID, marked fixed.
func (f *Fixed) Name() string {
	if m, err := MethodByID(f.MethodID); err == nil {
		return m.Name() + "(fixed)"
	}
	return fmt.Sprintf("ke%d(fixed)", f.MethodID)
}

// InitiatorDataSize returns len(InitiatorData).
func (f *Fixed) InitiatorDataSize() int { return len(f.InitiatorData) }

// ResponderDataSize returns len(ResponderData).
func (f *Fixed) ResponderDataSize() int { return len(f.ResponderData) }

// SharedSize returns len(Shared).
func (f *Fixed) SharedSize() int { return len(f.Shared) }

// Initiate returns InitiatorData.
func (f *Fixed) Initiate(io.Reader) (InitiatorState, []byte, error) {
	return fixedState{f}, bytes.Clone(f.InitiatorData), nil
}

// Respond checks the peer data against InitiatorData (if set) and returns
// ResponderData and Shared.
func (f *Fixed) Respond(_ io.Reader, peer []byte) ([]byte, []byte, error) {
	if f.InitiatorData != nil && !bytes.Equal(peer, f.InitiatorData) {
		return nil, nil, fmt.Errorf("%w: not the recorded initiator KE data", ErrInvalidKEData)
	}
	return bytes.Clone(f.ResponderData), bytes.Clone(f.Shared), nil
}

type fixedState struct{ f *Fixed }

func (s fixedState) Complete(peer []byte) ([]byte, error) {
	if s.f.ResponderData != nil && !bytes.Equal(peer, s.f.ResponderData) {
		return nil, fmt.Errorf("%w: not the recorded responder KE data", ErrInvalidKEData)
	}
	return bytes.Clone(s.f.Shared), nil
}
