// Package bench runs pqlab's speed measurements from the command line
// (pqlab bench) with testing.Benchmark: the key exchange methods, a whole
// IKEv2 handshake between two engines in memory, and ESP encapsulation and
// decapsulation. Every figure comes with a baseline measured in the same
// run: the Go standard library's X25519 and ML-KEM for the key exchanges,
// the sum of the handshake's cryptographic primitives for the handshake, and
// the raw AEAD (or AES-CBC plus HMAC) over the same octets for ESP.
package bench

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/mlkem"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"flag"
	"fmt"
	"hash"
	"net/netip"
	"sort"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/pqlab/pqlab/esp"
	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/ike/suite"
	"github.com/pqlab/pqlab/ike/wire"
	"github.com/pqlab/pqlab/models"
	"github.com/pqlab/pqlab/sim"
	"github.com/pqlab/pqlab/sim/gateway"
)

var initOnce sync.Once

// setTime sets the measuring time of testing.Benchmark (the test.benchtime
// flag, which testing.Init registers).
func setTime(d time.Duration) {
	initOnce.Do(testing.Init)
	_ = flag.CommandLine.Set("test.benchtime", d.String())
}

// measure runs fn under testing.Benchmark for about d and returns the
// time per operation.
func measure(d time.Duration, fn func(b *testing.B)) time.Duration {
	setTime(d)
	r := testing.Benchmark(fn)
	if r.N == 0 {
		return 0
	}
	return time.Duration(r.T.Nanoseconds() / int64(r.N))
}

// rounds is how many rounds a measurement takes: bestOf keeps the fastest
// (the least disturbed by other work on the host), paired the median.
const rounds = 5

// bestOf measures fn rounds times for d/rounds each and keeps the fastest.
func bestOf(d time.Duration, fn func(b *testing.B)) time.Duration {
	per := max(d/rounds, time.Millisecond)
	var out time.Duration
	for range rounds {
		if t := measure(per, fn); out == 0 || (t > 0 && t < out) {
			out = t
		}
	}
	return out
}

// Result is one measurement with its baseline.
type Result struct {
	Name string
	// PerOp is the time of one operation; Baseline the baseline's (0 when
	// there is none).
	PerOp, Baseline time.Duration
	// Bytes is the size one operation processes (ESP), 0 otherwise.
	Bytes int
	// BaselineName says what the baseline is.
	BaselineName string
}

// OpsPerSec returns operations per second.
func (r Result) OpsPerSec() float64 { return perSec(r.PerOp) }

// BaselineOpsPerSec returns the baseline's operations per second (0 when
// there is none).
func (r Result) BaselineOpsPerSec() float64 { return perSec(r.Baseline) }

// Gbps returns the throughput in Gbit/s of a measurement with Bytes set.
func (r Result) Gbps() float64 { return gbps(r.Bytes, r.PerOp) }

// BaselineGbps returns the baseline's throughput in Gbit/s.
func (r Result) BaselineGbps() float64 { return gbps(r.Bytes, r.Baseline) }

func perSec(d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(time.Second) / float64(d)
}

func gbps(n int, d time.Duration) float64 {
	if d <= 0 || n == 0 {
		return 0
	}
	return float64(n) * 8 / float64(d.Nanoseconds())
}

// KeyExchanges measures every key exchange method's steps (keygen,
// encapsulation or Diffie-Hellman, decapsulation), each whole exchange
// (both sides), with the standard library's X25519 and ML-KEM as baselines
// where it has them.
func KeyExchanges(d time.Duration, only func(name string) bool) ([]Result, error) {
	var out []Result
	rnd := sim.NewDeterministicReader(1, "bench")
	for _, m := range suite.Methods() {
		if only != nil && !only(m.Name()) {
			continue
		}
		st, pub, err := m.Initiate(rnd)
		if err != nil {
			return nil, fmt.Errorf("bench: %s: %w", m.Name(), err)
		}
		resp, _, err := m.Respond(rnd, pub)
		if err != nil {
			return nil, fmt.Errorf("bench: %s: %w", m.Name(), err)
		}
		whole := bestOf(d, func(b *testing.B) {
			for b.Loop() {
				s, p, _ := m.Initiate(rnd)
				r, _, _ := m.Respond(rnd, p)
				_, _ = s.Complete(r)
			}
		})
		res := Result{Name: "ke/" + m.Name() + "/exchange", PerOp: whole}
		if base, name := stdlibExchange(m.Name(), d); base > 0 {
			res.Baseline, res.BaselineName = base, name
		}
		out = append(out, res)
		out = append(out, Result{Name: "ke/" + m.Name() + "/initiate", PerOp: bestOf(d, func(b *testing.B) {
			for b.Loop() {
				_, _, _ = m.Initiate(rnd)
			}
		})})
		out = append(out, Result{Name: "ke/" + m.Name() + "/respond", PerOp: bestOf(d, func(b *testing.B) {
			for b.Loop() {
				_, _, _ = m.Respond(rnd, pub)
			}
		})})
		out = append(out, Result{Name: "ke/" + m.Name() + "/complete", PerOp: bestOf(d, func(b *testing.B) {
			for b.Loop() {
				_, _ = st.Complete(resp)
			}
		})})
	}
	return out, nil
}

