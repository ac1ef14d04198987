package suite

import (
	"bytes"
	"crypto/mlkem"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"os"
	"testing"

	"github.com/pqlab/pqlab/ike/wire"
)

// fixedRand returns a reader that yields exactly the given octets, so that
// a method's private value is a known test vector.
func fixedRand(parts ...[]byte) io.Reader { return bytes.NewReader(concat(parts...)) }

// checkKAT runs both roles of m with known private values and compares the
// public values and the shared secret.
func checkKAT(t *testing.T, m Method, privI, privR, pubI, pubR, shared []byte) {
	t.Helper()
	st, gotI, err := m.Initiate(fixedRand(privI))
	if err != nil {
		t.Fatalf("%s Initiate: %v", m.Name(), err)
	}
	eq(t, m.Name()+" initiator public value", gotI, pubI)
	gotR, z, err := m.Respond(fixedRand(privR), pubI)
	if err != nil {
		t.Fatalf("%s Respond: %v", m.Name(), err)
	}
	eq(t, m.Name()+" responder public value", gotR, pubR)
	eq(t, m.Name()+" responder shared secret", z, shared)
	z, err = st.Complete(pubR)
	if err != nil {
		t.Fatalf("%s Complete: %v", m.Name(), err)
	}
	eq(t, m.Name()+" initiator shared secret", z, shared)
}

// RFC 5903 Section 8: i, g^i = (gix, giy), r, g^r, and the shared secret,
// the x coordinate of g^ir.
func TestECPRFC5903(t *testing.T) {
	for _, c := range []struct {
		id                             uint16
		i, gix, giy, r, grx, gry, girx string
	}{
		{wire.KEECP256,
			"c88f01f510d9ac3f70a292daa2316de544e9aab8afe84049c62a9c57862d1433",
			"dad0b65394221cf9b051e1feca5787d098dfe637fc90b9ef945d0c3772581180",
			"5271a0461cdb8252d61f1c456fa3e59ab1f45b33accf5f58389e0577b8990bb3",
			"c6ef9c5d78ae012a011164acb397ce2088685d8f06bf9be0b283ab46476bee53",
			"d12dfb5289c8d4f81208b70270398c342296970a0bccb74c736fc7554494bf63",
			"56fbf3ca366cc23e8157854c13c58d6aac23f046ada30f8353e74f33039872ab",
			"d6840f6b42f6edafd13116e0e12565202fef8e9ece7dce03812464d04b9442de"},
		{wire.KEECP384,
			"099f3c7034d4a2c699884d73a375a67f7624ef7c6b3c0f160647b67414dce655e35b538041e649ee3faef896783ab194",
			"667842d7d180ac2cde6f74f37551f55755c7645c20ef73e31634fe72b4c55ee6de3ac808acb4bdb4c88732aee95f41aa",
			"9482ed1fc0eeb9cafc4984625ccfc23f65032149e0e144ada024181535a0f38eeb9fcff3c2c947dae69b4c634573a81c",
			"41cb0779b4bdb85d47846725fbec3c9430fab46cc8dc5060855cc9bda0aa2942e0308312916b8ed2960e4bd55a7448fc",
			"e558dbef53eecde3d3fccfc1aea08a89a987475d12fd950d83cfa41732bc509d0d1ac43a0336def96fda41d0774a3571",
			"dcfbec7aacf3196472169e838430367f66eebe3c6e70c416dd5f0c68759dd1fff83fa40142209dff5eaad96db9e6386c",
			"11187331c279962d93d604243fd592cb9d0a926f422e47187521287e7156c5c4d603135569b9e9d09cf5d4a270f59746"},
		{wire.KEECP521,
			"0037ade9319a89f4dabdb3ef411aaccca5123c61acab57b5393dce47608172a095aa85a30fe1c2952c6771d937ba9777f5957b2639bab072462f68c27a57382d4a52",
			"0015417e84dbf28c0ad3c278713349dc7df153c897a1891bd98bab4357c9ecbee1e3bf42e00b8e380aeae57c2d107564941885942af5a7f4601723c4195d176ced3e",
			"017cae20b6641d2eeb695786d8c946146239d099e18e1d5a514c739d7cb4a10ad8a788015ac405d7799dc75e7b7d5b6cf2261a6a7f1507438bf01beb6ca3926f9582",
			"0145ba99a847af43793fdd0e872e7cdfa16be30fdc780f97bccc3f078380201e9c677d600b343757a3bdbf2a3163e4c2f869cca7458aa4a4effc311f5cb151685eb9",
			"00d0b3975ac4b799f5bea16d5e13e9af971d5e9b984c9f39728b5e5739735a219b97c356436adc6e95bb0352f6be64a6c2912d4ef2d0433ced2b6171640012d9460f",
			"015c68226383956e3bd066e797b623c27ce0eac2f551a10c2c724d9852077b87220b6536c5c408a1d2aebb8e86d678ae49cb57091f4732296579ab44fcd17f0fc56a",
			"01144c7d79ae6956bc8edb8e7c787c4521cb086fa64407f97894e5e6b2d79b04d1427e73ca4baa240a34786859810c06b3c715a3a8cc3151f2bee417996d19f3ddea"},
	} {
		m, err := MethodByID(c.id)
		if err != nil {
			t.Fatal(err)
		}
		checkKAT(t, m, unhex(t, c.i), unhex(t, c.r), unhex(t, c.gix+c.giy), unhex(t, c.grx+c.gry), unhex(t, c.girx))
	}
}

