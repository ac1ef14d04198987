package wire

import (
	"encoding/binary"

	"golang.org/x/crypto/cryptobyte"
)

// Substructure sizes of the SA payload (RFC 7296 Sections 3.3.1, 3.3.2, 3.3.5).
const (
	ProposalHeaderLen  = 8 // Last Substruc .. Num Transforms, before the SPI
	TransformHeaderLen = 8 // Last Substruc .. Transform ID, before attributes
	AttributeHeaderLen = 4 // AF+Attribute Type, Length or Value
)

// Last Substruc values (RFC 7296 Sections 3.3.1 and 3.3.2).
const (
	lastSubstrucLast      = 0
	lastSubstrucProposal  = 2
	lastSubstrucTransform = 3
)

// attrTV is the AF bit of a transform attribute: set for the TV format
// (RFC 7296 Section 3.3.5).
const attrTV = 0x8000

// SA is the Security Association payload (RFC 7296 Section 3.3): one or more
// proposals, each a set of transforms.
type SA struct {
	Proposals []Proposal
}

// Proposal is a Proposal Substructure (RFC 7296 Section 3.3.1).
type Proposal struct {
	// Number is the Proposal Num; the first proposal is 1.
	Number   uint8
	Protocol ProtocolID
	// SPI is the sending entity's SPI: empty in IKE_SA_INIT, 8 octets for an
	// IKE SA rekey, 4 octets for ESP and AH. Any size up to 255 is encoded.
	SPI        []byte
	Transforms []Transform
}

// Transform is a Transform Substructure (RFC 7296 Section 3.3.2). Types 6..12
// are the Additional Key Exchanges of RFC 9370 Section 2.2.1, whose IDs come
// from the Key Exchange Method registry (type 4).
type Transform struct {
	Type       TransformType
	ID         uint16
	Attributes []Attribute
}

// Attribute is a Transform Attribute (RFC 7296 Section 3.3.5). The only one
// RFC 7296 defines is Key Length (14), in TV format: use KeyLengthAttr.
type Attribute struct {
	// Type is the Attribute Type without the AF bit (15 bits).
	Type uint16
	// TV selects the Type/Value format (AF = 1): the value is Value.
	// Otherwise the Type/Length/Value format carries Data.
	TV    bool
	Value uint16
	Data  []byte
}

// KeyLengthAttr returns the Key Length attribute (TV format) for a key of the
// given number of bits (RFC 7296 Section 3.3.5).
func KeyLengthAttr(bits uint16) Attribute {
	return Attribute{Type: AttrKeyLength, TV: true, Value: bits}
}

// KeyLength returns the value of the transform's Key Length attribute (TV
// format) and whether it has one.
func (t *Transform) KeyLength() (bits uint16, ok bool) {
	for _, a := range t.Attributes {
		if a.Type == AttrKeyLength && a.TV {
			return a.Value, true
		}
	}
	return 0, false
}

// Type implements Payload.
func (p *SA) Type() PayloadType { return PayloadSA }

// Append implements Payload.
func (p *SA) Append(b []byte, next PayloadType) ([]byte, error) {
	if len(p.Proposals) == 0 {
		return b, errSyntax(PayloadSA, "no proposal")
	}
	if len(p.Proposals) > MaxProposals {
		return b, errSyntaxf(PayloadSA, "%d proposals, at most %d", len(p.Proposals), MaxProposals)
	}
	b, start := beginPayload(b, next, false)
	for i := range p.Proposals {
		last := i == len(p.Proposals)-1
		var err error
		if b, err = p.Proposals[i].append(b, last); err != nil {
			return b[:start], err
		}
	}
	return endPayload(b, start, PayloadSA)
}

