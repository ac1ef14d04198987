package esp

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/pqlab/pqlab/ike/wire"
)

// Child SA records from strongSwan 6.0.6 (testdata/*.json, copied from
// ../shared/testdata/strongswan6; see its README).
type vecKeys struct {
	SPI   string `json:"spi"`
	Encr  string `json:"encryption_key"`
	Integ string `json:"integrity_key"`
}

type vecPacket struct {
	Frame int    `json:"frame"`
	Dir   string `json:"dir"`
	SPI   string `json:"spi"`
	Seq   uint32 `json:"seq"`
	Src   string `json:"src"`
	Dst   string `json:"dst"`
	Hex   string `json:"hex"`
}

type vecChild struct {
	Name       string `json:"name"`
	Negotiated struct {
		Transforms []struct {
			Type      int `json:"type"`
			ID        int `json:"id"`
			KeyLength int `json:"key_length"`
		} `json:"transforms"`
	} `json:"negotiated"`
	KEYMAT      string      `json:"KEYMAT"`
	EncrKeyLen  int         `json:"encr_key_len"`
	IntegKeyLen int         `json:"integ_key_len"`
	IToR        vecKeys     `json:"esp_i_to_r"`
	RToI        vecKeys     `json:"esp_r_to_i"`
	Packets     []vecPacket `json:"esp_packets"`
}

