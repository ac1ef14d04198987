package ike

import (
	"encoding/hex"
	"fmt"

	"github.com/pqlab/pqlab/ike/auth"
	"net/netip"
	"time"
)

// Config is the configuration of one Engine: what it does for every IKE SA
// it serves, and the peers it knows. TOML fills it (field tags below);
// zero values take the documented defaults.
type Config struct {
	// Retransmit is the request retransmission schedule (RFC 7296 Section 2.1).
	Retransmit RetransmitConfig `toml:"retransmit"`
	// Fragmentation configures RFC 7383 IKE fragmentation.
	Fragmentation FragmentConfig `toml:"fragmentation"`
	// NATT configures NAT detection and UDP encapsulation (RFC 7296
	// Section 2.23, RFC 3948).
	NATT NATTConfig `toml:"nat_traversal"`
	// CookieThreshold is the number of half-open IKE SAs above which a
	// responder demands a COOKIE (RFC 7296 Section 2.6); 0 means the
	// default 30 (strongSwan's cookie_threshold), -1 never.
	CookieThreshold int `toml:"cookie_threshold"`
	// HalfOpenTimeout is how long a responder keeps an IKE SA that has not
	// completed IKE_AUTH (default 30 s, strongSwan's half_open_timeout).
	HalfOpenTimeout Duration `toml:"half_open_timeout"`
	// MaxHalfOpen drops new IKE_SA_INIT requests while this many responder
	// SAs are half open; 0 means no limit.
	MaxHalfOpen int `toml:"max_half_open"`
	// NonceSize is the length of the nonces this engine sends (default 32).
	NonceSize int `toml:"nonce_size"`
	// Peers are the connections this engine can initiate or accept.
	Peers []PeerConfig `toml:"peer"`

	// Compat selects behaviours of implementations without some
	// extensions (legacy peers in the lab's profiles).
	Compat Compat `toml:"compat"`
	// VendorIDs are sent as Vendor ID payloads in IKE_SA_INIT (RFC 7296
	// Section 3.12), hex in TOML.
	VendorIDs []HexBytes `toml:"vendor_ids"`
	// MaxChildSAs limits the Child SAs per IKE SA that a peer may create;
	// more are refused with NO_ADDITIONAL_SAS (0: no limit).
	MaxChildSAs int `toml:"max_child_sas"`
	// Window is the message ID window this end offers (RFC 7296 Section
	// 2.3): the number of the peer's requests it keeps responses for, so
	// that the peer may have that many outstanding. Above 1 it is announced
	// with SET_WINDOW_SIZE in IKE_AUTH; 0 means the default 1 (no notify),
	// at most MaxWindow. A request whose message ID lies within the window
	// above the lowest unanswered one is processed even when an earlier
	// one has not arrived yet (Section 2.3: requests may pass one another);
	// requests beyond it are dropped (DropOutOfWindow), and a retransmitted
	// request gets its stored response again, never a second processing.
	// Up to Window multi-round CREATE_CHILD_SA exchanges of the peer may
	// wait for their IKE_FOLLOWUP_KE at once, each found by its
	// ADDITIONAL_KEY_EXCHANGE data (RFC 9370 Section 2.2.4). In the other
	// direction the engine keeps up to the peer's announced window of
	// requests outstanding: CREATE_CHILD_SA exchanges for Child SAs (new
	// ones and rekeys) and INFORMATIONAL exchanges about Child SAs
	// (deletes), except that no INFORMATIONAL starts while a
	// CREATE_CHILD_SA of ours is in progress; IKE SA rekeys, deletes and
	// liveness checks wait until nothing is outstanding, so a request
	// that depends on another is only sent after its response. An IKE SA
	// created by a rekey keeps both windows.
	Window int `toml:"window"`
	// ResponderOnly models a peer that never initiates an IKE SA (the
	// Cloudflare IPsec responder): Initiate and RekeyIKESA return
	// ErrResponderOnly, and the soft lifetime of an IKE SA does not start
	// a rekey (the peer is left to rekey; the hard lifetime still deletes
	// the SA). Child SAs are still rekeyed and created, liveness checks
	// still sent: RFC 7296 Section 2.8 lets either end rekey.
	ResponderOnly bool `toml:"responder_only"`
	// LogKeys records the SK_e and SK_a keys of every IKE SA key stage for
	// Engine.PollKeyLog. The log exposes secrets that decrypt the IKE
	// traffic: for lab and debugging use only (Wireshark decryption).
	LogKeys bool `toml:"-"`
	// LogCryptoOps records every cryptographic operation for
	// Engine.PollCryptoOps (per-SA counts are kept regardless).
	LogCryptoOps bool `toml:"-"`
	// KEMethod, when set, replaces suite.MethodByID for the key exchange
	// methods the engine runs (replay tests inject recorded values here).
	KEMethod KEMethodFunc `toml:"-"`
}