func (pr *Proposal) append(b []byte, last bool) ([]byte, error) {
	if len(pr.SPI) > 0xff {
		return b, errSyntaxf(PayloadSA, "proposal SPI of %d octets", len(pr.SPI))
	}
	if len(pr.Transforms) > MaxTransforms {
		return b, errSyntaxf(PayloadSA, "%d transforms, at most %d", len(pr.Transforms), MaxTransforms)
	}
	ls := byte(lastSubstrucProposal)
	if last {
		ls = lastSubstrucLast
	}
	start := len(b)
	// Last Substruc, RESERVED, Proposal Length (filled in below), Proposal Num,
	// Protocol ID, SPI Size, Num Transforms (RFC 7296 Section 3.3.1).
	b = append(b, ls, 0, 0, 0, pr.Number, byte(pr.Protocol), byte(len(pr.SPI)), byte(len(pr.Transforms)))
	b = append(b, pr.SPI...)
	for i := range pr.Transforms {
		var err error
		if b, err = pr.Transforms[i].append(b, i == len(pr.Transforms)-1); err != nil {
			return b[:start], err
		}
	}
	n := len(b) - start
	if n > MaxPayloadLen {
		return b[:start], errSyntaxf(PayloadSA, "proposal of %d octets", n)
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16(n))
	return b, nil
}

func (t *Transform) append(b []byte, last bool) ([]byte, error) {
	if len(t.Attributes) > MaxAttributes {
		return b, errSyntaxf(PayloadSA, "%d transform attributes, at most %d", len(t.Attributes), MaxAttributes)
	}
	ls := byte(lastSubstrucTransform)
	if last {
		ls = lastSubstrucLast
	}
	start := len(b)
	// Last Substruc, RESERVED, Transform Length (filled in below), Transform
	// Type, RESERVED, Transform ID (RFC 7296 Section 3.3.2).
	b = append(b, ls, 0, 0, 0, byte(t.Type), 0, byte(t.ID>>8), byte(t.ID))
	for _, a := range t.Attributes {
		if a.Type&attrTV != 0 {
			return b[:start], errSyntaxf(PayloadSA, "attribute type %#x exceeds 15 bits", a.Type)
		}
		if a.TV {
			b = binary.BigEndian.AppendUint16(b, a.Type|attrTV)
			b = binary.BigEndian.AppendUint16(b, a.Value)
			continue
		}
		if len(a.Data) > 0xffff {
			return b[:start], errSyntaxf(PayloadSA, "attribute of %d octets", len(a.Data))
		}
		b = binary.BigEndian.AppendUint16(b, a.Type)
		b = binary.BigEndian.AppendUint16(b, uint16(len(a.Data)))
		b = append(b, a.Data...)
	}
	n := len(b) - start
	if n > MaxPayloadLen {
		return b[:start], errSyntaxf(PayloadSA, "transform of %d octets", n)
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16(n))
	return b, nil
}

// ParseSA parses an SA payload, generic header included, from the start of b
// and returns it with the octets consumed. Proposal and transform lengths,
// counts and Last Substruc values must be consistent (RFC 7296 Section 3.3).
// Byte slices alias b.
func ParseSA(b []byte) (*SA, int, error) {
	body, n, err := payloadBody(b, PayloadSA)
	if err != nil {
		return nil, 0, err
	}
	s := cryptobyte.String(body)
	if s.Empty() {
		return nil, 0, errSyntax(PayloadSA, "no proposal")
	}
	p := &SA{Proposals: make([]Proposal, 0, min(MaxProposals, len(body)/ProposalHeaderLen))}
	for !s.Empty() {
		if len(p.Proposals) == MaxProposals {
			return nil, 0, errSyntaxf(PayloadSA, "more than %d proposals", MaxProposals)
		}
		var ls, reserved uint8
		var length uint16
		if !s.ReadUint8(&ls) || !s.ReadUint8(&reserved) || !s.ReadUint16(&length) {
			return nil, 0, errSyntax(PayloadSA, "truncated proposal header")
		}
		var prop cryptobyte.String
		if length < ProposalHeaderLen || !s.ReadBytes((*[]byte)(&prop), int(length)-4) {
			return nil, 0, errSyntaxf(PayloadSA, "Proposal Length %d out of range", length)
		}
		if want := lastFlag(s.Empty(), lastSubstrucProposal); ls != want {
			return nil, 0, errSyntaxf(PayloadSA, "proposal Last Substruc %d, want %d", ls, want)
		}
		pr, err := parseProposal(prop)
		if err != nil {
			return nil, 0, err
		}
		p.Proposals = append(p.Proposals, pr)
	}
	return p, n, nil
}

