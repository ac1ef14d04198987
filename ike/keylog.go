package ike

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	"github.com/pqlab/pqlab/ike/suite"
	"github.com/pqlab/pqlab/ike/wire"
)

// Key log: the keys protecting IKE messages, for decrypting captures of
// lab runs (Wireshark's ikev2_decryption_table). Enabled by Config.LogKeys.
//
// The log exposes secrets: with it anyone holding a capture reads every
// IKE message protected by these keys (identities, traffic selectors, and
// with them the Child SA negotiation). It is meant for lab and debugging
// use only; never enable it for a deployment.

// KeyStage says which key derivation of an IKE SA a KeyLogEntry records.
type KeyStage uint8

// Key stages.
const (
	// KeysInit: the keys derived after IKE_SA_INIT (RFC 7296 Section
	// 2.14). They protect the first IKE_INTERMEDIATE exchange, or IKE_AUTH
	// and the established SA when no additional key exchange follows.
	KeysInit KeyStage = iota + 1
	// KeysIntermediate: the keys after the key update that follows an
	// IKE_INTERMEDIATE exchange with an additional key exchange (RFC 9370
	// Section 2.2.2). The last of them protects IKE_AUTH and the
	// established SA.
	KeysIntermediate
	// KeysRekey: the keys of an IKE SA created by rekeying (RFC 7296
	// Section 2.18, RFC 9370 Section 2.2.4).
	KeysRekey
)

var keyStageNames = [...]string{KeysInit: "init", KeysIntermediate: "intermediate", KeysRekey: "rekey"}

// String returns the name of the stage.
func (s KeyStage) String() string {
	if int(s) < len(keyStageNames) && keyStageNames[s] != "" {
		return keyStageNames[s]
	}
	return fmt.Sprintf("KeyStage(%d)", uint8(s))
}

// KeyLogEntry is one set of IKE SA keys: SK_ei, SK_er, SK_ai and SK_ar
// (RFC 7296 Section 2.14) with the SPIs and algorithms they belong to. AEAD
// encryption keys end with their salt, as prf+ produced them (RFC 5282
// Section 7.1); with AEAD the integrity keys are empty. SECRET: see
// Config.LogKeys.
type KeyLogEntry struct {
	SA    SAID
	Stage KeyStage
	// Round counts the IKE_INTERMEDIATE key updates included (KeysIntermediate).
	Round int
	// Final reports whether these keys protect IKE_AUTH and the established
	// SA (no further key update follows).
	Final      bool
	SPIi, SPIr uint64
	// Suite holds the IKE SA's transforms (Encr, EncrKeyBits, Integ).
	Suite                  suite.Suite
	SKei, SKer, SKai, SKar []byte
}

// PollKeyLog appends to dst the key log entries recorded since the last
// call and returns it. Entries are recorded only with Config.LogKeys.
func (e *Engine) PollKeyLog(dst []KeyLogEntry) []KeyLogEntry {
	dst = append(dst, e.keyLog...)
	clear(e.keyLog)
	e.keyLog = e.keyLog[:0]
	return dst
}

// logKeys records the keys just installed on sa.
func (e *Engine) logKeys(sa *ikeSA, k *suite.IKEKeys) {
	if !e.cfg.LogKeys {
		return
	}
	ent := KeyLogEntry{SA: sa.id, Stage: KeysRekey, Final: true, SPIi: sa.spiI, SPIr: sa.spiR, Suite: sa.suite,
		SKei: bytes.Clone(k.Ei), SKer: bytes.Clone(k.Er), SKai: bytes.Clone(k.Ai), SKar: bytes.Clone(k.Ar)}
	if hs := sa.hs; hs != nil {
		ent.Stage, ent.Round, ent.Final = KeysInit, hs.intermediates, hs.round >= len(hs.kes)
		if hs.intermediates > 0 {
			ent.Stage = KeysIntermediate
		}
	}
	e.keyLog = append(e.keyLog, ent)
}