// RFC 7748 Sections 6.1 and 6.2.
func TestX25519X448RFC7748(t *testing.T) {
	x25519, _ := MethodByID(wire.KECurve25519)
	checkKAT(t, x25519,
		unhex(t, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
		unhex(t, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"),
		unhex(t, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"),
		unhex(t, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"),
		unhex(t, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"))
	x448, _ := MethodByID(wire.KECurve448)
	checkKAT(t, x448,
		unhex(t, "9a8f4925d1519f5775cf46b04b5800d4ee9ee8bae8bc5565d498c28dd9c9baf574a9419744897391006382a6f127ab1d9ac2d8c0a598726b"),
		unhex(t, "1c306a7ac2a0e2e0990b294470cba339e6453772b075811d8fad0d1d6927c120bb5ee8972b0d3e21374c9c921b09d1b0366f10b65173992d"),
		unhex(t, "9b08f7cc31b7e3e67d22d5aea121074a273bd2b83de09c63faa73d2c22c5d9bbc836647241d953d40c5b12da88120d53177f80e532c41fa0"),
		unhex(t, "3eb7a829b0cd20f5bcfc0b599b6feccf6da4627107bdb0d4f345b43027d8b972fc3e34fb4232a13ca706dcb57aec3dae07bdc1c67bf33609"),
		unhex(t, "07fff4181ac6cc95ec1c16a94a0f74d12da232ce40a77552281d282bb60c0b56fd2464c335543936521c24403085d59a449a5037514a879d"))
}

// MODP group 14 against strongSwan's generated vector (the private
// exponents are the 48-octet values the method reads).
func TestMODPStrongSwanVector(t *testing.T) {
	b, err := os.ReadFile("testdata/modp2048_strongswan.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		XI, XR, PubI, PubR, Shared hexBytes
	}
	if err := json.Unmarshal(b, &struct {
		XI     *hexBytes `json:"x_i"`
		XR     *hexBytes `json:"x_r"`
		PubI   *hexBytes `json:"pub_i"`
		PubR   *hexBytes `json:"pub_r"`
		Shared *hexBytes `json:"shared"`
	}{&v.XI, &v.XR, &v.PubI, &v.PubR, &v.Shared}); err != nil {
		t.Fatal(err)
	}
	m, _ := MethodByID(wire.KEMODP2048)
	checkKAT(t, m, v.XI, v.XR, v.PubI, v.PubR, v.Shared)
}

// The RFC 3526 primes are safe primes of the documented form: a typo in a
// constant would break primality.
func TestMODPPrimes(t *testing.T) {
	for _, m := range []*modpMethod{modp2048, modp3072, modp4096} {
		n := m.p.BitLen()
		if n != 8*m.size || n != map[uint16]int{14: 2048, 15: 3072, 16: 4096}[m.id] {
			t.Errorf("%s: %d bits", m.name, n)
		}
		ones := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 64), big.NewInt(1))
		if new(big.Int).And(m.p, ones).Cmp(ones) != 0 || new(big.Int).Rsh(m.p, uint(n-64)).Cmp(ones) != 0 {
			t.Errorf("%s: low or high 64 bits are not all ones", m.name)
		}
		q := new(big.Int).Rsh(m.p, 1)
		if !m.p.ProbablyPrime(8) || !q.ProbablyPrime(8) {
			t.Errorf("%s: p or (p-1)/2 is not prime", m.name)
		}
	}
}

type acvpVectors struct {
	KeyGen []struct {
		ParameterSet string   `json:"parameterSet"`
		RawD         hexBytes `json:"d"`
		RawZ         hexBytes `json:"z"`
		RawEK        hexBytes `json:"ek"`
	} `json:"keyGen"`
	Encaps []struct {
		ParameterSet string   `json:"parameterSet"`
		EK           hexBytes `json:"ek"`
		M            hexBytes `json:"m"`
		C            hexBytes `json:"c"`
		K            hexBytes `json:"k"`
	} `json:"encaps"`
	Decaps []struct {
		ParameterSet string   `json:"parameterSet"`
		DK           hexBytes `json:"dk"`
		C            hexBytes `json:"c"`
		K            hexBytes `json:"k"`
	} `json:"decaps"`
}

var mlkemByName = map[string]*mlkemMethod{"ML-KEM-512": keMLKEM512, "ML-KEM-768": keMLKEM768, "ML-KEM-1024": keMLKEM1024}

// NIST ACVP ML-KEM keyGen and encapDecap vectors (testdata/mlkem_acvp.json).
func TestMLKEMACVP(t *testing.T) {
	b, err := os.ReadFile("testdata/mlkem_acvp.json")
	if err != nil {
		t.Fatal(err)
	}
	var v acvpVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.KeyGen) != 6 || len(v.Encaps) != 6 || len(v.Decaps) != 6 {
		t.Fatalf("vector file holds %d/%d/%d cases", len(v.KeyGen), len(v.Encaps), len(v.Decaps))
	}
	for _, c := range v.KeyGen {
		m := mlkemByName[c.ParameterSet]
		_, ek, err := m.Initiate(fixedRand(c.RawD, c.RawZ))
		if err != nil {
			t.Fatal(err)
		}
		eq(t, c.ParameterSet+" keyGen ek", ek, c.RawEK)
	}
	for _, c := range v.Encaps {
		m := mlkemByName[c.ParameterSet]
		ct, k, err := m.Respond(fixedRand(c.M), c.EK)
		if err != nil {
			t.Fatal(err)
		}
		eq(t, c.ParameterSet+" encaps c", ct, c.C)
		eq(t, c.ParameterSet+" encaps k", k, c.K)
	}
	for _, c := range v.Decaps {
		m := mlkemByName[c.ParameterSet]
		sk, err := m.scheme.UnmarshalBinaryPrivateKey(c.DK)
		if err != nil {
			t.Fatal(err)
		}
		k, err := (&mlkemState{m, sk}).Complete(c.C)
		if err != nil {
			t.Fatal(err)
		}
		eq(t, c.ParameterSet+" decaps k", k, c.K)
	}
}

// circl (used here) and Go's crypto/mlkem agree on keys derived from the
// same seed, and each decapsulates what the other encapsulated.
func TestMLKEMCrossImplementation(t *testing.T) {
	seed := bytes.Repeat([]byte{0x42}, 64)
	type goDK interface {
		EncapsulationKey() []byte
		Decapsulate([]byte) ([]byte, error)
	}
	for _, c := range []struct {
		m      *mlkemMethod
		newDK  func([]byte) (goDK, error)
		encaps func(ek []byte) (ss, ct []byte, err error)
	}{
		{keMLKEM768, func(s []byte) (goDK, error) { k, err := mlkem.NewDecapsulationKey768(s); return goDK768{k}, err },
			func(ek []byte) ([]byte, []byte, error) {
				k, err := mlkem.NewEncapsulationKey768(ek)
				if err != nil {
					return nil, nil, err
				}
				ss, ct := k.Encapsulate()
				return ss, ct, nil
			}},
		{keMLKEM1024, func(s []byte) (goDK, error) { k, err := mlkem.NewDecapsulationKey1024(s); return goDK1024{k}, err },
			func(ek []byte) ([]byte, []byte, error) {
				k, err := mlkem.NewEncapsulationKey1024(ek)
				if err != nil {
					return nil, nil, err
				}
				ss, ct := k.Encapsulate()
				return ss, ct, nil
			}},
	} {
		st, ek, err := c.m.Initiate(fixedRand(seed))
		if err != nil {
			t.Fatal(err)
		}
		dk, err := c.newDK(seed)
		if err != nil {
			t.Fatal(err)
		}
		eq(t, c.m.name+" encapsulation key vs crypto/mlkem", ek, dk.EncapsulationKey())

		// crypto/mlkem encapsulates, we decapsulate.
		ss, ct, err := c.encaps(ek)
		if err != nil {
			t.Fatal(err)
		}
		got, err := st.Complete(ct)
		if err != nil {
			t.Fatal(err)
		}
		eq(t, c.m.name+" shared secret (crypto/mlkem encaps)", got, ss)

		// We encapsulate, crypto/mlkem decapsulates.
		ct, ss, err = c.m.Respond(testRand(3), dk.EncapsulationKey())
		if err != nil {
			t.Fatal(err)
		}
		got, err = dk.Decapsulate(ct)
		if err != nil {
			t.Fatal(err)
		}
		eq(t, c.m.name+" shared secret (crypto/mlkem decaps)", got, ss)

		// Both reject an encapsulation key with a coefficient >= q.
		bad := bytes.Clone(ek)
		bad[0], bad[1] = 0xff, bad[1]|0x0f // first coefficient 4095
		if _, _, err := c.m.Respond(testRand(3), bad); !errors.Is(err, ErrInvalidKEData) {
			t.Errorf("%s: modified encapsulation key: err %v, want ErrInvalidKEData", c.m.name, err)
		}
		if _, _, err := c.encaps(bad); err == nil {
			t.Errorf("%s: crypto/mlkem accepted the modified key", c.m.name)
		}
	}
}

type goDK768 struct{ *mlkem.DecapsulationKey768 }

func (k goDK768) EncapsulationKey() []byte { return k.DecapsulationKey768.EncapsulationKey().Bytes() }

type goDK1024 struct{ *mlkem.DecapsulationKey1024 }

func (k goDK1024) EncapsulationKey() []byte { return k.DecapsulationKey1024.EncapsulationKey().Bytes() }

// FIPS 203 Section 7.2 encapsulation key check for every parameter set: a
// coefficient >= q anywhere in the key is rejected, distinguishably.
func TestMLKEMEncapsulationKeyCheck(t *testing.T) {
	for _, m := range []*mlkemMethod{keMLKEM512, keMLKEM768, keMLKEM1024} {
		_, ek, err := m.Initiate(testRand(7))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := m.Respond(testRand(8), ek); err != nil {
			t.Fatalf("%s: valid key rejected: %v", m.name, err)
		}
		polyBytes := len(ek) - 32 // t-hat, then rho
		for _, off := range []int{0, 3 * 17, polyBytes - 3} {
			bad := bytes.Clone(ek)
			bad[off+1] |= 0xf0 // second coefficient of the triple: >= 3840 >= q
			bad[off+2] = 0xff
			if _, _, err := m.Respond(testRand(8), bad); !errors.Is(err, ErrInvalidKEData) {
				t.Errorf("%s: coefficient >= q at %d: err %v", m.name, off, err)
			}
		}
		// rho is arbitrary: changing it yields a different, valid key.
		other := bytes.Clone(ek)
		other[len(other)-1] ^= 1
		if _, _, err := m.Respond(testRand(8), other); err != nil {
			t.Errorf("%s: key with changed rho rejected: %v", m.name, err)
		}
	}
}

// Every method in both roles agrees on the shared secret, produces the
// advertised sizes, and is deterministic for a given reader.
func TestKERoundTrip(t *testing.T) {
	for i, m := range Methods() {
		t.Run(m.Name(), func(t *testing.T) {
			st, pubI, err := m.Initiate(testRand(byte(i)))
			if err != nil {
				t.Fatal(err)
			}
			pubR, zR, err := m.Respond(testRand(byte(i+100)), pubI)
			if err != nil {
				t.Fatal(err)
			}
			zI, err := st.Complete(pubR)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(zI, zR) {
				t.Fatal("shared secrets differ")
			}
			if len(pubI) != m.InitiatorDataSize() || len(pubR) != m.ResponderDataSize() || len(zI) != m.SharedSize() {
				t.Fatalf("sizes %d/%d/%d, advertised %d/%d/%d", len(pubI), len(pubR), len(zI),
					m.InitiatorDataSize(), m.ResponderDataSize(), m.SharedSize())
			}
			_, again, _ := m.Initiate(testRand(byte(i)))
			if !bytes.Equal(again, pubI) {
				t.Fatal("same reader, different KE data")
			}
			_, other, _ := m.Initiate(testRand(byte(i + 1)))
			if bytes.Equal(other, pubI) {
				t.Fatal("different reader, same KE data")
			}
			// A second Complete gives the same result (retransmissions).
			if z2, err := st.Complete(pubR); err != nil || !bytes.Equal(z2, zI) {
				t.Fatal("second Complete differs")
			}
			// Reader failures are reported, not hidden.
			if _, _, err := m.Initiate(bytes.NewReader(nil)); err == nil {
				t.Fatal("Initiate with an empty reader succeeded")
			}
			if _, _, err := m.Respond(bytes.NewReader(nil), pubI); err == nil {
				t.Fatal("Respond with an empty reader succeeded")
			}
		})
	}
}

// Invalid peer values are rejected with ErrInvalidKEData in both roles.
func TestKEInvalidPeerData(t *testing.T) {
	for i, m := range Methods() {
		_, pubI, err := m.Initiate(testRand(byte(i)))
		if err != nil {
			t.Fatal(err)
		}
		st, _, _ := m.Initiate(testRand(byte(i + 50)))
		pubR, _, err := m.Respond(testRand(byte(i+100)), pubI)
		if err != nil {
			t.Fatal(err)
		}
		bad := map[string][][]byte{
			"empty":   {nil, nil},
			"short":   {pubI[:len(pubI)-1], pubR[:len(pubR)-1]},
			"long":    {append(bytes.Clone(pubI), 0), append(bytes.Clone(pubR), 0)},
			"swapped": {nil, nil},
		}
		if !isMLKEM(m.ID()) {
			// For ML-KEM an all-zero key passes the FIPS 203 checks.
			bad["all zeros"] = [][]byte{make([]byte, len(pubI)), nil}
		}
		if len(pubI) != len(pubR) {
			bad["swapped"] = [][]byte{pubR, pubI}
		}
		switch mm := m.(type) {
		case *modpMethod:
			pm1 := mm.pm1.FillBytes(make([]byte, mm.size))
			p := mm.p.FillBytes(make([]byte, mm.size))
			one := new(big.Int).SetInt64(1).FillBytes(make([]byte, mm.size))
			bad["zero"] = [][]byte{make([]byte, mm.size), make([]byte, mm.size)}
			bad["one"] = [][]byte{one, one}
			bad["p-1"] = [][]byte{pm1, pm1}
			bad["p"] = [][]byte{p, p}
			bad["all ones"] = [][]byte{bytes.Repeat([]byte{0xff}, mm.size), bytes.Repeat([]byte{0xff}, mm.size)}
		case *ecpMethod:
			off := bytes.Clone(pubI)
			off[len(off)-1] ^= 1 // y no longer matches x
			bad["off curve"] = [][]byte{off, off}
			bad["zeros"] = [][]byte{make([]byte, len(pubI)), make([]byte, len(pubI))}
			ff := bytes.Repeat([]byte{0xff}, len(pubI)) // coordinates >= p
			bad["coordinates >= p"] = [][]byte{ff, ff}
		case x25519Method, x448Method:
			n := len(pubI)
			one := make([]byte, n)
			one[0] = 1 // u = 1 has small order: shared secret all zero
			bad["zero point"] = [][]byte{make([]byte, n), make([]byte, n)}
			bad["u=1"] = [][]byte{one, one}
		}
		for name, v := range bad {
			if v[0] != nil || name == "empty" {
				if _, _, err := m.Respond(testRand(1), v[0]); !errors.Is(err, ErrInvalidKEData) {
					t.Errorf("%s Respond %s: err %v, want ErrInvalidKEData", m.Name(), name, err)
				}
			}
			if v[1] != nil || name == "empty" {
				if _, err := st.Complete(v[1]); !errors.Is(err, ErrInvalidKEData) {
					t.Errorf("%s Complete %s: err %v, want ErrInvalidKEData", m.Name(), name, err)
				}
			}
		}
	}
}

func TestFixedMethod(t *testing.T) {
	f := &Fixed{MethodID: wire.KEMLKEM768, InitiatorData: []byte("ek"), ResponderData: []byte("ct"), Shared: []byte("ss")}
	var m Method = f
	if m.ID() != wire.KEMLKEM768 || m.Name() != "mlkem768(fixed)" || m.SharedSize() != 2 {
		t.Fatalf("%d %s %d", m.ID(), m.Name(), m.SharedSize())
	}
	st, ek, err := m.Initiate(nil)
	if err != nil || string(ek) != "ek" {
		t.Fatal(ek, err)
	}
	if ss, err := st.Complete([]byte("ct")); err != nil || string(ss) != "ss" {
		t.Fatal(ss, err)
	}
	if _, err := st.Complete([]byte("xx")); !errors.Is(err, ErrInvalidKEData) {
		t.Fatal(err)
	}
	if ct, ss, err := m.Respond(nil, []byte("ek")); err != nil || string(ct) != "ct" || string(ss) != "ss" {
		t.Fatal(ct, ss, err)
	}
	if _, _, err := m.Respond(nil, []byte("xx")); !errors.Is(err, ErrInvalidKEData) {
		t.Fatal(err)
	}
	// Without expectations any peer value goes.
	loose := &Fixed{MethodID: 31, Shared: []byte("ss")}
	if _, _, err := loose.Respond(nil, []byte("anything")); err != nil {
		t.Fatal(err)
	}
}

func TestKEOps(t *testing.T) {
	for _, c := range []struct {
		id   uint16
		step KEStep
		want []Op
	}{
		{wire.KECurve25519, KEInitiate, []Op{OpKEKeygen}},
		{wire.KECurve25519, KERespond, []Op{OpKEKeygen, OpDH}},
		{wire.KECurve25519, KEComplete, []Op{OpDH}},
		{wire.KEMLKEM768, KEInitiate, []Op{OpKEKeygen}},
		{wire.KEMLKEM768, KERespond, []Op{OpKEEncaps}},
		{wire.KEMLKEM768, KEComplete, []Op{OpKEDecaps}},
	} {
		got := KEOps(c.id, c.step)
		if len(got) != len(c.want) {
			t.Errorf("%d %v: %v", c.id, c.step, got)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%d %v: %v", c.id, c.step, got)
			}
		}
	}
	for _, o := range Ops() {
		if o.String() == "" || o.String()[0] == 'O' {
			t.Errorf("op %d has no name", o)
		}
	}
	if Op(200).String() != "Op(200)" {
		t.Error(Op(200).String())
	}
}

// FuzzKEPeer feeds arbitrary peer KE data to every method in both roles:
// no panic, and any accepted value yields a secret of the advertised size.
func FuzzKEPeer(f *testing.F) {
	methods := Methods()
	states := make([]InitiatorState, len(methods))
	for i, m := range methods {
		st, pub, err := m.Initiate(testRand(byte(i)))
		if err != nil {
			f.Fatal(err)
		}
		states[i] = st
		pubR, _, _ := m.Respond(testRand(byte(i)), pub)
		f.Add(uint8(i), pub)
		f.Add(uint8(i), pubR)
	}
	f.Fuzz(func(t *testing.T, which uint8, peer []byte) {
		i := int(which) % len(methods)
		m := methods[i]
		if pub, z, err := m.Respond(testRand(9), peer); err == nil {
			if len(pub) != m.ResponderDataSize() || len(z) != m.SharedSize() {
				t.Fatalf("%s Respond: sizes %d/%d", m.Name(), len(pub), len(z))
			}
		} else if len(peer) == m.InitiatorDataSize() && isMLKEM(m.ID()) && !errors.Is(err, ErrInvalidKEData) {
			t.Fatalf("%s Respond: unexpected error class %v", m.Name(), err)
		}
		if z, err := states[i].Complete(peer); err == nil && len(z) != m.SharedSize() {
			t.Fatalf("%s Complete: %d octets", m.Name(), len(z))
		}
	})
}
