package gateway

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/ike/suite"
	"github.com/pqlab/pqlab/ike/wire"
	"github.com/pqlab/pqlab/models"
)

// Connection is one IKE connection of a gateway as a topology describes
// it: the other gateway, whether this one initiates, and the protected
// prefixes on both sides.
type Connection struct {
	// Peer is the other gateway's node name; it names the ike.PeerConfig.
	Peer string
	// Remote is the peer's outer address, required when Initiate is set.
	// A responder leaves it unset and recognises the peer by its identity,
	// so that a peer behind a NAT is found.
	Remote   netip.Addr
	Initiate bool
	// LocalTS and RemoteTS are the protected prefixes (traffic selectors).
	LocalTS, RemoteTS []netip.Prefix
}

// NodeSpec is what a topology says about one gateway.
type NodeSpec struct {
	// Name is the node name; identities are "fqdn:<name>".
	Name string
	// Addr is the outer address the engine binds.
	Addr netip.Addr
	// Proposals and ESPProposals override the profile's when set.
	Proposals, ESPProposals []string
	// PSK authenticates every connection (RFC 7296 Section 2.15).
	PSK         string
	Connections []Connection
}

// privateTransformMin is the first Transform ID for private use (RFC 7296
// Section 3.3.2).
const privateTransformMin = 1024

// Identity returns the IKE identity of a gateway node.
func Identity(node string) ike.Identity {
	return ike.Identity{Type: wire.IDFQDN, Data: []byte(node)}
}

