package lab

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/ike/wire"
)

// IKEKeyFile is Wireshark's IKEv2 decryption table: one record per IKE SA
// (SPIs, SK_ei, SK_er, encryption algorithm, SK_ai, SK_ar, integrity
// algorithm) with the keys that protect IKE_AUTH and what follows.
const IKEKeyFile = "ikev2_decryption_table"

// ESPKeyFile is Wireshark's ESP SA table (a UAT file in its personal
// configuration directory): point WIRESHARK_CONFIG_DIR at the key
// directory and run tshark -o esp.enable_encryption_decode:TRUE.
const ESPKeyFile = "esp_sa"

// keyLog collects esp_sa records: one per direction of each Child SA,
// written by the sending gateway (its outbound SA), so every SA appears
// once. Addresses are wildcards: behind a NAT the outer addresses differ
// from link to link, the SPI does not.
type keyLog struct {
	dir   string
	lines []string
	ike   []string
	seen  map[[2]uint64]bool // IKE SPI pairs logged (both ends derive the same keys)
}

// addIKE records the final keys of an IKE SA (those of IKE_AUTH and the
// established SA; earlier stages protect only IKE_INTERMEDIATE, and
// Wireshark holds one record per SPI pair).
func (k *keyLog) addIKE(e ike.KeyLogEntry) error {
	if !e.Final || k.seen[[2]uint64{e.SPIi, e.SPIr}] {
		return nil
	}
	if k.seen == nil {
		k.seen = map[[2]uint64]bool{}
	}
	k.seen[[2]uint64{e.SPIi, e.SPIr}] = true
	line, err := e.WiresharkUAT()
	if err != nil {
		return fmt.Errorf("lab: key log: %w", err)
	}
	k.ike = append(k.ike, line)
	return nil
}

func newKeyLog(dir string) (*keyLog, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lab: key log: %w", err)
	}
	return &keyLog{dir: dir}, nil
}

func quote(fields ...string) string {
	q := make([]string, len(fields))
	for i, f := range fields {
		q[i] = `"` + f + `"`
	}
	return strings.Join(q, ",")
}

// addChild records the outbound SA of a Child SA. Wireshark's names for
// the algorithms are those of its ESP dissector's preference table.
func (k *keyLog) addChild(c *ike.ChildSA) error {
	var encr, integ string
	switch c.Suite.Encr {
	case wire.EncrAESGCM16:
		encr = "AES-GCM with 16 octet ICV [RFC4106]"
	case wire.EncrAESCBC:
		encr = "AES-CBC [RFC3602]"
	default:
		return fmt.Errorf("lab: key log: Wireshark cannot decrypt ESP with %s", c.Suite.String())
	}
	switch c.Suite.Integ {
	case wire.IntegNone:
		integ = "NULL"
	case wire.IntegHMACSHA2256128:
		integ = "HMAC-SHA-256-128 [RFC4868]"
	case wire.IntegHMACSHA2384192:
		integ = "HMAC-SHA-384-192 [RFC4868]"
	case wire.IntegHMACSHA2512256:
		integ = "HMAC-SHA-512-256 [RFC4868]"
	default:
		return fmt.Errorf("lab: key log: Wireshark cannot check ESP integrity with %s", c.Suite.String())
	}
	proto := "IPv4"
	if c.Local.Addr().Is6() {
		proto = "IPv6"
	}
	k.lines = append(k.lines, quote(proto, "*", "*", fmt.Sprintf("0x%08x", c.OutboundSPI), encr,
		"0x"+hex.EncodeToString(c.Outbound.Encr), integ, "0x"+hex.EncodeToString(c.Outbound.Integ)))
	return nil
}

// flush writes the tables.
func (k *keyLog) flush() error {
	for _, t := range []struct {
		file  string
		lines []string
	}{{ESPKeyFile, k.lines}, {IKEKeyFile, k.ike}} {
		data := strings.Join(t.lines, "\n")
		if data != "" {
			data += "\n"
		}
		if err := os.WriteFile(filepath.Join(k.dir, t.file), []byte(data), 0o600); err != nil {
			return fmt.Errorf("lab: key log: %w", err)
		}
	}
	return nil
}
