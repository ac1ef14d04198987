// Package results is the schema of pqlab's results files and the code that
// reads, writes, merges and summarises them.
//
// A results file (results.json) holds one or more runs. A run is one execution
// of a topology under one seed and one set of sweep parameters; it records every
// handshake, the per-node CPU use, the per-link counters and the data-plane
// throughput measured. results.csv holds the handshake records flattened, one
// line each, for spreadsheets.
package results

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
)

// Schema names the version of the results format; readers reject other values.
const Schema = "pqlab/results/v1"

// File is the content of a results.json file.
type File struct {
	Schema string `json:"schema"`
	Runs   []Run  `json:"runs"`
}

// Run is one execution of a topology.
type Run struct {
	// Name identifies the run inside its experiment, e.g. "rtt=31ms,loss=0.1,rep=2".
	Name string `json:"name"`
	// Topology is the topology file or built-in scenario the run used.
	Topology string `json:"topology"`
	// Seed is the seed of the run; the same topology, parameters and seed give
	// the same file byte for byte.
	Seed int64 `json:"seed"`
	// Params are the sweep parameters of the run (key -> value as written in
	// the experiment file).
	Params map[string]string `json:"params,omitempty"`
	// DurationNs is the simulated time the run covered.
	DurationNs int64 `json:"duration_ns"`

	Handshakes []Handshake  `json:"handshakes"`
	Rekeys     []Rekey      `json:"rekeys,omitempty"`
	Nodes      []NodeStats  `json:"nodes,omitempty"`
	Links      []LinkStats  `json:"links,omitempty"`
	Throughput []Throughput `json:"throughput,omitempty"`
}

// Outcomes of a handshake or rekey record.
const (
	OutcomeEstablished = "established"
	OutcomeFailed      = "failed"
	// OutcomeNotConfigurable marks a sweep point whose suite one of the
	// devices cannot be configured with (its peer model cannot express
	// it): nothing ran; Reason says which device and why. Success rates
	// and summaries leave such records out.
	OutcomeNotConfigurable = "not-configurable"
	// OutcomeCollisionLost marks a rekey exchange (Rekey records only)
	// that lost a rekey collision: both gateways rekeyed the same SA at
	// once and the SA this exchange created was redundant and deleted by
	// its initiator (RFC 7296 Sections 2.8.1 and 2.8.2), or, with
	// IKE_FOLLOWUP_KE, the exchange was abandoned after CREATE_CHILD_SA or
	// refused with TEMPORARY_FAILURE (RFC 9370 Section 2.2.4), the peer's
	// exchange rekeying the SA instead. This is the protocol working, not
	// a failure: the SA is rekeyed once, by the winner's exchange (recorded
	// as established). Reason is "rekey-collision"; LatencyNs is 0.
	OutcomeCollisionLost = "collision-lost"
)

