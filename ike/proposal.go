package ike

import (
	"slices"

	"github.com/pqlab/pqlab/ike/suite"
	"github.com/pqlab/pqlab/ike/wire"
)

// Conversions between the suite's proposals and the SA payload's proposal
// substructures (RFC 7296 Section 3.3). These are an adapter: package suite
// parses strongSwan syntax and selects transforms; package wire encodes
// substructures; neither converts between the two.

// proposalToWire encodes p as proposal number num with the given SPI.
// Transforms appear in strongSwan's order: ENCR, PRF, INTEG, KE, ADDKE1..7,
// ESN. withKE false omits KE and ADDKE (ESP proposals of IKE_AUTH,
// RFC 7296 Section 1.2).
func proposalToWire(p *suite.Proposal, num uint8, spi []byte, withKE bool) wire.Proposal {
	wp := wire.Proposal{Number: num, Protocol: p.Protocol, SPI: spi}
	for _, e := range p.Encr {
		t := wire.Transform{Type: wire.TransformENCR, ID: e.ID}
		if e.KeyBits != 0 {
			t.Attributes = []wire.Attribute{wire.KeyLengthAttr(uint16(e.KeyBits))}
		}
		wp.Transforms = append(wp.Transforms, t)
	}
	for _, id := range p.PRF {
		wp.Transforms = append(wp.Transforms, wire.Transform{Type: wire.TransformPRF, ID: id})
	}
	for _, id := range p.Integ {
		wp.Transforms = append(wp.Transforms, wire.Transform{Type: wire.TransformINTEG, ID: id})
	}
	if withKE {
		for _, id := range p.KE {
			wp.Transforms = append(wp.Transforms, wire.Transform{Type: wire.TransformKE, ID: id})
		}
		for i, l := range p.AddKE {
			for _, id := range l {
				wp.Transforms = append(wp.Transforms, wire.Transform{Type: wire.TransformADDKE1 + wire.TransformType(i), ID: id})
			}
		}
	}
	for _, id := range p.ESN {
		wp.Transforms = append(wp.Transforms, wire.Transform{Type: wire.TransformESN, ID: id})
	}
	return wp
}

// suiteToWire encodes the chosen suite s as the single proposal of a
// response SA payload (RFC 7296 Section 3.3.1: one proposal, numbered as
// the initiator's).
func suiteToWire(s *suite.Suite, num uint8, spi []byte) wire.Proposal {
	p := &suite.Proposal{Protocol: s.Protocol, Encr: []suite.EncrTransform{{ID: s.Encr, KeyBits: s.EncrKeyBits}}}
	if s.Protocol == wire.ProtocolIKE {
		p.PRF = []uint16{s.PRF}
	}
	if s.Integ != wire.IntegNone {
		p.Integ = []uint16{s.Integ}
	}
	if s.KE != wire.KENone {
		p.KE = []uint16{s.KE}
	}
	for i, id := range s.AddKE {
		if id != wire.KENone {
			p.AddKE[i] = []uint16{id}
		}
	}
	if s.Protocol == wire.ProtocolESP {
		if s.ESN {
			p.ESN = []uint16{wire.ESNYes}
		} else {
			p.ESN = []uint16{wire.ESNNo}
		}
	}
	return proposalToWire(p, num, spi, true)
}

// selectOpts are the compatibility switches of proposal decoding.
type selectOpts struct {
	ignoreUnknown bool // skip transforms of unknown types
	noAddKE       bool // transform types 6..12 are unknown (no RFC 9370)
}

func (e *Engine) selectOpts() selectOpts {
	return selectOpts{ignoreUnknown: e.cfg.Compat.IgnoreUnknownTransforms, noAddKE: e.cfg.Compat.NoIntermediate}
}

