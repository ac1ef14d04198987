package ike

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pqlab/pqlab/ike/suite"
	"github.com/pqlab/pqlab/ike/wire"
)

// Replay of case 6: on the IKE SA of case 1, a Child SA with PFS and an
// additional key exchange (CREATE_CHILD_SA + IKE_FOLLOWUP_KE), its rekey and
// the old Child SA's deletion, the IKE SA rekey and the old IKE SA's
// deletion, and finally the deletion of the new IKE SA.

type ssChild6 struct {
	Ni           hexBytes `json:"nonce_i"`
	Nr           hexBytes `json:"nonce_r"`
	KeyExchanges []ssKE   `json:"key_exchanges"`
	SPIiIn       hexBytes `json:"spi_i_inbound"`
	SPIrIn       hexBytes `json:"spi_r_inbound"`
	IToR         ssDir    `json:"esp_i_to_r"`
	RToI         ssDir    `json:"esp_r_to_i"`
}

type ssCase6 struct {
	Proposals struct {
		IKE string `json:"ike"`
		PFS string `json:"esp_pfs_child"`
	} `json:"proposals"`
	Parent   ssKeys   `json:"parent_ike_sa"`
	Create   ssChild6 `json:"child_create_pfs"`
	Rekey    ssChild6 `json:"child_rekey"`
	IKERekey struct {
		NewSPIi      hexBytes `json:"new_spi_i"`
		NewSPIr      hexBytes `json:"new_spi_r"`
		Ni           hexBytes `json:"nonce_i"`
		Nr           hexBytes `json:"nonce_r"`
		KeyExchanges []ssKE   `json:"key_exchanges"`
		Derivation   ssKeys   `json:"derivation"`
	} `json:"ike_rekey"`
	Messages []struct {
		ssMessage
		IsResponse bool `json:"is_response"`
	} `json:"messages"`
}

func loadCase6(t testing.TB) *ssCase6 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "strongswan6", "case6_rekey_x25519_mlkem768.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c ssCase6
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

// queuedKE hands out recorded key exchanges per method in call order.
func queuedKE(lists ...[]ssKE) KEMethodFunc {
	q := map[uint16][]ssKE{}
	for _, l := range lists {
		for _, k := range l {
			q[k.MethodID] = append(q[k.MethodID], k)
		}
	}
	return func(id uint16) (suite.Method, error) {
		if len(q[id]) == 0 {
			return nil, errors.New("no recorded exchange left for this method")
		}
		k := q[id][0]
		q[id] = q[id][1:]
		return &suite.Fixed{MethodID: id, InitiatorData: k.KEi, ResponderData: k.KEr, Shared: k.Shared}, nil
	}
}

func u32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }
func u64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

// sk6 returns an SK opening what side ("i"/"r") sends under keys.
func sk6(t testing.TB, keys ssKeys, from string) *suite.SK {
	t.Helper()
	ek := keys.SKei
	if from == "r" {
		ek = keys.SKer
	}
	sk, err := suite.NewSK(wire.EncrAESGCM16, 256, wire.IntegNone, ek, nil, zeroReader{})
	if err != nil {
		t.Fatal(err)
	}
	return sk
}

func (c *ssCase6) plain(dir string, mid uint32, exch string) []byte {
	var p []byte
	for _, m := range c.Messages {
		if m.Dir == dir && m.MessageID == mid && m.Exchange == exch {
			p = append(p, m.SKPlaintext...)
		}
	}
	return p
}

func checkChild6(t testing.TB, rec *ssChild6, got *ChildSA, initiator bool) {
	t.Helper()
	in, out := rec.RToI, rec.IToR
	if !initiator {
		in, out = out, in
	}
	if got.InboundSPI != u32(in.SPI) || got.OutboundSPI != u32(out.SPI) ||
		!bytes.Equal(got.Inbound.Encr, in.Encr) || !bytes.Equal(got.Outbound.Encr, out.Encr) {
		t.Fatalf("Child SA %08x/%08x differs from the record %x/%x", got.InboundSPI, got.OutboundSPI, in.SPI, out.SPI)
	}
}

func case6Peers(c1 *ssCase, c6 *ssCase6) (PeerConfig, PeerConfig) {
	ini, resp := c1.peers()
	ini.Children = append(ini.Children, ChildConfig{Name: "pfs", ESPProposals: []string{c6.Proposals.PFS},
		LocalTS: []TrafficSelector{MustTS("10.1.1.0/24")}, RemoteTS: []TrafficSelector{MustTS("10.2.1.0/24")}})
	resp.Children = append(resp.Children, ChildConfig{Name: "pfs", ESPProposals: []string{c6.Proposals.PFS},
		LocalTS: []TrafficSelector{MustTS("10.2.1.0/24")}, RemoteTS: []TrafficSelector{MustTS("10.1.1.0/24")}})
	return ini, resp
}

