// Package esp is the ESP data plane of pqlab: Security Associations that
// seal and open RFC 4303 packets, the anti-replay window with extended
// sequence numbers, lifetimes, per-SA counters, traffic-selector checks,
// an SA database keyed by inbound SPI, and the framing helpers for raw ESP
// (IP protocol 50) and ESP in UDP (RFC 3948, port 4500).
//
// The package performs no I/O and never reads the clock: the IKE engine
// hands it Child SAs (DB.InstallChild splits KEYMAT as RFC 7296 Section
// 2.17 says; DB.AddInbound and DB.AddOutbound take explicit keys), time is
// passed in (DB.HandleTimeout), lifetime events come back through
// DB.PollEvent, and randomness (AES-CBC IVs) comes from an injected
// io.Reader. The gVisor tunnel interface lives in the sub-package
// esp/tunnel.
//
// Sending a packet through an outbound SA (tunnel mode):
//
//  1. the route-based interface picks the SA whose selectors match the
//     inner packet (OutboundSet.Select);
//  2. OutboundSA.SealTunnel checks the selectors again, takes the next
//     sequence number (refusing to wrap), appends SPI, sequence number and
//     IV, the inner packet, optional TFC padding, the RFC 4303 trailer, and
//     encrypts and authenticates in place;
//  3. the caller frames the result as raw ESP (AppendRawESP, PrependRawESP)
//     or as a UDP/4500 datagram (AppendUDP, PrependUDP), or hands it to a
//     UDP socket bound to port 4500.
//
// Receiving:
//
//  1. ClassifyUDP separates ESP from IKE and NAT keepalives on port 4500;
//  2. DB.Open finds the SA by SPI, infers the high-order sequence bits,
//     checks the replay window, verifies and decrypts, checks the padding,
//     advances the window, strips TFC padding and checks the inner packet
//     against the selectors;
//  3. every drop is counted by reason on the SA (or on the DB when no SA
//     could be attributed).
//
// Seal and Open append into caller-provided buffers and allocate nothing
// in the steady state.
package esp
