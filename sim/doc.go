// Package sim is pqlab's network simulator: a discrete-event scheduler that
// owns virtual time, gVisor netstack nodes joined by impaired point-to-point
// links, routers, an Internet fabric, NAT boxes, a CPU model and per-link
// captures. Package sim/topology builds networks from TOML files.
//
// Everything runs on the goroutine that calls Scheduler.Run*: packet
// deliveries, gVisor timers (through the scheduler's tcpip.Clock), UDP
// handlers and CPU completions are events in one queue, ordered by (virtual
// time, insertion sequence). Randomness comes from streams derived from the
// run seed and a name (DeriveSeed), so two runs with the same seed produce
// identical packets, counters and captures, and adding a link does not shift
// the others' streams. Nodes carry IPv4, IPv6, UDP and ICMP; TCP only when
// NodeConfig.TCP asks for it (gVisor hands TCP segments to its own
// processor goroutines, so it is not deterministic in virtual time, see
// FACTS.md).
//
// Real-time mode (NetworkConfig.Realtime, NewRealtimeScheduler) runs the
// same network on the wall clock for data-plane throughput: events fire at
// their wall-clock time, events that gVisor's TCP goroutines schedule wake
// the scheduler and are timed from the present, the CPU model only counts
// (the host's processors do the work), and Node.ListenTCPSink and
// Node.StartTCPBulk move TCP bulk traffic. It is not deterministic.
//
// The pieces, in the order a packet meets them:
//
//  1. A Node (Network.AddNode) is a gVisor stack with the scheduler's clock
//     and seeded RandSource/SecureRNG. Its NICs (Node.AddNIC) are
//     stack.LinkEndpoints without a link-layer header; Node.AddTunnel adds a
//     route-based tunnel NIC whose packets go to a callback (the ESP data
//     plane). NodeConfig.Forwarding makes a router: gVisor fragments at the
//     egress MTU or answers ICMP "fragmentation needed".
//  2. UDP: Node.ListenUDP, UDPConn.SendTo, Node.SendUDP; handlers run in
//     events of their own. Node.HostEngine serves a sans-I/O Engine (the IKE
//     engine behind an adapter) on UDP sockets with its timer and CPU cost.
//  3. A Link (Network.Connect) models each direction: down/up, MTU, fragment
//     policy and black hole, Bernoulli or Gilbert-Elliott loss, bandwidth
//     with a drop-tail queue, delay and jitter, reordering and duplication,
//     with counters per direction (LinkStats) and observers (PacketEvent),
//     such as a PcapWriter.
//  4. Middleboxes: a Fabric (Network.AddFabric) routes between any number of
//     links by longest prefix; a NAT (Network.AddNAT) translates IPv4 UDP
//     and ICMP echo with RFC 4787 mapping and filtering behaviours,
//     translates ICMP errors about them (RFC 5508), hairpins, and answers
//     DF datagrams too big for its egress with "fragmentation needed".
//  5. Each node's CPU (Node.CPU) charges named operations from a CostTable
//     (models/cpu) in virtual time on a number of cores, queuing when they
//     are busy.
//
// Scale: a node is a full gVisor stack, about 25 KiB of heap for an
// IPv4-only host and 54 KiB per node on average in a hub-and-spoke run with
// IKE and ESP state; gVisor looks routes up linearly, so large topologies
// route through a Fabric, and hubs keep their tunnel routes few
// (sim/gateway's summary routes).
//
// Where gVisor's forwarding mishandles fragments, the NIC corrects it (see
// NIC.Capabilities and NIC.fixRefragment).
package sim