// Handshake is the record of one IKE SA establishment attempt.
type Handshake struct {
	Initiator      string `json:"initiator"`
	Responder      string `json:"responder"`
	InitiatorModel string `json:"initiator_model,omitempty"`
	ResponderModel string `json:"responder_model,omitempty"`
	// Suite is the IKE proposal in strongSwan syntax, e.g.
	// "aes256gcm16-prfsha384-x25519-ke1_mlkem768".
	Suite string `json:"suite"`
	// Placement says where ML-KEM ran: "none" (classical), "intermediate"
	// (an additional key exchange in IKE_INTERMEDIATE) or "init" (alone in
	// IKE_SA_INIT).
	Placement string `json:"placement"`
	Auth      string `json:"auth"`

	StartNs   int64 `json:"start_ns"`
	LatencyNs int64 `json:"latency_ns"` // first datagram sent to IKE SA and Child SA established
	// Outcome is "established" or "failed"; Reason says why a handshake failed
	// (a notify name such as NO_PROPOSAL_CHOSEN, or a local cause such as
	// "retransmission timeout").
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`

	Bytes           int `json:"bytes"`     // IKE bytes in UDP payloads, both directions
	Datagrams       int `json:"datagrams"` // IKE datagrams, both directions
	IPPackets       int `json:"ip_packets"`
	IPFragments     int `json:"ip_fragments"`  // IP fragments created on the path
	IKEFragments    int `json:"ike_fragments"` // RFC 7383 fragments sent
	Retransmissions int `json:"retransmissions"`
	RoundTrips      int `json:"round_trips"`

	Exchanges []Exchange `json:"exchanges,omitempty"`

	InitiatorCPUNs int64 `json:"initiator_cpu_ns"`
	ResponderCPUNs int64 `json:"responder_cpu_ns"`
}

// Exchange is the wire cost of one request/response exchange of a handshake.
type Exchange struct {
	Name      string `json:"name"` // IKE_SA_INIT, IKE_INTERMEDIATE, IKE_AUTH ...
	Bytes     int    `json:"bytes"`
	Datagrams int    `json:"datagrams"`
}

// Rekey is one rekey exchange (RFC 7296 Section 2.8 for Child SAs,
// Section 2.18 for IKE SAs, with the IKE_FOLLOWUP_KE exchanges of RFC 9370
// when additional key exchanges are repeated), recorded by the gateway that
// started it.
type Rekey struct {
	// Initiator started the exchange; Responder is the other gateway.
	Initiator string `json:"initiator"`
	Responder string `json:"responder"`
	// Kind is "ike" (an IKE SA rekey) or "child" (a Child SA rekey);
	// "unknown" for an exchange the run ended in the middle of before the
	// engine reported anything about it.
	Kind string `json:"kind"`
	// StartNs is when the first request was sent; LatencyNs runs from
	// then until the initiator has the new SA (established only, 0
	// otherwise).
	StartNs   int64 `json:"start_ns"`
	LatencyNs int64 `json:"latency_ns"`
	// Outcome is "established", "failed" (Reason as for handshakes) or
	// "collision-lost" (OutcomeCollisionLost: the other gateway's exchange
	// rekeyed the SA; Reason "rekey-collision"). In a collision the
	// winner's record is established and the loser's collision-lost; Kind
	// is the kind of SA rekeyed.
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
	// Bytes and Datagrams count the exchange's IKE datagrams of both
	// sides (CREATE_CHILD_SA and IKE_FOLLOWUP_KE, retransmissions
	// included).
	Bytes     int `json:"bytes"`
	Datagrams int `json:"datagrams"`
}

// NodeStats is the CPU use of one node.
type NodeStats struct {
	Name   string `json:"name"`
	Model  string `json:"model,omitempty"`
	Cores  int    `json:"cores"`
	CPUNs  int64  `json:"cpu_ns"`
	BusyNs int64  `json:"busy_ns"` // wall of virtual time with at least one core busy
	// AllUpNs is, on a hub, the virtual time at which its last tunnel came up.
	AllUpNs int64 `json:"all_up_ns,omitempty"`
}

// LinkStats are the counters of one link.
type LinkStats struct {
	Name        string           `json:"name"`
	Packets     int64            `json:"packets"`
	Bytes       int64            `json:"bytes"`
	IPFragments int64            `json:"ip_fragments"`
	Drops       map[string]int64 `json:"drops,omitempty"`
}

// Throughput is one data-plane measurement: ESP tunnel-mode throughput on
// one core in inner-packet bytes, and the raw AEAD (or AES-CBC plus HMAC)
// over the same octets measured in the same run as the baseline.
type Throughput struct {
	Cipher string `json:"cipher"`
	// Direction is "seal" (encapsulation) or "open" (decapsulation);
	// empty means seal.
	Direction    string  `json:"direction,omitempty"`
	PacketSize   int     `json:"packet_size"`
	Gbps         float64 `json:"gbps"`
	BaselineGbps float64 `json:"baseline_gbps,omitempty"`
}

// Write writes f as indented JSON.
func Write(w io.Writer, f *File) error {
	f.Schema = Schema
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(f)
}

// Read reads a results file and checks its schema.
func Read(r io.Reader) (*File, error) {
	var f File
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	if f.Schema != Schema {
		return nil, fmt.Errorf("results: schema %q, want %q", f.Schema, Schema)
	}
	return &f, nil
}

// ReadFile reads the results file at path.
func ReadFile(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	f, err := Read(fh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Merge joins the runs of several files (for example the shards of one sweep)
// into one, sorted by run name so that the order of the inputs does not matter.
// Two runs with the same name are an error.
func Merge(files ...*File) (*File, error) {
	out := &File{Schema: Schema}
	seen := map[string]bool{}
	for _, f := range files {
		for _, r := range f.Runs {
			if seen[r.Name] {
				return nil, fmt.Errorf("results: run %q appears twice", r.Name)
			}
			seen[r.Name] = true
			out.Runs = append(out.Runs, r)
		}
	}
	if len(out.Runs) == 0 {
		return nil, errors.New("results: nothing to merge")
	}
	sort.Slice(out.Runs, func(i, j int) bool { return out.Runs[i].Name < out.Runs[j].Name })
	return out, nil
}