// stdlibExchange measures a whole exchange with the standard library's
// implementation of the same method, when it has one.
func stdlibExchange(name string, d time.Duration) (time.Duration, string) {
	switch name {
	case "x25519":
		c := ecdh.X25519()
		return bestOf(d, func(b *testing.B) {
			for b.Loop() {
				a, _ := c.GenerateKey(nil)
				p, _ := c.GenerateKey(nil)
				_, _ = a.ECDH(p.PublicKey())
				_, _ = p.ECDH(a.PublicKey())
			}
		}), "crypto/ecdh"
	case "ecp256", "ecp384":
		c := ecdh.P256()
		if name == "ecp384" {
			c = ecdh.P384()
		}
		return bestOf(d, func(b *testing.B) {
			for b.Loop() {
				a, _ := c.GenerateKey(nil)
				p, _ := c.GenerateKey(nil)
				_, _ = a.ECDH(p.PublicKey())
				_, _ = p.ECDH(a.PublicKey())
			}
		}), "crypto/ecdh"
	case "mlkem768":
		return bestOf(d, func(b *testing.B) {
			for b.Loop() {
				dk, _ := mlkem.GenerateKey768()
				_, ct := dk.EncapsulationKey().Encapsulate()
				_, _ = dk.Decapsulate(ct)
			}
		}), "crypto/mlkem"
	case "mlkem1024":
		return bestOf(d, func(b *testing.B) {
			for b.Loop() {
				dk, _ := mlkem.GenerateKey1024()
				_, ct := dk.EncapsulationKey().Encapsulate()
				_, _ = dk.Decapsulate(ct)
			}
		}), "crypto/mlkem"
	}
	return 0, ""
}

// Handshake measures a whole IKEv2 handshake (IKE_SA_INIT, the
// IKE_INTERMEDIATE exchanges of additional key exchanges, IKE_AUTH with a
// PSK and the first Child SA) between two engines of peer model p in
// memory, with proposal. The baseline is the sum of the handshake's
// cryptographic operations (both sides), each measured alone: what is left
// is the engine's own work (encoding, parsing, state).
func Handshake(p *models.Peer, proposal string, d time.Duration) (Result, error) {
	a, b, peer, err := pair(p, proposal, 1, true)
	if err != nil {
		return Result{}, err
	}
	ops, err := handshake(a, b, peer)
	if err != nil {
		return Result{}, err
	}
	var fail error
	seed := uint64(2)
	per := bestOf(d, func(bb *testing.B) {
		for bb.Loop() {
			bb.StopTimer()
			seed++
			a, b, peer, err := pair(p, proposal, seed, false)
			if err != nil {
				fail = err
				return
			}
			bb.StartTimer()
			if _, err := handshake(a, b, peer); err != nil {
				fail = err
				return
			}
		}
	})
	if fail != nil {
		return Result{}, fail
	}
	base, err := primitives(ops, d)
	if err != nil {
		return Result{}, err
	}
	return Result{Name: "handshake/" + proposal, PerOp: per, Baseline: base, BaselineName: "sum of primitives"}, nil
}

var (
	addrA = netip.MustParseAddr("192.0.2.1")
	addrB = netip.MustParseAddr("198.51.100.1")
	lanA  = netip.MustParsePrefix("10.1.0.0/16")
	lanB  = netip.MustParsePrefix("10.2.0.0/16")
)

