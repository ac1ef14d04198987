package wire

import (
	"math/rand/v2"
	"net/netip"
)

// Random valid payloads and messages for the property tests. Values are
// canonical: absent byte slices and lists are nil, reserved fields zero (ID's
// Reserved octets excepted, which the codec keeps), so that a parsed value
// compares equal to the generated one.

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)) }

func genBytes(r *rand.Rand, min, max int) []byte {
	n := min
	if max > min {
		n += r.IntN(max - min + 1)
	}
	if n == 0 {
		return nil
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// genSizes picks a length, favouring small ones but reaching max.
func genLen(r *rand.Rand, max int) int {
	switch r.IntN(4) {
	case 0:
		return 0
	case 1:
		return r.IntN(max + 1)
	default:
		return r.IntN(min(max, 40) + 1)
	}
}

var innerTypes = []PayloadType{
	PayloadSA, PayloadKE, PayloadIDi, PayloadIDr, PayloadCERT, PayloadCERTREQ, PayloadAUTH,
	PayloadNonce, PayloadNotify, PayloadDelete, PayloadVendorID, PayloadTSi, PayloadTSr,
	PayloadCP, PayloadEAP,
}

// allTypes is every payload type the codec parses, plus an unknown one.
var allTypes = append(append([]PayloadType{}, innerTypes...), PayloadSK, PayloadSKF, PayloadType(49))

func genPayload(r *rand.Rand, t PayloadType) Payload {
	switch t {
	case PayloadSA:
		return genSA(r)
	case PayloadKE:
		methods := []uint16{KECurve25519, KEECP256, KEMLKEM768, KEMLKEM1024, uint16(r.Uint32())}
		sizes := []int{32, 64, 1184, 1568, r.IntN(100)}
		i := r.IntN(len(methods))
		return &KE{Method: methods[i], Data: genBytes(r, sizes[i], sizes[i])}
	case PayloadIDi, PayloadIDr:
		p := &ID{Responder: t == PayloadIDr, IDType: IDType(r.IntN(12)), Data: genBytes(r, 0, 64)}
		if r.IntN(4) == 0 {
			p.Reserved = [3]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())}
		}
		return p
	case PayloadCERT:
		return &Cert{Encoding: CertEncoding(r.IntN(14)), Data: genBytes(r, 0, 600)}
	case PayloadCERTREQ:
		return &CertReq{Encoding: CertX509Signature, Data: genBytes(r, 0, 3*20)}
	case PayloadAUTH:
		return &Auth{Method: AuthMethod(r.IntN(15)), Data: genBytes(r, 0, 96)}
	case PayloadNonce:
		return &Nonce{Data: genBytes(r, MinNonceLen, MaxNonceLen)}
	case PayloadNotify:
		p := &Notify{NotifyType: NotifyType(r.Uint32()), Data: genBytes(r, 0, 40)}
		if r.IntN(3) == 0 {
			p.Protocol = ProtocolID(1 + r.IntN(3))
			p.SPI = genBytes(r, 4, 8)
		}
		return p
	case PayloadDelete:
		switch r.IntN(3) {
		case 0:
			return &Delete{Protocol: ProtocolIKE}
		default:
			p := &Delete{Protocol: ProtocolESP, SPISize: 4}
			for range 1 + genLen(r, 20) {
				p.SPIs = append(p.SPIs, genBytes(r, 4, 4))
			}
			return p
		}
	case PayloadVendorID:
		return &VendorID{Data: genBytes(r, 0, 32)}
	case PayloadTSi, PayloadTSr:
		return genTS(r, t == PayloadTSr)
	case PayloadSK:
		return &Encrypted{FirstPayload: innerTypes[r.IntN(len(innerTypes))], Body: genBytes(r, 0, 300)}
	case PayloadSKF:
		total := uint16(1 + r.IntN(5))
		p := &EncryptedFragment{Number: uint16(1 + r.IntN(int(total))), Total: total, Body: genBytes(r, 0, 300)}
		if p.Number == 1 {
			p.FirstPayload = innerTypes[r.IntN(len(innerTypes))]
		}
		return p
	case PayloadCP:
		p := &CP{CFGType: CFGType(1 + r.IntN(4))}
		for range genLen(r, 10) {
			p.Attributes = append(p.Attributes, CPAttribute{Type: uint16(r.IntN(0x8000)), Value: genBytes(r, 0, 16)})
		}
		return p
	case PayloadEAP:
		return &EAP{Message: genBytes(r, 0, 100)}
	}
	return &Unknown{PayloadType: t, Body: genBytes(r, 0, 50)}
}

