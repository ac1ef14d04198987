// Package interop runs real IKEv2 peers next to pqlab on one Linux machine, for interoperability
// tests: network namespaces joined by veth pairs (Netns, Pair), strongSwan's charon with its own
// configuration, /run and vici socket per namespace (Charon, Conn), a minimal vici client for
// control and state (Vici), certificates for public-key authentication (CA), packet captures
// checked by tshark (Capture, Analyze), and traffic through the tunnel (Ping, TransferTCP).
//
// Everything that touches the system needs root, iproute2, strongSwan 5.9 with the
// kernel-libipsec plugin and tshark; interop/install.sh installs them on Debian and README.md
// describes the pitfalls. The engine-independent socket and TUN plumbing lives in the realnet
// subpackage.
package interop
