package ike_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/ike/harness"
	"github.com/pqlab/pqlab/ike/suite"
	"github.com/pqlab/pqlab/ike/wire"
)

// TestKeyLog: with Config.LogKeys both ends record the same IKE SA keys for
// every key stage (after IKE_SA_INIT, after the IKE_INTERMEDIATE update,
// after a rekey), and Wireshark decrypts the handshake with them.
func TestKeyLog(t *testing.T) {
	ini, resp := peerConfigs(proposalFor("x25519", "mlkem768"), "aes256gcm16")
	logCfg := ike.Config{LogKeys: true}
	a, b, p, id := runPair(t, pairSetup{ini: ini, resp: resp, seed: 400, iCfg: logCfg, rCfg: logCfg,
		link: harness.Link{Latency: time.Millisecond}})
	checkEstablished(t, a, b)
	ka, kb := a.e.PollKeyLog(nil), b.e.PollKeyLog(nil)
	if len(ka) != 2 || len(kb) != 2 {
		t.Fatalf("key log entries %d / %d", len(ka), len(kb))
	}
	est := a.find(ike.EventIKESAEstablished)[0]
	for i, want := range []struct {
		stage ike.KeyStage
		round int
		final bool
	}{{ike.KeysInit, 0, false}, {ike.KeysIntermediate, 1, true}} {
		x, y := ka[i], kb[i]
		if x.Stage != want.stage || x.Round != want.round || x.Final != want.final || x.SA != id ||
			x.SPIi != est.SPIi || x.SPIr != est.SPIr || x.Suite != est.Suite {
			t.Fatalf("entry %d: %+v", i, x)
		}
		if y.Stage != x.Stage || y.Round != x.Round || y.Final != x.Final || y.SPIi != x.SPIi || y.SPIr != x.SPIr ||
			!bytes.Equal(x.SKei, y.SKei) || !bytes.Equal(x.SKer, y.SKer) || !bytes.Equal(x.SKai, y.SKai) || !bytes.Equal(x.SKar, y.SKar) {
			t.Fatalf("entry %d differs between the ends:\n%+v\n%+v", i, x, y)
		}
		if len(x.SKei) != 36 || bytes.Equal(x.SKei, x.SKer) || len(x.SKai) != 0 {
			t.Fatalf("entry %d: AES-256-GCM keys with salt expected: %x %x %x", i, x.SKei, x.SKer, x.SKai)
		}
	}
	if bytes.Equal(ka[0].SKei, ka[1].SKei) {
		t.Fatal("the IKE_INTERMEDIATE update did not change the keys")
	}
	if len(a.e.PollKeyLog(nil)) != 0 {
		t.Fatal("entries returned twice")
	}

	if tshark, err := exec.LookPath("tshark"); err == nil {
		dir := t.TempDir()
		decrypt := func(name string, exch wire.ExchangeType, k ike.KeyLogEntry, want ...string) {
			t.Helper()
			var frames []harness.Record
			for _, r := range p.Trace {
				if r.Fate == "sent" && exchangeOf(r) == exch {
					frames = append(frames, r)
				}
			}
			line, err := k.WiresharkUAT()
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, pcapOf(frames), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(tshark, "-r", path, "-V", "-o", "uat:ikev2_decryption_table:"+line).CombinedOutput()
			if err != nil {
				t.Fatalf("tshark: %v\n%s", err, out)
			}
			for _, w := range want {
				if !strings.Contains(string(out), w) {
					t.Errorf("%s: tshark output lacks %q\n%s", name, w, out)
				}
			}
			if n := strings.Count(string(out), "[correct]"); n < len(frames) {
				t.Errorf("%s: %d correct ICVs in %d frames", name, n, len(frames))
			}
		}
		// The stage-0 keys open IKE_INTERMEDIATE (the ML-KEM-768 key
		// reassembled from fragments), the final keys open IKE_AUTH.
		decrypt("intermediate.pcap", wire.ExchangeIKEIntermediate, ka[0], "Payload length: 1192", "Payload length: 1096")
		decrypt("auth.pcap", wire.ExchangeIKEAuth, ka[1], "Payload: Identification - Initiator (35)",
			"Payload: Authentication (39)", "left@pqlab", "Payload: Traffic Selector - Responder (45)")
	}

	// A rekey logs the new SA's keys.
	a.e.RekeyIKESA(p.Now, id)
	runFor(t, p, time.Minute, func() bool { return len(a.find(ike.EventIKESARekeyed)) > 0 })
	r := a.find(ike.EventIKESARekeyed)
	ka, kb = a.e.PollKeyLog(nil), b.e.PollKeyLog(nil)
	if len(r) != 1 || len(ka) != 1 || len(kb) != 1 || ka[0].Stage != ike.KeysRekey || !ka[0].Final || ka[0].SA != r[0].SA ||
		ka[0].SPIi != r[0].SPIi || ka[0].SPIr != r[0].SPIr || !bytes.Equal(ka[0].SKer, kb[0].SKer) {
		t.Fatalf("rekey key log %+v / %+v, events %v", ka, kb, r)
	}

	// Off by default; ChaCha20-Poly1305 has no Wireshark name.
	a, b, _, _ = runPair(t, pairSetup{ini: ini, resp: resp, seed: 401})
	checkEstablished(t, a, b)
	if len(a.e.PollKeyLog(nil)) != 0 {
		t.Fatal("keys logged without LogKeys")
	}
	k := ka[0]
	k.Suite.Encr = wire.EncrChaCha20Poly1305
	if _, err := k.WiresharkUAT(); err == nil {
		t.Fatal("ChaCha20-Poly1305 formatted for Wireshark")
	}
}

