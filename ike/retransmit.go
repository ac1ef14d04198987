package ike

import (
	"fmt"
	"math"
	"time"
)

// RetransmitConfig is the request retransmission schedule of RFC 7296
// Section 2.1: the initiator of an exchange resends its request when no
// response arrived within a timeout that grows geometrically, and gives the
// IKE SA up after the last try.
//
// Retransmission k (k = 1..Tries) is sent InitialTimeout * Base^(k-1) after
// the previous transmission; the exchange fails InitialTimeout * Base^Tries
// after the last retransmission. strongSwan's defaults (4 s, 1.8, 5 tries)
// retransmit at 4, 11.2, 24.2, 47.5 and 89.5 s and give up at 165.2 s.
type RetransmitConfig struct {
	// InitialTimeout is the wait before the first retransmission.
	InitialTimeout Duration `toml:"initial_timeout"`
	// Base multiplies the timeout after every transmission.
	Base float64 `toml:"base"`
	// Tries is the number of retransmissions after the first transmission.
	Tries int `toml:"tries"`
	// MaxTimeout caps a single timeout (0: no cap), as libreswan caps its
	// doubling timeout at 60 s.
	MaxTimeout Duration `toml:"max_timeout"`
}

// Default retransmission schedule (strongSwan's charon.retransmit_*).
const (
	DefaultRetransmitTimeout = 4 * time.Second
	DefaultRetransmitBase    = 1.8
	DefaultRetransmitTries   = 5
)

// maxRetransmitTries bounds Tries so the schedule cannot overflow.
const maxRetransmitTries = 64

// withDefaults fills zero fields with strongSwan's defaults.
func (c RetransmitConfig) withDefaults() RetransmitConfig {
	if c.InitialTimeout == 0 {
		c.InitialTimeout = Duration(DefaultRetransmitTimeout)
	}
	if c.Base == 0 {
		c.Base = DefaultRetransmitBase
	}
	if c.Tries == 0 {
		c.Tries = DefaultRetransmitTries
	}
	return c
}

func (c RetransmitConfig) validate() error {
	switch {
	case c.InitialTimeout < 0:
		return fmt.Errorf("ike: retransmit initial_timeout %v is negative", c.InitialTimeout)
	case c.Base < 1 || math.IsNaN(c.Base) || math.IsInf(c.Base, 0):
		return fmt.Errorf("ike: retransmit base %v must be >= 1", c.Base)
	case c.Tries < 0 || c.Tries > maxRetransmitTries:
		return fmt.Errorf("ike: retransmit tries %d out of range 0..%d", c.Tries, maxRetransmitTries)
	case c.MaxTimeout < 0:
		return fmt.Errorf("ike: retransmit max_timeout %v is negative", c.MaxTimeout)
	}
	return nil
}

// Timeout returns how long to wait after transmission number n (0 is the
// first transmission) before retransmitting or, when n == Tries, before
// declaring the exchange failed.
func (c RetransmitConfig) Timeout(n int) time.Duration {
	d := float64(c.InitialTimeout) * math.Pow(c.Base, float64(n))
	if c.MaxTimeout > 0 && d > float64(c.MaxTimeout) {
		d = float64(c.MaxTimeout)
	}
	if d > float64(math.MaxInt64/2) {
		d = float64(math.MaxInt64 / 2)
	}
	return time.Duration(d)
}

// Duration is a time.Duration that TOML fills from a string such as "4s" or
// "1h30m" (time.ParseDuration syntax).
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("ike: bad duration %q: %v", b, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// String returns the duration in time.Duration notation.
func (d Duration) String() string { return time.Duration(d).String() }