func genSA(r *rand.Rand) *SA {
	sa := &SA{}
	for i := range 1 + genLen(r, 5) {
		pr := Proposal{Number: uint8(i + 1), Protocol: ProtocolID(1 + r.IntN(3))}
		switch r.IntN(3) {
		case 1:
			pr.SPI = genBytes(r, 4, 4)
		case 2:
			pr.SPI = genBytes(r, 8, 8)
		}
		for range genLen(r, 20) {
			tr := Transform{Type: TransformType(1 + r.IntN(12)), ID: uint16(r.IntN(40))}
			switch r.IntN(4) {
			case 0:
				tr.Attributes = []Attribute{KeyLengthAttr(uint16(128 + 64*r.IntN(3)))}
			case 1:
				tr.Attributes = []Attribute{{Type: uint16(r.IntN(0x8000)), Data: genBytes(r, 0, 8)}, KeyLengthAttr(256)}
			}
			pr.Transforms = append(pr.Transforms, tr)
		}
		sa.Proposals = append(sa.Proposals, pr)
	}
	return sa
}

func genTS(r *rand.Rand, responder bool) *TS {
	p := &TS{Responder: responder}
	for range genLen(r, 6) {
		s := TrafficSelector{IPProtocol: uint8(r.IntN(256)), StartPort: uint16(r.Uint32()), EndPort: uint16(r.Uint32())}
		switch r.IntN(5) {
		case 0:
			s.Type = TSIPv6AddrRange
			var a, b [16]byte
			copy(a[:], genBytes(r, 16, 16))
			copy(b[:], genBytes(r, 16, 16))
			s.Start, s.End = netip.AddrFrom16(a), netip.AddrFrom16(b)
		case 1:
			s = TrafficSelector{Type: TSType(10 + r.IntN(5)), IPProtocol: uint8(r.IntN(256)), Data: genBytes(r, 0, 20)}
		default:
			s.Type = TSIPv4AddrRange
			var a, b [4]byte
			copy(a[:], genBytes(r, 4, 4))
			copy(b[:], genBytes(r, 4, 4))
			s.Start, s.End = netip.AddrFrom4(a), netip.AddrFrom4(b)
		}
		p.Selectors = append(p.Selectors, s)
	}
	return p
}

func genHeader(r *rand.Rand) Header {
	return Header{
		SPIi:      r.Uint64(),
		SPIr:      r.Uint64(),
		Exchange:  ExchangeType(34 + r.IntN(11)),
		Flags:     []uint8{FlagInitiator, FlagResponse, FlagInitiator | FlagResponse, 0}[r.IntN(4)],
		MessageID: r.Uint32(),
	}
}

// genChain returns up to max payloads of the inner types and, in an outer
// chain, sometimes an unknown non-critical payload and a final SK or SKF.
func genChain(r *rand.Rand, max int, outer bool) []Payload {
	var ps []Payload
	for range genLen(r, max) {
		ps = append(ps, genPayload(r, innerTypes[r.IntN(len(innerTypes))]))
	}
	if outer {
		if r.IntN(5) == 0 {
			ps = append(ps, genPayload(r, PayloadType(49+r.IntN(3))))
		}
		switch r.IntN(3) {
		case 1:
			ps = append(ps, genPayload(r, PayloadSK))
		case 2:
			ps = append(ps, genPayload(r, PayloadSKF))
		}
	}
	return ps
}

func genMessage(r *rand.Rand) *Message {
	return &Message{Header: genHeader(r), Payloads: genChain(r, 12, true)}
}
