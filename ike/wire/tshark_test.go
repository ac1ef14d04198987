package wire

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/mlkem"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestTshark writes a pcap of a hybrid X25519 + ML-KEM-768 handshake encoded
// by this package (IKE_SA_INIT on port 500; a fragmented IKE_INTERMEDIATE
// request, its response and an IKE_AUTH request on port 4500 behind the
// non-ESP marker) and has tshark dissect it. All values are computed for real:
// X25519 and ML-KEM keys, NAT detection hashes, an RFC 7296 key schedule with
// the RFC 9370 update, AES-GCM protection and the PSK AUTH with RFC 9242
// IntAuth. tshark must find nothing malformed, no expert error and no bad
// checksum, and must name the payloads and transforms. Given the keys, tshark
// must then verify every ICV, reassemble the SKF fragments and show the inner
// payloads, which checks the SK/SKF framing and associated data independently
// of this package.
func TestTshark(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed")
	}
	hs := buildHandshake(t)
	dir := t.TempDir()
	if d := os.Getenv("WIRE_PCAP_DIR"); d != "" { // keep the capture for inspection
		dir = d
	}
	write := func(name string, dgrams []datagram) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pcapFile(dgrams), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}

	t.Run("dissect", func(t *testing.T) {
		out := runTshark(t, tshark, write("wire_handshake.pcap", hs.dgrams),
			"-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE")
		n := len(hs.dgrams)
		if got := strings.Count(out, "Internet Security Association and Key Management Protocol"); got != n {
			t.Errorf("tshark dissected %d IKE messages, want %d", got, n)
		}
		if got := strings.Count(out, "[Header checksum status: Good]"); got != n {
			t.Errorf("%d good IPv4 header checksums, want %d", got, n)
		}
		if got := strings.Count(out, "[Checksum Status: Good]"); got != n {
			t.Errorf("%d good UDP checksums, want %d", got, n)
		}
		wantAll(t, out,
			"Exchange type: IKE_SA_INIT (34)",
			"Exchange type: IKE_AUTH (35)",
			"Exchange type: Unknown (43)", // IKE_INTERMEDIATE, unknown to tshark 4.0
			"Payload: Security Association (33)",
			"Payload: Key Exchange (34)",
			"Payload: Nonce (40)",
			"Payload: Notify (41) - NAT_DETECTION_SOURCE_IP",
			"Payload: Notify (41) - NAT_DETECTION_DESTINATION_IP",
			"Payload: Notify (41) - IKEV2_FRAGMENTATION_SUPPORTED",
			"Payload: Notify (41) - SIGNATURE_HASH_ALGORITHMS",
			"Notify Message Type: RESERVED TO IANA - STATUS TYPES (16438)", // INTERMEDIATE_EXCHANGE_SUPPORTED
			"Supported Signature Hash Algorithm: Identity (5)",
			"Payload: Vendor ID (43)",
			"Payload: Encrypted and Authenticated (46)",
			"Payload: Encrypted and Authenticated Fragment (53)",
			"Transform ID (ENCR): AES-GCM with a 16 octet ICV (20)",
			"Key Length: 256",
			"Transform ID (PRF): PRF_HMAC_SHA2_384 (6)",
			"Transform ID (D-H): Curve25519 (31)",
			"Transform Type: Reserved to IANA (6)", // ADDKE1, unknown to tshark 4.0
			"Transform ID: 36",                     // ML-KEM-768
			"DH Group #: Curve25519 (31)",
			"Fragment Number: 2",
			"Total Fragments: 2",
			"Non-ESP Marker",
		)
		if !regexp.MustCompile(`Key Exchange Data: [0-9a-f]{64}\n`).MatchString(out) {
			t.Errorf("no 32-octet key exchange data:\n%s", grepLines(out, "Key Exchange"))
		}
	})

	// The IKE_INTERMEDIATE frames with the stage 0 keys: both fragments and
	// the response verify, the fragments reassemble into the ML-KEM-768 KE
	// payload (1184 octets of key plus 8 of headers).
	t.Run("decrypt-intermediate", func(t *testing.T) {
		out := runTshark(t, tshark, write("wire_intermediate.pcap", hs.dgrams[2:5]), "-o", decryptionTable(hs.spii, hs.spir, hs.k0))
		if got := strings.Count(out, "(16 bytes)[correct]"); got != 3 {
			t.Errorf("%d correct ICVs, want 3:\n%s", got, grepLines(out, "Integrity Checksum"))
		}
		wantAll(t, out,
			"[2 Message fragments (1192 bytes): #1(1100), #2(92)]",
			"[Reassembled ISAKMP length: 1192]",
			"Payload length: 1192",
			"Payload length: 1096", // ciphertext KE: 1088 + 8
			"DH Group #: Unknown (36)",
		)
	})

	// The IKE_AUTH frame with the stage 1 keys.
	t.Run("decrypt-auth", func(t *testing.T) {
		out := runTshark(t, tshark, write("wire_auth.pcap", hs.dgrams[5:]), "-o", decryptionTable(hs.spii, hs.spir, hs.k1))
		wantAll(t, out,
			"(16 bytes)[correct]",
			"Payload: Identification - Initiator (35)",
			"ID_FQDN: branch1.pqlab.test",
			"Payload: Notify (41) - INITIAL_CONTACT",
			"Authentication Method: Shared Key Message Integrity Code (2)",
			"Protocol ID: ESP (3)",
			"Transform ID (ESN): No Extended Sequence Numbers (0)",
			"Payload: Traffic Selector - Initiator (44)",
			"Payload: Traffic Selector - Responder (45)",
			"Starting Addr: 10.1.0.0",
			"Ending Addr: 10.2.0.255",
		)
	})
}

