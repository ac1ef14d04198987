package gateway

import (
	"bytes"
	"fmt"
	"net/netip"

	"github.com/pqlab/pqlab/esp"
	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/ike/suite"
	"github.com/pqlab/pqlab/ike/wire"
	"github.com/pqlab/pqlab/sim"
)

// Cost-table operation names (models/cpu/*.toml). A per-call cost and a
// per-byte cost (names ending in ".byte") are charged separately:
//
//	ike.ke.<method>.keygen|encaps|decaps|dh   per call (x25519, mlkem768, ...)
//	ike.prf.<prf>.call, ike.prf.<prf>.byte    PRF invocation and input bytes
//	ike.prfplus.<prf>.byte                    prf+ output bytes
//	ike.sk.<encr>.call, ike.sk.<encr>.byte    SK/SKF protection, either way
//	ike.sign.<auth>, ike.verify.<auth>        AUTH signatures
//	esp.<suite>.call, esp.<suite>.byte        ESP seal or open (aes256gcm16, ...)
//
// The engine reports SK operations by encryption transform only (no key
// length, no integrity transform), and signatures by AUTH method only (RFC
// 7427's method 14 covers Ed25519, ECDSA and ML-DSA alike): the names
// follow what CryptoOp carries.

// Cost is one entry to charge: an operation name and its units.
type Cost struct {
	Op    string
	Units int
}

// keStepNames names the cost of each KE operation kind.
var keStepNames = map[suite.Op]string{
	suite.OpKEKeygen: "keygen",
	suite.OpKEEncaps: "encaps",
	suite.OpKEDecaps: "decaps",
	suite.OpDH:       "dh",
}

// encrName names an SK encryption transform for cost lookups.
func encrName(id uint16) string {
	switch id {
	case wire.EncrAESCBC:
		return "aescbc"
	case wire.EncrAESGCM8:
		return "aesgcm8"
	case wire.EncrAESGCM12:
		return "aesgcm12"
	case wire.EncrAESGCM16:
		return "aesgcm16"
	case wire.EncrChaCha20Poly1305:
		return "chacha20poly1305"
	}
	return fmt.Sprintf("encr%d", id)
}

// authName names an AUTH method for cost lookups.
func authName(m wire.AuthMethod) string {
	switch m {
	case wire.AuthRSASig:
		return "rsa"
	case wire.AuthSharedKey:
		return "psk"
	case wire.AuthECDSA256:
		return "ecdsa256"
	case wire.AuthECDSA384:
		return "ecdsa384"
	case wire.AuthECDSA521:
		return "ecdsa521"
	case wire.AuthDigitalSignature:
		return "digsig"
	}
	return fmt.Sprintf("auth%d", uint16(m))
}

// OpCosts returns the cost-table entries of one engine operation.
func OpCosts(op ike.CryptoOp) []Cost {
	switch op.Op {
	case suite.OpKEKeygen, suite.OpKEEncaps, suite.OpKEDecaps, suite.OpDH:
		name := fmt.Sprintf("ke%d", op.Alg)
		if m, err := suite.MethodByID(op.Alg); err == nil {
			name = m.Name()
		}
		return []Cost{{"ike.ke." + name + "." + keStepNames[op.Op], 1}}
	case suite.OpPRF, suite.OpPRFPlus:
		name := fmt.Sprintf("prf%d", op.Alg)
		if p, err := suite.PRFByID(op.Alg); err == nil {
			name = p.String()
		}
		if op.Op == suite.OpPRFPlus {
			return []Cost{{"ike.prfplus." + name + ".byte", op.Bytes}}
		}
		return []Cost{{"ike.prf." + name + ".call", 1}, {"ike.prf." + name + ".byte", op.Bytes}}
	case suite.OpSKSeal, suite.OpSKOpen:
		n := encrName(op.Alg)
		return []Cost{{"ike.sk." + n + ".call", 1}, {"ike.sk." + n + ".byte", op.Bytes}}
	case suite.OpSign:
		return []Cost{{"ike.sign." + authName(wire.AuthMethod(op.Alg)), 1}}
	case suite.OpVerify:
		return []Cost{{"ike.verify." + authName(wire.AuthMethod(op.Alg)), 1}}
	}
	return nil
}

// ESPCosts returns the cost-table entries of sealing or opening one ESP
// packet of n octets with suite s.
func ESPCosts(s esp.Suite, n int) []Cost {
	name := "esp." + s.String()
	return []Cost{{name + ".call", 1}, {name + ".byte", n}}
}

// CalibrationSuites are the ESP suites CalibrationOps measures.
var CalibrationSuites = []esp.Suite{
	{Encr: wire.EncrAESGCM16, KeyBits: 128},
	{Encr: wire.EncrAESGCM16, KeyBits: 256},
	{Encr: wire.EncrChaCha20Poly1305},
	{Encr: wire.EncrAESCBC, KeyBits: 128, Integ: wire.IntegHMACSHA2256128},
	{Encr: wire.EncrAESCBC, KeyBits: 256, Integ: wire.IntegHMACSHA2256128},
	{Encr: wire.EncrAESCBC, KeyBits: 256, Integ: wire.IntegHMACSHA2384192},
	{Encr: wire.EncrAESCBC, KeyBits: 256, Integ: wire.IntegHMACSHA2512256},
}

