// Package wire is the IKEv2 message codec (RFC 7296 Section 3, RFC 7383
// fragments, RFC 9242 and RFC 9370 code points): the IKE header, one file per
// payload, payload chains, and the SK/SKF framing. It knows nothing of SA
// state or keys and never decrypts: SK and SKF bodies stay opaque bytes for
// package suite.
//
// Every payload type has a Go type implementing Payload, an append-style
// encoder (Append, generic header included) and a parser ParseX(b) returning
// the value and the octets consumed. Parsed values alias the input.
//
// Receiving a datagram (without the 4-octet non-ESP marker of port 4500):
//
//  1. ParseMessage checks the header (Length = datagram length, version 2)
//     and parses the unencrypted payloads up to SK or SKF, which must be
//     last. *VersionError answers INVALID_MAJOR_VERSION,
//     *UnsupportedCriticalPayloadError answers UNSUPPORTED_CRITICAL_PAYLOAD,
//     anything else is ErrSyntax (INVALID_SYNTAX, or drop).
//  2. For a protected message, suite opens Message.Encrypted().Body (or each
//     Fragment().Body, RFC 7383) with Message.AssociatedData() as the AEAD
//     associated data or the start of what the ICV covers.
//  3. ParsePayloads(first, plaintext) parses the inner chain, first being
//     the SK Next Payload (for fragments: that of fragment 1, the plaintexts
//     concatenated in fragment order).
//
// Sending:
//
//  1. AppendPayloads encodes the inner payloads; FirstType names the first.
//  2. suite seals them, using AppendSKHeaders (or AppendSKFHeaders per
//     fragment) for the associated data; the same helper with the plaintext
//     length gives the RFC 9242 "A" octets for IntAuth.
//  3. AppendMessage (or Marshal) encodes the header and the chain ending in
//     &Encrypted{FirstPayload, Body}, computing Next Payload and Length
//     fields. IKE_SA_INIT messages are sent unencrypted; keep the sent and
//     received octets (Message.Raw) for AUTH.
package wire