// TestReplayCase6Responder feeds case 1's and case 6's initiator messages
// to the engine as responder.
func TestReplayCase6Responder(t *testing.T) {
	c1, c6 := loadCase(t, "case1_x25519_mlkem768.json"), loadCase6(t)
	_, resp := case6Peers(c1, c6)
	e, err := NewEngine(Config{Peers: []PeerConfig{resp},
		KEMethod: queuedKE(c1.KeyExchanges, c6.Create.KeyExchanges, c6.Rekey.KeyExchanges, c6.IKERekey.KeyExchanges)}, zeroReader{})
	if err != nil {
		t.Fatal(err)
	}
	e.ent = &scripted{
		spis:      []uint64{u64(c1.SPIr), u64(c6.IKERekey.NewSPIr)},
		nonces:    [][]byte{c1.Nr, c6.Create.Nr, c6.Rekey.Nr, c6.IKERekey.Nr},
		childSPIs: []uint32{u32(c1.ChildSAs[0].SPIrIn), u32(c6.Create.SPIrIn), u32(c6.Rekey.SPIrIn)},
	}
	now := t0r
	feed := func(dst, src string, data []byte) []Datagram {
		now = now.Add(time.Millisecond)
		e.Handle(now, addrOf(dst), addrOf(src), data)
		return drainOut(e)
	}
	for _, m := range c1.Messages {
		if m.Dir == "i->r" && m.Exchange != "INFORMATIONAL" {
			feed(m.Dst, m.Src, m.Hex)
		}
	}
	responses := map[uint32][][]byte{}
	for _, m := range c6.Messages {
		if m.Dir != "i->r" {
			continue
		}
		for _, d := range feed(m.Dst, m.Src, m.Hex) {
			responses[m.MessageID] = append(responses[m.MessageID], d.Data)
		}
	}
	if st := e.Stats(); st.Dropped != ([numDropReasons]uint64{}) {
		t.Fatalf("drops: %v", st.Dropped)
	}
	// Responses whose inner payloads the protocol fixes equal strongSwan's:
	// IKE_FOLLOWUP_KE (KE only), the Child SA delete, the IKE SA delete. The
	// CREATE_CHILD_SA responses come out identical too (same payload order,
	// ADDITIONAL_KEY_EXCHANGE data 0x42 injected).
	for _, x := range []struct {
		mid  uint32
		exch string
	}{{3, "CREATE_CHILD_SA"}, {4, "IKE_FOLLOWUP_KE"}, {5, "CREATE_CHILD_SA"}, {6, "IKE_FOLLOWUP_KE"}, {7, "INFORMATIONAL"},
		{8, "CREATE_CHILD_SA"}, {9, "IKE_FOLLOWUP_KE"}, {10, "INFORMATIONAL"}} {
		got := openMessage(t, sk6(t, c6.Parent, "r"), responses[x.mid])
		if want := c6.plain("r->i", x.mid, x.exch); !bytes.Equal(got, want) {
			t.Errorf("%s %d response differs:\n got %x\nwant %x", x.exch, x.mid, got, want)
		}
	}
	// The delete of the rekeyed IKE SA arrived under the new keys and was
	// answered under them.
	if got := openMessage(t, sk6(t, c6.IKERekey.Derivation, "r"), responses[0]); len(got) != 0 {
		t.Errorf("response to the IKE SA delete is not empty: %x", got)
	}
	var kinds []EventKind
	for _, ev := range drainEvents(e) {
		kinds = append(kinds, ev.Kind)
		switch ev.Kind {
		case EventChildSAInstalled:
			if ev.Child.Name == "pfs" {
				checkChild6(t, &c6.Create, ev.Child, false)
			}
		case EventChildSARekeyed:
			checkChild6(t, &c6.Rekey, ev.Child, false)
			if ev.Child.RekeyOf != u32(c6.Create.SPIrIn) {
				t.Errorf("RekeyOf %08x", ev.Child.RekeyOf)
			}
		case EventIKESARekeyed:
			if ev.SPIi != u64(c6.IKERekey.NewSPIi) || ev.SPIr != u64(c6.IKERekey.NewSPIr) || ev.Initiator {
				t.Errorf("rekeyed IKE SA %x/%x", ev.SPIi, ev.SPIr)
			}
		case EventFailed:
			t.Fatalf("failure %v", ev)
		}
	}
	want := []EventKind{EventIKESAEstablished, EventChildSAInstalled, EventChildSAInstalled, EventChildSARekeyed,
		EventChildSADeleted, EventIKESARekeyed, EventIKESADeleted, EventChildSADeleted, EventChildSADeleted, EventIKESADeleted}
	if !equalKinds(kinds, want) {
		t.Fatalf("events %v, want %v", kinds, want)
	}
	if st := e.Stats(); st.IKESAs != 0 || st.ChildSAs != 0 {
		t.Fatalf("state left: %+v", st)
	}
}