func (c *vecChild) suite(t *testing.T) Suite {
	var s Suite
	for _, tr := range c.Negotiated.Transforms {
		switch wire.TransformType(tr.Type) {
		case wire.TransformENCR:
			s.Encr, s.KeyBits = uint16(tr.ID), tr.KeyLength
		case wire.TransformINTEG:
			s.Integ = uint16(tr.ID)
		case wire.TransformESN:
			s.ESN = uint16(tr.ID) == wire.ESNYes
		}
	}
	if s.Encr == 0 {
		t.Fatalf("%s: no ENCR transform", c.Name)
	}
	return s
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// loadChildren returns every Child SA record with ESP packets.
func loadChildren(t testing.TB) map[string]*vecChild {
	t.Helper()
	files, err := filepath.Glob("testdata/case*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	out := map[string]*vecChild{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			ChildSAs   []*vecChild `json:"child_sas"`
			CreatePFS  *vecChild   `json:"child_create_pfs"`
			ChildRekey *vecChild   `json:"child_rekey"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		all := append(doc.ChildSAs, doc.CreatePFS, doc.ChildRekey)
		for i, c := range all {
			if c == nil || len(c.Packets) == 0 {
				continue
			}
			key := filepath.Base(f) + "/" + c.Name
			if i >= len(doc.ChildSAs) {
				key += "-rekey"
			}
			out[key] = c
		}
	}
	return out
}

var anyV4 = []Selector{{EndPort: 0xffff, Start: netip.MustParseAddr("0.0.0.0"), End: netip.MustParseAddr("255.255.255.255")}}

// checkICMPEcho verifies that p is a well-formed IPv4 ICMP echo packet
// (header checksum, ICMP checksum) and returns its type.
func checkICMPEcho(t *testing.T, p []byte) byte {
	t.Helper()
	if len(p) < 28 || p[0] != 0x45 || p[9] != ProtoICMP {
		t.Fatalf("inner packet is not IPv4/ICMP: %x", p)
	}
	if int(binary.BigEndian.Uint16(p[2:4])) != len(p) {
		t.Fatalf("inner length %d, have %d octets", binary.BigEndian.Uint16(p[2:4]), len(p))
	}
	if ipv4Checksum(p[:20]) != 0 {
		t.Fatalf("inner IPv4 header checksum wrong")
	}
	if ipv4Checksum(p[20:]) != 0 { // same one's-complement sum
		t.Fatalf("ICMP checksum wrong")
	}
	return p[20]
}

// TestStrongSwanVectors opens every ESP-in-UDP packet strongSwan 6 sent,
// with the keys from its log and with the keys SplitKEYMAT derives, and
// re-seals each with the recorded sequence number, IV and padding,
// expecting the captured bytes.
func TestStrongSwanVectors(t *testing.T) {
	children := loadChildren(t)
	if len(children) < 7 {
		t.Fatalf("found %d child SA records with packets", len(children))
	}
	var sawCBC, sawGCM128, sawGCM256 bool
	for name, c := range children {
		t.Run(name, func(t *testing.T) {
			s := c.suite(t)
			switch {
			case s.Encr == wire.EncrAESCBC:
				sawCBC = true
			case s.KeyBits == 128:
				sawGCM128 = true
			default:
				sawGCM256 = true
			}
			el, il, err := s.KeyLengths()
			if err != nil || el != c.EncrKeyLen || il != c.IntegKeyLen {
				t.Fatalf("KeyLengths(%v) = %d, %d, %v; record says %d, %d", s, el, il, err, c.EncrKeyLen, c.IntegKeyLen)
			}
			i2r, r2i, err := SplitKEYMAT(unhex(t, c.KEYMAT), s)
			if err != nil {
				t.Fatal(err)
			}
			for _, kc := range []struct {
				got Keys
				rec vecKeys
			}{{i2r, c.IToR}, {r2i, c.RToI}} {
				if !bytes.Equal(kc.got.Encr, unhex(t, kc.rec.Encr)) || !bytes.Equal(kc.got.Integ, unhex(t, kc.rec.Integ)) {
					t.Fatalf("SplitKEYMAT disagrees with strongSwan's keys for SPI %s", kc.rec.SPI)
				}
			}
			var echoID [2][]byte
			for _, p := range c.Packets {
				rec := c.RToI
				if p.Dir == "i->r" {
					rec = c.IToR
				}
				spi := binary.BigEndian.Uint32(unhex(t, rec.SPI))
				keys := Keys{Encr: unhex(t, rec.Encr), Integ: unhex(t, rec.Integ)}
				cfg := SAConfig{SPI: spi, Suite: s, Keys: keys, Local: anyV4, Remote: anyV4,
					Rand: bytes.NewReader(make([]byte, 64))}
				in, err := NewInboundSA(cfg)
				if err != nil {
					t.Fatal(err)
				}
				pkt := unhex(t, p.Hex)
				if got, _ := PeekSPI(pkt); got != spi || binary.BigEndian.Uint32(pkt[4:]) != p.Seq {
					t.Fatalf("frame %d: header %x does not match SPI %s seq %d", p.Frame, pkt[:8], p.SPI, p.Seq)
				}
				inner, err := in.OpenTunnel(nil, pkt)
				if err != nil {
					t.Fatalf("frame %d: open: %v", p.Frame, err)
				}
				typ := checkICMPEcho(t, inner)
				wantType := byte(0) // echo reply
				if p.Dir == "i->r" {
					wantType = 8
				}
				if typ != wantType {
					t.Fatalf("frame %d: ICMP type %d, want %d", p.Frame, typ, wantType)
				}
				// Requests and replies carry the same identifier.
				if id := inner[24:26]; echoID[0] == nil {
					echoID[0] = id
				} else if !bytes.Equal(id, echoID[0]) {
					t.Fatalf("frame %d: echo identifier %x, earlier %x", p.Frame, id, echoID[0])
				}
				if c := in.Counters(); c.PacketsIn != 1 || c.BytesIn != uint64(len(inner)) || c.TotalDrops() != 0 {
					t.Fatalf("counters after open: %+v", c)
				}
				// The same packet again is a replay.
				if _, err := in.OpenTunnel(nil, pkt); err != DropReplay {
					t.Fatalf("frame %d: second open: %v, want replay", p.Frame, err)
				}

				// Re-seal with strongSwan's sequence number, IV and padding.
				out, err := NewOutboundSA(cfg)
				if err != nil {
					t.Fatal(err)
				}
				ivLen := out.t.ivLen
				iv := pkt[HeaderSize : HeaderSize+ivLen]
				ctLen := len(pkt) - HeaderSize - ivLen - out.t.icvLen
				padLen := ctLen - TrailerSize - len(inner)
				nh := ProtoIPIP
				again, err := out.seal(nil, uint64(p.Seq), iv, nh, inner, 0, padLen)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(again, pkt) {
					t.Fatalf("frame %d: re-sealed packet differs:\n got %x\nwant %x", p.Frame, again, pkt)
				}
			}
		})
	}
	if !sawCBC || !sawGCM128 || !sawGCM256 {
		t.Fatalf("vectors cover CBC %v, GCM-128 %v, GCM-256 %v", sawCBC, sawGCM128, sawGCM256)
	}
}

// TestInstallChildFromKEYMAT installs each recorded Child SA on both ends
// from its KEYMAT alone and opens strongSwan's packets on the receiving end.
func TestInstallChildFromKEYMAT(t *testing.T) {
	for name, c := range loadChildren(t) {
		s := c.suite(t)
		spiI := binary.BigEndian.Uint32(unhex(t, c.RToI.SPI)) // the initiator's inbound SPI
		spiR := binary.BigEndian.Uint32(unhex(t, c.IToR.SPI))
		dbs := map[bool]*DB{true: {}, false: {}} // by Initiator
		for _, ini := range []bool{true, false} {
			in, out := spiI, spiR
			if !ini {
				in, out = spiR, spiI
			}
			_, o, err := dbs[ini].InstallChild(testNow, ChildSA{Suite: s, Initiator: ini, InSPI: in, OutSPI: out,
				KEYMAT: unhex(t, c.KEYMAT), Local: anyV4, Remote: anyV4, Rand: seeded(1)})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if o.SPI() != out {
				t.Fatal("outbound SPI")
			}
		}
		for _, p := range c.Packets {
			recv := dbs[p.Dir == "r->i"] // i->r packets are opened by the responder
			if _, _, err := recv.Open(nil, unhex(t, p.Hex)); err != nil {
				t.Fatalf("%s frame %d (%s): %v", name, p.Frame, p.Dir, err)
			}
		}
	}
	// A failed install leaves nothing behind.
	var db DB
	_, _, err := db.InstallChild(testNow, ChildSA{Suite: suites[3], InSPI: 1, OutSPI: 2, KEYMAT: make([]byte, 96)})
	if err == nil || db.Lookup(1) != nil {
		t.Fatalf("CBC without Rand: %v", err)
	}
}
