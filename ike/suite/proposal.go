package suite

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pqlab/pqlab/ike/wire"
)

// Proposals in strongSwan's syntax: transform names joined by '-', several
// names of the same type being alternatives, for example
// "aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke2_none" (IKE) or
// "aes128-sha256-modp2048-esn" (ESP). Names are those of strongSwan's
// proposal keywords; keN_ names an Additional Key Exchange (RFC 9370) and
// keN_none makes that round optional.

// EncrTransform is an encryption transform with its Key Length attribute
// in bits (0 when the transform has none).
type EncrTransform struct {
	ID      uint16
	KeyBits int
}

// Proposal lists, per transform type, the acceptable transforms in order of
// preference: one SA payload proposal (RFC 7296 Section 3.3). Absent types
// are empty lists; for KE, ADDKEn, Integ and ESN an empty list means NONE
// only (respectively "no extended sequence numbers").
type Proposal struct {
	Protocol wire.ProtocolID
	Encr     []EncrTransform
	PRF      []uint16
	Integ    []uint16
	KE       []uint16
	AddKE    [MaxAddKE][]uint16
	ESN      []uint16
}

type token struct {
	name string
	id   uint16
}

// Token tables; the first name of an ID is the one String writes.
var (
	integTokens = []token{
		{"sha1", wire.IntegHMACSHA196}, {"sha", wire.IntegHMACSHA196},
		{"sha256", wire.IntegHMACSHA2256128}, {"sha2_256", wire.IntegHMACSHA2256128},
		{"sha384", wire.IntegHMACSHA2384192}, {"sha2_384", wire.IntegHMACSHA2384192},
		{"sha512", wire.IntegHMACSHA2512256}, {"sha2_512", wire.IntegHMACSHA2512256},
	}
	prfTokens = []token{
		{"prfsha1", wire.PRFHMACSHA1}, {"prfsha256", wire.PRFHMACSHA2256},
		{"prfsha384", wire.PRFHMACSHA2384}, {"prfsha512", wire.PRFHMACSHA2512},
	}
	keTokens = []token{
		{"modp2048", wire.KEMODP2048}, {"modp3072", wire.KEMODP3072}, {"modp4096", wire.KEMODP4096},
		{"ecp256", wire.KEECP256}, {"ecp384", wire.KEECP384}, {"ecp521", wire.KEECP521},
		{"x25519", wire.KECurve25519}, {"curve25519", wire.KECurve25519},
		{"x448", wire.KECurve448}, {"curve448", wire.KECurve448},
		{"mlkem512", wire.KEMLKEM512}, {"mlkem768", wire.KEMLKEM768}, {"mlkem1024", wire.KEMLKEM1024},
	}
	// integPRF maps an integrity transform to the PRF strongSwan derives
	// from it when an IKE proposal names no PRF.
	integPRF = map[uint16]uint16{
		wire.IntegHMACSHA196:     wire.PRFHMACSHA1,
		wire.IntegHMACSHA2256128: wire.PRFHMACSHA2256,
		wire.IntegHMACSHA2384192: wire.PRFHMACSHA2384,
		wire.IntegHMACSHA2512256: wire.PRFHMACSHA2512,
	}
)

func lookup(table []token, name string) (uint16, bool) {
	for _, t := range table {
		if t.name == name {
			return t.id, true
		}
	}
	return 0, false
}

func tokenFor(table []token, id uint16, kind string) string {
	for _, t := range table {
		if t.id == id {
			return t.name
		}
	}
	return fmt.Sprintf("%s%d", kind, id)
}

// parseEncr recognises aes, aes128, aes192, aes256 (CBC),
// aes<bits>gcm<8|12|16|64|96|128> and aes<bits>gcm (16-octet ICV), and
// chacha20poly1305.
func parseEncr(name string) (EncrTransform, bool) {
	if name == "chacha20poly1305" {
		return EncrTransform{wire.EncrChaCha20Poly1305, 0}, true
	}
	if name == "aes" {
		return EncrTransform{wire.EncrAESCBC, 128}, true
	}
	rest, ok := strings.CutPrefix(name, "aes")
	if !ok || len(rest) < 3 {
		return EncrTransform{}, false
	}
	bits, err := strconv.Atoi(rest[:3])
	if err != nil || (bits != 128 && bits != 192 && bits != 256) {
		return EncrTransform{}, false
	}
	switch rest[3:] {
	case "":
		return EncrTransform{wire.EncrAESCBC, bits}, true
	case "gcm8", "gcm64":
		return EncrTransform{wire.EncrAESGCM8, bits}, true
	case "gcm12", "gcm96":
		return EncrTransform{wire.EncrAESGCM12, bits}, true
	case "gcm16", "gcm128", "gcm":
		return EncrTransform{wire.EncrAESGCM16, bits}, true
	}
	return EncrTransform{}, false
}

