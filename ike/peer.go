package ike

import (
	"crypto/sha1"
	"fmt"
	"net/netip"

	"github.com/pqlab/pqlab/ike/auth"
	"github.com/pqlab/pqlab/ike/suite"
	"github.com/pqlab/pqlab/ike/wire"
)

// DefaultIKEProposal is offered when a PeerConfig names no IKE proposal:
// the hybrid default of the lab.
const DefaultIKEProposal = "aes256gcm16-prfsha384-x25519-ke1_mlkem768"

// DefaultESPProposal is offered when a ChildConfig names no ESP proposal.
const DefaultESPProposal = "aes256gcm16"

// peerEntry is a PeerConfig with its proposals parsed, shared by every SA
// of the connection.
type peerEntry struct {
	cfg      PeerConfig
	ike      []*suite.Proposal
	children []childEntry
}

type childEntry struct {
	cfg *ChildConfig
	esp []*suite.Proposal
}

func parseProposals(proto wire.ProtocolID, list []string, def string) ([]*suite.Proposal, error) {
	if len(list) == 0 {
		list = []string{def}
	}
	var out []*suite.Proposal
	for _, s := range list {
		ps, err := suite.ParseProposals(proto, s)
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	if len(out) > wire.MaxProposals {
		return nil, fmt.Errorf("ike: %d proposals, at most %d", len(out), wire.MaxProposals)
	}
	return out, nil
}

// newPeerEntry validates a peer configuration.
func newPeerEntry(c *PeerConfig) (*peerEntry, error) {
	p := &peerEntry{cfg: *c}
	var err error
	if p.ike, err = parseProposals(wire.ProtocolIKE, c.IKEProposals, DefaultIKEProposal); err != nil {
		return nil, fmt.Errorf("ike: peer %q: %w", c.Name, err)
	}
	if err := c.IKELifetime.validate("IKE"); err != nil {
		return nil, fmt.Errorf("ike: peer %q: %w", c.Name, err)
	}
	if c.DPDRetries < 0 {
		return nil, fmt.Errorf("ike: peer %q: negative dpd_retries", c.Name)
	}
	if c.Auth.PSK == "" && c.Auth.Signer == nil {
		return nil, fmt.Errorf("ike: peer %q: no authentication configured (auth.psk or a signer)", c.Name)
	}
	if c.Auth.Signer != nil && c.Auth.Trust == nil && c.Auth.PSK == "" {
		return nil, fmt.Errorf("ike: peer %q: a signer needs a trust pool to verify the peer", c.Name)
	}
	p.children = make([]childEntry, len(p.cfg.Children))
	for i := range p.cfg.Children {
		ch := &p.cfg.Children[i]
		esp, err := parseProposals(wire.ProtocolESP, ch.ESPProposals, DefaultESPProposal)
		if err != nil {
			return nil, fmt.Errorf("ike: peer %q child %q: %w", c.Name, ch.Name, err)
		}
		if err := ch.Lifetime.validate("child"); err != nil {
			return nil, fmt.Errorf("ike: peer %q child %q: %w", c.Name, ch.Name, err)
		}
		for _, ts := range append(append([]TrafficSelector(nil), ch.LocalTS...), ch.RemoteTS...) {
			if !ts.Valid() {
				return nil, fmt.Errorf("ike: peer %q child %q: invalid traffic selector %v", c.Name, ch.Name, ts)
			}
		}
		p.children[i] = childEntry{cfg: ch, esp: esp}
	}
	return p, nil
}

// localID returns the identity this end sends: LocalID, or the local
// address.
func (p *peerEntry) localID(local netip.AddrPort) Identity {
	if !p.cfg.LocalID.IsZero() {
		return p.cfg.LocalID
	}
	return AddrIdentity(local.Addr())
}

// matchesAddr reports whether a responder may use p for a request from
// remote to local.
func (p *peerEntry) matchesAddr(local, remote netip.AddrPort) bool {
	if p.cfg.Remote.IsValid() && p.cfg.Remote.Addr().Unmap() != remote.Addr().Unmap() {
		return false
	}
	if p.cfg.Local.IsValid() && p.cfg.Local.Addr().Unmap() != local.Addr().Unmap() {
		return false
	}
	return true
}

// matchesRemoteID reports whether the peer's claimed identity fits p.
func (p *peerEntry) matchesRemoteID(id Identity) bool {
	return p.cfg.RemoteID.IsZero() || p.cfg.RemoteID.Equal(id)
}

// signer returns how this end computes its AUTH payload.
func (p *peerEntry) signer(prf *suite.PRF) auth.Signer {
	if p.cfg.Auth.Signer != nil {
		return p.cfg.Auth.Signer
	}
	return &auth.PSK{Secret: []byte(p.cfg.Auth.PSK), PRF: prfFunc(prf)}
}

func prfFunc(prf *suite.PRF) auth.PRF {
	return func(key, data []byte) []byte { return prf.Sum(key, data) }
}

// authIdentity converts an engine Identity to the auth package's.
func authIdentity(id Identity) auth.Identity { return auth.Identity{Type: id.Type, Data: id.Data} }

// certReq returns the CERTREQ payload naming the configured CAs, or nil.
func (p *peerEntry) certReq() wire.Payload {
	if len(p.cfg.Auth.CertReqCAs) == 0 {
		return nil
	}
	var data []byte
	for _, ca := range p.cfg.Auth.CertReqCAs {
		h := sha1.Sum(ca.PublicKey.MarshalPKIX())
		data = append(data, h[:]...)
	}
	return &wire.CertReq{Encoding: wire.CertX509Signature, Data: data}
}