// Calibration sizes: a short input measures the per-call cost, a long one
// the per-byte cost.
const (
	calShort = 16
	calLong  = 4096
	calPkt   = 1400
)

// CalibrationOps returns the operations behind every name OpCosts and
// ESPCosts produce for the transforms pqlab implements, for
// sim.Calibrate: each key exchange method's steps, each PRF, prf+, SK
// protection and ESP suite. Sign and verify are not measured (the lab
// authenticates with PSKs; see package doc).
func CalibrationOps() ([]sim.CalibrationOp, error) {
	var ops []sim.CalibrationOp
	rnd := sim.NewDeterministicReader(1, "calibrate")
	for _, m := range suite.Methods() {
		st, pub, err := m.Initiate(rnd)
		if err != nil {
			return nil, err
		}
		resp, _, err := m.Respond(rnd, pub)
		if err != nil {
			return nil, err
		}
		m := m
		base := "ike.ke." + m.Name() + "."
		ops = append(ops, sim.CalibrationOp{Name: base + "keygen", Units: 1, Fn: func() { _, _, _ = m.Initiate(rnd) }})
		if m.ID() == wire.KEMLKEM512 || m.ID() == wire.KEMLKEM768 || m.ID() == wire.KEMLKEM1024 {
			ops = append(ops,
				sim.CalibrationOp{Name: base + "encaps", Units: 1, Fn: func() { _, _, _ = m.Respond(rnd, pub) }},
				sim.CalibrationOp{Name: base + "decaps", Units: 1, Fn: func() { _, _ = st.Complete(resp) }})
		} else {
			ops = append(ops, sim.CalibrationOp{Name: base + "dh", Units: 1, Fn: func() { _, _ = st.Complete(resp) }})
		}
	}
	key := bytes.Repeat([]byte{7}, 64)
	short, long := make([]byte, calShort), make([]byte, calLong)
	for _, id := range []uint16{wire.PRFHMACSHA1, wire.PRFHMACSHA2256, wire.PRFHMACSHA2384, wire.PRFHMACSHA2512} {
		p, err := suite.PRFByID(id)
		if err != nil {
			return nil, err
		}
		ops = append(ops,
			sim.CalibrationOp{Name: "ike.prf." + p.String() + ".call", Units: 1, Fn: func() { p.Sum(key, short) }},
			sim.CalibrationOp{Name: "ike.prf." + p.String() + ".byte", Units: calLong, Fn: func() { p.Sum(key, long) }},
			sim.CalibrationOp{Name: "ike.prfplus." + p.String() + ".byte", Units: calLong, Fn: func() { _, _ = p.Plus(key, key, calLong) }})
	}
	hdr := make([]byte, wire.HeaderLen+4)
	for _, sk := range []struct {
		encr  uint16
		bits  int
		integ uint16
	}{{wire.EncrAESGCM16, 256, wire.IntegNone}, {wire.EncrAESGCM8, 256, wire.IntegNone}, {wire.EncrAESGCM12, 256, wire.IntegNone},
		{wire.EncrChaCha20Poly1305, 0, wire.IntegNone}, {wire.EncrAESCBC, 256, wire.IntegHMACSHA2256128}} {
		s := suite.Suite{Protocol: wire.ProtocolIKE, Encr: sk.encr, EncrKeyBits: sk.bits, Integ: sk.integ, PRF: wire.PRFHMACSHA2256}
		l, err := s.KeyLengths()
		if err != nil {
			return nil, err
		}
		c, err := s.NewSK(make([]byte, l.E), make([]byte, l.A), rnd)
		if err != nil {
			return nil, err
		}
		n := "ike.sk." + encrName(sk.encr)
		ops = append(ops,
			sim.CalibrationOp{Name: n + ".call", Units: 1, Fn: func() { _, _ = c.Seal(hdr, short) }},
			sim.CalibrationOp{Name: n + ".byte", Units: calLong, Fn: func() { _, _ = c.Seal(hdr, long) }})
	}
	for _, s := range CalibrationSuites {
		el, il, err := s.KeyLengths()
		if err != nil {
			return nil, err
		}
		cfg := esp.SAConfig{SPI: 0x1000, Suite: s, Keys: esp.Keys{Encr: make([]byte, el), Integ: make([]byte, il)},
			Mode: esp.ModeTransport, Rand: rnd, ReplayWindow: -1,
			Local: []esp.Selector{esp.SelectorFromPrefix(netip.MustParsePrefix("0.0.0.0/0"))}, Remote: []esp.Selector{esp.SelectorFromPrefix(netip.MustParsePrefix("0.0.0.0/0"))}}
		out, err := esp.NewOutboundSA(cfg)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, 0, calPkt+256)
		small, big := make([]byte, calShort), make([]byte, calPkt)
		name := "esp." + s.String()
		ops = append(ops,
			sim.CalibrationOp{Name: name + ".call", Units: 1, Fn: func() { _, _ = out.Seal(buf[:0], 4, small) }},
			sim.CalibrationOp{Name: name + ".byte", Units: calPkt, Fn: func() { _, _ = out.Seal(buf[:0], 4, big) }})
	}
	return ops, nil
}
