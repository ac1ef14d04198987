package suite

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/pqlab/pqlab/ike/wire"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func rep(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

// RFC 4231 Section 4 test cases 1, 2, 3, 4, 6 and 7 (untruncated outputs).
func TestPRFRFC4231(t *testing.T) {
	type tc struct {
		key, data              []byte
		sha256, sha384, sha512 string
	}
	cases := []tc{
		{rep(0x0b, 20), []byte("Hi There"),
			"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
			"afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6",
			"87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"},
		{[]byte("Jefe"), []byte("what do ya want for nothing?"),
			"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
			"af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
			"164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"},
		{rep(0xaa, 20), rep(0xdd, 50),
			"773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
			"88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b2a5ab39dc13814b94e3ab6e101a34f27",
			"fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb"},
		{[]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25}, rep(0xcd, 50),
			"82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
			"3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e6801dd23c4a7d679ccf8a386c674cffb",
			"b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3dba91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd"},
		{rep(0xaa, 131), []byte("Test Using Larger Than Block-Size Key - Hash Key First"),
			"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
			"4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952",
			"80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598"},
		{rep(0xaa, 131), []byte("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm."),
			"9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
			"6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5a678cc31e799176d3860e6110c46523e",
			"e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58"},
	}
	for i, c := range cases {
		for _, v := range []struct {
			id   uint16
			want string
		}{{wire.PRFHMACSHA2256, c.sha256}, {wire.PRFHMACSHA2384, c.sha384}, {wire.PRFHMACSHA2512, c.sha512}} {
			p, err := PRFByID(v.id)
			if err != nil {
				t.Fatal(err)
			}
			// Split the data to exercise the variadic concatenation.
			half := len(c.data) / 2
			if got := hex.EncodeToString(p.Sum(c.key, c.data[:half], c.data[half:])); got != v.want {
				t.Errorf("case %d %s: got %s, want %s", i, p, got, v.want)
			}
		}
	}
}

// RFC 4868 Section 2.7.2 truncated-HMAC test vectors (integrity transforms).
func TestIntegRFC4868(t *testing.T) {
	for _, c := range []struct {
		id        uint16
		key, data []byte
		want      string
	}{
		{wire.IntegHMACSHA2256128, rep(0x0b, 32), []byte("Hi There"), "198a607eb44bfbc69903a0f1cf2bbdc5"},
		{wire.IntegHMACSHA2384192, rep(0x0b, 48), []byte("Hi There"), "b6a8d5636f5c6a7224f9977dcf7ee6c7fb6d0c48cbdee973"},
		{wire.IntegHMACSHA2512256, rep(0x0b, 64), []byte("Hi There"), "637edc6e01dce7e6742a99451aae82df23da3e92439e590e43e761b33e910fb8"},
		{wire.IntegHMACSHA2256128, bytes.Repeat([]byte("Jefe"), 8), []byte("what do ya want for nothing?"), "167f928588c5cc2eef8e3093caa0e87c"},
		{wire.IntegHMACSHA2384192, bytes.Repeat([]byte("Jefe"), 12), []byte("what do ya want for nothing?"), "2c7353974f1842fd66d53c452ca42122b28c0b594cfb184d"},
		{wire.IntegHMACSHA2512256, bytes.Repeat([]byte("Jefe"), 16), []byte("what do ya want for nothing?"), "cb370917ae8a7ce28cfd1d8f4705d6141c173b2a9362c15df235dfb251b15454"},
		{wire.IntegHMACSHA2256128, rep(0xaa, 32), rep(0xdd, 50), "cdcb1220d1ecccea91e53aba3092f962"},
		{wire.IntegHMACSHA2384192, rep(0xaa, 48), rep(0xdd, 50), "809f439be00274321d4a538652164b53554a508184a0c316"},
		{wire.IntegHMACSHA2512256, rep(0xaa, 64), rep(0xdd, 50), "2ee7acd783624ca9398710f3ee05ae41b9f9b0510c87e49e586cc9bf961733d8"},
		// RFC 2202 Section 3 test case 1, truncated to 96 bits (RFC 2404).
		{wire.IntegHMACSHA196, rep(0x0b, 20), []byte("Hi There"), "b617318655057264e28bc0b6"},
	} {
		a, err := integByID(c.id)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := IntegKeySize(c.id); n != len(c.key) {
			t.Errorf("%s: key size %d, vector key %d", a.name, n, len(c.key))
		}
		if got := hex.EncodeToString(a.mac(c.key, c.data)); got != c.want {
			t.Errorf("%s: got %s, want %s", a.name, got, c.want)
		}
	}
}