// WiresharkUAT formats the entry as one record of Wireshark's
// ikev2_decryption_table (both SPIs as 16 hex digits, the keys in hex, the
// algorithms by Wireshark's names, epan/dissectors/packet-isakmp.c). The
// table holds one record per SPI pair, so write the Final entry of an SA to
// decrypt IKE_AUTH and everything after it. Algorithms Wireshark cannot
// decrypt (ChaCha20-Poly1305) are an error.
func (k KeyLogEntry) WiresharkUAT() (string, error) {
	s := &k.Suite
	var encr, integ string
	bits := s.EncrKeyBits
	switch s.Encr {
	case wire.EncrAESCBC:
		encr = fmt.Sprintf("AES-CBC-%d [RFC3602]", bits)
	case wire.EncrAESCTR:
		encr = fmt.Sprintf("AES-CTR-%d [RFC5930]", bits)
	case wire.EncrAESGCM8:
		encr = fmt.Sprintf("AES-GCM-%d with 8 octet ICV [RFC5282]", bits)
	case wire.EncrAESGCM12:
		encr = fmt.Sprintf("AES-GCM-%d with 12 octet ICV [RFC5282]", bits)
	case wire.EncrAESGCM16:
		encr = fmt.Sprintf("AES-GCM-%d with 16 octet ICV [RFC5282]", bits)
	default:
		return "", fmt.Errorf("ike: Wireshark cannot decrypt IKE encryption transform %d", s.Encr)
	}
	switch s.Integ {
	case wire.IntegNone:
		integ = "NONE [RFC4306]"
	case wire.IntegHMACSHA196:
		integ = "HMAC_SHA1_96 [RFC2404]"
	case wire.IntegHMACSHA2256128:
		integ = "HMAC_SHA2_256_128 [RFC4868]"
	case wire.IntegHMACSHA2384192:
		integ = "HMAC_SHA2_384_192 [RFC4868]"
	case wire.IntegHMACSHA2512256:
		integ = "HMAC_SHA2_512_256 [RFC4868]"
	default:
		return "", fmt.Errorf("ike: Wireshark cannot check IKE integrity transform %d", s.Integ)
	}
	return fmt.Sprintf("%016x,%016x,%s,%s,%q,%s,%s,%q", k.SPIi, k.SPIr, hex.EncodeToString(k.SKei), hex.EncodeToString(k.SKer),
		encr, hex.EncodeToString(k.SKai), hex.EncodeToString(k.SKar), integ), nil
}

// WiresharkESPSA formats one record of Wireshark's esp_sa table (the ESP
// dissector's preference table, epan/dissectors/packet-ipsec.c): protocol,
// source and destination address, SPI, encryption algorithm and key,
// authentication algorithm and key, each quoted. It is the SA from src to
// dst with the given SPI, transforms s (a Child SA's Suite) and keys k. The
// protocol follows src's family; with anyAddr both addresses are written as
// the wildcard "*" (for SAs whose outer addresses a NAT rewrites), else
// IPv6 addresses are written expanded, the only form Wireshark 4.0 matches.
// AES-GCM keys include their 4-octet salt (RFC 4106 Section 8.1) and take
// the "NULL" authentication algorithm. Algorithms Wireshark cannot decrypt
// (ChaCha20-Poly1305) are an error. SECRET: see Config.LogKeys.
func WiresharkESPSA(src, dst netip.Addr, anyAddr bool, spi uint32, s suite.Suite, k DirectionKeys) (string, error) {
	proto, srcS, dstS := "IPv4", src.String(), dst.String()
	if src.Is6() {
		proto, srcS, dstS = "IPv6", src.StringExpanded(), dst.StringExpanded()
	}
	if anyAddr {
		srcS, dstS = "*", "*"
	}
	var encr, integ string
	switch s.Encr {
	case wire.EncrAESGCM16:
		encr = "AES-GCM with 16 octet ICV [RFC4106]"
	case wire.EncrAESCBC:
		encr = "AES-CBC [RFC3602]"
	default:
		return "", fmt.Errorf("ike: Wireshark cannot decrypt ESP with %s", s.String())
	}
	switch s.Integ {
	case wire.IntegNone:
		integ = "NULL"
	case wire.IntegHMACSHA2256128:
		integ = "HMAC-SHA-256-128 [RFC4868]"
	case wire.IntegHMACSHA2384192:
		integ = "HMAC-SHA-384-192 [RFC4868]"
	case wire.IntegHMACSHA2512256:
		integ = "HMAC-SHA-512-256 [RFC4868]"
	default:
		return "", fmt.Errorf("ike: Wireshark cannot check ESP integrity with %s", s.String())
	}
	fields := []string{proto, srcS, dstS, fmt.Sprintf("0x%08x", spi), encr, "0x" + hex.EncodeToString(k.Encr),
		integ, "0x" + hex.EncodeToString(k.Integ)}
	for i, f := range fields {
		fields[i] = `"` + f + `"`
	}
	return strings.Join(fields, ","), nil
}