// EngineConfig turns a peer behaviour profile and a gateway's topology
// fields into the engine's configuration: retransmission schedule,
// fragmentation policy, size and what it counts, NAT-T port switch and
// keepalives, cookie threshold, half-open timeout, lifetimes with jitter,
// DPD, Child SA limit, vendor IDs, responder-only peers, and the
// compatibility switches (no RFC 9242/9370, no IKE_FOLLOWUP_KE, unknown
// transforms ignored, no ML-KEM in IKE_SA_INIT, rekeys without ADDKE,
// private transform IDs). Proposals that the profile cannot run
// (an ML-KEM parameter set it lacks, ML-KEM in IKE_SA_INIT when
// mlkem_in_init is false) are errors, as is a role the profile does not
// take. Profile fields without an engine knob are listed by
// UnsupportedFields and otherwise ignored.
func EngineConfig(p *models.Peer, n NodeSpec) (ike.Config, error) {
	var cfg ike.Config
	fail := func(format string, args ...any) (ike.Config, error) {
		return ike.Config{}, fmt.Errorf("gateway: node %s (peer model %s): %s", n.Name, p.Name, fmt.Sprintf(format, args...))
	}
	cfg.Retransmit = ike.RetransmitConfig{
		InitialTimeout: ike.Duration(p.Retransmit.Timeout.Duration),
		Base:           p.Retransmit.Base,
		Tries:          p.Retransmit.Tries,
		MaxTimeout:     ike.Duration(p.Retransmit.Cap.Duration),
	}
	if p.Retransmit.Tries == 0 {
		// The engine reads 0 as its default; one more timeout is the
		// closest it can do to "no retransmission".
		cfg.Retransmit.Tries = 1
	}
	fr := p.Fragmentation
	switch {
	case !fr.Supported || fr.Policy == "never":
		cfg.Fragmentation.Policy = ike.FragmentNever
	case fr.Policy == "on-retransmit":
		cfg.Fragmentation.Policy = ike.FragmentOnRetransmit
	default:
		cfg.Fragmentation.Policy = ike.FragmentWhenLarger
	}
	if cfg.Fragmentation.Policy != ike.FragmentNever {
		cfg.Fragmentation.Size = fr.Size
		cfg.Fragmentation.SizeIPv6 = fr.SizeIPv6
		if fr.Counts == "udp" {
			cfg.Fragmentation.Counts = ike.CountUDP
		}
	}
	if p.NAT.PortSwitch == "auth" {
		cfg.NATT.PortSwitch = ike.SwitchAtAuth
	}
	cfg.NATT.Keepalive = ike.Duration(p.NAT.Keepalive.Duration)
	cfg.CookieThreshold = p.DoS.CookieThreshold
	if cfg.CookieThreshold == 0 {
		cfg.CookieThreshold = -1 // the profile's 0 is "off"; the engine's 0 is its default
	}
	cfg.HalfOpenTimeout = ike.Duration(p.DoS.HalfOpenTimeout.Duration)
	cfg.MaxChildSAs = p.IKE.MaxChildSAs
	for _, v := range p.IKE.VendorIDs {
		b, err := hex.DecodeString(v)
		if err != nil {
			return fail("vendor ID %q: %v", v, err)
		}
		cfg.VendorIDs = append(cfg.VendorIDs, b)
	}
	cfg.Compat = ike.Compat{
		NoIntermediate:          !p.IKE.Intermediate,
		NoFollowupKE:            !p.IKE.FollowupKE,
		IgnoreUnknownTransforms: p.IKE.UnknownTransformTypes == "ignore",
		NoMLKEMInInit:           !p.IKE.MLKEMInInit,
		RekeyWithoutAddKE:       !p.IKE.RekeyRepeatsAddKE,
	}
	if len(p.IKE.PrivateTransformIDs) > 0 {
		cfg.Compat.PrivateTransformIDs = map[string]uint16{}
		for name, id := range p.IKE.PrivateTransformIDs {
			if id < privateTransformMin || id > 0xffff {
				return fail("private transform ID %d of %s outside %d..65535", id, name, privateTransformMin)
			}
			cfg.Compat.PrivateTransformIDs[name] = uint16(id)
		}
	}
	cfg.ResponderOnly = !slices.Contains(p.Roles, "initiator")
	cfg.Window = p.IKE.Window

	proposals := p.IKE.Proposals
	if len(n.Proposals) > 0 {
		proposals = n.Proposals
	}
	espProposals := p.IKE.ESPProposals
	if len(n.ESPProposals) > 0 {
		espProposals = n.ESPProposals
	}
	for _, s := range proposals {
		if err := CheckProposal(p, s, false); err != nil {
			return fail("%v", err)
		}
	}
	initiates, responds := false, false
	for _, c := range n.Connections {
		if c.Initiate {
			initiates = true
		} else {
			responds = true
		}
	}
	if initiates && !slices.Contains(p.Roles, "initiator") {
		return fail("the profile does not initiate")
	}
	if responds && !slices.Contains(p.Roles, "responder") {
		return fail("the profile does not respond")
	}
	ikeLife := lifetime(p.Lifetimes.IKE.Duration, p.Lifetimes.Jitter)
	childLife := lifetime(p.Lifetimes.Child.Duration, p.Lifetimes.Jitter)
	for _, c := range n.Connections {
		pc := ike.PeerConfig{
			Name:         c.Peer,
			Local:        netip.AddrPortFrom(n.Addr, ike.DefaultIKEPort),
			LocalID:      Identity(n.Name),
			RemoteID:     Identity(c.Peer),
			Auth:         ike.AuthConfig{PSK: n.PSK},
			IKEProposals: slices.Clone(proposals),
			IKELifetime:  ikeLife,
			// strongSwan's default uniqueids=yes: a new initiator SA
			// replaces the old ones of the same identity.
			InitialContact: c.Initiate,
			Children: []ike.ChildConfig{{
				Name:         "net",
				ESPProposals: slices.Clone(espProposals),
				LocalTS:      tsList(c.LocalTS),
				RemoteTS:     tsList(c.RemoteTS),
				Lifetime:     childLife,
			}},
		}
		if c.Initiate {
			if !c.Remote.IsValid() {
				return fail("connection to %s: no address to initiate to", c.Peer)
			}
			pc.Remote = netip.AddrPortFrom(c.Remote, ike.DefaultIKEPort)
		}
		switch p.DPD.Mode {
		case "periodic":
			pc.DPDDelay, pc.DPDPeriodic = ike.Duration(p.DPD.Interval.Duration), true
		case "on-demand":
			pc.DPDDelay = ike.Duration(p.DPD.Interval.Duration)
		}
		pc.DPDRetries = p.DPD.Retries
		cfg.Peers = append(cfg.Peers, pc)
	}
	return cfg, nil
}

// lifetime turns a profile's rekey interval and jitter fraction into the
// engine's: rekeyed at rekey minus up to jitter*rekey, deleted at the
// engine's default hard limit (1.1 * rekey).
func lifetime(rekey time.Duration, jitter float64) ike.Lifetime {
	l := ike.Lifetime{Rekey: ike.Duration(rekey), Jitter: ike.Duration(float64(rekey) * jitter)}
	l.NoJitter = l.Jitter == 0 // the engine reads a zero Jitter as its default
	return l
}

func tsList(ps []netip.Prefix) []ike.TrafficSelector {
	out := make([]ike.TrafficSelector, 0, len(ps))
	for _, p := range ps {
		p = p.Masked()
		out = append(out, ike.TrafficSelector{Start: p.Addr(), End: lastOf(p), EndPort: 0xffff})
	}
	return out
}

