package suite

// Known-answer tests against the records of real strongSwan 6.0.6
// handshakes in testdata/ (see testdata/README.md): every derived key,
// IntAuth, AUTH and Child SA key, and every SK/SKF datagram, recomputed
// from the recorded shared secrets, nonces and SPIs.

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pqlab/pqlab/ike/wire"
)

type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	*h = v
	return err
}

type ssTransform struct {
	Type      int    `json:"type"`
	ID        uint16 `json:"id"`
	KeyLength int    `json:"key_length"`
}

type ssNegotiated struct {
	Transforms []ssTransform `json:"transforms"`
}

type ssKE struct {
	TransformType int      `json:"transform_type"`
	MethodID      uint16   `json:"method_id"`
	KeI           hexBytes `json:"ke_i"`
	KeR           hexBytes `json:"ke_r"`
	Shared        hexBytes `json:"shared_secret"`
}

type ssKeys struct {
	SKEYSEED    hexBytes `json:"SKEYSEED"`
	PRFKey      hexBytes `json:"skeyseed_prf_key"`
	PRFData     hexBytes `json:"skeyseed_prf_data"`
	PRFPlusSeed hexBytes `json:"prfplus_seed"`
	D           hexBytes `json:"SK_d"`
	Ai          hexBytes `json:"SK_ai"`
	Ar          hexBytes `json:"SK_ar"`
	Ei          hexBytes `json:"SK_ei"`
	Er          hexBytes `json:"SK_er"`
	Pi          hexBytes `json:"SK_pi"`
	Pr          hexBytes `json:"SK_pr"`
}

type ssIntAuthSide struct {
	Prev  hexBytes `json:"IntAuth_prev"`
	AP    hexBytes `json:"IntAuth_A_P"`
	SKp   hexBytes `json:"SK_p"`
	Value hexBytes `json:"value"`
}

type ssIntermediate struct {
	MessageID uint32        `json:"message_id"`
	I         ssIntAuthSide `json:"IntAuth_i"`
	R         ssIntAuthSide `json:"IntAuth_r"`
}

type ssAuthSide struct {
	IDPrime hexBytes `json:"IDx_prime"`
	SKp     hexBytes `json:"SK_p"`
	Octets  hexBytes `json:"octets"`
	Parts   struct {
		MacedID hexBytes `json:"maced_id"`
		IntAuth hexBytes `json:"int_auth"`
	} `json:"octets_parts"`
	PSK    hexBytes `json:"psk"`
	KeyPad hexBytes `json:"prf_psk_keypad"`
	AUTH   hexBytes `json:"AUTH"`
}

type ssESPKeys struct {
	Encr  hexBytes `json:"encryption_key"`
	Integ hexBytes `json:"integrity_key"`
}

type ssChild struct {
	Negotiated   ssNegotiated `json:"negotiated"`
	NonceI       hexBytes     `json:"nonce_i"`
	NonceR       hexBytes     `json:"nonce_r"`
	KeyExchanges []ssKE       `json:"key_exchanges"`
	SKd          hexBytes     `json:"prfplus_key_SK_d"`
	Seed         hexBytes     `json:"prfplus_seed"`
	KEYMAT       hexBytes     `json:"KEYMAT"`
	IToR         ssESPKeys    `json:"esp_i_to_r"`
	RToI         ssESPKeys    `json:"esp_r_to_i"`
}

type ssMessage struct {
	Dir       string   `json:"dir"`
	Exchange  string   `json:"exchange"`
	MessageID uint32   `json:"message_id"`
	Hex       hexBytes `json:"hex"`
	IKEOffset int      `json:"ike_offset"`
	Fragment  *struct {
		Number int `json:"number"`
		Total  int `json:"total"`
	} `json:"fragment"`
	ProtectedBy *struct {
		IKESA string `json:"ike_sa"`
		Stage int    `json:"stage"`
	} `json:"protected_by"`
	Plaintext hexBytes `json:"sk_plaintext"`
	Padding   hexBytes `json:"sk_padding_incl_pad_length"`
}

