package driver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/pqlab/pqlab/ike"
)

// Key log files: Wireshark's user access tables (UAT) for IKEv2 and ESP decryption, read from its
// personal configuration directory (WIRESHARK_CONFIG_DIR).
const (
	// ESPTableFile holds one line per ESP SA: protocol, source and destination address, SPI,
	// encryption algorithm and key, authentication algorithm and key.
	ESPTableFile = "esp_sa"
	// IKETableFile holds one line per IKE SA: both SPIs, SK_ei, SK_er, the encryption algorithm,
	// SK_ai, SK_ar and the integrity algorithm.
	IKETableFile = "ikev2_decryption_table"
	// TsharkESPDecode is the preference that makes tshark use the esp_sa table.
	TsharkESPDecode = "esp.enable_encryption_decode:TRUE"
)

// ErrNotDecryptable reports an algorithm that Wireshark's tables cannot name (tshark 4.0 knows no
// ChaCha20-Poly1305 for ESP or IKE).
var ErrNotDecryptable = errors.New("driver: algorithm not in Wireshark's decryption tables")

// KeyLog writes the keys of the SAs a driver negotiates in Wireshark's table formats, so that a
// capture of the run can be decrypted: tshark -o esp.enable_encryption_decode:TRUE with
// WIRESHARK_CONFIG_DIR set to the directory. The files hold secrets: anyone with them and a
// capture reads the tunnel; use them in a lab only. The files are rewritten whole on every change. It is
// safe for concurrent use.
type KeyLog struct {
	dir      string
	mu       sync.Mutex
	espLines []string
	ikeLines []string
	ikeIndex map[[2]uint64]int
}

// NewKeyLog creates dir if needed and returns a key log writing there.
func NewKeyLog(dir string) (*KeyLog, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("driver: key log: %w", err)
	}
	return &KeyLog{dir: dir}, nil
}

// Dir returns the directory of the tables.
func (k *KeyLog) Dir() string { return k.dir }

// AddChild records both directions of a Child SA: the outbound SA from c.Local to c.Remote with
// c.OutboundSPI and c.Outbound, the inbound SA the other way with c.InboundSPI and c.Inbound.
func (k *KeyLog) AddChild(c *ike.ChildSA) error {
	out, err := ike.WiresharkESPSA(c.Local.Addr(), c.Remote.Addr(), false, c.OutboundSPI, c.Suite, c.Outbound)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotDecryptable, err)
	}
	in, err := ike.WiresharkESPSA(c.Remote.Addr(), c.Local.Addr(), false, c.InboundSPI, c.Suite, c.Inbound)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotDecryptable, err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.espLines = append(k.espLines, out, in)
	return writeTable(filepath.Join(k.dir, ESPTableFile), k.espLines)
}

// AddIKE records the keys of an IKE SA from the engine's key log (Config.LogKeys,
// Engine.PollKeyLog), so that its encrypted payloads decrypt. Wireshark's table holds one record
// per SPI pair: entries that are not Final (keys of an IKE_INTERMEDIATE exchange that a key update
// follows) are skipped, and a later entry for the same SPIs replaces the earlier one.
func (k *KeyLog) AddIKE(e ike.KeyLogEntry) error {
	if !e.Final {
		return nil
	}
	line, err := e.WiresharkUAT()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotDecryptable, err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.ikeIndex == nil {
		k.ikeIndex = make(map[[2]uint64]int)
	}
	spis := [2]uint64{e.SPIi, e.SPIr}
	if i, ok := k.ikeIndex[spis]; ok {
		k.ikeLines[i] = line
	} else {
		k.ikeIndex[spis] = len(k.ikeLines)
		k.ikeLines = append(k.ikeLines, line)
	}
	return writeTable(filepath.Join(k.dir, IKETableFile), k.ikeLines)
}

func writeTable(path string, lines []string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return fmt.Errorf("driver: key log: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("driver: key log: %w", err)
	}
	return nil
}