// exchangeOf returns the exchange type of an IKE datagram of the trace.
func exchangeOf(r harness.Record) wire.ExchangeType {
	d := r.Data
	if r.Src.Port() == ike.DefaultNATTPort || r.Dst.Port() == ike.DefaultNATTPort {
		if len(d) < 4 || binary.BigEndian.Uint32(d) != 0 {
			return 0
		}
		d = d[4:]
	}
	h, err := wire.ParseHeader(d)
	if err != nil {
		return 0
	}
	return h.Exchange
}

// pcapOf writes the datagrams as a pcap file of raw IPv4 packets (UDP
// checksums left zero, which IPv4 allows).
func pcapOf(rs []harness.Record) []byte {
	le := binary.LittleEndian
	var b []byte
	b = le.AppendUint32(b, 0xa1b2c3d4)
	b = le.AppendUint16(b, 2)
	b = le.AppendUint16(b, 4)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint32(b, 65535)
	b = le.AppendUint32(b, 101) // LINKTYPE_RAW
	for i, r := range rs {
		pkt := ipv4Packet(uint16(i+1), r.Src, r.Dst, r.Data)
		b = le.AppendUint32(b, uint32(r.Time.Unix()))
		b = le.AppendUint32(b, uint32(r.Time.Nanosecond()/1000))
		b = le.AppendUint32(b, uint32(len(pkt)))
		b = le.AppendUint32(b, uint32(len(pkt)))
		b = append(b, pkt...)
	}
	return b
}

func ipv4Packet(id uint16, src, dst netip.AddrPort, payload []byte) []byte {
	be := binary.BigEndian
	total := 28 + len(payload)
	p := []byte{0x45, 0}
	p = be.AppendUint16(p, uint16(total))
	p = be.AppendUint16(p, id)
	p = append(p, 0x40, 0, 64, 17, 0, 0)
	p = append(p, src.Addr().AsSlice()...)
	p = append(p, dst.Addr().AsSlice()...)
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(be.Uint16(p[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	be.PutUint16(p[10:], ^uint16(sum))
	p = be.AppendUint16(p, src.Port())
	p = be.AppendUint16(p, dst.Port())
	p = be.AppendUint16(p, uint16(8+len(payload)))
	p = append(p, 0, 0)
	return append(p, payload...)
}

// TestWiresharkESPSA checks esp_sa records against the UAT format of
// Wireshark 4.0 (the tshark in the interop tests decrypts captures with them).
func TestWiresharkESPSA(t *testing.T) {
	src, dst := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.1")
	gcm := suite.Suite{Encr: wire.EncrAESGCM16, EncrKeyBits: 256, Integ: wire.IntegNone}
	cbc := suite.Suite{Encr: wire.EncrAESCBC, EncrKeyBits: 128, Integ: wire.IntegHMACSHA2256128}
	v6a, v6b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	for _, c := range []struct {
		src, dst netip.Addr
		anyAddr  bool
		spi      uint32
		s        suite.Suite
		k        ike.DirectionKeys
		want     string
	}{
		{src, dst, false, 0xc0ffee01, gcm, ike.DirectionKeys{Encr: []byte{1, 2, 3, 4}},
			`"IPv4","192.0.2.2","192.0.2.1","0xc0ffee01","AES-GCM with 16 octet ICV [RFC4106]","0x01020304","NULL","0x"`},
		{v6a, v6b, false, 0x100, cbc, ike.DirectionKeys{Encr: []byte{0xaa}, Integ: []byte{0xbb}},
			`"IPv6","2001:0db8:0000:0000:0000:0000:0000:0001","2001:0db8:0000:0000:0000:0000:0000:0002","0x00000100","AES-CBC [RFC3602]","0xaa","HMAC-SHA-256-128 [RFC4868]","0xbb"`},
		{v6a, v6b, true, 0x100, cbc, ike.DirectionKeys{Encr: []byte{0xaa}, Integ: []byte{0xbb}},
			`"IPv6","*","*","0x00000100","AES-CBC [RFC3602]","0xaa","HMAC-SHA-256-128 [RFC4868]","0xbb"`},
	} {
		line, err := ike.WiresharkESPSA(c.src, c.dst, c.anyAddr, c.spi, c.s, c.k)
		if err != nil {
			t.Fatal(err)
		}
		if line != c.want {
			t.Errorf("esp_sa record\n%s\nwant\n%s", line, c.want)
		}
	}
	if _, err := ike.WiresharkESPSA(src, dst, false, 1, suite.Suite{Encr: wire.EncrChaCha20Poly1305}, ike.DirectionKeys{}); err == nil {
		t.Error("ChaCha20-Poly1305 formatted for Wireshark")
	}
	if _, err := ike.WiresharkESPSA(src, dst, false, 1, suite.Suite{Encr: wire.EncrAESCBC, EncrKeyBits: 128, Integ: wire.IntegHMACSHA196}, ike.DirectionKeys{}); err == nil {
		t.Error("HMAC-SHA1-96 ESP formatted for Wireshark")
	}
}
