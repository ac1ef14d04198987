// Package driver runs pqlab's IKEv2 engine (package ike) and ESP data plane (package esp) on a real
// network: UDP sockets on ports 500 and 4500, raw ESP (IP protocol 50) when no NAT forces UDP
// encapsulation, and a TUN device for the inner traffic. It is what `pqlab connect` runs and what
// the interoperability tests in package interop run against strongSwan.
//
// The engine is sans-I/O and never reads the clock; the driver owns one goroutine (Run) that
// serialises every call into it:
//
//  1. a datagram received on UDP 500 or 4500 that carries IKE goes to Engine.Handle with
//     time.Now(), the local and remote address and the raw UDP payload (non-ESP marker included);
//  2. when the engine's deadline (NextTimeout) passes, Engine.HandleTimeout(time.Now());
//  3. local decisions (Initiate, rekeys, deletes) arrive through Driver methods that run on the
//     same goroutine;
//  4. after each of these, every datagram from PollTransmit is sent from the local port it names,
//     and every event from PollEvent is acted on: a new or rekeyed Child SA installs an inbound and
//     an outbound ESP SA (keys, SPIs, traffic selectors, UDP encapsulation and ports from the
//     event) and routes its remote traffic selectors through the TUN device; a deleted Child SA
//     removes them again (the inbound SA of a rekeyed one after InboundLinger); the key log gets
//     the Child SA's ESP keys and the engine's IKE SA keys (see KeyLog).
//
// Data goroutines run beside the engine without touching it: TUN reads are sealed by the outbound
// SA whose selectors cover the packet (esp.OutboundSet.SealTunnel) and sent as ESP in UDP from port
// 4500 (RFC 3948) or as raw ESP; ESP received on port 4500 or the raw socket is opened by the
// inbound SA its SPI names (esp.DB.Open, which also checks the inner packet against the selectors)
// and written to the TUN device. Byte and packet limits reached in the data plane come back to the
// engine as Engine.ChildSALimit. As the responder of a Child SA rekey the driver keeps sending on
// the old SA until the initiator, which switches first, deletes it (RFC 7296 Section 2.8).
//
// Sockets, the raw ESP socket and the TUN device are created in a network namespace when
// Config.Netns names one (realnet.InNetns); everything else runs in the calling process, so tests
// can run several drivers in one process. Run returns when its context ends, after deleting the IKE
// SAs it holds (Config.NoDeleteOnExit keeps them) and closing everything. Config.Reconnect brings
// a peer of Config.Initiate back after its IKE SA ended for a reason other than a local delete.
package driver
