package esp

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/pqlab/pqlab/ike/wire"
)

// suites lists every supported transform combination.
var suites = []Suite{
	{Encr: wire.EncrAESGCM16, KeyBits: 128},
	{Encr: wire.EncrAESGCM16, KeyBits: 256},
	{Encr: wire.EncrChaCha20Poly1305},
	{Encr: wire.EncrAESCBC, KeyBits: 128, Integ: wire.IntegHMACSHA2256128},
	{Encr: wire.EncrAESCBC, KeyBits: 256, Integ: wire.IntegHMACSHA2256128},
	{Encr: wire.EncrAESCBC, KeyBits: 192, Integ: wire.IntegHMACSHA2384192},
	{Encr: wire.EncrAESCBC, KeyBits: 256, Integ: wire.IntegHMACSHA2512256},
}

// seeded returns a deterministic reader for keys and IVs.
func seeded(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return rand.NewChaCha8(s)
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// pairConfig returns matching outbound and inbound configurations: the
// local end owns 10.1.0.0/16 and fd00:1::/64, the peer 10.2.0.0/16 and
// fd00:2::/64.
func pairConfig(t testing.TB, s Suite, seed uint64) (out, in SAConfig) {
	t.Helper()
	r := seeded(seed)
	el, il, err := s.KeyLengths()
	if err != nil {
		t.Fatal(err)
	}
	keymat := make([]byte, 2*(el+il))
	r.Read(keymat)
	k1, _, err := SplitKEYMAT(keymat, s)
	if err != nil {
		t.Fatal(err)
	}
	local := []Selector{SelectorFromPrefix(mustPrefix("10.1.0.0/16")), SelectorFromPrefix(mustPrefix("fd00:1::/64"))}
	remote := []Selector{SelectorFromPrefix(mustPrefix("10.2.0.0/16")), SelectorFromPrefix(mustPrefix("fd00:2::/64"))}
	out = SAConfig{SPI: 0xc0de0001 + uint32(seed), Suite: s, Keys: k1, Local: local, Remote: remote, Rand: r}
	in = out
	in.Local, in.Remote = remote, local // the peer's view
	in.Rand = nil
	return out, in
}

func newPair(t testing.TB, s Suite, seed uint64) (*OutboundSA, *InboundSA) {
	t.Helper()
	oc, ic := pairConfig(t, s, seed)
	o, err := NewOutboundSA(oc)
	if err != nil {
		t.Fatal(err)
	}
	i, err := NewInboundSA(ic)
	if err != nil {
		t.Fatal(err)
	}
	return o, i
}

// ipPacket builds an IPv4 or IPv6 packet with a TCP/UDP-like 4-octet port
// header followed by a counting payload; total length n (at least 44 for
// IPv6, 24 for IPv4).
func ipPacket(src, dst netip.Addr, proto uint8, sport, dport uint16, n int) []byte {
	p := make([]byte, n)
	hl := ipv4HeaderSize
	if src.Is4() {
		p[0] = 0x45
		binary.BigEndian.PutUint16(p[2:4], uint16(n))
		p[8] = 64
		p[9] = proto
		s, d := src.As4(), dst.As4()
		copy(p[12:], s[:])
		copy(p[16:], d[:])
		binary.BigEndian.PutUint16(p[10:12], ipv4Checksum(p[:20]))
	} else {
		hl = ipv6HeaderSize
		p[0] = 0x60
		binary.BigEndian.PutUint16(p[4:6], uint16(n-ipv6HeaderSize))
		p[6] = proto
		p[7] = 64
		s, d := src.As16(), dst.As16()
		copy(p[8:], s[:])
		copy(p[24:], d[:])
	}
	binary.BigEndian.PutUint16(p[hl:], sport)
	binary.BigEndian.PutUint16(p[hl+2:], dport)
	for i := hl + 4; i < n; i++ {
		p[i] = byte(i)
	}
	return p
}

var (
	a1 = netip.MustParseAddr("10.1.0.5")
	a2 = netip.MustParseAddr("10.2.0.7")
	b1 = netip.MustParseAddr("fd00:1::5")
	b2 = netip.MustParseAddr("fd00:2::7")
)

// sealPlain encrypts pt (which must already hold padding and trailer) as
// the packet with sequence number seq, bypassing Seal's trailer logic, to
// forge authenticated but mis-padded packets.
func sealPlain(sa *OutboundSA, seq uint64, pt []byte) []byte {
	t := sa.t
	hdr := HeaderSize + t.ivLen
	out := make([]byte, hdr+len(pt)+t.icvLen)
	binary.BigEndian.PutUint32(out, sa.cfg.SPI)
	binary.BigEndian.PutUint32(out[4:], uint32(seq))
	binary.BigEndian.PutUint64(out[HeaderSize:], seq)
	copy(out[hdr:], pt)
	ct := out[hdr : hdr+len(pt)]
	if t.aead != nil {
		sc := scratchBuf{b: make([]byte, scratchSize)}
		nonce, aad := sc.nonceAAD(&t.salt, out[HeaderSize:hdr], out[:HeaderSize], seq, sa.cfg.Suite.ESN)
		t.aead.Seal(ct[:0], nonce, ct, aad)
		return out
	}
	t.setIV(out[HeaderSize:hdr], true)
	t.cbc.CryptBlocks(ct, ct)
	copy(out[hdr+len(pt):], t.icv(out[:hdr+len(pt)], seq, sa.cfg.Suite.ESN))
	return out
}

// setTop moves an inbound SA's window as if seq had been received.
func setTop(sa *InboundSA, seq uint64) {
	sa.lockWindow()
	sa.replay.Update(seq)
	sa.unlockWindow(sa.replay.top)
}

// resetWindow lets an inbound SA accept every sequence number again.
func resetWindow(sa *InboundSA) {
	sa.lockWindow()
	clear(sa.replay.ring)
	sa.replay.top = 0
	sa.unlockWindow(0)
}

// selMatches matches one selector against a flow's destination side.
func selMatches(s Selector, F *Flow) bool {
	c := compile([]Selector{s})[0]
	f := flowOf(F)
	return c.match(&f, f.dst, f.dport)
}