type ssCase struct {
	Case      string `json:"case"`
	Proposals struct {
		IKE string `json:"ike"`
		ESP string `json:"esp"`
		PFS string `json:"esp_pfs_child"`
	} `json:"proposals"`
	Negotiated struct {
		IKE ssNegotiated `json:"ike"`
		ESP ssNegotiated `json:"esp"`
	} `json:"negotiated"`
	PSK          hexBytes         `json:"psk"`
	SPIi         hexBytes         `json:"spi_i"`
	SPIr         hexBytes         `json:"spi_r"`
	Ni           hexBytes         `json:"nonce_i"`
	Nr           hexBytes         `json:"nonce_r"`
	KeyExchanges []ssKE           `json:"key_exchanges"`
	Stages       []ssKeys         `json:"stages"`
	Intermediate []ssIntermediate `json:"intermediate"`
	IntAuth      hexBytes         `json:"IntAuth"`
	Auth         struct {
		I ssAuthSide `json:"i"`
		R ssAuthSide `json:"r"`
	} `json:"auth"`
	ChildSAs []ssChild   `json:"child_sas"`
	Messages []ssMessage `json:"messages"`

	// case 6
	Parent struct {
		ssKeys
		SPIi       hexBytes     `json:"spi_i"`
		SPIr       hexBytes     `json:"spi_r"`
		Negotiated ssNegotiated `json:"negotiated"`
	} `json:"parent_ike_sa"`
	ChildCreatePFS ssChild `json:"child_create_pfs"`
	ChildRekey     ssChild `json:"child_rekey"`
	IKERekey       struct {
		Negotiated   ssNegotiated `json:"negotiated"`
		NewSPIi      hexBytes     `json:"new_spi_i"`
		NewSPIr      hexBytes     `json:"new_spi_r"`
		Ni           hexBytes     `json:"nonce_i"`
		Nr           hexBytes     `json:"nonce_r"`
		KeyExchanges []ssKE       `json:"key_exchanges"`
		OldSKd       hexBytes     `json:"old_SK_d"`
		Derivation   ssKeys       `json:"derivation"`
	} `json:"ike_rekey"`
}

var ssCases = []string{
	"case1_x25519_mlkem768",
	"case2_ecp256_mlkem512",
	"case3_ecp384_mlkem1024",
	"case4_cbc_sha256_x25519_mlkem768",
	"case5_mlkem768_only",
	"case6_rekey_x25519_mlkem768",
	"case7_classic_x25519",
}

func loadCase(t testing.TB, name string) *ssCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var c ssCase
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &c
}

// suiteOf builds the Suite the responder's SA payload selected.
func suiteOf(t testing.TB, proto wire.ProtocolID, n ssNegotiated) Suite {
	t.Helper()
	s := Suite{Protocol: proto}
	for _, tr := range n.Transforms {
		switch typ := wire.TransformType(tr.Type); {
		case typ == wire.TransformENCR:
			s.Encr, s.EncrKeyBits = tr.ID, tr.KeyLength
		case typ == wire.TransformPRF:
			s.PRF = tr.ID
		case typ == wire.TransformINTEG:
			s.Integ = tr.ID
		case typ == wire.TransformKE:
			s.KE = tr.ID
		case typ == wire.TransformESN:
			s.ESN = tr.ID == wire.ESNYes
		case typ >= wire.TransformADDKE1 && typ <= wire.TransformADDKE7:
			s.AddKE[typ-wire.TransformADDKE1] = tr.ID
		default:
			t.Fatalf("unexpected transform type %d", tr.Type)
		}
	}
	if err := s.Validate(); err != nil {
		t.Fatalf("negotiated suite %+v: %v", s, err)
	}
	return s
}

func eq(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got %x\nwant %x", what, got, want)
	}
}

func checkKeys(t testing.TB, what string, got *IKEKeys, want *ssKeys) {
	t.Helper()
	eq(t, what+" SKEYSEED", got.SKEYSEED, want.SKEYSEED)
	eq(t, what+" SK_d", got.D, want.D)
	eq(t, what+" SK_ai", got.Ai, want.Ai)
	eq(t, what+" SK_ar", got.Ar, want.Ar)
	eq(t, what+" SK_ei", got.Ei, want.Ei)
	eq(t, what+" SK_er", got.Er, want.Er)
	eq(t, what+" SK_pi", got.Pi, want.Pi)
	eq(t, what+" SK_pr", got.Pr, want.Pr)
}

func keysOf(k *ssKeys) *IKEKeys {
	return &IKEKeys{SKEYSEED: k.SKEYSEED, D: k.D, Ai: k.Ai, Ar: k.Ar, Ei: k.Ei, Er: k.Er, Pi: k.Pi, Pr: k.Pr}
}

