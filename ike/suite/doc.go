// Package suite is the IKEv2 cryptographic suite: the PRFs and prf+
// (RFC 7296 Section 2.13), the SK and SKF payload protection (RFC 7296
// Section 3.14, RFC 5282, RFC 7634, RFC 7383), the key exchange methods
// (classic Diffie-Hellman groups and ML-KEM, RFC 9370 and
// draft-ietf-ipsecme-ikev2-mlkem), the key schedule (RFC 7296 Sections 2.14,
// 2.17 and 2.18, RFC 9370 Section 2.2, RFC 9242 Section 3), the AUTH payload
// computations, negotiated transform sets and a parser for proposals written
// in strongSwan's syntax.
//
// An IKE SA uses it in this order:
//
//  1. ParseProposal turns configuration into Proposals; the responder's
//     Proposal.Select picks a Suite from the initiator's offer, and the
//     initiator checks the answer with Proposal.Contains.
//  2. For each of Suite.KeyExchanges, MethodByID gives a Method: the initiator
//     calls Initiate and later InitiatorState.Complete, the responder
//     Respond. Errors wrapping ErrInvalidKEData mean the peer's KE data was
//     bad (INVALID_SYNTAX).
//  3. Suite.InitialKeys after IKE_SA_INIT, Suite.IntermediateKeys after each
//     IKE_INTERMEDIATE, Suite.RekeyKeys for an IKE SA rekey; Suite.SKPair
//     builds the SK protection (SK.Seal, SK.Open) of each stage's keys.
//  4. IntAuthData and IntAuth chain the IKE_INTERMEDIATE messages;
//     SignedOctets and PSKAuth make the AUTH payload.
//  5. Suite.ChildKeys derives a Child SA's KEYMAT and keys.
//
// The package performs no I/O and reads neither the clock nor a global
// random source: every function that needs randomness takes an io.Reader,
// so a seeded reader makes a run reproducible byte for byte. Byte strings on
// the wire (public values, ciphertexts, shared secrets) are always
// exact-length []byte, never big.Int. Op names the kinds of cryptographic
// operations, so that an engine can report them to a CPU cost model.
package suite