// mlkemName names the ML-KEM parameter set of a transform ID, or "".
func mlkemName(id uint16) string {
	switch id {
	case wire.KEMLKEM512:
		return "mlkem512"
	case wire.KEMLKEM768:
		return "mlkem768"
	case wire.KEMLKEM1024:
		return "mlkem1024"
	}
	return ""
}

// proposalReason is why a peer model cannot run an IKE proposal.
type proposalReason uint8

const (
	// mlkemMissing: an ML-KEM parameter set the model does not implement.
	mlkemMissing proposalReason = iota + 1
	// mlkemInInit: ML-KEM as the IKE_SA_INIT KE method (RFC 7296 Section
	// 1.2) without mlkem_in_init.
	mlkemInInit
	// noIntermediate: additional key exchanges (RFC 9370) without
	// IKE_INTERMEDIATE (RFC 9242).
	noIntermediate
)

// ProposalError is CheckProposal's objection to an IKE proposal.
type ProposalError struct {
	// Proposal is the proposal as given.
	Proposal string
	// MLKEM names the ML-KEM parameter set concerned ("" for a missing
	// IKE_INTERMEDIATE).
	MLKEM  string
	reason proposalReason
}

// Error names the proposal and what the profile lacks.
func (e *ProposalError) Error() string {
	switch e.reason {
	case mlkemInInit:
		return fmt.Sprintf("proposal %q puts %s in IKE_SA_INIT (mlkem_in_init = false)", e.Proposal, e.MLKEM)
	case noIntermediate:
		return fmt.Sprintf("proposal %q has additional key exchanges, but the profile has no IKE_INTERMEDIATE", e.Proposal)
	}
	return fmt.Sprintf("proposal %q uses %s, which the profile does not implement", e.Proposal, e.MLKEM)
}

// Short says what the device lacks without naming the proposal, as a
// predicate of the device ("implements no mlkem1024").
func (e *ProposalError) Short() string {
	switch e.reason {
	case mlkemInInit:
		return fmt.Sprintf("cannot put %s in IKE_SA_INIT (mlkem_in_init = false)", e.MLKEM)
	case noIntermediate:
		return "has no additional key exchanges (no IKE_INTERMEDIATE)"
	}
	return fmt.Sprintf("implements no %s", e.MLKEM)
}

// CheckProposal returns the parse error of an IKE proposal or a
// *ProposalError if a device of peer model p cannot run it: an ML-KEM
// parameter set the model does not implement, or ML-KEM as the IKE_SA_INIT
// KE method without mlkem_in_init; with initiator also additional key
// exchanges (RFC 9370 Section 2.1) without IKE_INTERMEDIATE, which only an
// initiator must send.
func CheckProposal(p *models.Peer, proposal string, initiator bool) error {
	props, err := suite.ParseProposals(wire.ProtocolIKE, proposal)
	if err != nil {
		return err
	}
	fail := func(r proposalReason, m string) error { return &ProposalError{Proposal: proposal, MLKEM: m, reason: r} }
	for _, pr := range props {
		for _, id := range pr.KE {
			if m := mlkemName(id); m != "" {
				if !slices.Contains(p.IKE.MLKEM, m) {
					return fail(mlkemMissing, m)
				}
				if !p.IKE.MLKEMInInit {
					return fail(mlkemInInit, m)
				}
			}
		}
		for _, round := range pr.AddKE {
			for _, id := range round {
				if id == 0 {
					continue
				}
				if initiator && !p.IKE.Intermediate {
					return fail(noIntermediate, "")
				}
				if m := mlkemName(id); m != "" && !slices.Contains(p.IKE.MLKEM, m) {
					return fail(mlkemMissing, m)
				}
			}
		}
	}
	return nil
}

// UnsupportedFields lists the profile's settings that the engine has no
// knob for yet, as "field = value: what the lab does instead".
func UnsupportedFields(p *models.Peer) []string {
	var out []string
	if p.IKE.Window > ike.MaxWindow {
		out = append(out, fmt.Sprintf("ike.window = %d: the engine's window is at most %d", p.IKE.Window, ike.MaxWindow))
	}
	if !slices.Contains(p.IKE.Auth, "psk") {
		out = append(out, "ike.auth has no psk: the lab authenticates with a pre-shared key")
	}
	if p.Retransmit.Tries == 0 {
		out = append(out, "retransmit.tries = 0: approximated by 1 (the engine reads 0 as its default)")
	}
	return out
}

// The profiles' proposals are checked with the engine's parser when they
// are loaded (models.ProposalChecker).
func init() {
	if models.ProposalChecker == nil {
		models.ProposalChecker = func(s string, isESP bool) error {
			proto := wire.ProtocolIKE
			if isESP {
				proto = wire.ProtocolESP
			}
			_, err := suite.ParseProposals(proto, s)
			return err
		}
	}
}