func encrToken(id uint16, bits int) string {
	switch id {
	case wire.EncrAESCBC:
		return fmt.Sprintf("aes%d", bits)
	case wire.EncrAESGCM8:
		return fmt.Sprintf("aes%dgcm8", bits)
	case wire.EncrAESGCM12:
		return fmt.Sprintf("aes%dgcm12", bits)
	case wire.EncrAESGCM16:
		return fmt.Sprintf("aes%dgcm16", bits)
	case wire.EncrChaCha20Poly1305:
		return "chacha20poly1305"
	}
	return fmt.Sprintf("encr%d_%d", id, bits)
}

func addOnce[T comparable](list []T, v T) []T {
	if slices.Contains(list, v) {
		return list
	}
	return append(list, v)
}

// ParseProposal parses one proposal in strongSwan's syntax for protocol
// wire.ProtocolIKE or wire.ProtocolESP. As strongSwan does, an IKE proposal
// without a PRF takes the PRFs matching its integrity algorithms, integrity
// algorithms are dropped from an AEAD proposal, and an ESP proposal without
// esn/noesn gets noesn. Unknown names and incomplete or inconsistent
// proposals are errors.
func ParseProposal(proto wire.ProtocolID, s string) (*Proposal, error) {
	if proto != wire.ProtocolIKE && proto != wire.ProtocolESP {
		return nil, fmt.Errorf("suite: proposals for protocol %d are not supported", proto)
	}
	p := &Proposal{Protocol: proto}
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return nil, errors.New("suite: empty proposal")
	}
	for name := range strings.SplitSeq(s, "-") {
		if err := p.add(name); err != nil {
			return nil, fmt.Errorf("suite: proposal %q: %w", s, err)
		}
	}
	if err := p.complete(); err != nil {
		return nil, fmt.Errorf("suite: proposal %q: %w", s, err)
	}
	return p, nil
}