// prf+ with HMAC-SHA-256 from strongSwan's unit test (test_prf_plus.c,
// counter mode): key 0x0b * 20, seed "Hi There", read in pieces of 3, 6, 7,
// 16, 8, 8, 14, 20 and 40 octets.
func TestPRFPlusVector(t *testing.T) {
	want := unhex(t, `b9bdc0 8988b4c2b75a a93e596ac84205 fa2ddde1bf7a2572067b00e14b237732
		8305099 81ad2f94a 8c32a47daa2255b6 60c436347ae756a6edc023477d80
		9590e682f61d9c04b06b4ad971a34c8147fa6679
		2ff1434b93c722b32e12f48832ebc15ce2369ce71fe9b7b81e5704c14d0f5280a6ec626e992d7a9f`)
	p, _ := PRFByID(wire.PRFHMACSHA2256)
	got, err := p.Plus(rep(0x0b, 20), []byte("Hi There"), len(want))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("prf+:\n got %x\nwant %x", got, want)
	}
	// T1 alone is HMAC(K, S | 0x01).
	if t1 := p.Sum(rep(0x0b, 20), []byte("Hi There\x01")); !bytes.Equal(t1, got[:32]) {
		t.Error("T1 != prf(K, S | 0x01)")
	}
}

func TestPRFPlusLimit(t *testing.T) {
	for _, pr := range prfTable {
		if _, err := pr.Plus([]byte("k"), []byte("s"), 255*pr.Size()); err != nil {
			t.Errorf("%s: 255 blocks: %v", pr, err)
		}
		if _, err := pr.Plus([]byte("k"), []byte("s"), 255*pr.Size()+1); !errors.Is(err, ErrPRFPlusTooLong) {
			t.Errorf("%s: 255 blocks + 1: err = %v, want ErrPRFPlusTooLong", pr, err)
		}
		if _, err := pr.Plus([]byte("k"), []byte("s"), -1); err == nil {
			t.Errorf("%s: negative length accepted", pr)
		}
		// Every prefix length is a prefix of the longest output.
		full, _ := pr.Plus([]byte("k"), []byte("s"), 3*pr.Size())
		for n := 0; n <= len(full); n += 7 {
			part, _ := pr.Plus([]byte("k"), []byte("s"), n)
			if !bytes.Equal(part, full[:n]) {
				t.Errorf("%s: prf+ of %d octets is not a prefix", pr, n)
			}
		}
	}
}

