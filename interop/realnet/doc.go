// Package realnet is the plumbing pqlab needs to talk to real IKEv2 peers over operating-system
// sockets, independent of the IKE engine:
//
//  1. Endpoint: UDP sockets on the IKE port (500) and the NAT-T port (4500). Datagrams on port 4500
//     are classified by the rules of RFC 3948, Section 2: IKE messages carry a four-byte non-ESP
//     marker, a single 0xFF byte is a NAT-keepalive, anything else is ESP. Endpoint adds and strips
//     the marker, so callers see bare IKE messages and bare ESP packets.
//  2. TUN: a layer-3 TUN device (no packet information header) whose file descriptor reads and
//     writes raw IP packets: the inner side of a tunnel.
//  3. InNetns: runs a function on an OS thread that has joined a named network namespace, so that the
//     sockets and TUN devices it creates belong to that namespace. The descriptors keep their
//     namespace for life and can then be used from any goroutine.
//
// Nothing here parses IKE beyond its fixed header length; the engine owns the protocol.
package realnet