// proposalFromWire decodes a received proposal. ok is false when the
// proposal holds a transform type this engine does not know, which makes it
// unacceptable (RFC 7296 Section 3.3.6), or a transform attribute other than
// Key Length. ignoreUnknown instead skips transforms of unknown types, as
// some implementations do.
func proposalFromWire(wp *wire.Proposal, o selectOpts) (*suite.Proposal, bool) {
	p := &suite.Proposal{Protocol: wp.Protocol}
	for i := range wp.Transforms {
		t := &wp.Transforms[i]
		bits, hasLen := t.KeyLength()
		for _, a := range t.Attributes {
			if a.Type != wire.AttrKeyLength || !a.TV {
				return nil, false // unknown attribute: the transform is not ours (Section 3.3.6)
			}
		}
		switch {
		case t.Type == wire.TransformENCR:
			e := suite.EncrTransform{ID: t.ID}
			if hasLen {
				e.KeyBits = int(bits)
			}
			if !slices.Contains(p.Encr, e) {
				p.Encr = append(p.Encr, e)
			}
		case t.Type == wire.TransformPRF:
			p.PRF = appendOnce(p.PRF, t.ID)
		case t.Type == wire.TransformINTEG:
			p.Integ = appendOnce(p.Integ, t.ID)
		case t.Type == wire.TransformKE:
			p.KE = appendOnce(p.KE, t.ID)
		case t.Type >= wire.TransformADDKE1 && t.Type <= wire.TransformADDKE7 && !o.noAddKE:
			n := int(t.Type - wire.TransformADDKE1)
			p.AddKE[n] = appendOnce(p.AddKE[n], t.ID)
		case t.Type == wire.TransformESN:
			p.ESN = appendOnce(p.ESN, t.ID)
		default:
			if !o.ignoreUnknown {
				return nil, false
			}
		}
	}
	return p, true
}

func appendOnce(l []uint16, v uint16) []uint16 {
	if slices.Contains(l, v) {
		return l
	}
	return append(l, v)
}

// suiteFromWire decodes the single proposal of a response into a suite and
// checks that it names exactly one transform of each type.
func suiteFromWire(wp *wire.Proposal) (suite.Suite, bool) {
	p, ok := proposalFromWire(wp, selectOpts{})
	if !ok || len(p.Encr) != 1 || len(p.PRF) > 1 || len(p.Integ) > 1 || len(p.KE) > 1 || len(p.ESN) > 1 {
		return suite.Suite{}, false
	}
	s := suite.Suite{Protocol: p.Protocol, Encr: p.Encr[0].ID, EncrKeyBits: p.Encr[0].KeyBits}
	if len(p.PRF) == 1 {
		s.PRF = p.PRF[0]
	}
	if len(p.Integ) == 1 {
		s.Integ = p.Integ[0]
	}
	if len(p.KE) == 1 {
		s.KE = p.KE[0]
	}
	for i, l := range p.AddKE {
		if len(l) > 1 {
			return suite.Suite{}, false
		}
		if len(l) == 1 {
			s.AddKE[i] = l[0]
		}
	}
	if len(p.ESN) == 1 {
		s.ESN = p.ESN[0] == wire.ESNYes
	}
	return s, true
}

// selectProposal picks, as a responder, the first of the peer's proposals
// (in the peer's order, RFC 7296 Section 2.7) that one of ours accepts.
// preferKE, when non-zero, is the method of the initiator's KE payload: a
// proposal is first tried with that method so that no INVALID_KE_PAYLOAD
// round trip is needed when it is acceptable. It returns the suite and the
// peer's proposal number, or ok false.
func selectProposal(mine []*suite.Proposal, offered []wire.Proposal, proto wire.ProtocolID, preferKE uint16, o selectOpts) (s suite.Suite, num uint8, spi []byte, ok bool) {
	// First pass: honour the KE payload's method if some proposal allows it.
	for pass := 0; pass < 2; pass++ {
		if pass == 0 && preferKE == 0 {
			continue
		}
		for i := range offered {
			wp := &offered[i]
			if wp.Protocol != proto {
				continue
			}
			theirs, good := proposalFromWire(wp, o)
			if !good {
				continue
			}
			if pass == 0 {
				if !slices.Contains(theirs.KE, preferKE) {
					continue
				}
				theirs.KE = []uint16{preferKE}
			}
			for _, m := range mine {
				if got, match := m.Select(theirs); match {
					return got, wp.Number, wp.SPI, true
				}
			}
		}
	}
	return suite.Suite{}, 0, nil, false
}
