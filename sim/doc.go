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
// the others' streams. Nodes carry IPv4, IPv6, UDP and ICMP; TCP is left out
// (gVisor hands TCP segments to its own processor goroutines, so it would
// not be deterministic in virtual time, see FACTS.md, and its package needs
// a module go.sum does not list yet).
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
//     and ICMP echo with RFC 4787 mapping and filtering behaviours.
//  5. Each node's CPU (Node.CPU) charges named operations from a CostTable
//     (models/cpu) in virtual time on a number of cores, queuing when they
//     are busy.
//
// Where gVisor's forwarding mishandles fragments, the NIC corrects it (see
// NIC.Capabilities and NIC.fixRefragment).
package sim
