package ike

import (
	"net/netip"
)

// peerIndex finds connections for incoming SAs without scanning every
// configured peer, so that a hub with one connection per branch (100,000
// of them) selects in constant time. Peers with a Remote address are indexed
// by it, peers with a RemoteID by it; the others are wildcards that every
// lookup also considers. Among candidates the first configured wins.
type peerIndex struct {
	all     []*peerEntry
	byAddr  map[netip.Addr][]int
	byID    map[string][]int
	anyAddr []int // peers without Remote
	anyID   []int // peers without RemoteID
}

func idKey(id Identity) string { return string(rune(id.Type)) + string(id.Data) }

func (x *peerIndex) add(p *peerEntry) {
	if x.byAddr == nil {
		x.byAddr, x.byID = map[netip.Addr][]int{}, map[string][]int{}
	}
	i := len(x.all)
	x.all = append(x.all, p)
	if p.cfg.Remote.IsValid() {
		a := p.cfg.Remote.Addr().Unmap()
		x.byAddr[a] = append(x.byAddr[a], i)
	} else {
		x.anyAddr = append(x.anyAddr, i)
	}
	if !p.cfg.RemoteID.IsZero() {
		k := idKey(p.cfg.RemoteID)
		x.byID[k] = append(x.byID[k], i)
	} else {
		x.anyID = append(x.anyID, i)
	}
}

// first returns the first peer, in configuration order, among the two
// candidate lists that satisfies ok.
func (x *peerIndex) first(a, b []int, ok func(*peerEntry) bool) *peerEntry {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var k int
		switch {
		case j == len(b) || i < len(a) && a[i] < b[j]:
			k, i = a[i], i+1
		case i == len(a) || b[j] < a[i]:
			k, j = b[j], j+1
		default: // equal
			k, i, j = a[i], i+1, j+1
		}
		if ok(x.all[k]) {
			return x.all[k]
		}
	}
	return nil
}

// forInit returns the connection whose proposals answer an IKE_SA_INIT
// from remote to local.
func (x *peerIndex) forInit(local, remote netip.AddrPort) *peerEntry {
	return x.first(x.byAddr[remote.Addr().Unmap()], x.anyAddr, func(p *peerEntry) bool { return p.matchesAddr(local, remote) })
}

// forAuth returns the first connection that accepts the peer's identity and
// addresses and ok.
func (x *peerIndex) forAuth(id Identity, ok func(*peerEntry) bool) *peerEntry {
	return x.first(x.byID[idKey(id)], x.anyID, func(p *peerEntry) bool { return p.matchesRemoteID(id) && ok(p) })
}