// Compat switches off extensions, to model implementations that lack them.
type Compat struct {
	// NoIntermediate: no RFC 9242 / RFC 9370 support. The engine never
	// announces INTERMEDIATE_EXCHANGE_SUPPORTED and treats the Additional
	// Key Exchange transform types 6..12 as unknown.
	NoIntermediate bool `toml:"no_intermediate"`
	// NoFollowupKE: additional key exchanges are refused in CREATE_CHILD_SA
	// (only proposals whose additional rounds are optional are accepted).
	NoFollowupKE bool `toml:"no_followup_ke"`
	// IgnoreUnknownTransforms skips transforms of unknown types in a
	// received proposal instead of rejecting the proposal (RFC 7296
	// Section 3.3.6 asks for rejection; some implementations ignore).
	IgnoreUnknownTransforms bool `toml:"ignore_unknown_transforms"`
	// NoMLKEMInInit: ML-KEM is never the Transform Type 4 method of an IKE
	// SA (draft-ietf-ipsecme-ikev2-mlkem Section 3 allows it; FortiOS and
	// Cisco only run it as an additional key exchange). Initiate refuses
	// IKE proposals with an ML-KEM KE method; as responder the engine does
	// not select one (it answers INVALID_KE_PAYLOAD naming another method
	// of the proposal, or NO_PROPOSAL_CHOSEN), and IKE SA rekeys leave ML-KEM
	// KE methods out of their proposals. Additional key exchanges with
	// ML-KEM are unaffected.
	NoMLKEMInInit bool `toml:"no_mlkem_in_init"`
	// RekeyWithoutAddKE: IKE SA rekeys carry no additional key exchange
	// (no IKE_FOLLOWUP_KE), whatever the IKE proposals say. As initiator of
	// a rekey the engine proposes its IKE proposals without their ADDKE
	// transforms; as responder it refuses (NO_PROPOSAL_CHOSEN) a rekey
	// proposal whose additional key exchange is mandatory and accepts an
	// optional one (keN_none) without it. The zero value repeats the
	// additional key exchanges, as RFC 9370 Section 2.2.4 allows and
	// strongSwan, Cloudflare, Cisco and FortiOS do. NoFollowupKE and
	// NoIntermediate imply it (and also strip ADDKE from the CREATE_CHILD_SA
	// proposals of new and rekeyed Child SAs).
	RekeyWithoutAddKE bool `toml:"rekey_without_addke"`
	// PrivateTransformIDs sends key exchange methods under vendor-private
	// Transform Type 4 IDs (RFC 7296 Section 3.3.2 reserves 1024-65535 for
	// private use), as FortiOS before 7.6.6 sent Kyber under 1080-1082:
	// method name ("mlkem768", as in proposals) -> private ID. The engine
	// writes the private ID wherever the method appears on the wire (KE
	// and ADDKE1..7 transforms of SA payloads, KE payloads,
	// INVALID_KE_PAYLOAD data) and reads it back as the method. The
	// standard ID of a mapped method is not recognised on receipt (the
	// peer knows only its private code point), so a standard peer and this
	// one share no such method: a mandatory round fails with
	// NO_PROPOSAL_CHOSEN, an optional one (keN_none) is skipped. Events and
	// suites name the standard method.
	PrivateTransformIDs map[string]uint16 `toml:"private_transform_ids"`
}

// VendorIDCiscoFragmentation is the Vendor ID that Cisco IOS sends when IKE
// fragmentation is configured ("crypto ikev2 fragmentation"). Cisco does not
// publish it for IKEv2; this is its IKEv1 fragmentation Vendor ID, which the
// lab assumes is reused (models/peers/cisco-8000.toml says so).
var VendorIDCiscoFragmentation = HexBytes{0x40, 0x48, 0xb7, 0xd5, 0x6e, 0xbc, 0xe8, 0x85, 0x25, 0xe7, 0xde, 0x7f, 0x00, 0xd6, 0xc2, 0xd3}