func checkChild(t testing.TB, what string, prf *PRF, c *ssChild, ni, nr []byte) {
	t.Helper()
	cs := suiteOf(t, wire.ProtocolESP, c.Negotiated)
	var secrets [][]byte
	for _, ke := range c.KeyExchanges {
		secrets = append(secrets, ke.Shared)
	}
	if c.NonceI != nil {
		ni, nr = c.NonceI, c.NonceR
	}
	eq(t, what+" prf+ seed", rekeyInput(secrets, ni, nr), c.Seed)
	k, err := cs.ChildKeys(prf, c.SKd, secrets, ni, nr)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	eq(t, what+" KEYMAT", k.KEYMAT, c.KEYMAT)
	eq(t, what+" encr i->r", k.EncrI, c.IToR.Encr)
	eq(t, what+" integ i->r", k.IntegI, c.IToR.Integ)
	eq(t, what+" encr r->i", k.EncrR, c.RToI.Encr)
	eq(t, what+" integ r->i", k.IntegR, c.RToI.Integ)
}

// skHeaderLen returns the length of the associated data of an SK or SKF
// message: IKE header, generic payload header and, for SKF, the fragment
// number and total (RFC 7383 Section 2.5).
func skHeaderLen(t testing.TB, msg []byte) int {
	t.Helper()
	if len(msg) < ikeHeaderSize+genericHeaderSize {
		t.Fatalf("short message")
	}
	switch wire.PayloadType(msg[ikeNextPayloadOff]) {
	case wire.PayloadSK:
		return ikeHeaderSize + genericHeaderSize
	case wire.PayloadSKF:
		return ikeHeaderSize + genericHeaderSize + 4
	}
	t.Fatalf("first payload %d is not SK/SKF", msg[ikeNextPayloadOff])
	return 0
}

// checkMessage decrypts one recorded datagram, compares the plaintext,
// re-encrypts it with the recorded IV and padding and compares the bytes,
// then checks that tampering is detected.
func checkMessage(t *testing.T, what string, s *Suite, keys *IKEKeys, m *ssMessage) {
	t.Helper()
	initiatorSent := m.Dir == "i->r"
	out, _, err := s.SKPair(keys, initiatorSent, rand.NewChaCha8([32]byte{1}))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	msg := []byte(m.Hex[m.IKEOffset:])
	if got := int(msg[24])<<24 | int(msg[25])<<16 | int(msg[26])<<8 | int(msg[27]); got != len(msg) {
		t.Fatalf("%s: IKE header length %d, datagram %d", what, got, len(msg))
	}
	hl := skHeaderLen(t, msg)
	header, body := msg[:hl], msg[hl:]
	if want := out.SealedLen(len(m.Plaintext)) - out.padLen(len(m.Plaintext)) + len(m.Padding) - 1; want != len(body) {
		t.Errorf("%s: body is %d octets, sizes say %d", what, len(body), want)
	}
	pt, err := out.Open(header, body)
	if err != nil {
		t.Fatalf("%s: Open: %v", what, err)
	}
	eq(t, what+" plaintext", pt, m.Plaintext)
	resealed := out.seal(slices.Clone(header), pt, body[:out.IVSize()], m.Padding[:len(m.Padding)-1])
	eq(t, what+" re-encrypted datagram", resealed, msg)

	bad := slices.Clone(body)
	bad[len(bad)/2] ^= 0x40
	if _, err := out.Open(header, bad); !errors.Is(err, ErrSKIntegrity) {
		t.Errorf("%s: tampered body: err = %v, want ErrSKIntegrity", what, err)
	}
	badHdr := slices.Clone(header)
	badHdr[20] ^= 1 // message ID
	if _, err := out.Open(badHdr, body); !errors.Is(err, ErrSKIntegrity) {
		t.Errorf("%s: tampered header: err = %v, want ErrSKIntegrity", what, err)
	}
}

