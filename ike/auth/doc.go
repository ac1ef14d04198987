// Package auth implements the authentication methods of IKEv2 AUTH payloads:
// shared keys (RFC 7296 Section 2.15), RFC 7427 Digital Signature
// authentication with Ed25519 (RFC 8420), ECDSA and ML-DSA
// (draft-ietf-ipsecme-ikev2-pqc-auth), the RFC 4754 ECDSA methods 9 and 10,
// X.509 certificates for all of these (RFC 5280; ML-DSA keys per RFC 9881),
// certificate path validation against a trust Pool, and the identities of
// IDi/IDr payloads.
//
// The engine builds the signed octets (RFC 7296 Section 2.15, RFC 9242
// Section 3.3) and hands them to a Signer, which returns the Auth Method and
// Authentication Data of the AUTH payload; on the other side it hands the
// received AUTH payload to a Verifier. The same two interfaces cover shared
// keys and certificates:
//
//	local:  method, data, err := signer.Sign(rand, octets, peerHashes)
//	        certs := signer.Certificates()          // CERT payloads, encoding 4
//	remote: leaf, err := pool.Verify(certs, VerifyOptions{Time: now, Identity: &peerID})
//	        err = (&SignatureVerifier{Key: leaf.PublicKey}).Verify(method, data, octets)
//
// or in one step pool.VerifyAuth(method, data, octets, certs, opts).
//
// Nothing here reads the clock or a global random source: validation time is
// a parameter, and every signature is deterministic for a given key and
// message (Ed25519; RFC 6979 ECDSA; ML-DSA in its deterministic variant),
// so a seeded simulation is reproducible byte for byte.
package auth