// HexBytes is a byte string written in TOML as hex.
type HexBytes []byte

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *HexBytes) UnmarshalText(b []byte) error {
	v, err := hex.DecodeString(string(b))
	if err != nil {
		return fmt.Errorf("ike: bad hex %q", b)
	}
	*h = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (h HexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }

// FragmentPolicy says when an IKE message is sent as RFC 7383 fragments.
type FragmentPolicy uint8

// Fragmentation policies.
const (
	// FragmentWhenLarger fragments every message carrying SK that does not
	// fit the fragment size (strongSwan, FortiOS).
	FragmentWhenLarger FragmentPolicy = iota
	// FragmentOnRetransmit sends a message whole the first time and in
	// fragments when it is retransmitted (libreswan).
	FragmentOnRetransmit
	// FragmentNever neither announces IKEV2_FRAGMENTATION_SUPPORTED nor
	// fragments (Cisco's default).
	FragmentNever
)

var fragmentPolicyNames = [...]string{"when_larger", "on_retransmit", "never"}

// String returns the TOML name of the policy.
func (p FragmentPolicy) String() string {
	if int(p) < len(fragmentPolicyNames) {
		return fragmentPolicyNames[p]
	}
	return fmt.Sprintf("FragmentPolicy(%d)", uint8(p))
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *FragmentPolicy) UnmarshalText(b []byte) error {
	for i, n := range fragmentPolicyNames {
		if n == string(b) {
			*p = FragmentPolicy(i)
			return nil
		}
	}
	return fmt.Errorf("ike: unknown fragmentation policy %q (want when_larger, on_retransmit or never)", b)
}

// MarshalText implements encoding.TextMarshaler.
func (p FragmentPolicy) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// FragmentConfig configures RFC 7383 fragmentation.
//
// Size counts the whole IP datagram that carries a fragment, as strongSwan's
// fragment_size does: the IP header (20 octets for IPv4, 40 for IPv6), the
// UDP header (8), the non-ESP marker on port 4500 (4), the IKE header (28),
// the SKF header (8), IV, encrypted inner payloads with padding and Pad
// Length, and ICV. With 1280 over IPv4 and port 4500 a fragment's UDP payload
// is at most 1252 octets, and with AES-GCM it carries up to 1187 octets of
// inner payloads (1280-20-8-4-28-8-8-16-1).
type FragmentConfig struct {
	Policy FragmentPolicy `toml:"policy"`
	// Size is the largest IP datagram to send (default 1280). Messages that
	// are not fragmented (IKE_SA_INIT) may exceed it.
	Size int `toml:"size"`
	// SizeIPv6 replaces Size towards IPv6 peers (0: Size).
	SizeIPv6 int `toml:"size_ipv6"`
	// Counts says what Size measures: the whole IP datagram (default, as
	// strongSwan and libreswan) or only the UDP payload.
	Counts FragmentCounts `toml:"counts"`
	// MaxFragments and MaxReassembledSize bound reassembly (defaults
	// DefaultMaxFragments and DefaultMaxReassembledSize).
	MaxFragments       int `toml:"max_fragments"`
	MaxReassembledSize int `toml:"max_reassembled_size"`
}

// FragmentCounts says what a fragment size measures.
type FragmentCounts uint8

// Fragment size measures.
const (
	CountIP  FragmentCounts = iota // IP header + UDP header + UDP payload
	CountUDP                       // the UDP payload (non-ESP marker included)
)

// String returns the TOML name.
func (c FragmentCounts) String() string {
	switch c {
	case CountIP:
		return "ip"
	case CountUDP:
		return "udp"
	}
	return fmt.Sprintf("FragmentCounts(%d)", uint8(c))
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *FragmentCounts) UnmarshalText(b []byte) error {
	switch string(b) {
	case "ip":
		*c = CountIP
	case "udp":
		*c = CountUDP
	default:
		return fmt.Errorf("ike: unknown fragment size measure %q (want ip or udp)", b)
	}
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (c FragmentCounts) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// Fragment size bounds.
const (
	DefaultFragmentSize = 1280
	// MinFragmentSize is the smallest Size accepted: RFC 7383 Section 2.5.1
	// recommends 576 for IPv4; below it little room is left for content.
	MinFragmentSize = 256
	MaxFragmentSize = 65535
)

// NATTConfig configures NAT traversal (RFC 7296 Section 2.23).
type NATTConfig struct {
	// Port is the NAT-T port (default 4500). Datagrams received on or sent
	// from this local port carry the 4-octet non-ESP marker.
	Port uint16 `toml:"port"`
	// Disable suppresses the NAT_DETECTION notifies.
	Disable bool `toml:"disable"`
	// ForceEncap makes the peer believe there is a NAT by sending a random
	// NAT_DETECTION_SOURCE_IP hash, forcing UDP encapsulation (strongSwan's
	// encap=yes).
	ForceEncap bool `toml:"force_encap"`
	// FloatAlways moves the initiator to the NAT-T port after IKE_SA_INIT
	// even without a NAT, as strongSwan does with MOBIKE.
	FloatAlways bool `toml:"float_always"`
	// PortSwitch is the exchange in which the initiator moves to the NAT-T
	// port: the first IKE_INTERMEDIATE (default, RFC 9242 Section 3) or
	// IKE_AUTH.
	PortSwitch PortSwitch `toml:"port_switch"`
	// Keepalive is the interval of NAT keepalives (RFC 3948 Section 2.3)
	// sent by the side behind a NAT; 0 disables them.
	Keepalive Duration `toml:"keepalive"`
}

// PortSwitch is the exchange in which the initiator moves to the NAT-T port.
type PortSwitch uint8

// Port switch points.
const (
	SwitchAtIntermediate PortSwitch = iota
	SwitchAtAuth
)

// String returns the TOML name.
func (p PortSwitch) String() string {
	switch p {
	case SwitchAtIntermediate:
		return "intermediate"
	case SwitchAtAuth:
		return "auth"
	}
	return fmt.Sprintf("PortSwitch(%d)", uint8(p))
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *PortSwitch) UnmarshalText(b []byte) error {
	switch string(b) {
	case "intermediate":
		*p = SwitchAtIntermediate
	case "auth":
		*p = SwitchAtAuth
	default:
		return fmt.Errorf("ike: unknown port switch %q (want intermediate or auth)", b)
	}
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (p PortSwitch) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// MaxWindow bounds Config.Window (and the peer's SET_WINDOW_SIZE that is
// honoured), which costs a cached response per slot and IKE SA.
const MaxWindow = 64

// Defaults.
const (
	DefaultNATTPort        = 4500
	DefaultIKEPort         = 500
	DefaultCookieThreshold = 30
	DefaultHalfOpenTimeout = 30 * time.Second
	DefaultNonceSize       = 32
)

// PeerConfig is one connection: who the peer is, how each side
// authenticates, which proposals to offer or accept, and the Child SAs.
type PeerConfig struct {
	// Name identifies the connection in events and metrics.
	Name string `toml:"name"`
	// Local is the local address and port (usually port 500) the
	// connection uses; for a responder it may be unset (any).
	Local netip.AddrPort `toml:"local"`
	// Remote is the peer's address; a responder accepts any address when it
	// is unset.
	Remote netip.AddrPort `toml:"remote"`
	// LocalID is sent in IDi/IDr; RemoteID is required of the peer (unset:
	// any identity is accepted once it authenticates).
	LocalID  Identity `toml:"local_id"`
	RemoteID Identity `toml:"remote_id"`
	// Auth is how this side authenticates and verifies the peer.
	Auth AuthConfig `toml:"auth"`
	// IKEProposals are IKE proposals in strongSwan syntax, e.g.
	// "aes256gcm16-prfsha384-x25519-ke1_mlkem768". Default: the first is
	// "aes256gcm16-prfsha384-x25519-ke1_mlkem768".
	IKEProposals []string `toml:"ike_proposals"`
	// IKELifetime governs IKE SA rekeying (RFC 7296 Section 2.8).
	IKELifetime Lifetime `toml:"ike_lifetime"`
	// DPDDelay is the interval of liveness checks (RFC 7296 Section 2.4);
	// 0 disables them. By default a check is sent only when nothing was
	// received from the peer for that long (on demand); DPDPeriodic sends
	// one every DPDDelay regardless. A check that is not answered within
	// the retransmission schedule ends the IKE SA.
	DPDDelay    Duration `toml:"dpd_delay"`
	DPDPeriodic bool     `toml:"dpd_periodic"`
	// DPDRetries, when positive, replaces Retransmit.Tries for liveness
	// checks: the number of retransmissions of an unanswered check before
	// the peer is declared dead (FortiOS dpd-retrycount, Cisco retries);
	// the intervals stay those of the retransmission schedule.
	DPDRetries int `toml:"dpd_retries"`
	// InitialContact sends INITIAL_CONTACT in IKE_AUTH (RFC 7296 Section 2.4).
	InitialContact bool `toml:"initial_contact"`
	// Children are the Child SAs: the first is created in IKE_AUTH, the
	// others with CREATE_CHILD_SA after the IKE SA is established.
	Children []ChildConfig `toml:"child"`
}

// AuthConfig selects the authentication method of a connection.
type AuthConfig struct {
	// PSK is the pre-shared key (RFC 7296 Section 2.15) used by both sides
	// when no Signer is set; with a Signer it is unused.
	PSK string `toml:"psk"`
	// Signer, when set, signs this end's AUTH payload and supplies the
	// certificates for CERT payloads (RFC 7427 digital signatures, see
	// package auth); the driver builds it from key material.
	Signer auth.Signer `toml:"-"`
	// Trust validates the peer's certificate chain and AUTH signature when
	// the peer authenticates with a certificate.
	Trust *auth.Pool `toml:"-"`
	// CertReqCAs are named in CERTREQ payloads (SHA-1 of each CA's
	// SubjectPublicKeyInfo, RFC 7296 Section 3.7): in the IKE_SA_INIT
	// response and the IKE_AUTH request. Peers such as strongSwan send their
	// certificate only when asked. Usually the anchors of Trust.
	CertReqCAs []*auth.Certificate `toml:"-"`
}

// ChildConfig is one Child SA of a connection.
type ChildConfig struct {
	Name string `toml:"name"`
	// ESPProposals in strongSwan syntax, e.g. "aes256gcm16" or
	// "aes256gcm16-x25519-ke1_mlkem768-esn" (key exchanges give PFS in
	// CREATE_CHILD_SA; they are ignored in IKE_AUTH, RFC 7296 Section 1.2).
	ESPProposals []string `toml:"esp_proposals"`
	// LocalTS and RemoteTS are the traffic selectors (RFC 7296 Section 2.9).
	LocalTS  []TrafficSelector `toml:"local_ts"`
	RemoteTS []TrafficSelector `toml:"remote_ts"`
	// Lifetime governs rekeying of the Child SA.
	Lifetime Lifetime `toml:"lifetime"`
}

// Lifetime is a soft/hard lifetime pair with jitter, like strongSwan's
// rekey_time / life_time / rand_time and the byte and packet limits.
//
// The SA is rekeyed at Rekey minus a random duration in [0, Jitter) and
// deleted at Life. Life defaults to 1.1 * Rekey and Jitter to Life - Rekey
// (at most Rekey/2) unless NoJitter is set, which rekeys exactly at Rekey;
// a zero Rekey disables time-based rekeying. The byte and packet limits are
// handed to the data plane, which reports when they are reached
// (Engine.ChildSALimit).
type Lifetime struct {
	Rekey        Duration `toml:"rekey_time"`
	Life         Duration `toml:"life_time"`
	Jitter       Duration `toml:"rand_time"`
	NoJitter     bool     `toml:"no_rand_time"`
	RekeyBytes   uint64   `toml:"rekey_bytes"`
	LifeBytes    uint64   `toml:"life_bytes"`
	RekeyPackets uint64   `toml:"rekey_packets"`
	LifePackets  uint64   `toml:"life_packets"`
}

// Default lifetimes (strongSwan).
const (
	DefaultIKERekey   = 4 * time.Hour
	DefaultChildRekey = time.Hour
)

func (l Lifetime) withDefaults(rekey time.Duration) Lifetime {
	if l.Rekey == 0 && l.Life == 0 {
		l.Rekey = Duration(rekey)
	}
	if l.Life == 0 {
		l.Life = l.Rekey + l.Rekey/10
	}
	if l.Jitter == 0 && !l.NoJitter && l.Life > l.Rekey {
		// At most half the rekey time, so that a long hard lifetime does
		// not make the SA due for rekeying as soon as it is created.
		l.Jitter = min(l.Life-l.Rekey, l.Rekey/2)
	}
	return l
}

func (l Lifetime) validate(what string) error {
	if l.Rekey < 0 || l.Life < 0 || l.Jitter < 0 {
		return fmt.Errorf("ike: %s lifetime: negative duration", what)
	}
	if l.Rekey > 0 && l.Life > 0 && l.Life < l.Rekey {
		return fmt.Errorf("ike: %s lifetime: life_time %v shorter than rekey_time %v", what, l.Life, l.Rekey)
	}
	if l.NoJitter && l.Jitter != 0 {
		return fmt.Errorf("ike: %s lifetime: rand_time %v with no_rand_time", what, l.Jitter)
	}
	if l.Jitter > l.Rekey && l.Rekey > 0 {
		return fmt.Errorf("ike: %s lifetime: rand_time %v longer than rekey_time %v", what, l.Jitter, l.Rekey)
	}
	return nil
}