func lastFlag(last bool, more uint8) uint8 {
	if last {
		return lastSubstrucLast
	}
	return more
}

// parseProposal parses a proposal after its Last Substruc, RESERVED and
// Proposal Length fields.
func parseProposal(s cryptobyte.String) (Proposal, error) {
	var pr Proposal
	var proto, spiSize, numTransforms uint8
	if !s.ReadUint8(&pr.Number) || !s.ReadUint8(&proto) || !s.ReadUint8(&spiSize) || !s.ReadUint8(&numTransforms) {
		return pr, errSyntax(PayloadSA, "truncated proposal")
	}
	pr.Protocol = ProtocolID(proto)
	if !s.ReadBytes(&pr.SPI, int(spiSize)) {
		return pr, errSyntaxf(PayloadSA, "proposal SPI Size %d exceeds the proposal", spiSize)
	}
	pr.SPI = orNil(pr.SPI)
	if numTransforms > MaxTransforms {
		return pr, errSyntaxf(PayloadSA, "%d transforms, at most %d", numTransforms, MaxTransforms)
	}
	if int(numTransforms)*TransformHeaderLen > len(s) {
		return pr, errSyntaxf(PayloadSA, "%d transforms do not fit in %d octets", numTransforms, len(s))
	}
	if numTransforms > 0 {
		pr.Transforms = make([]Transform, 0, numTransforms)
	}
	for i := 0; i < int(numTransforms); i++ {
		var ls, reserved uint8
		var length uint16
		if !s.ReadUint8(&ls) || !s.ReadUint8(&reserved) || !s.ReadUint16(&length) {
			return pr, errSyntax(PayloadSA, "truncated transform header")
		}
		var tr cryptobyte.String
		if length < TransformHeaderLen || !s.ReadBytes((*[]byte)(&tr), int(length)-4) {
			return pr, errSyntaxf(PayloadSA, "Transform Length %d out of range", length)
		}
		if want := lastFlag(i == int(numTransforms)-1, lastSubstrucTransform); ls != want {
			return pr, errSyntaxf(PayloadSA, "transform Last Substruc %d, want %d", ls, want)
		}
		t, err := parseTransform(tr)
		if err != nil {
			return pr, err
		}
		pr.Transforms = append(pr.Transforms, t)
	}
	if !s.Empty() {
		return pr, errSyntaxf(PayloadSA, "%d octets after the last transform of a proposal", len(s))
	}
	return pr, nil
}

// parseTransform parses a transform after its Last Substruc, RESERVED and
// Transform Length fields.
func parseTransform(s cryptobyte.String) (Transform, error) {
	var t Transform
	var typ, reserved uint8
	if !s.ReadUint8(&typ) || !s.ReadUint8(&reserved) || !s.ReadUint16(&t.ID) {
		return t, errSyntax(PayloadSA, "truncated transform")
	}
	t.Type = TransformType(typ)
	for !s.Empty() {
		if len(t.Attributes) == MaxAttributes {
			return t, errSyntaxf(PayloadSA, "more than %d transform attributes", MaxAttributes)
		}
		var at, v uint16
		if !s.ReadUint16(&at) || !s.ReadUint16(&v) {
			return t, errSyntax(PayloadSA, "truncated transform attribute")
		}
		a := Attribute{Type: at &^ attrTV}
		if at&attrTV != 0 {
			a.TV, a.Value = true, v
		} else if !s.ReadBytes(&a.Data, int(v)) {
			return t, errSyntaxf(PayloadSA, "attribute length %d exceeds the transform", v)
		}
		a.Data = orNil(a.Data)
		t.Attributes = append(t.Attributes, a)
	}
	return t, nil
}