// intAuthFromMessages rebuilds A | P of one side's IKE_INTERMEDIATE message
// from the recorded datagrams, reassembling fragments.
func intAuthFromMessages(t *testing.T, c *ssCase, dir string, mid uint32) []byte {
	t.Helper()
	var frags []*ssMessage
	for i := range c.Messages {
		m := &c.Messages[i]
		if m.Dir == dir && m.Exchange == "IKE_INTERMEDIATE" && m.MessageID == mid {
			frags = append(frags, m)
		}
	}
	if len(frags) == 0 {
		t.Fatalf("no IKE_INTERMEDIATE %d from %s", mid, dir)
	}
	slices.SortFunc(frags, func(a, b *ssMessage) int {
		if a.Fragment == nil || b.Fragment == nil {
			return 0
		}
		return a.Fragment.Number - b.Fragment.Number
	})
	first := []byte(frags[0].Hex[frags[0].IKEOffset:])
	var inner []byte
	for _, f := range frags {
		inner = append(inner, f.Plaintext...)
	}
	d, err := IntAuthData(first, wire.PayloadType(first[ikeHeaderSize]), inner)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestStrongSwanHandshakes(t *testing.T) {
	for _, name := range ssCases {
		if name == "case6_rekey_x25519_mlkem768" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			c := loadCase(t, name)
			s := suiteOf(t, wire.ProtocolIKE, c.Negotiated.IKE)
			prf, err := s.PRFAlg()
			if err != nil {
				t.Fatal(err)
			}

			// The proposals strongSwan was configured with select the
			// recorded suites.
			ike, err := ParseProposal(wire.ProtocolIKE, c.Proposals.IKE)
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := ike.Select(ike); !ok || got != s {
				t.Errorf("IKE proposal %q selects %v, recorded %v", c.Proposals.IKE, got.String(), s.String())
			}
			esp, err := ParseProposal(wire.ProtocolESP, c.Proposals.ESP)
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := esp.Select(esp); !ok || got != suiteOf(t, wire.ProtocolESP, c.Negotiated.ESP) {
				t.Errorf("ESP proposal %q selects %v", c.Proposals.ESP, got.String())
			}

			// The key exchanges are the suite's, in order.
			var methods []uint16
			for _, ke := range c.KeyExchanges {
				methods = append(methods, ke.MethodID)
				m, err := MethodByID(ke.MethodID)
				if err != nil {
					t.Fatal(err)
				}
				if len(ke.KeI) != m.InitiatorDataSize() || len(ke.KeR) != m.ResponderDataSize() || len(ke.Shared) != m.SharedSize() {
					t.Errorf("%s: recorded sizes %d/%d/%d, method says %d/%d/%d", m.Name(), len(ke.KeI), len(ke.KeR),
						len(ke.Shared), m.InitiatorDataSize(), m.ResponderDataSize(), m.SharedSize())
				}
			}
			if !slices.Equal(methods, s.KeyExchanges()) {
				t.Errorf("key exchanges %v, suite says %v", methods, s.KeyExchanges())
			}

			// Stages: SKEYSEED and SK_* after IKE_SA_INIT and each IKE_INTERMEDIATE.
			if len(c.Stages) != len(c.KeyExchanges) {
				t.Fatalf("%d stages for %d key exchanges", len(c.Stages), len(c.KeyExchanges))
			}
			keys := make([]*IKEKeys, len(c.Stages))
			for n := range c.Stages {
				if n == 0 {
					keys[n], err = s.InitialKeys(c.KeyExchanges[0].Shared, c.Ni, c.Nr, c.SPIi, c.SPIr)
				} else {
					keys[n], err = s.IntermediateKeys(keys[n-1], c.KeyExchanges[n].Shared, c.Ni, c.Nr, c.SPIi, c.SPIr)
				}
				if err != nil {
					t.Fatal(err)
				}
				checkKeys(t, "stage "+string(rune('0'+n)), keys[n], &c.Stages[n])
				eq(t, "prf+ seed", concat(c.Ni, c.Nr, c.SPIi, c.SPIr), c.Stages[n].PRFPlusSeed)
			}
			final := keys[len(keys)-1]

			// IntAuth chain, with A | P rebuilt from the datagrams.
			var intI, intR []byte
			for n, im := range c.Intermediate {
				eq(t, "IntAuth_i SK_p", im.I.SKp, keys[n].Pi)
				eq(t, "IntAuth_r SK_p", im.R.SKp, keys[n].Pr)
				eq(t, "IntAuth_i prev", im.I.Prev, intI)
				eq(t, "IntAuth_r prev", im.R.Prev, intR)
				eq(t, "IntAuth_i A|P", intAuthFromMessages(t, c, "i->r", im.MessageID), im.I.AP)
				eq(t, "IntAuth_r A|P", intAuthFromMessages(t, c, "r->i", im.MessageID), im.R.AP)
				intI = IntAuth(prf, keys[n].Pi, intI, im.I.AP)
				intR = IntAuth(prf, keys[n].Pr, intR, im.R.AP)
				eq(t, "IntAuth_i", intI, im.I.Value)
				eq(t, "IntAuth_r", intR, im.R.Value)
			}
			var intAuth []byte
			if len(c.Intermediate) > 0 {
				intAuth = IntAuthOctets(intI, intR, uint32(len(c.Intermediate)+1))
			}
			eq(t, "IntAuth", intAuth, c.IntAuth)

			// AUTH of both sides.
			for _, side := range []struct {
				name            string
				a               *ssAuthSide
				real, nonce, sk []byte
			}{
				{"initiator", &c.Auth.I, c.Messages[0].Hex, c.Nr, final.Pi},
				{"responder", &c.Auth.R, c.Messages[1].Hex, c.Ni, final.Pr},
			} {
				eq(t, side.name+" SK_p", side.a.SKp, side.sk)
				eq(t, side.name+" prf(SK_p, ID')", prf.Sum(side.sk, side.a.IDPrime), side.a.Parts.MacedID)
				octets := SignedOctets(prf, side.real, side.nonce, side.sk, side.a.IDPrime, intAuth)
				eq(t, side.name+" signed octets", octets, side.a.Octets)
				eq(t, side.name+" key pad", prf.Sum(c.PSK, []byte("Key Pad for IKEv2")), side.a.KeyPad)
				eq(t, side.name+" AUTH", PSKAuth(prf, c.PSK, octets), side.a.AUTH)
			}

			// Child SA of IKE_AUTH.
			for i := range c.ChildSAs {
				checkChild(t, "child", prf, &c.ChildSAs[i], c.Ni, c.Nr)
			}

			// Every SK/SKF datagram.
			n := 0
			for i := range c.Messages {
				m := &c.Messages[i]
				if m.ProtectedBy == nil {
					continue
				}
				checkMessage(t, m.Exchange, &s, keys[m.ProtectedBy.Stage], m)
				n++
			}
			if n == 0 {
				t.Error("no protected message checked")
			}
		})
	}
}

