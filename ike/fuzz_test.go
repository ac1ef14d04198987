package ike

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/pqlab/pqlab/ike/wire"
)

// Fuzz targets: arbitrary datagrams to a responder and to an initiator in
// the middle of a handshake, and arbitrary protected inner payloads to SAs in
// each state. Normal test runs execute only the seed corpus; `make fuzz`
// explores.

// fuzzResponder returns a responder that has answered case 1's recorded
// IKE_SA_INIT (so IKE_INTERMEDIATE under stage 0 keys is expected), and
// optionally completed the whole recorded handshake.
func fuzzResponder(t testing.TB, c *ssCase, established bool) *Engine {
	_, resp := c.peers()
	e, err := NewEngine(Config{Peers: []PeerConfig{resp}, KEMethod: fixedKE(c.KeyExchanges)}, zeroReader{})
	if err != nil {
		t.Fatal(err)
	}
	e.ent = &scripted{spis: []uint64{binary.BigEndian.Uint64(c.SPIr), 0x0102030405060708}, nonces: [][]byte{c.Nr, c.Nr, c.Nr},
		childSPIs: []uint32{binary.BigEndian.Uint32(c.ChildSAs[0].SPIrIn), 0x01020304}}
	for _, m := range c.Messages {
		if m.Dir != "i->r" || m.Exchange == "INFORMATIONAL" || !established && m.Exchange != "IKE_SA_INIT" {
			continue
		}
		e.Handle(t0r, addrOf(m.Dst), addrOf(m.Src), m.Hex)
	}
	drainOut(e)
	drainEvents(e)
	return e
}

// fuzzInitiator returns an initiator waiting for case 1's IKE_SA_INIT
// response, or (afterInit) for its IKE_INTERMEDIATE response.
func fuzzInitiator(t testing.TB, c *ssCase, afterInit bool) *Engine {
	ini, _ := c.peers()
	e, err := NewEngine(Config{KEMethod: fixedKE(c.KeyExchanges), NATT: NATTConfig{ForceEncap: true}}, zeroReader{})
	if err != nil {
		t.Fatal(err)
	}
	e.ent = &scripted{spis: []uint64{binary.BigEndian.Uint64(c.SPIi), 0x0102030405060708}, nonces: [][]byte{c.Ni, c.Ni, c.Ni},
		childSPIs: []uint32{binary.BigEndian.Uint32(c.ChildSAs[0].SPIiIn), 0x01020304}}
	if _, err := e.Initiate(t0r, ini); err != nil {
		t.Fatal(err)
	}
	if afterInit {
		m := c.Messages[1]
		e.Handle(t0r, addrOf(m.Dst), addrOf(m.Src), m.Hex)
	}
	drainOut(e)
	drainEvents(e)
	return e
}

// exercise delivers d on both ports, runs the timers for a while and checks
// the engine's bookkeeping.
func exercise(t *testing.T, e *Engine, local, remote string, d []byte) {
	for _, port := range []uint16{500, 4500} {
		l := addrOf(local)
		e.Handle(t0r.Add(time.Second), netipPort(l, port), netipPort(addrOf(remote), port), d)
	}
	for i := 1; i <= 5; i++ {
		now := t0r.Add(time.Duration(i) * time.Hour)
		e.HandleTimeout(now)
		if next, ok := e.NextTimeout(); ok && !next.After(now) {
			t.Fatalf("deadline %v not after %v", next, now)
		}
	}
	drainOut(e)
	drainEvents(e)
	if e.nHalf < 0 || e.nHalf > len(e.sas) {
		t.Fatalf("half-open count %d of %d SAs", e.nHalf, len(e.sas))
	}
}

func netipPort(a netip.AddrPort, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr(), port)
}

func FuzzHandle(f *testing.F) {
	c := loadCase(f, "case1_x25519_mlkem768.json")
	for _, name := range handshakeCases {
		for _, m := range loadCase(f, name).Messages {
			f.Add([]byte(m.Hex))
		}
	}
	f.Add([]byte{0xff})
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, d []byte) {
		exercise(t, fuzzResponder(t, c, false), "192.0.2.2:500", "192.0.2.1:500", d)
		exercise(t, fuzzInitiator(t, c, false), "192.0.2.1:500", "192.0.2.2:500", d)
		exercise(t, fuzzInitiator(t, c, true), "192.0.2.1:500", "192.0.2.2:500", d)
	})
}

// FuzzInner seals arbitrary inner payloads under the recorded keys, so that
// the fuzzer reaches the payload processing of every exchange: as
// IKE_INTERMEDIATE/IKE_AUTH to a half-open responder, as any request to an
// established responder, and as the IKE_INTERMEDIATE response to an
// initiator.
func FuzzInner(f *testing.F) {
	c := loadCase(f, "case1_x25519_mlkem768.json")
	for _, m := range c.Messages {
		if len(m.SKPlaintext) > 0 {
			f.Add(uint8(43), uint8(m.Hex[m.IKEOffset+28]), []byte(m.SKPlaintext))
		}
	}
	c6 := loadCase6(f)
	for _, m := range c6.Messages {
		if len(m.SKPlaintext) > 0 {
			f.Add(uint8(36), uint8(m.Hex[m.IKEOffset+28]), []byte(m.SKPlaintext))
		}
	}
	f.Fuzz(func(t *testing.T, exch, first uint8, plain []byte) {
		if len(plain) > 8192 {
			return
		}
		spiI, spiR := binary.BigEndian.Uint64(c.SPIi), binary.BigEndian.Uint64(c.SPIr)
		seal := func(stage int, from string, h wire.Header) []byte {
			sk := c.sk(t, stage, from)
			hdr, err := wire.AppendSKHeaders(nil, h, wire.PayloadType(first), sk.SealedLen(len(plain)))
			if err != nil {
				t.Skip()
			}
			msg, err := sk.Seal(hdr, plain)
			if err != nil {
				t.Fatal(err)
			}
			return append([]byte{0, 0, 0, 0}, msg...)
		}
		x := wire.ExchangeType(exch)
		// Half-open responder: the next request is MID 1.
		e := fuzzResponder(t, c, false)
		e.Handle(t0r, addrOf("192.0.2.2:4500"), addrOf("192.0.2.1:4500"),
			seal(0, "i", wire.Header{SPIi: spiI, SPIr: spiR, Exchange: x, Flags: wire.FlagInitiator, MessageID: 1}))
		exercise(t, e, "192.0.2.2:500", "192.0.2.1:500", nil)
		// Established responder: the next request is MID 3.
		e = fuzzResponder(t, c, true)
		e.Handle(t0r, addrOf("192.0.2.2:4500"), addrOf("192.0.2.1:4500"),
			seal(1, "i", wire.Header{SPIi: spiI, SPIr: spiR, Exchange: x, Flags: wire.FlagInitiator, MessageID: 3}))
		exercise(t, e, "192.0.2.2:500", "192.0.2.1:500", nil)
		// Initiator waiting for the IKE_INTERMEDIATE response (MID 1).
		e = fuzzInitiator(t, c, true)
		e.Handle(t0r, addrOf("192.0.2.1:4500"), addrOf("192.0.2.2:4500"),
			seal(0, "r", wire.Header{SPIi: spiI, SPIr: spiR, Exchange: wire.ExchangeIKEIntermediate, Flags: wire.FlagResponse, MessageID: 1}))
		exercise(t, e, "192.0.2.1:500", "192.0.2.2:500", nil)
	})
}