// ParseProposals parses a comma-separated list of proposals.
func ParseProposals(proto wire.ProtocolID, s string) ([]*Proposal, error) {
	var out []*Proposal
	for part := range strings.SplitSeq(s, ",") {
		p, err := ParseProposal(proto, part)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func (p *Proposal) add(name string) error {
	if name == "" {
		return errors.New("empty transform name")
	}
	if e, ok := parseEncr(name); ok {
		p.Encr = addOnce(p.Encr, e)
		return nil
	}
	if id, ok := lookup(integTokens, name); ok {
		p.Integ = addOnce(p.Integ, id)
		return nil
	}
	if id, ok := lookup(prfTokens, name); ok {
		if p.Protocol != wire.ProtocolIKE {
			return fmt.Errorf("%s: a PRF belongs to IKE proposals only", name)
		}
		p.PRF = addOnce(p.PRF, id)
		return nil
	}
	if id, ok := lookup(keTokens, name); ok {
		p.KE = addOnce(p.KE, id)
		return nil
	}
	if name == "esn" || name == "noesn" {
		if p.Protocol != wire.ProtocolESP {
			return fmt.Errorf("%s: ESN belongs to ESP proposals only", name)
		}
		p.ESN = addOnce(p.ESN, map[bool]uint16{true: wire.ESNYes, false: wire.ESNNo}[name == "esn"])
		return nil
	}
	if len(name) > 4 && name[0] == 'k' && name[1] == 'e' && name[3] == '_' && name[2] >= '1' && name[2] <= '7' {
		n := int(name[2] - '1')
		if name[4:] == "none" {
			p.AddKE[n] = addOnce(p.AddKE[n], wire.KENone)
			return nil
		}
		if id, ok := lookup(keTokens, name[4:]); ok {
			p.AddKE[n] = addOnce(p.AddKE[n], id)
			return nil
		}
		return fmt.Errorf("unknown key exchange method %q in %q", name[4:], name)
	}
	return fmt.Errorf("unknown transform %q", name)
}

func (p *Proposal) complete() error {
	if len(p.Encr) == 0 {
		return errors.New("no encryption algorithm")
	}
	aead := IsAEAD(p.Encr[0].ID)
	for _, e := range p.Encr[1:] {
		if IsAEAD(e.ID) != aead {
			return errors.New("AEAD and non-AEAD encryption algorithms mixed; write them as separate proposals")
		}
	}
	if p.Protocol == wire.ProtocolIKE && len(p.PRF) == 0 {
		for _, i := range p.Integ {
			p.PRF = addOnce(p.PRF, integPRF[i])
		}
		if len(p.PRF) == 0 {
			return errors.New("an IKE proposal needs a PRF (for example prfsha256)")
		}
	}
	if aead {
		p.Integ = nil
	} else if len(p.Integ) == 0 {
		return errors.New("a non-AEAD encryption algorithm needs an integrity algorithm (for example sha256)")
	}
	if p.Protocol == wire.ProtocolIKE && len(p.KE) == 0 {
		return errors.New("an IKE proposal needs a key exchange method (for example x25519)")
	}
	if p.Protocol == wire.ProtocolESP && len(p.ESN) == 0 {
		p.ESN = []uint16{wire.ESNNo}
	}
	return nil
}

// String formats the proposal in strongSwan's syntax.
func (p *Proposal) String() string {
	var parts []string
	for _, e := range p.Encr {
		parts = append(parts, encrToken(e.ID, e.KeyBits))
	}
	for _, id := range p.Integ {
		parts = append(parts, tokenFor(integTokens, id, "integ"))
	}
	for _, id := range p.PRF {
		parts = append(parts, tokenFor(prfTokens, id, "prf"))
	}
	for _, id := range p.KE {
		parts = append(parts, tokenFor(keTokens, id, "ke"))
	}
	for i, l := range p.AddKE {
		for _, id := range l {
			name := "none"
			if id != wire.KENone {
				name = tokenFor(keTokens, id, "ke")
			}
			parts = append(parts, fmt.Sprintf("ke%d_%s", i+1, name))
		}
	}
	for _, id := range p.ESN {
		parts = append(parts, map[bool]string{true: "esn", false: "noesn"}[id == wire.ESNYes])
	}
	return strings.Join(parts, "-")
}

// orNone returns l, or the single-entry list {none} for an absent type.
func orNone(l []uint16, none uint16) []uint16 {
	if len(l) == 0 {
		return []uint16{none}
	}
	return l
}

// pick returns the first entry of mine that theirs also lists.
func pick(mine, theirs []uint16) (uint16, bool) {
	for _, id := range mine {
		if slices.Contains(theirs, id) {
			return id, true
		}
	}
	return 0, false
}

func sameEncr(a, b EncrTransform) bool {
	if a.ID != b.ID {
		return false
	}
	if a.ID == wire.EncrChaCha20Poly1305 {
		return true // no Key Length attribute; 0 and 256 are the same
	}
	return a.KeyBits == b.KeyBits
}

// Select chooses, as a responder, one transform of each type from offer that
// p also accepts, preferring p's order (strongSwan's default), and returns
// the resulting suite. An absent KE, ADDKEn, integrity or ESN type counts as
// NONE (no ESN), so an optional round (keN_none) matches a peer that does
// not offer it. It reports false when some type has no common transform.
func (p *Proposal) Select(offer *Proposal) (Suite, bool) {
	if p.Protocol != offer.Protocol {
		return Suite{}, false
	}
	s := Suite{Protocol: p.Protocol}
	found := false
	for _, mine := range p.Encr {
		for _, theirs := range offer.Encr {
			if !sameEncr(mine, theirs) {
				continue
			}
			if IsAEAD(mine.ID) {
				if _, ok := pick([]uint16{wire.IntegNone}, orNone(offer.Integ, wire.IntegNone)); !ok {
					continue
				}
				s.Integ = wire.IntegNone
			} else {
				integ, ok := pick(p.Integ, offer.Integ)
				if !ok || integ == wire.IntegNone {
					continue
				}
				s.Integ = integ
			}
			s.Encr, s.EncrKeyBits, found = mine.ID, mine.KeyBits, true
			break
		}
		if found {
			break
		}
	}
	if !found {
		return Suite{}, false
	}
	var ok bool
	if p.Protocol == wire.ProtocolIKE {
		if s.PRF, ok = pick(p.PRF, offer.PRF); !ok {
			return Suite{}, false
		}
	}
	if s.KE, ok = pick(orNone(p.KE, wire.KENone), orNone(offer.KE, wire.KENone)); !ok {
		return Suite{}, false
	}
	for i := range p.AddKE {
		if s.AddKE[i], ok = pick(orNone(p.AddKE[i], wire.KENone), orNone(offer.AddKE[i], wire.KENone)); !ok {
			return Suite{}, false
		}
	}
	if p.Protocol == wire.ProtocolESP {
		esn, ok := pick(orNone(p.ESN, wire.ESNNo), orNone(offer.ESN, wire.ESNNo))
		if !ok {
			return Suite{}, false
		}
		s.ESN = esn == wire.ESNYes
	}
	return s, true
}

// Contains reports whether s uses only transforms that p lists, so an
// initiator can check the suite a responder chose from its proposal.
func (p *Proposal) Contains(s *Suite) bool {
	if p.Protocol != s.Protocol {
		return false
	}
	one := &Proposal{Protocol: s.Protocol, Encr: []EncrTransform{{s.Encr, s.EncrKeyBits}},
		Integ: []uint16{s.Integ}, KE: []uint16{s.KE}}
	if s.Protocol == wire.ProtocolIKE {
		one.PRF = []uint16{s.PRF}
	} else {
		one.ESN = []uint16{map[bool]uint16{true: wire.ESNYes, false: wire.ESNNo}[s.ESN]}
	}
	for i, id := range s.AddKE {
		one.AddKE[i] = []uint16{id}
	}
	got, ok := p.Select(one)
	if ok && got.Encr == wire.EncrChaCha20Poly1305 {
		got.EncrKeyBits = s.EncrKeyBits
	}
	return ok && got == *s
}
