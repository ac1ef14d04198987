package suite_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"

	"github.com/pqlab/pqlab/ike/suite"
	"github.com/pqlab/pqlab/ike/wire"
)

// A hybrid handshake as both peers compute it: X25519 in IKE_SA_INIT,
// ML-KEM-768 in one IKE_INTERMEDIATE, then AUTH and the first Child SA.
func Example_hybridHandshake() {
	ike, _ := suite.ParseProposal(wire.ProtocolIKE, "aes256gcm16-prfsha384-x25519-ke1_mlkem768")
	s, _ := ike.Select(ike) // the responder's choice from the initiator's offer
	prf, _ := s.PRFAlg()
	ri, rr := rand.NewChaCha8([32]byte{1}), rand.NewChaCha8([32]byte{2})
	ni, nr := make([]byte, 32), make([]byte, 32)
	ri.Read(ni)
	rr.Read(nr)
	spiI, spiR := []byte("SPIiSPIi"), []byte("SPIrSPIr")

	// IKE_SA_INIT: X25519.
	m0, _ := suite.MethodByID(s.KE)
	st0, kei, _ := m0.Initiate(ri)
	ker, sharedR, _ := m0.Respond(rr, kei)
	sharedI, _ := st0.Complete(ker)
	keysI, _ := s.InitialKeys(sharedI, ni, nr, spiI, spiR)
	keysR, _ := s.InitialKeys(sharedR, ni, nr, spiI, spiR)

	// IKE_INTERMEDIATE 1: ML-KEM-768, protected with the stage 0 keys.
	m1, _ := suite.MethodByID(s.AdditionalKeyExchanges()[0])
	st1, ek, _ := m1.Initiate(ri)
	outI, _, _ := s.SKPair(keysI, true, ri)
	_, inR, _ := s.SKPair(keysR, false, rr)
	l := 8 + len(ek) // KE payload: generic header, method, reserved, data
	inner := append([]byte{0, 0, byte(l >> 8), byte(l), 0, byte(s.AddKE[0]), 0, 0}, ek...)
	header := make([]byte, 32) // IKE header + SK header; filling them is the wire codec's job
	msg, _ := outI.Seal(header, inner)
	got, err := inR.Open(msg[:32], msg[32:])
	fmt.Println("IKE_INTERMEDIATE request:", len(msg), "octets, opened:", err == nil && bytes.Equal(got, inner))
	ct, ssR, _ := m1.Respond(rr, ek)
	ssI, _ := st1.Complete(ct)

	// IntAuth over the request as if unfragmented (responder side omitted).
	ap, _ := suite.IntAuthData(header, wire.PayloadKE, inner)
	intI := suite.IntAuth(prf, keysI.Pi, nil, ap)

	keysI, _ = s.IntermediateKeys(keysI, ssI, ni, nr, spiI, spiR)
	keysR, _ = s.IntermediateKeys(keysR, ssR, ni, nr, spiI, spiR)
	fmt.Println("stage 1 keys agree:", bytes.Equal(keysI.D, keysR.D), bytes.Equal(keysI.Er, keysR.Er))

	// AUTH with a pre-shared key; IKE_AUTH is message ID 2.
	intAuth := suite.IntAuthOctets(intI, intI, 2)
	idI := []byte{byte(wire.IDFQDN), 0, 0, 0, 'l', 'e', 'f', 't'}
	octets := suite.SignedOctets(prf, []byte("IKE_SA_INIT request"), nr, keysI.Pi, idI, intAuth)
	authI := suite.PSKAuth(prf, []byte("psk"), octets)
	fmt.Println("AUTH:", len(authI), "octets")

	// The Child SA of IKE_AUTH.
	esp, _ := suite.ParseProposal(wire.ProtocolESP, "aes256gcm16")
	cs, _ := esp.Select(esp)
	child, _ := cs.ChildKeys(prf, keysR.D, nil, ni, nr)
	fmt.Println("Child SA:", cs.String(), len(child.KEYMAT), "octets of KEYMAT")
	// Output:
	// IKE_INTERMEDIATE request: 1249 octets, opened: true
	// stage 1 keys agree: true true
	// AUTH: 48 octets
	// Child SA: aes256gcm16-noesn 72 octets of KEYMAT
}
