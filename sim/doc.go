// Package sim is pqlab's network simulator: a discrete-event scheduler that
// owns virtual time, gVisor netstack nodes joined by impaired links, routers,
// an Internet fabric, NAT boxes, a CPU model and per-link captures.
//
// Everything runs on the goroutine that calls Scheduler.Run*: packet
// deliveries, gVisor timers (through the scheduler's tcpip.Clock), UDP
// handlers and CPU completions are events in one queue, ordered by
// (virtual time, insertion sequence). Two runs with the same seed therefore
// produce identical packets, counters and captures. Nodes carry IPv4, IPv6,
// UDP and ICMP; TCP is left out (gVisor hands TCP segments to its own
// processor goroutines, so it would not be deterministic in virtual time,
// see FACTS.md, and its package needs a module go.sum does not list yet).
//
// Nodes are joined by point-to-point links without a link-layer header: a
// NIC's packets are raw IPv4 or IPv6 datagrams, as in a pcap with
// LINKTYPE_RAW.
package sim