// pair makes an initiator and a responder engine of model p; with logOps
// they record their crypto operations.
func pair(p *models.Peer, proposal string, seed uint64, logOps bool) (*ike.Engine, *ike.Engine, ike.PeerConfig, error) {
	mk := func(name, peer string, self, other netip.Addr, local, remote netip.Prefix, initiate bool) (*ike.Engine, ike.Config, error) {
		c := gateway.Connection{Peer: peer, Initiate: initiate, LocalTS: []netip.Prefix{local}, RemoteTS: []netip.Prefix{remote}}
		if initiate {
			c.Remote = other
		}
		cfg, err := gateway.EngineConfig(p, gateway.NodeSpec{Name: name, Addr: self, Proposals: []string{proposal},
			PSK: "pqlab-bench", Connections: []gateway.Connection{c}})
		if err != nil {
			return nil, cfg, err
		}
		cfg.LogCryptoOps = logOps
		e, err := ike.NewEngine(cfg, sim.NewDeterministicReader(seed, name))
		return e, cfg, err
	}
	a, cfgA, err := mk("a", "b", addrA, addrB, lanA, lanB, true)
	if err != nil {
		return nil, nil, ike.PeerConfig{}, fmt.Errorf("bench: %w", err)
	}
	b, _, err := mk("b", "a", addrB, addrA, lanB, lanA, false)
	if err != nil {
		return nil, nil, ike.PeerConfig{}, fmt.Errorf("bench: %w", err)
	}
	return a, b, cfgA.Peers[0], nil
}

// handshake runs one handshake to the initiator's first Child SA and
// returns the crypto operations of both sides.
func handshake(a, b *ike.Engine, peer ike.PeerConfig) ([]ike.CryptoOp, error) {
	now := time.Unix(1e9, 0)
	if _, err := a.Initiate(now, peer); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	var ops []ike.CryptoOp
	for step := 0; step < 1000; step++ {
		moved := false
		for _, e := range []struct{ from, to *ike.Engine }{{a, b}, {b, a}} {
			for {
				d, ok := e.from.PollTransmit()
				if !ok {
					break
				}
				moved = true
				e.to.Handle(now, d.Remote, d.Local, d.Data)
			}
		}
		ops = a.PollCryptoOps(ops)
		ops = b.PollCryptoOps(ops)
		for _, e := range []*ike.Engine{a, b} {
			for {
				ev, ok := e.PollEvent()
				if !ok {
					break
				}
				if e == a && ev.Kind == ike.EventChildSAInstalled {
					return ops, nil
				}
				if e == a && ev.Kind == ike.EventFailed {
					return nil, fmt.Errorf("bench: handshake failed: %v", ev.Reason)
				}
			}
		}
		if !moved {
			return nil, fmt.Errorf("bench: handshake stalled")
		}
		now = now.Add(time.Millisecond)
	}
	return nil, fmt.Errorf("bench: handshake did not finish")
}

// primitives measures every cost-table operation the ops use and returns
// their sum.
func primitives(ops []ike.CryptoOp, d time.Duration) (time.Duration, error) {
	cal, err := gateway.CalibrationOps()
	if err != nil {
		return 0, err
	}
	byName := map[string]sim.CalibrationOp{}
	for _, c := range cal {
		byName[c.Name] = c
	}
	units := map[string]int{}
	for _, op := range ops {
		for _, c := range gateway.OpCosts(op) {
			units[c.Op] += c.Units
		}
	}
	names := make([]string, 0, len(units))
	for n := range units {
		names = append(names, n)
	}
	sort.Strings(names)
	var total float64
	for _, n := range names {
		c, ok := byName[n]
		if !ok {
			continue // PSK AUTH is a PRF the PRF entries already count
		}
		per := bestOf(d/2+time.Millisecond, func(b *testing.B) {
			for b.Loop() {
				c.Fn()
			}
		})
		total += float64(per) / float64(c.Units) * float64(units[n])
	}
	return time.Duration(total), nil
}

// ESPSuite parses an ESP cipher in strongSwan syntax (aes128gcm16,
// aes256gcm16, chacha20poly1305, aes128-sha256 ...).
func ESPSuite(name string) (esp.Suite, error) {
	ps, err := suite.ParseProposals(wire.ProtocolESP, name)
	if err != nil || len(ps) != 1 || len(ps[0].Encr) == 0 {
		return esp.Suite{}, fmt.Errorf("bench: ESP cipher %q: %v", name, err)
	}
	p := ps[0]
	s := esp.Suite{Encr: p.Encr[0].ID, KeyBits: p.Encr[0].KeyBits}
	if len(p.Integ) > 0 {
		s.Integ = p.Integ[0]
	}
	if _, _, err := s.KeyLengths(); err != nil {
		return esp.Suite{}, fmt.Errorf("bench: ESP cipher %q: %v", name, err)
	}
	return s, nil
}

