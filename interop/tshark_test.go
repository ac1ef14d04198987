package interop

import (
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pqlab/pqlab/ike/wire"
)

// requireTshark skips without tshark when not root, and fails as root (CI must install it).
func requireTshark(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		if os.Geteuid() == 0 {
			t.Fatal("tshark missing: run interop/install.sh")
		}
		t.Skip("skipping: tshark not installed and not root")
	}
}

// pcapWriter writes a classic pcap file of Ethernet frames (what the tests need to hand tshark
// known-good and known-bad packets).
type pcapWriter struct{ b []byte }

func newPcap() *pcapWriter {
	w := &pcapWriter{}
	w.b = binary.LittleEndian.AppendUint32(w.b, 0xa1b2c3d4) // magic, microseconds
	w.b = binary.LittleEndian.AppendUint16(w.b, 2)
	w.b = binary.LittleEndian.AppendUint16(w.b, 4)
	w.b = binary.LittleEndian.AppendUint32(w.b, 0) // thiszone
	w.b = binary.LittleEndian.AppendUint32(w.b, 0) // sigfigs
	w.b = binary.LittleEndian.AppendUint32(w.b, 65535)
	w.b = binary.LittleEndian.AppendUint32(w.b, 1) // LINKTYPE_ETHERNET
	return w
}

// udp appends an Ethernet/IPv4/UDP frame from OuterA:sport to OuterB:dport.
func (w *pcapWriter) udp(sport, dport uint16, payload []byte) {
	ip := make([]byte, 20, 28+len(payload))
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(28+len(payload)))
	ip[8], ip[9] = 64, 17
	copy(ip[12:], OuterA.AsSlice())
	copy(ip[16:], OuterB.AsSlice())
	binary.BigEndian.PutUint16(ip[10:], inetChecksum(ip))
	ip = binary.BigEndian.AppendUint16(ip, sport)
	ip = binary.BigEndian.AppendUint16(ip, dport)
	ip = binary.BigEndian.AppendUint16(ip, uint16(8+len(payload)))
	ip = binary.BigEndian.AppendUint16(ip, 0) // no UDP checksum (IPv4)
	ip = append(ip, payload...)
	frame := append([]byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00}, ip...)
	n := len(w.b)
	w.b = binary.LittleEndian.AppendUint32(w.b, uint32(n)) // ts_sec: any increasing value
	w.b = binary.LittleEndian.AppendUint32(w.b, 0)
	w.b = binary.LittleEndian.AppendUint32(w.b, uint32(len(frame)))
	w.b = binary.LittleEndian.AppendUint32(w.b, uint32(len(frame)))
	w.b = append(w.b, frame...)
}

// ikeHeader returns an IKE header (RFC 7296, Section 3.1) for IKE_SA_INIT with the given next
// payload and length field.
func ikeHeader(next wire.PayloadType, length uint32) []byte {
	h := make([]byte, 28)
	copy(h, "SPIiSPIi")
	h[16] = byte(next)
	h[17] = 0x20 // version 2.0
	h[18] = byte(wire.ExchangeIKESAInit)
	h[19] = 0x08 // initiator
	binary.BigEndian.PutUint32(h[24:], length)
	return h
}

// TestAnalyzeFlagsMalformed proves that the capture check can fail: tshark must flag a truncated
// IKE payload and pass a well-formed header-only message and an ESP-in-UDP packet.
func TestAnalyzeFlagsMalformed(t *testing.T) {
	requireTshark(t)
	w := newPcap()
	w.udp(500, 500, ikeHeader(0, 28)) // frame 1: header only, consistent
	// frame 2: announces an SA payload of 44 bytes but carries 4.
	bad := append(ikeHeader(wire.PayloadSA, 28+44), 0, 0, 0, 44)
	w.udp(500, 500, bad)
	w.udp(4500, 4500, []byte{0, 0, 0x12, 0x34, 0, 0, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd}) // frame 3: ESP
	path := filepath.Join(t.TempDir(), "crafted.pcap")
	if err := os.WriteFile(path, w.b, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Analyze(context.Background(), path, AnalyzeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Frames) != 3 {
		t.Fatalf("%d frames, want 3", len(r.Frames))
	}
	if f := r.Frames[0]; f.Malformed || len(f.Exchanges) != 1 || f.Exchanges[0] != int(wire.ExchangeIKESAInit) {
		t.Errorf("frame 1 = %+v, want a clean IKE_SA_INIT", f)
	}
	if !r.Frames[1].Malformed {
		t.Errorf("frame 2 = %+v, want malformed", r.Frames[1])
	}
	if f := r.Frames[2]; f.Malformed || len(f.ESPSPIs) != 1 || f.ESPSPIs[0] != "0x00001234" {
		t.Errorf("frame 3 = %+v, want ESP with SPI 0x00001234", f)
	}
	p := r.Problems()
	if len(p) == 0 || !strings.HasPrefix(p[0], "frame 2 ") {
		t.Errorf("Problems() = %q, want frame 2 first", p)
	}
	if r.IKEFrames() != 2 || r.ESPFrames() != 1 || !r.HasExchange(int(wire.ExchangeIKESAInit)) {
		t.Errorf("counts IKE %d ESP %d", r.IKEFrames(), r.ESPFrames())
	}
	t.Logf("problems: %q", p)
}

func TestParseFieldsRejectsBadLines(t *testing.T) {
	if _, err := parseFields("1\teth\n"); err == nil {
		t.Error("short line accepted")
	}
	if _, err := parseFields("1\teth:ip:udp:isakmp\t500\t500\tnot-a-number\t\t\t\t\t\t\t\t\t\n"); err == nil {
		t.Error("bad exchange type accepted")
	}
	r, err := parseFields("7\teth:ip:udp:isakmp\t500|4500\t500\t35|37\t\t\t8388608|6291456\tbad|odd\t192.0.2.1|10.0.0.1\t192.0.2.2\t2\t16388|17\t1\n")
	if err != nil {
		t.Fatal(err)
	}
	f := r.Frames[0]
	if f.Number != 7 || f.SrcPort != 500 || f.Src != "192.0.2.1" || f.Dst != "192.0.2.2" || len(f.AuthMethods) != 1 || f.AuthMethods[0] != 2 || len(f.Notifies) != 2 || f.Notifies[1] != 17 || !f.Decrypted || len(f.Exchanges) != 2 || len(f.Expert) != 2 ||
		f.Expert[0] != "error: bad" || f.Expert[1] != "warning: odd" {
		t.Errorf("parsed %+v", f)
	}
	if len(r.Problems()) != 1 {
		t.Errorf("Problems() = %q, want only the error", r.Problems())
	}
}
