package interop

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// IKESA is one IKE SA as charon's list-sas reports it.
type IKESA struct {
	Name, State                        string // connection name, "ESTABLISHED", ...
	UniqueID                           string
	LocalHost, RemoteHost              string
	LocalPort, RemotePort              int
	LocalID, RemoteID                  string
	Initiator                          bool
	InitiatorSPI, ResponderSPI         string // hex
	EncrAlg, IntegAlg, PRFAlg, DHGroup string // "AES_GCM_16", "HMAC_SHA2_256_128", ...
	EncrKeysize                        int
	NATRemote                          bool
	Children                           []ChildSA
}

// ChildSA is one CHILD_SA of an IKESA.
type ChildSA struct {
	Name, State, UniqueID      string // child config name, "INSTALLED", ...
	Mode, Protocol             string // "TUNNEL", "ESP"
	Encap                      bool   // ESP in UDP
	SPIIn, SPIOut              string // hex
	EncrAlg, IntegAlg, DHGroup string
	EncrKeysize                int
	BytesIn, BytesOut          uint64
	PacketsIn, PacketsOut      uint64
	LocalTS, RemoteTS          []string
}

// ListSAs returns the IKE SAs charon holds.
func (c *Charon) ListSAs(ctx context.Context) ([]IKESA, error) {
	v, err := c.vici(ctx)
	if err != nil {
		return nil, err
	}
	defer v.Close()
	var sas []IKESA
	_, err = v.Stream(ctx, "list-sas", "list-sa", nil, func(m *ViciMessage) {
		for _, name := range m.Keys() {
			if s := m.Section(name); s != nil {
				sas = append(sas, parseIKESA(name, s))
			}
		}
	})
	return sas, err
}

func parseIKESA(name string, s *ViciMessage) IKESA {
	sa := IKESA{
		Name:         name,
		State:        s.Str("state"),
		UniqueID:     s.Str("uniqueid"),
		LocalHost:    s.Str("local-host"),
		RemoteHost:   s.Str("remote-host"),
		LocalPort:    atoi(s.Str("local-port")),
		RemotePort:   atoi(s.Str("remote-port")),
		LocalID:      s.Str("local-id"),
		RemoteID:     s.Str("remote-id"),
		Initiator:    s.Str("initiator") == "yes",
		InitiatorSPI: s.Str("initiator-spi"),
		ResponderSPI: s.Str("responder-spi"),
		EncrAlg:      s.Str("encr-alg"),
		EncrKeysize:  atoi(s.Str("encr-keysize")),
		IntegAlg:     s.Str("integ-alg"),
		PRFAlg:       s.Str("prf-alg"),
		DHGroup:      s.Str("dh-group"),
		NATRemote:    s.Str("nat-remote") == "yes",
	}
	if cs := s.Section("child-sas"); cs != nil {
		for _, k := range cs.Keys() {
			ch := cs.Section(k)
			if ch == nil {
				continue
			}
			sa.Children = append(sa.Children, ChildSA{
				Name:        ch.Str("name"),
				State:       ch.Str("state"),
				UniqueID:    ch.Str("uniqueid"),
				Mode:        ch.Str("mode"),
				Protocol:    ch.Str("protocol"),
				Encap:       ch.Str("encap") == "yes",
				SPIIn:       ch.Str("spi-in"),
				SPIOut:      ch.Str("spi-out"),
				EncrAlg:     ch.Str("encr-alg"),
				EncrKeysize: atoi(ch.Str("encr-keysize")),
				IntegAlg:    ch.Str("integ-alg"),
				DHGroup:     ch.Str("dh-group"),
				BytesIn:     atou(ch.Str("bytes-in")),
				BytesOut:    atou(ch.Str("bytes-out")),
				PacketsIn:   atou(ch.Str("packets-in")),
				PacketsOut:  atou(ch.Str("packets-out")),
				LocalTS:     ch.List("local-ts"),
				RemoteTS:    ch.List("remote-ts"),
			})
		}
	}
	return sa
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func atou(s string) uint64 {
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}

// WaitSAs polls ListSAs until ok accepts the list or ctx ends; it returns the last list seen.
func (c *Charon) WaitSAs(ctx context.Context, ok func([]IKESA) bool) ([]IKESA, error) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		sas, err := c.ListSAs(ctx)
		if err == nil && ok(sas) {
			return sas, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return sas, fmt.Errorf("interop: waiting for SA state: %w (last: %+v)", err, sas)
		case <-t.C:
		}
	}
}

// Established returns the established IKE SAs of connection name with their installed children.
func Established(sas []IKESA, name string) []IKESA {
	var out []IKESA
	for _, sa := range sas {
		if sa.Name != name || sa.State != "ESTABLISHED" {
			continue
		}
		kids := sa.Children[:0:0]
		for _, ch := range sa.Children {
			if ch.State == "INSTALLED" {
				kids = append(kids, ch)
			}
		}
		sa.Children = kids
		out = append(out, sa)
	}
	return out
}
