package sim

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type pcapRecord struct {
	ts   time.Time
	incl int
	orig int
	data []byte
}

func readPcap(t testing.TB, b []byte) (uint32, []pcapRecord) {
	t.Helper()
	require.GreaterOrEqual(t, len(b), pcapFileHdrLen)
	require.EqualValues(t, pcapMagicNanos, binary.LittleEndian.Uint32(b))
	require.EqualValues(t, 2, binary.LittleEndian.Uint16(b[4:]))
	require.EqualValues(t, 4, binary.LittleEndian.Uint16(b[6:]))
	lt := binary.LittleEndian.Uint32(b[20:])
	var recs []pcapRecord
	for off := pcapFileHdrLen; off < len(b); {
		require.GreaterOrEqual(t, len(b)-off, pcapRecordHdrLen)
		sec := binary.LittleEndian.Uint32(b[off:])
		ns := binary.LittleEndian.Uint32(b[off+4:])
		incl := int(binary.LittleEndian.Uint32(b[off+8:]))
		orig := int(binary.LittleEndian.Uint32(b[off+12:]))
		off += pcapRecordHdrLen
		recs = append(recs, pcapRecord{time.Unix(int64(sec), int64(ns)).UTC(), incl, orig, b[off : off+incl]})
		off += incl
	}
	return lt, recs
}

func TestPcapVirtualTimestamps(t *testing.T) {
	n, l, a, _ := newTestLink(t, 1, Symmetric("", 1500, Impairments{Delay: 7 * time.Millisecond, Fragments: FragmentPolicy{BlackHoleAbove: 1000}}))
	var sent, all bytes.Buffer
	_, err := l.Capture(&sent, PcapOptions{})
	require.NoError(t, err)
	pw, err := l.Capture(&all, PcapOptions{Kinds: []PacketEventKind{PacketSent, PacketDelivered, PacketDropped}, Snaplen: 100})
	require.NoError(t, err)
	n.sched.At(1500*time.Microsecond, func() { a.send(ipv4Packet(300, 1, 0, false, 1)) })
	n.sched.At(2*time.Second+5, func() { a.send(ipv4Packet(1200, 2, 0, false, 2)) })
	n.Run(3 * time.Second)
	require.NoError(t, pw.Err())
	require.EqualValues(t, 4, pw.Packets())

	lt, recs := readPcap(t, sent.Bytes())
	require.EqualValues(t, LinkTypeRaw, lt)
	require.Len(t, recs, 2)
	require.Equal(t, DefaultEpoch.Add(1500*time.Microsecond), recs[0].ts)
	require.Equal(t, DefaultEpoch.Add(2*time.Second+5), recs[1].ts)
	require.Equal(t, ipv4Packet(300, 1, 0, false, 1), recs[0].data)

	_, recs = readPcap(t, all.Bytes())
	require.Len(t, recs, 4) // sent, delivered, sent, dropped
	require.Equal(t, DefaultEpoch.Add(8500*time.Microsecond), recs[1].ts)
	require.Equal(t, 100, recs[3].incl)
	require.Equal(t, 1200, recs[3].orig)
}

func TestCaptureToFiles(t *testing.T) {
	lt := newLine(t, 1, Symmetric("", 1500, Impairments{}), Symmetric("", 1500, Impairments{}))
	dir := t.TempDir()
	closeFn, err := lt.net.CaptureToFiles(dir, PcapOptions{})
	require.NoError(t, err)
	_, _ = listen(t, lt.h2, "10.0.2.2:500")
	require.NoError(t, lt.h1.SendUDP(netip.MustParseAddrPort("0.0.0.0:0"), netip.MustParseAddrPort("10.0.2.2:500"), payload(3000, 1)))
	lt.net.Run(time.Second)
	require.NoError(t, closeFn())
	for _, name := range []string{"h1-r.pcap", "r-h2.pcap"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		_, recs := readPcap(t, b)
		require.Len(t, recs, 3, name)
	}
}