// runTshark runs tshark -V -z expert on path and fails the test on anything
// malformed or any expert error.
func runTshark(t *testing.T, tshark, path string, args ...string) string {
	t.Helper()
	cmd := exec.Command(tshark, append([]string{"-r", path, "-V", "-z", "expert"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, stderr.String())
	}
	out := string(outb)
	if strings.Contains(strings.ToLower(out), "malformed") {
		t.Errorf("tshark reports a malformed packet:\n%s", grepLines(out, "alformed"))
	}
	if regexp.MustCompile(`(?m)^Errors \(\d+\)`).MatchString(out) || strings.Contains(out, "[Expert Info (Error") {
		t.Errorf("tshark reports expert errors:\n%s", out[max(0, strings.LastIndex(out, "Errors (")):])
	}
	if regexp.MustCompile(`(?i)checksum[^\n]*(bad|incorrect)`).MatchString(out) {
		t.Errorf("tshark reports a bad checksum:\n%s", grepLines(out, "hecksum"))
	}
	if t.Failed() {
		t.Logf("tshark output:\n%s", out)
	}
	return out
}

func wantAll(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("tshark output lacks %q", w)
		}
	}
}

// decryptionTable is a tshark preference setting one row of Wireshark's
// IKEv2 decryption table (SPIs, SK_ei, SK_er, algorithms).
func decryptionTable(spii, spir uint64, k ikeKeys) string {
	return fmt.Sprintf(`uat:ikev2_decryption_table:%016x,%016x,%x,%x,"AES-GCM-256 with 16 octet ICV [RFC5282]",,,"NONE [RFC4306]"`,
		spii, spir, k.ei, k.er)
}

func grepLines(s, sub string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// datagram is one UDP datagram of the capture.
type datagram struct {
	src, dst netip.AddrPort
	payload  []byte
}

// prf is PRF_HMAC_SHA2_384 (RFC 4868).
func prf(key []byte, data ...[]byte) []byte {
	h := hmac.New(sha512.New384, key)
	for _, d := range data {
		h.Write(d)
	}
	return h.Sum(nil)
}

// prfPlus is prf+ of RFC 7296 Section 2.13.
func prfPlus(key, seed []byte, n int) []byte {
	var out, t []byte
	for i := byte(1); len(out) < n; i++ {
		t = prf(key, t, seed, []byte{i})
		out = append(out, t...)
	}
	return out[:n]
}

type ikeKeys struct{ d, ei, er, pi, pr []byte }

// deriveKeys splits prf+(skeyseed, Ni | Nr | SPIi | SPIr) for AES-GCM-16-256
// and PRF-HMAC-SHA2-384: SK_d 48, SK_a none, SK_e 32+4 salt, SK_p 48.
func deriveKeys(skeyseed []byte, ni, nr []byte, spii, spir uint64) ikeKeys {
	seed := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(append(append([]byte{}, ni...), nr...), spii), spir)
	km := prfPlus(skeyseed, seed, 48+36+36+48+48)
	return ikeKeys{d: km[:48], ei: km[48:84], er: km[84:120], pi: km[120:168], pr: km[168:216]}
}

