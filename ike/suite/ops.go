package suite

import "fmt"

// Op is a kind of cryptographic operation. The engine reports the
// operations it performs so that a simulator can charge each one its CPU
// cost on the node that does it.
type Op uint8

// Cryptographic operation kinds.
const (
	// OpKEKeygen generates an ephemeral key pair: a DH private value and
	// its public value, or ML-KEM.KeyGen (FIPS 203 Algorithm 19).
	OpKEKeygen Op = iota + 1
	// OpKEEncaps is ML-KEM.Encaps with the encapsulation key check
	// (FIPS 203 Algorithm 20 and Section 7.2).
	OpKEEncaps
	// OpKEDecaps is ML-KEM.Decaps (FIPS 203 Algorithm 21).
	OpKEDecaps
	// OpDH computes a (EC)DH shared secret from a peer public value.
	OpDH
	// OpPRF is one PRF invocation (SKEYSEED, AUTH, IntAuth, ...).
	OpPRF
	// OpPRFPlus is one prf+ expansion; its cost grows with the output length.
	OpPRFPlus
	// OpSKSeal protects one SK or SKF payload.
	OpSKSeal
	// OpSKOpen verifies and decrypts one SK or SKF payload.
	OpSKOpen
	// OpSign creates an AUTH signature.
	OpSign
	// OpVerify verifies an AUTH signature.
	OpVerify
	// OpESPSeal protects one ESP packet.
	OpESPSeal
	// OpESPOpen verifies and decrypts one ESP packet.
	OpESPOpen
)

var opNames = [...]string{
	OpKEKeygen: "KEKeygen",
	OpKEEncaps: "KEEncaps",
	OpKEDecaps: "KEDecaps",
	OpDH:       "DH",
	OpPRF:      "PRF",
	OpPRFPlus:  "PRFPlus",
	OpSKSeal:   "SKSeal",
	OpSKOpen:   "SKOpen",
	OpSign:     "Sign",
	OpVerify:   "Verify",
	OpESPSeal:  "ESPSeal",
	OpESPOpen:  "ESPOpen",
}

// String returns the name of the operation kind.
func (o Op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Ops lists every operation kind, for tables indexed by Op.
func Ops() []Op {
	out := make([]Op, 0, len(opNames)-1)
	for o := OpKEKeygen; int(o) < len(opNames); o++ {
		out = append(out, o)
	}
	return out
}

// KEStep is one step of a key exchange method as the engine runs it.
type KEStep uint8

// Key exchange steps.
const (
	// KEInitiate is Method.Initiate: the initiator makes its KE data.
	KEInitiate KEStep = iota + 1
	// KERespond is Method.Respond: the responder processes the initiator's
	// KE data and makes its own.
	KERespond
	// KEComplete is InitiatorState.Complete: the initiator processes the
	// responder's KE data.
	KEComplete
)

// String returns the name of the step.
func (s KEStep) String() string {
	switch s {
	case KEInitiate:
		return "Initiate"
	case KERespond:
		return "Respond"
	case KEComplete:
		return "Complete"
	}
	return fmt.Sprintf("KEStep(%d)", uint8(s))
}

// KEOps returns the operations that a step of key exchange method id costs:
// for Diffie-Hellman methods Initiate is a key generation, Respond a key
// generation and a DH computation, Complete a DH computation; for ML-KEM
// Initiate is KeyGen, Respond Encaps and Complete Decaps.
func KEOps(id uint16, step KEStep) []Op {
	kem := isMLKEM(id)
	switch step {
	case KEInitiate:
		return []Op{OpKEKeygen}
	case KERespond:
		if kem {
			return []Op{OpKEEncaps}
		}
		return []Op{OpKEKeygen, OpDH}
	case KEComplete:
		if kem {
			return []Op{OpKEDecaps}
		}
		return []Op{OpDH}
	}
	return nil
}