// ESP measures tunnel-mode encapsulation ("seal") or decapsulation
// ("open") of n-octet inner packets on one core, with the raw AEAD (or
// AES-CBC then HMAC) over the same n octets as the baseline. The two run in
// alternating batches (see paired), so that both see the same machine
// state.
func ESP(cipherName string, n int, dir string, d time.Duration) (Result, error) {
	s, err := ESPSuite(cipherName)
	if err != nil {
		return Result{}, err
	}
	out, in, keys, err := espPair(s)
	if err != nil {
		return Result{}, err
	}
	inner := ipv4Packet(n)
	buf := make([]byte, 0, n+128)
	var espOp func(i int) error
	switch dir {
	case "seal":
		espOp = func(int) error {
			_, err := out.SealTunnel(buf, inner)
			return err
		}
	case "open":
		pkts := make([][]byte, cipherRing)
		for i := range pkts {
			if pkts[i], err = out.SealTunnel(nil, inner); err != nil {
				return Result{}, fmt.Errorf("bench: %w", err)
			}
		}
		espOp = func(i int) error {
			_, err := in.OpenTunnel(buf, pkts[i%cipherRing])
			return err
		}
	default:
		return Result{}, fmt.Errorf("bench: direction %q: want seal or open", dir)
	}
	rawOp, err := rawCipher(s, keys, n, dir == "seal")
	if err != nil {
		return Result{}, err
	}
	per, base, err := paired(d, espOp, rawOp)
	if err != nil {
		return Result{}, fmt.Errorf("bench: ESP %s %s: %w", cipherName, dir, err)
	}
	name := "raw AEAD"
	if !s.AEAD() {
		name = "raw AES-CBC + HMAC"
	}
	return Result{Name: fmt.Sprintf("esp/%s/%d/%s", cipherName, n, dir), PerOp: per, Baseline: base, Bytes: n, BaselineName: name}, nil
}

// cipherRing is how many distinct packets the open measurements cycle
// through, on both sides.
const cipherRing = 256

// pairedBatch is how many operations each side of paired runs between
// clock reads.
const pairedBatch = 32

// paired runs the operations a and b in alternating batches of pairedBatch
// for about d, in rounds rounds, and returns the time per operation of each
// in the round whose ratio a/b is the median: within a round both see the
// same machine state (frequency, other work on a shared host), and the
// median round is neither the luckiest nor the most disturbed one.
func paired(d time.Duration, a, b func(i int) error) (ta, tb time.Duration, err error) {
	type round struct{ a, b time.Duration }
	var rs []round
	per := max(d/rounds, time.Millisecond)
	i := 0
	for range rounds {
		var r round
		ops := 0
		for start := time.Now(); ops == 0 || time.Since(start) < per; ops += pairedBatch {
			t0 := time.Now()
			for k := i; k < i+pairedBatch; k++ {
				if err := a(k); err != nil {
					return 0, 0, err
				}
			}
			t1 := time.Now()
			for k := i; k < i+pairedBatch; k++ {
				if err := b(k); err != nil {
					return 0, 0, err
				}
			}
			r.a += t1.Sub(t0)
			r.b += time.Since(t1)
			i += pairedBatch
		}
		rs = append(rs, round{r.a / time.Duration(ops), r.b / time.Duration(ops)})
	}
	sort.Slice(rs, func(x, y int) bool { return float64(rs[x].a)*float64(rs[y].b) < float64(rs[y].a)*float64(rs[x].b) })
	m := rs[len(rs)/2]
	return m.a, m.b, nil
}

// espPair makes an outbound SA and the matching inbound SA (replay check
// off, so that the open benchmark can cycle through a ring of packets).
func espPair(s esp.Suite) (*esp.OutboundSA, *esp.InboundSA, esp.Keys, error) {
	el, il, err := s.KeyLengths()
	if err != nil {
		return nil, nil, esp.Keys{}, err
	}
	keymat := make([]byte, 2*(el+il))
	_, _ = sim.NewDeterministicReader(1, "esp").Read(keymat)
	k, _, err := esp.SplitKEYMAT(keymat, s)
	if err != nil {
		return nil, nil, esp.Keys{}, err
	}
	local := []esp.Selector{esp.SelectorFromPrefix(lanA)}
	remote := []esp.Selector{esp.SelectorFromPrefix(lanB)}
	oc := esp.SAConfig{SPI: 0xc0de0001, Suite: s, Keys: k, Local: local, Remote: remote, Rand: sim.NewDeterministicReader(2, "iv")}
	o, err := esp.NewOutboundSA(oc)
	if err != nil {
		return nil, nil, esp.Keys{}, fmt.Errorf("bench: %w", err)
	}
	ic := oc
	ic.Local, ic.Remote, ic.Rand, ic.ReplayWindow = remote, local, nil, -1
	i, err := esp.NewInboundSA(ic)
	if err != nil {
		return nil, nil, esp.Keys{}, fmt.Errorf("bench: %w", err)
	}
	return o, i, k, nil
}