// gcmSeal protects one SK or SKF body: IV (8) | ciphertext | ICV (16), with
// plaintext = inner | Pad Length 0 (RFC 5282).
func gcmSeal(key []byte, iv uint64, aad, inner []byte) []byte {
	block, err := aes.NewCipher(key[:32])
	if err != nil {
		panic(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	body := binary.BigEndian.AppendUint64(nil, iv)
	nonce := append(append([]byte{}, key[32:]...), body...)
	return gcm.Seal(body, nonce, append(append([]byte{}, inner...), 0), aad)
}

// sealSK returns the message with inner payloads ps in one SK payload.
func sealSK(t *testing.T, h Header, ps []Payload, key []byte, iv uint64) (msg, plain []byte) {
	plain, err := AppendPayloads(nil, ps)
	if err != nil {
		t.Fatal(err)
	}
	bodyLen := 8 + len(plain) + 1 + 16
	aad, err := AppendSKHeaders(nil, h, FirstType(ps), bodyLen)
	if err != nil {
		t.Fatal(err)
	}
	m := &Message{Header: h, Payloads: []Payload{&Encrypted{FirstPayload: FirstType(ps), Body: gcmSeal(key, iv, aad, plain)}}}
	b, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, aad) {
		t.Fatal("SK headers differ from the encoded message")
	}
	return b, plain
}

// sealSKF splits the inner payloads ps into fragments of at most size
// plaintext octets, each protected on its own (RFC 7383 Section 2.5).
func sealSKF(t *testing.T, h Header, ps []Payload, key []byte, iv uint64, size int) (msgs [][]byte, plain []byte) {
	plain, err := AppendPayloads(nil, ps)
	if err != nil {
		t.Fatal(err)
	}
	total := (len(plain) + size - 1) / size
	for i := range total {
		chunk := plain[i*size : min(len(plain), (i+1)*size)]
		first := PayloadNone
		if i == 0 {
			first = FirstType(ps)
		}
		bodyLen := 8 + len(chunk) + 1 + 16
		aad, err := AppendSKFHeaders(nil, h, first, uint16(i+1), uint16(total), bodyLen)
		if err != nil {
			t.Fatal(err)
		}
		frag := &EncryptedFragment{FirstPayload: first, Number: uint16(i + 1), Total: uint16(total),
			Body: gcmSeal(key, iv+uint64(i), aad, chunk)}
		b, err := Marshal(&Message{Header: h, Payloads: []Payload{frag}})
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, b)
	}
	return msgs, plain
}

// natHash is the NAT detection hash SHA-1(SPIi | SPIr | IP | Port) of RFC 7296
// Section 2.23.
func natHash(spii, spir uint64, ap netip.AddrPort) []byte {
	h := sha1.New()
	h.Write(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, spii), spir))
	h.Write(ap.Addr().AsSlice())
	h.Write(binary.BigEndian.AppendUint16(nil, ap.Port()))
	return h.Sum(nil)
}

// handshake is the capture built by buildHandshake with the keys needed to
// decrypt it: k0 protects IKE_INTERMEDIATE, k1 IKE_AUTH.
type handshake struct {
	dgrams     []datagram
	spii, spir uint64
	k0, k1     ikeKeys
}

