package sim

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Classic pcap constants (https://www.tcpdump.org/manpages/pcap-savefile.5.html,
// draft-ietf-opsawg-pcap).
const (
	// pcapMagicNanos is the magic number of a capture with nanosecond
	// timestamps.
	pcapMagicNanos   = 0xa1b23c4d
	pcapVersionMajor = 2
	pcapVersionMinor = 4
	// LinkTypeRaw is LINKTYPE_RAW: each packet starts with an IPv4 or IPv6
	// header (https://www.tcpdump.org/linktypes.html).
	LinkTypeRaw = 101
	// DefaultSnaplen is the largest packet a capture records in full.
	DefaultSnaplen   = 65535
	pcapFileHdrLen   = 24
	pcapRecordHdrLen = 16
)

// PcapOptions select what a capture records.
type PcapOptions struct {
	// Kinds lists the packet events recorded (default: PacketSent only,
	// i.e. what the senders put on the link, dropped or not).
	Kinds []PacketEventKind
	// Snaplen truncates recorded packets (DefaultSnaplen when zero).
	Snaplen int
}

// PcapWriter writes packet events to a classic pcap stream (LINKTYPE_RAW,
// nanosecond timestamps) stamped with virtual time, so that captures of
// two runs with the same seed are byte-identical. It implements Observer.
type PcapWriter struct {
	mu      sync.Mutex
	w       io.Writer
	epoch   time.Time
	kinds   [3]bool
	snaplen int
	err     error
	packets uint64
}

var _ Observer = (*PcapWriter)(nil)

// NewPcapWriter writes the pcap file header to w and returns a writer whose
// timestamps are epoch plus virtual time.
func NewPcapWriter(w io.Writer, epoch time.Time, opts PcapOptions) (*PcapWriter, error) {
	p := &PcapWriter{w: w, epoch: epoch, snaplen: opts.Snaplen}
	if p.snaplen <= 0 || p.snaplen > DefaultSnaplen {
		p.snaplen = DefaultSnaplen
	}
	if len(opts.Kinds) == 0 {
		opts.Kinds = []PacketEventKind{PacketSent}
	}
	for _, k := range opts.Kinds {
		if k < PacketSent || k > PacketDropped {
			return nil, fmt.Errorf("sim: pcap: invalid event kind %d", k)
		}
		p.kinds[k] = true
	}
	var h [pcapFileHdrLen]byte
	binary.LittleEndian.PutUint32(h[0:], pcapMagicNanos)
	binary.LittleEndian.PutUint16(h[4:], pcapVersionMajor)
	binary.LittleEndian.PutUint16(h[6:], pcapVersionMinor)
	// thiszone and sigfigs are zero.
	binary.LittleEndian.PutUint32(h[16:], uint32(p.snaplen))
	binary.LittleEndian.PutUint32(h[20:], LinkTypeRaw)
	if _, err := w.Write(h[:]); err != nil {
		return nil, fmt.Errorf("sim: pcap: %w", err)
	}
	return p, nil
}

// Observe implements Observer: it records ev if its kind is selected.
func (p *PcapWriter) Observe(ev *PacketEvent) {
	if ev.Kind < PacketSent || ev.Kind > PacketDropped || !p.kinds[ev.Kind] {
		return
	}
	p.WritePacket(p.epoch.Add(ev.Time), ev.Packet)
}

// WritePacket records one packet with timestamp ts.
func (p *PcapWriter) WritePacket(ts time.Time, pkt []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return
	}
	incl := min(len(pkt), p.snaplen)
	var h [pcapRecordHdrLen]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(ts.Unix()))
	binary.LittleEndian.PutUint32(h[4:], uint32(ts.Nanosecond()))
	binary.LittleEndian.PutUint32(h[8:], uint32(incl))
	binary.LittleEndian.PutUint32(h[12:], uint32(len(pkt)))
	if _, err := p.w.Write(h[:]); err != nil {
		p.err = err
		return
	}
	if _, err := p.w.Write(pkt[:incl]); err != nil {
		p.err = err
		return
	}
	p.packets++
}

// Packets returns the number of packets recorded.
func (p *PcapWriter) Packets() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.packets
}

// Err returns the first write error.
func (p *PcapWriter) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return fmt.Errorf("sim: pcap: %w", p.err)
	}
	return nil
}

// Capture records the link's packet events to w in pcap format.
func (l *Link) Capture(w io.Writer, opts PcapOptions) (*PcapWriter, error) {
	p, err := NewPcapWriter(w, l.net.sched.Epoch(), opts)
	if err != nil {
		return nil, err
	}
	l.AddObserver(p)
	return p, nil
}

// CaptureToFiles records every link of the network, present at the call, to
// dir/<link>.pcap. The returned function flushes and closes the files.
func (n *Network) CaptureToFiles(dir string, opts PcapOptions) (func() error, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	type open struct {
		f *os.File
		b *bufio.Writer
		p *PcapWriter
	}
	var files []open
	closeAll := func() error {
		var first error
		for _, o := range files {
			if err := o.p.Err(); err != nil && first == nil {
				first = err
			}
			if err := o.b.Flush(); err != nil && first == nil {
				first = err
			}
			if err := o.f.Close(); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	for _, l := range n.linkList {
		name := strings.NewReplacer("/", "_", `\`, "_").Replace(l.name) + ".pcap"
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("sim: %w", err)
		}
		b := bufio.NewWriter(f)
		p, err := l.Capture(b, opts)
		if err != nil {
			f.Close()
			closeAll()
			return nil, err
		}
		files = append(files, open{f, b, p})
	}
	return closeAll, nil
}
