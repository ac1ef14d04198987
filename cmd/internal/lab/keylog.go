package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pqlab/pqlab/ike"
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

// addChild records the outbound SA of a Child SA.
func (k *keyLog) addChild(c *ike.ChildSA) error {
	line, err := ike.WiresharkESPSA(c.Local.Addr(), c.Remote.Addr(), true, c.OutboundSPI, c.Suite, c.Outbound)
	if err != nil {
		return fmt.Errorf("lab: key log: %w", err)
	}
	k.lines = append(k.lines, line)
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