func buildHandshake(t *testing.T) handshake {
	src := rand.NewChaCha8([32]byte{'p', 'q', 'l', 'a', 'b'})
	rng := rand.New(src)
	random := func(n int) []byte {
		b := make([]byte, n)
		_, _ = src.Read(b)
		return b
	}
	ini500 := netip.MustParseAddrPort("192.0.2.1:500")
	res500 := netip.MustParseAddrPort("192.0.2.2:500")
	ini4500 := netip.MustParseAddrPort("192.0.2.1:4500")
	res4500 := netip.MustParseAddrPort("192.0.2.2:4500")

	xi, err := ecdh.X25519().NewPrivateKey(random(32))
	if err != nil {
		t.Fatal(err)
	}
	xr, err := ecdh.X25519().NewPrivateKey(random(32))
	if err != nil {
		t.Fatal(err)
	}
	ni, nr := random(32), random(32)
	spii, spir := rng.Uint64(), rng.Uint64()
	vid := sha256.Sum256([]byte("pqlab ike/wire test"))

	proposal := func() *SA {
		return &SA{Proposals: []Proposal{{Number: 1, Protocol: ProtocolIKE, Transforms: []Transform{
			{Type: TransformENCR, ID: EncrAESGCM16, Attributes: []Attribute{KeyLengthAttr(256)}},
			{Type: TransformPRF, ID: PRFHMACSHA2384},
			{Type: TransformKE, ID: KECurve25519},
			{Type: TransformADDKE1, ID: KEMLKEM768},
		}}}}
	}
	common := func(spir uint64, src, dst netip.AddrPort) []Payload {
		return []Payload{
			&Notify{NotifyType: NotifyNATDetectionSourceIP, Data: natHash(spii, spir, src)},
			&Notify{NotifyType: NotifyNATDetectionDestinationIP, Data: natHash(spii, spir, dst)},
			&Notify{NotifyType: NotifyIKEv2FragmentationSupported},
			&Notify{NotifyType: NotifySignatureHashAlgorithms, Data: []byte{0, 2, 0, 3, 0, 4, 0, 5}},
			&Notify{NotifyType: NotifyIntermediateExchangeSupported},
			&VendorID{Data: vid[:16]},
		}
	}
	initReq := &Message{
		Header: Header{SPIi: spii, Exchange: ExchangeIKESAInit, Flags: FlagInitiator},
		Payloads: append([]Payload{proposal(), &KE{Method: KECurve25519, Data: xi.PublicKey().Bytes()}, &Nonce{Data: ni}},
			common(0, ini500, res500)...),
	}
	initResp := &Message{
		Header: Header{SPIi: spii, SPIr: spir, Exchange: ExchangeIKESAInit, Flags: FlagResponse},
		Payloads: append([]Payload{proposal(), &KE{Method: KECurve25519, Data: xr.PublicKey().Bytes()}, &Nonce{Data: nr}},
			common(spir, res500, ini500)...),
	}
	reqBytes, err := Marshal(initReq)
	if err != nil {
		t.Fatal(err)
	}
	respBytes, err := Marshal(initResp)
	if err != nil {
		t.Fatal(err)
	}

	// Stage 0 keys from the X25519 shared secret (RFC 7296 Section 2.14).
	gir, err := xi.ECDH(xr.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	k0 := deriveKeys(prf(append(append([]byte{}, ni...), nr...), gir), ni, nr, spii, spir)

	// IKE_INTERMEDIATE 1 carries ADDKE1 ML-KEM-768 (RFC 9370); the request
	// (1184-octet encapsulation key) goes in two SKF fragments.
	dk, err := mlkem.NewDecapsulationKey768(random(mlkem.SeedSize))
	if err != nil {
		t.Fatal(err)
	}
	hInt := Header{SPIi: spii, SPIr: spir, Exchange: ExchangeIKEIntermediate, Flags: FlagInitiator, MessageID: 1}
	frags, plainIntReq := sealSKF(t, hInt, []Payload{&KE{Method: KEMLKEM768, Data: dk.EncapsulationKey().Bytes()}}, k0.ei, 1, 1100)
	if len(frags) != 2 {
		t.Fatalf("%d fragments", len(frags))
	}
	ss, ct := dk.EncapsulationKey().Encapsulate()
	hIntR := hInt
	hIntR.Flags = FlagResponse
	intResp, plainIntResp := sealSK(t, hIntR, []Payload{&KE{Method: KEMLKEM768, Data: ct}}, k0.er, 1)

	// RFC 9242 IntAuth: A is rebuilt as if the message had been one SK.
	aI, _ := AppendSKHeaders(nil, hInt, PayloadKE, len(plainIntReq))
	aR, _ := AppendSKHeaders(nil, hIntR, PayloadKE, len(plainIntResp))
	intAuth := append(prf(k0.pi, aI, plainIntReq), prf(k0.pr, aR, plainIntResp)...)
	intAuth = binary.BigEndian.AppendUint32(intAuth, 2)

	// Stage 1 keys (RFC 9370 Section 2.2.2) protect IKE_AUTH.
	k1 := deriveKeys(prf(k0.d, ss, ni, nr), ni, nr, spii, spir)
	idi := &ID{IDType: IDFQDN, Data: []byte("branch1.pqlab.test")}
	psk := []byte("pqlab-test-psk-0123456789")
	octets := append(append(append(append([]byte{}, reqBytes...), nr...), prf(k1.pi, idi.Prime())...), intAuth...)
	auth := prf(prf(psk, []byte("Key Pad for IKEv2")), octets)
	sel := func(prefix string) *TS {
		return &TS{Selectors: []TrafficSelector{{Type: TSIPv4AddrRange, StartPort: 0, EndPort: 0xffff,
			Start: netip.MustParseAddr(prefix + ".0"), End: netip.MustParseAddr(prefix + ".255")}}}
	}
	tsr := sel("10.2.0")
	tsr.Responder = true
	hAuth := Header{SPIi: spii, SPIr: spir, Exchange: ExchangeIKEAuth, Flags: FlagInitiator, MessageID: 2}
	authReq, _ := sealSK(t, hAuth, []Payload{
		idi,
		&Notify{NotifyType: NotifyInitialContact},
		&Auth{Method: AuthSharedKey, Data: auth},
		&SA{Proposals: []Proposal{{Number: 1, Protocol: ProtocolESP, SPI: random(4), Transforms: []Transform{
			{Type: TransformENCR, ID: EncrAESGCM16, Attributes: []Attribute{KeyLengthAttr(256)}},
			{Type: TransformESN, ID: ESNNo},
		}}}},
		sel("10.1.0"),
		tsr,
	}, k1.ei, 1)

	marker := []byte{0, 0, 0, 0}
	withMarker := func(b []byte) []byte { return append(append([]byte{}, marker...), b...) }
	return handshake{spii: spii, spir: spir, k0: k0, k1: k1, dgrams: []datagram{
		{ini500, res500, reqBytes},
		{res500, ini500, respBytes},
		{ini4500, res4500, withMarker(frags[0])},
		{ini4500, res4500, withMarker(frags[1])},
		{res4500, ini4500, withMarker(intResp)},
		{ini4500, res4500, withMarker(authReq)},
	}}
}

// pcapFile returns a classic libpcap file (microsecond timestamps, link type
// LINKTYPE_RAW, 101: each record is an IPv4 packet) holding the datagrams.
func pcapFile(dgrams []datagram) []byte {
	var b []byte
	le := binary.LittleEndian
	b = le.AppendUint32(b, 0xa1b2c3d4) // magic
	b = le.AppendUint16(b, 2)          // version 2.4
	b = le.AppendUint16(b, 4)
	b = le.AppendUint32(b, 0)     // thiszone
	b = le.AppendUint32(b, 0)     // sigfigs
	b = le.AppendUint32(b, 65535) // snaplen
	b = le.AppendUint32(b, 101)   // LINKTYPE_RAW
	for i, d := range dgrams {
		pkt := ipv4UDP(uint16(i+1), d.src, d.dst, d.payload)
		b = le.AppendUint32(b, 1700000000)
		b = le.AppendUint32(b, uint32(i*10000))
		b = le.AppendUint32(b, uint32(len(pkt)))
		b = le.AppendUint32(b, uint32(len(pkt)))
		b = append(b, pkt...)
	}
	return b
}

// ipv4UDP builds an IPv4 packet (RFC 791, DF set, TTL 64) carrying a UDP
// datagram (RFC 768) with correct header and UDP checksums.
func ipv4UDP(id uint16, src, dst netip.AddrPort, payload []byte) []byte {
	const ipLen, udpLen = 20, 8
	total := ipLen + udpLen + len(payload)
	p := make([]byte, 0, total)
	p = append(p, 0x45, 0)
	p = binary.BigEndian.AppendUint16(p, uint16(total))
	p = binary.BigEndian.AppendUint16(p, id)
	p = append(p, 0x40, 0, 64, 17, 0, 0) // DF, TTL, UDP, checksum placeholder
	p = append(p, src.Addr().AsSlice()...)
	p = append(p, dst.Addr().AsSlice()...)
	binary.BigEndian.PutUint16(p[10:], inetChecksum(0, p[:ipLen]))

	p = binary.BigEndian.AppendUint16(p, src.Port())
	p = binary.BigEndian.AppendUint16(p, dst.Port())
	p = binary.BigEndian.AppendUint16(p, uint16(udpLen+len(payload)))
	p = append(p, 0, 0)
	p = append(p, payload...)
	pseudo := append(append([]byte{}, p[12:20]...), 0, 17, byte((udpLen+len(payload))>>8), byte(udpLen+len(payload)))
	sum := inetChecksum(sumWords(0, pseudo), p[ipLen:])
	if sum == 0 {
		sum = 0xffff // RFC 768: a computed zero is sent as all ones
	}
	binary.BigEndian.PutUint16(p[ipLen+6:], sum)
	return p
}

func sumWords(acc uint32, b []byte) uint32 {
	for len(b) >= 2 {
		acc += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	return acc
}

// inetChecksum is the Internet checksum (RFC 1071) of b, continuing acc.
func inetChecksum(acc uint32, b []byte) uint16 {
	acc = sumWords(acc, b)
	for acc>>16 != 0 {
		acc = acc&0xffff + acc>>16
	}
	return ^uint16(acc)
}
