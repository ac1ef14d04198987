package esp

import (
	"io"
	"time"
)

// ChildSA is a Child SA as the IKE engine negotiated it: both directions,
// their SPIs and the KEYMAT they are keyed from.
type ChildSA struct {
	Suite Suite
	Mode  Mode
	// Initiator is true on the end that sent the request of the exchange
	// that created the SA (IKE_AUTH or CREATE_CHILD_SA): its outbound SA
	// takes the first keys of KEYMAT (RFC 7296 Section 2.17).
	Initiator bool
	// InSPI is the SPI this end chose (carried by the peer's packets),
	// OutSPI the peer's.
	InSPI, OutSPI uint32
	KEYMAT        []byte
	// Local and Remote are this end's and the peer's traffic selectors.
	Local, Remote []Selector
	Lifetime      Lifetime
	ReplayWindow  int
	TFCPadTo      int
	Rand          io.Reader
	IfID          uint32
	Path          Path
}

// InstallChild splits c.KEYMAT (SplitKEYMAT) and installs the inbound and
// the outbound SA at time now; the outbound SA becomes the preferred one
// for its selectors on c.IfID. On error nothing stays installed.
func (db *DB) InstallChild(now time.Time, c ChildSA) (*InboundSA, *OutboundSA, error) {
	i2r, r2i, err := SplitKEYMAT(c.KEYMAT, c.Suite)
	if err != nil {
		return nil, nil, err
	}
	inKeys, outKeys := i2r, r2i
	if c.Initiator {
		inKeys, outKeys = r2i, i2r
	}
	base := SAConfig{Suite: c.Suite, Mode: c.Mode, Local: c.Local, Remote: c.Remote,
		Lifetime: c.Lifetime, IfID: c.IfID, Path: c.Path}
	inCfg := base
	inCfg.SPI, inCfg.Keys, inCfg.ReplayWindow = c.InSPI, inKeys, c.ReplayWindow
	outCfg := base
	outCfg.SPI, outCfg.Keys, outCfg.TFCPadTo, outCfg.Rand = c.OutSPI, outKeys, c.TFCPadTo, c.Rand
	if _, err := NewOutboundSA(outCfg); err != nil { // validate before installing anything
		return nil, nil, err
	}
	in, err := db.AddInbound(now, inCfg)
	if err != nil {
		return nil, nil, err
	}
	out, err := db.AddOutbound(now, outCfg)
	if err != nil {
		db.RemoveInbound(c.InSPI)
		return nil, nil, err
	}
	return in, out, nil
}