// ipv4Packet is an n-octet IPv4/UDP packet from 10.1.0.1 to 10.2.0.1.
func ipv4Packet(n int) []byte {
	p := make([]byte, n)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(n))
	p[8] = 64
	p[9] = 17
	copy(p[12:], []byte{10, 1, 0, 1})
	copy(p[16:], []byte{10, 2, 0, 1})
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(p[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(p[10:], ^uint16(sum))
	binary.BigEndian.PutUint16(p[20:], 1000)
	binary.BigEndian.PutUint16(p[22:], 2000)
	binary.BigEndian.PutUint16(p[24:], uint16(n-20))
	for i := 28; i < n; i++ {
		p[i] = byte(i)
	}
	return p
}

// rawCipher returns one operation of the bare primitive over n octets
// with an 8-octet AAD (AEAD) or AES-CBC then HMAC over the block-aligned
// octets.
func rawCipher(s esp.Suite, k esp.Keys, n int, seal bool) (func(i int) error, error) {
	pt := make([]byte, n)
	buf := make([]byte, n+64)
	aad := make([]byte, 8)
	var aead cipher.AEAD
	switch s.Encr {
	case wire.EncrAESGCM16:
		blk, err := aes.NewCipher(k.Encr[:len(k.Encr)-4])
		if err != nil {
			return nil, err
		}
		if aead, err = cipher.NewGCM(blk); err != nil {
			return nil, err
		}
	case wire.EncrChaCha20Poly1305:
		var err error
		if aead, err = chacha20poly1305.New(k.Encr[:len(k.Encr)-4]); err != nil {
			return nil, err
		}
	case wire.EncrAESCBC:
		return rawCBC(s, k, n, seal)
	default:
		return nil, fmt.Errorf("bench: no raw baseline for %v", s)
	}
	nonce := make([]byte, aead.NonceSize())
	if seal {
		return func(int) error {
			aead.Seal(buf[:0], nonce, pt, aad)
			return nil
		}, nil
	}
	cts := make([][]byte, cipherRing)
	for i := range cts {
		cts[i] = aead.Seal(nil, nonce, pt, aad)
	}
	return func(i int) error {
		_, err := aead.Open(buf[:0], nonce, cts[i%cipherRing], aad)
		return err
	}, nil
}

// ivSetter is what crypto/cipher's CBC modes implement to reuse them.
type ivSetter interface{ SetIV([]byte) }

func rawCBC(s esp.Suite, k esp.Keys, n int, seal bool) (func(i int) error, error) {
	blk, err := aes.NewCipher(k.Encr)
	if err != nil {
		return nil, err
	}
	var h func() hash.Hash
	switch s.Integ {
	case wire.IntegHMACSHA2256128:
		h = sha256.New
	case wire.IntegHMACSHA2384192:
		h = sha512.New384
	case wire.IntegHMACSHA2512256:
		h = sha512.New
	default:
		return nil, fmt.Errorf("bench: no raw baseline for %v", s)
	}
	mac := hmac.New(h, k.Integ)
	m := (n + aes.BlockSize - 1) / aes.BlockSize * aes.BlockSize
	pt := make([]byte, m)
	buf := make([]byte, m)
	iv := make([]byte, aes.BlockSize)
	sum := make([]byte, 0, 64)
	enc := cipher.NewCBCEncrypter(blk, iv)
	dec := cipher.NewCBCDecrypter(blk, iv)
	return func(int) error {
		if seal {
			enc.(ivSetter).SetIV(iv)
			enc.CryptBlocks(buf, pt)
			mac.Reset()
			mac.Write(buf)
			sum = mac.Sum(sum[:0])
		} else {
			mac.Reset()
			mac.Write(pt)
			sum = mac.Sum(sum[:0])
			dec.(ivSetter).SetIV(iv)
			dec.CryptBlocks(buf, pt)
		}
		return nil
	}, nil
}
