package sim

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type runResult struct {
	stats    []LinkStatsEntry
	pcaps    [][]byte
	received int
	rxTimes  []time.Duration
}

// lossyRun exchanges UDP traffic (some of it fragmented, some IPv6) over an
// impaired line topology and captures both links.
func lossyRun(t *testing.T, seed uint64) runResult {
	im := Impairments{
		Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond,
		Bandwidth: 5_000_000, QueuePackets: 20,
		Loss: 0.05, Duplicate: 0.02, Reorder: 0.05,
	}
	ge := im
	ge.Loss = 0
	ge.GE = &GilbertElliott{P: 0.05, R: 0.3, LossBad: 0.8}
	lt := newLine(t, seed, Symmetric("", 1500, im), Symmetric("", 1400, ge))
	var pcaps []*bytes.Buffer
	for _, l := range []*Link{lt.left, lt.right} {
		var b bytes.Buffer
		_, err := l.Capture(&b, PcapOptions{Kinds: []PacketEventKind{PacketSent, PacketDelivered}})
		require.NoError(t, err)
		pcaps = append(pcaps, &b)
	}
	var res runResult
	h2c, err := lt.h2.ListenUDP(netip.MustParseAddrPort("10.0.2.2:500"), nil)
	require.NoError(t, err)
	h2c.SetHandler(func(src, dst netip.AddrPort, p []byte) {
		res.received++
		res.rxTimes = append(res.rxTimes, lt.net.Scheduler().Elapsed())
		// Echo back.
		require.NoError(t, h2c.SendTo(src, p[:len(p)/2]))
	})
	h1c, _ := listen(t, lt.h1, "10.0.1.2:500")
	_, _ = listen(t, lt.h2, "[fd00:2::2]:4500")
	h1v6, _ := listen(t, lt.h1, "[fd00:1::2]:4500")
	for i := 0; i < 300; i++ {
		i := i
		lt.net.At(time.Duration(i)*3*time.Millisecond, func() {
			size := 200 + (i*97)%3500
			require.NoError(t, h1c.SendTo(netip.MustParseAddrPort("10.0.2.2:500"), payload(size, byte(i))))
			if i%5 == 0 {
				require.NoError(t, h1v6.SendTo(netip.MustParseAddrPort("[fd00:2::2]:4500"), payload(size, byte(i))))
			}
		})
	}
	lt.net.Run(40 * time.Second)
	res.stats = lt.net.LinkStats()
	for _, b := range pcaps {
		res.pcaps = append(res.pcaps, b.Bytes())
	}
	return res
}

func TestDeterminism(t *testing.T) {
	a := lossyRun(t, 1234)
	b := lossyRun(t, 1234)
	require.Equal(t, a.stats, b.stats)
	require.Equal(t, a.rxTimes, b.rxTimes)
	for i := range a.pcaps {
		require.True(t, bytes.Equal(a.pcaps[i], b.pcaps[i]), "pcap %d differs", i)
	}
	require.Greater(t, a.received, 100)
	var drops uint64
	for _, e := range a.stats {
		drops += e.Stats.Dropped()
	}
	require.Positive(t, drops)

	c := lossyRun(t, 99)
	require.NotEqual(t, a.stats, c.stats, "another seed gives another run")
}