func equalKinds(a, b []EventKind) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestReplayCase6Initiator drives the engine as initiator through the
// same exchanges and feeds it strongSwan's responses.
func TestReplayCase6Initiator(t *testing.T) {
	c1, c6 := loadCase(t, "case1_x25519_mlkem768.json"), loadCase6(t)
	ini, _ := case6Peers(c1, c6)
	e, err := NewEngine(Config{NATT: NATTConfig{ForceEncap: true},
		KEMethod: queuedKE(c1.KeyExchanges, c6.Create.KeyExchanges, c6.Rekey.KeyExchanges, c6.IKERekey.KeyExchanges)}, zeroReader{})
	if err != nil {
		t.Fatal(err)
	}
	e.ent = &scripted{
		spis:      []uint64{u64(c1.SPIi), u64(c6.IKERekey.NewSPIi)},
		nonces:    [][]byte{c1.Ni, c6.Create.Ni, c6.Rekey.Ni, c6.IKERekey.Ni},
		childSPIs: []uint32{u32(c1.ChildSAs[0].SPIiIn), u32(c6.Create.SPIiIn), u32(c6.Rekey.SPIiIn)},
	}
	now := t0r
	id, err := e.Initiate(now, ini)
	if err != nil {
		t.Fatal(err)
	}
	drainOut(e)
	sent := map[uint32][][]byte{}
	collect := func() {
		for _, d := range drainOut(e) {
			h, err := wire.ParseHeader(d.Data[ikeOffset(d):])
			if err != nil {
				t.Fatal(err)
			}
			sent[h.MessageID] = append(sent[h.MessageID], d.Data)
		}
	}
	feed := func(m ssMessage) {
		now = now.Add(time.Millisecond)
		e.Handle(now, addrOf(m.Dst), addrOf(m.Src), m.Hex)
		collect()
	}
	for _, m := range c1.Messages {
		if m.Dir == "r->i" && m.Exchange != "INFORMATIONAL" {
			feed(m)
		}
	}
	var events []Event
	events = append(events, drainEvents(e)...)
	resp := func(i int) ssMessage { return c6.Messages[i].ssMessage }
	step := func(f func() error, responses ...int) {
		if f != nil {
			if err := f(); err != nil {
				t.Fatal(err)
			}
			collect()
		}
		for _, i := range responses {
			feed(resp(i))
		}
		events = append(events, drainEvents(e)...)
	}
	step(func() error { return e.CreateChildSA(now, id, "pfs") }, 1, 4)
	step(func() error { return e.RekeyChildSA(now, u32(c6.Create.SPIiIn)) }, 6, 9, 11)
	step(func() error { return e.RekeyIKESA(now, id) }, 13, 16, 18)
	var newID SAID
	for _, ev := range events {
		if ev.Kind == EventIKESARekeyed {
			newID = ev.SA
		}
	}
	step(func() error { return e.Delete(now, newID) }, 20)
	if st := e.Stats(); st.Dropped != ([numDropReasons]uint64{}) {
		t.Fatalf("drops: %v", st.Dropped)
	}
	// Our requests whose content the protocol fixes equal strongSwan's.
	for _, x := range []struct {
		mid  uint32
		exch string
	}{{4, "IKE_FOLLOWUP_KE"}, {6, "IKE_FOLLOWUP_KE"}, {7, "INFORMATIONAL"}, {9, "IKE_FOLLOWUP_KE"}, {10, "INFORMATIONAL"}} {
		got := openMessage(t, sk6(t, c6.Parent, "i"), sent[x.mid])
		if want := c6.plain("i->r", x.mid, x.exch); !bytes.Equal(got, want) {
			t.Errorf("%s %d request differs:\n got %x\nwant %x", x.exch, x.mid, got, want)
		}
	}
	if got, want := openMessage(t, sk6(t, c6.IKERekey.Derivation, "i"), sent[0][:1]), c6.plain("i->r", 0, "INFORMATIONAL"); !bytes.Equal(got, want) {
		t.Errorf("delete of the new IKE SA differs: %x / %x", got, want)
	}
	var kinds []EventKind
	for _, ev := range events {
		kinds = append(kinds, ev.Kind)
		switch ev.Kind {
		case EventChildSAInstalled:
			if ev.Child.Name == "pfs" {
				checkChild6(t, &c6.Create, ev.Child, true)
			}
		case EventChildSARekeyed:
			checkChild6(t, &c6.Rekey, ev.Child, true)
		case EventFailed:
			t.Fatalf("failure %v", ev)
		}
	}
	want := []EventKind{EventIKESAEstablished, EventChildSAInstalled, EventChildSAInstalled, EventChildSARekeyed,
		EventChildSADeleted, EventIKESARekeyed, EventIKESADeleted, EventChildSADeleted, EventChildSADeleted, EventIKESADeleted}
	if !equalKinds(kinds, want) {
		t.Fatalf("events %v, want %v", kinds, want)
	}
}
