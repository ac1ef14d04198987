package ike

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/pqlab/pqlab/ike/suite"
	"github.com/pqlab/pqlab/ike/wire"
)

// Behaviours of implementations that lack an extension or deviate from the
// standards, selected by Compat and Config.ResponderOnly so that the lab's
// peer models are code paths rather than labels.

// ErrResponderOnly is returned by Initiate and RekeyIKESA when
// Config.ResponderOnly is set.
var ErrResponderOnly = errors.New("ike: this engine is responder only (Config.ResponderOnly)")

// minPrivateTransformID is the first Transform Type 4 ID reserved for
// private use (RFC 7296 Section 3.3.2, IANA IKEv2 registry).
const minPrivateTransformID = 1024

// keMethodByName returns the Transform Type 4 ID of a key exchange method
// named as in proposals ("x25519", "mlkem768").
func keMethodByName(name string) (uint16, bool) {
	for _, m := range suite.Methods() {
		if m.Name() == name {
			return m.ID(), true
		}
	}
	return 0, false
}

// buildIDSwap checks Compat.PrivateTransformIDs and returns the involution
// applied to key exchange IDs on the wire: standard <-> private.
func buildIDSwap(m map[string]uint16) (map[uint16]uint16, error) {
	if len(m) == 0 {
		return nil, nil
	}
	swap := make(map[uint16]uint16, 2*len(m))
	for name, priv := range m {
		std, ok := keMethodByName(name)
		if !ok {
			return nil, fmt.Errorf("ike: private_transform_ids: unknown key exchange method %q", name)
		}
		if priv < minPrivateTransformID {
			return nil, fmt.Errorf("ike: private_transform_ids: %s = %d is not in the private-use range %d..65535", name, priv, minPrivateTransformID)
		}
		if _, err := suite.MethodByID(priv); err == nil {
			return nil, fmt.Errorf("ike: private_transform_ids: %s = %d is a method this engine implements", name, priv)
		}
		if _, dup := swap[priv]; dup {
			return nil, fmt.Errorf("ike: private_transform_ids: ID %d used twice", priv)
		}
		swap[std], swap[priv] = priv, std
	}
	return swap, nil
}

// isKEType reports whether transforms of type t carry Transform Type 4 IDs
// (KE and ADDKE1..7, RFC 9370 Section 2.2.1).
func isKEType(t wire.TransformType) bool {
	return t == wire.TransformKE || t >= wire.TransformADDKE1 && t <= wire.TransformADDKE7
}

// mapWireIDs rewrites, in place, the key exchange IDs of payloads between
// this engine's view (standard IDs) and the wire (Compat.PrivateTransformIDs).
// The mapping is its own inverse, so the same call serves messages sent
// (before encoding) and received (after parsing).
func (e *Engine) mapWireIDs(ps []wire.Payload) {
	if len(e.idSwap) == 0 {
		return
	}
	sw := func(id uint16) uint16 {
		if v, ok := e.idSwap[id]; ok {
			return v
		}
		return id
	}
	for _, p := range ps {
		switch p := p.(type) {
		case *wire.SA:
			for i := range p.Proposals {
				ts := p.Proposals[i].Transforms
				for j := range ts {
					if isKEType(ts[j].Type) {
						ts[j].ID = sw(ts[j].ID)
					}
				}
			}
		case *wire.KE:
			p.Method = sw(p.Method)
		case *wire.Notify:
			if p.NotifyType == wire.NotifyInvalidKEPayload && len(p.Data) == 2 {
				p.Data = binary.BigEndian.AppendUint16(nil, sw(binary.BigEndian.Uint16(p.Data)))
			}
		}
	}
}

// hasAddKE reports whether a proposal has an additional key exchange other
// than NONE.
func hasAddKE(p *suite.Proposal) bool {
	for _, l := range p.AddKE {
		for _, id := range l {
			if id != wire.KENone {
				return true
			}
		}
	}
	return false
}

func isMLKEM(id uint16) bool {
	return id == wire.KEMLKEM512 || id == wire.KEMLKEM768 || id == wire.KEMLKEM1024
}

// checkInitiatorProposals refuses, at Initiate, IKE proposals that the
// modelled implementation could not send.
func (e *Engine) checkInitiatorProposals(pe *peerEntry) error {
	c := &e.cfg.Compat
	for _, p := range pe.ike {
		if c.NoIntermediate && hasAddKE(p) {
			return fmt.Errorf("ike: peer %q: proposal %s has additional key exchanges, which compat.no_intermediate (no RFC 9242/9370) cannot run", pe.cfg.Name, p)
		}
		if c.NoMLKEMInInit && slices.ContainsFunc(p.KE, isMLKEM) {
			return fmt.Errorf("ike: peer %q: proposal %s uses ML-KEM as its KE method, which compat.no_mlkem_in_init forbids", pe.cfg.Name, p)
		}
	}
	return nil
}

// noAddKEInCreate reports whether CREATE_CHILD_SA exchanges of Child SAs
// carry no additional key exchanges (no IKE_FOLLOWUP_KE).
func (e *Engine) noAddKEInCreate() bool {
	return e.cfg.Compat.NoFollowupKE || e.cfg.Compat.NoIntermediate
}

// noAddKEInRekey reports whether IKE SA rekeys carry no additional key
// exchanges.
func (e *Engine) noAddKEInRekey() bool {
	return e.noAddKEInCreate() || e.cfg.Compat.RekeyWithoutAddKE
}

// adjustProposals returns ps as this engine uses them in an exchange:
// without ML-KEM KE methods for an IKE SA when NoMLKEMInInit is set (a
// proposal left without any KE method is dropped), and without additional
// key exchanges when stripAddKE is set. It returns ps itself when nothing
// changes.
func (e *Engine) adjustProposals(ps []*suite.Proposal, ikeSA, stripAddKE bool) []*suite.Proposal {
	noMLKEM := ikeSA && e.cfg.Compat.NoMLKEMInInit
	change := false
	for _, p := range ps {
		if noMLKEM && slices.ContainsFunc(p.KE, isMLKEM) || stripAddKE && slices.ContainsFunc(p.AddKE[:], func(l []uint16) bool { return len(l) > 0 }) {
			change = true
			break
		}
	}
	if !change {
		return ps
	}
	out := make([]*suite.Proposal, 0, len(ps))
	for _, p := range ps {
		q := *p
		if noMLKEM && slices.ContainsFunc(q.KE, isMLKEM) {
			q.KE = slices.DeleteFunc(slices.Clone(q.KE), isMLKEM)
			if len(q.KE) == 0 {
				continue
			}
		}
		if stripAddKE {
			q.AddKE = [suite.MaxAddKE][]uint16{}
		}
		if slices.ContainsFunc(out, func(o *suite.Proposal) bool { return o.String() == q.String() }) {
			continue // identical once stripped
		}
		out = append(out, &q)
	}
	return out
}