// NIST CAVP SP 800-135 IKEv2 KDF vectors (HMAC-SHA-1), one from libreswan's
// CAVS driver (programs/cavp, ikev2 test) and one from Cisco's KDF KAT
// (kdf/kdftest.c). SKEYSEED, DKM = prf+(SKEYSEED, Ni|Nr|SPIi|SPIr), DKM(Child
// SA) = prf+(SK_d, Ni|Nr), DKM(Child SA D-H) = prf+(SK_d, g^ir(new)|Ni|Nr)
// and SKEYSEED(Rekey) = prf(SK_d, g^ir(new)|Ni|Nr), SK_d being the first
// PRF-size octets of DKM.
func TestCAVPIKEv2KDF(t *testing.T) {
	for _, c := range []struct {
		name                                  string
		ni, nr, gir, girNew, spiI, spiR       string
		skeyseed, dkm, dkmChild, dkmDH, rekey string
	}{
		{
			name: "libreswan",
			gir:  "4b2c1f971981a8ad8d0abeafabf38cf75fc8349c148142465ed9c8b516b8be52", girNew: "863f3c9d06efd39d2b907b97f8699e5dd5251ef64a2a176f36ee40c87d4f9330",
			ni: "32b50d5f4a3763f3", nr: "9206a04b26564cb1", spiI: "34c9e7c188868785", spiR: "3ff77d760d2b2199",
			skeyseed: "a9a7b222b59f8f48645f28a1db5b5f5d7479cba7",
			dkm:      "a14293677cc80ff8f9cc0eee30d895da9d8f405666e30ef0dfcb63c634a46002a2a63080e514a062768b76606f9fa5e992204fc5a670bde3f10d6b027113936a5c55b648a194ae587b0088d52204b702c979fa280870d2ed41efa9c549fd11198af1670b143d384bd275c5f594cf266b05ebadca855e4249520a441a81157435a7a56cc4",
			dkmChild: "8059e3ee8810e6c3a91bc8bcd2a7a41151b8d0e6ae239c7b38093ad85ef4c5811a8e7b5d1cdabd9560b2d5e092d1f24e2d4b85eccdf0ad0dc9abd94b51ee71814ca6dbc8bb51b6309f5b9545c7eb35cf5580b1e521a8fe20754a2d883ba0c2cf285f524aea6545b33106bc03e614296d319d41d4b50b3f510b1c0a22f3e664994d234cb4",
			dkmDH:    "bb43244c1860ad65ee1e211ffe8bb3661750c8f89cb9f547df7f4fa61d37301628190e38c66232eab4b3ab14c400a5197dd3730ed4820a8a10394d51e1c0400052f63ebd36b0e7ef53aaed31eba4a5080d7d4b5666023a8bbb5ffb7857240f9a05884d1b7d2f933708450b7b3288f1fc863ab49fa901227cffc06e27899c7054d56fd74c",
			rekey:    "63e81194946ebd05df7df5ebf5d8750056bf1f1d",
		},
		{
			name: "cisco",
			gir: `d084a30166a50fb7325c3960874a839449ef9741c2f4f947d0201dd8c1269273d79509f37e3ca3eb4fa2fe2a28254e28
				9cd3f34dad4eb4df1a07685a4b8a94fa61e2491f7598b3ce65547ff133b3f63d1ac4175eaa695033f3cedb026a6873a3
				6455172a8540b8a5d23a0143bed0390ee49b168269d75fffee9fb62be965993c`,
			girNew: `52f00ab174c25d5b7139ae5ff4e8e9eddee5992d2e36adf8a559ffd90dab1442e4fbe429d320c0f33552a17d1557fa41
				ea70e8fb916c4fa27ed52b5f8ebd8461afa78f1159159a64055ac5f6319e29c28eae58cbc6847770f32c3fed1d047504
				84f854790f95e9ec01bc5bc461f24966462e35951132930503 8e94deb6dd42c2`,
			ni: "3651fef5c9c35e93", nr: "c09a8b90a3f04d59", spiI: "8e5c3ae507221684", spiR: "b1f201bb155c3acd",
			skeyseed: "cd2e80501378322 45f1dbacc6e4f0a92f94d45d6",
			dkm: `6f1b12cad3cbe097b35430356d869d54cddb0198ec859174d53ceb92dddedbe2436db69f60977c58fa63bbb667f8d369
				20b109baae8f6c61a9ac49feda01843225d080ec5539d5881a25521ffb2a0a91874a9c0a27fcc2d717eb8963a9e3a89c
				7ab264757284c28cf8c3ca40576f4220b052b1fb8e9ad60ba3c805573233 31a8cbb89f20`,
			dkmChild: `4727dc0ef94eb326ce131cf282fb652faa638ad0ddae3786a11bcc0309876009f8c485de011ad962c5b1ca8a41ff8145
				445749079c5686e26ffebbc342f06981f3da745e11ca0976424d1f8caec623d59dc7186deb20a27b411d1dcb70a36544
				0bf7de905088b0692e8addc094e18d1939bdb67e89798ca6b239e2ccb81c2409dac0106c`,
			dkmDH: `b109c21ad4c0797768c1cec9e63554681e48f224bca7f23c20c4ea7041983451e9aa1d5408656c8a975ff1b9d9a12c75
				ffeb64bdecb30174664cccb4e14f1c377b7f6d1525af77c7092aac3e47f917ebae8297fb5539d2008ce830823a09cc19
				7361d4a289c72745f6ce9fefe812be5bf55b3200fbb82e41a4a40877d3fe106db909707b`,
			rekey: "3b03bce748c96d5e8306918d2ff89b68f0648da3",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, _ := PRFByID(wire.PRFHMACSHA1)
			ni, nr, gir, girNew := unhex(t, c.ni), unhex(t, c.nr), unhex(t, c.gir), unhex(t, c.girNew)
			spiI, spiR := unhex(t, c.spiI), unhex(t, c.spiR)
			want := unhex(t, c.dkm)

			// SKEYSEED and DKM through the key schedule: a suite whose keys
			// add up to the DKM length (SHA-1 PRF keys of 20 octets, no
			// integrity keys with AES-GCM, 16+4-octet AES-GCM-128 keys ...)
			// does not exist for every length, so check prf+ directly and
			// then the IKE SA keys' prefix through InitialKeys.
			skeyseed := p.Sum(concat(ni, nr), gir)
			eq(t, "SKEYSEED", skeyseed, unhex(t, c.skeyseed))
			dkm, err := p.Plus(skeyseed, concat(ni, nr, spiI, spiR), len(want))
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "DKM", dkm, want)

			s := Suite{Protocol: wire.ProtocolIKE, Encr: wire.EncrAESGCM16, EncrKeyBits: 128, PRF: wire.PRFHMACSHA1, KE: wire.KECurve25519}
			k, err := s.InitialKeys(gir, ni, nr, spiI, spiR)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "SKEYSEED via InitialKeys", k.SKEYSEED, skeyseed)
			eq(t, "SK_d..SK_pr via InitialKeys", concat(k.D, k.Ai, k.Ar, k.Ei, k.Er, k.Pi, k.Pr), want[:20+2*20+2*20])

			skd := dkm[:p.Size()]
			child, err := p.Plus(skd, rekeyInput(nil, ni, nr), len(want))
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "DKM(Child SA)", child, unhex(t, c.dkmChild))
			childDH, err := p.Plus(skd, rekeyInput([][]byte{girNew}, ni, nr), len(want))
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "DKM(Child SA D-H)", childDH, unhex(t, c.dkmDH))

			// The same through ChildKeys: AES-CBC-256 with HMAC-SHA2-512
			// takes 2*(32+64) = 192 octets, more than the vectors' 132, so
			// use AES-CBC-128 with HMAC-SHA1-96: 2*(16+20) = 72.
			cs := Suite{Protocol: wire.ProtocolESP, Encr: wire.EncrAESCBC, EncrKeyBits: 128, Integ: wire.IntegHMACSHA196}
			ck, err := cs.ChildKeys(p, skd, [][]byte{girNew}, ni, nr)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "ChildKeys KEYMAT", ck.KEYMAT, childDH[:72])
			eq(t, "ChildKeys split", concat(ck.EncrI, ck.IntegI, ck.EncrR, ck.IntegR), childDH[:72])

			rk, err := s.RekeyKeys(p, skd, [][]byte{girNew}, ni, nr, spiI, spiR)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "SKEYSEED(Rekey)", rk.SKEYSEED, unhex(t, c.rekey))
		})
	}
}