func TestStrongSwanRekeys(t *testing.T) {
	c := loadCase(t, "case6_rekey_x25519_mlkem768")
	s := suiteOf(t, wire.ProtocolIKE, c.Parent.Negotiated)
	prf, err := s.PRFAlg()
	if err != nil {
		t.Fatal(err)
	}
	parent := keysOf(&c.Parent.ssKeys)

	// The parent SA's final keys are case 1's.
	c1 := loadCase(t, "case1_x25519_mlkem768")
	parent.SKEYSEED = c1.Stages[len(c1.Stages)-1].SKEYSEED
	checkKeys(t, "parent", parent, &c1.Stages[len(c1.Stages)-1])

	pfs, err := ParseProposal(wire.ProtocolESP, c.Proposals.PFS)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := pfs.Select(pfs); !ok || got != suiteOf(t, wire.ProtocolESP, c.ChildCreatePFS.Negotiated) {
		t.Errorf("PFS proposal %q selects %v", c.Proposals.PFS, got.String())
	}
	checkChild(t, "PFS child", prf, &c.ChildCreatePFS, nil, nil)
	checkChild(t, "rekeyed child", prf, &c.ChildRekey, nil, nil)

	r := &c.IKERekey
	ns := suiteOf(t, wire.ProtocolIKE, r.Negotiated)
	eq(t, "old SK_d", r.OldSKd, parent.D)
	var secrets [][]byte
	for _, ke := range r.KeyExchanges {
		secrets = append(secrets, ke.Shared)
	}
	eq(t, "rekey SKEYSEED input", rekeyInput(secrets, r.Ni, r.Nr), r.Derivation.PRFData)
	newKeys, err := ns.RekeyKeys(prf, r.OldSKd, secrets, r.Ni, r.Nr, r.NewSPIi, r.NewSPIr)
	if err != nil {
		t.Fatal(err)
	}
	checkKeys(t, "rekeyed IKE SA", newKeys, &r.Derivation)

	n := 0
	for i := range c.Messages {
		m := &c.Messages[i]
		if m.ProtectedBy == nil {
			continue
		}
		keys := parent
		if m.ProtectedBy.IKESA == "ike_rekey" {
			keys = newKeys
		}
		checkMessage(t, m.Exchange, &s, keys, m)
		n++
	}
	if n != len(c.Messages) {
		t.Errorf("checked %d of %d messages", n, len(c.Messages))
	}
}
