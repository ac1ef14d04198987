package results

import (
	"encoding/csv"
	"io"
	"sort"
	"strconv"
)

// csvColumns are the fixed columns of results.csv, one handshake per line.
// The run's sweep parameters follow them, one column per parameter name.
var csvColumns = []string{
	"run", "seed", "initiator", "responder", "initiator_model", "responder_model",
	"suite", "placement", "auth", "start_ns", "latency_ns", "outcome", "reason",
	"bytes", "datagrams", "ip_packets", "ip_fragments", "ike_fragments",
	"retransmissions", "round_trips", "initiator_cpu_ns", "responder_cpu_ns",
}

// WriteCSV writes the handshake records of f, one per line, with a header.
func WriteCSV(w io.Writer, f *File) error {
	params := ParamNames(f)
	cw := csv.NewWriter(w)
	if err := cw.Write(append(append([]string{}, csvColumns...), params...)); err != nil {
		return err
	}
	for _, r := range f.Runs {
		for _, h := range r.Handshakes {
			rec := []string{
				r.Name, strconv.FormatInt(r.Seed, 10), h.Initiator, h.Responder,
				h.InitiatorModel, h.ResponderModel, h.Suite, h.Placement, h.Auth,
				strconv.FormatInt(h.StartNs, 10), strconv.FormatInt(h.LatencyNs, 10),
				h.Outcome, h.Reason, strconv.Itoa(h.Bytes), strconv.Itoa(h.Datagrams),
				strconv.Itoa(h.IPPackets), strconv.Itoa(h.IPFragments), strconv.Itoa(h.IKEFragments),
				strconv.Itoa(h.Retransmissions), strconv.Itoa(h.RoundTrips),
				strconv.FormatInt(h.InitiatorCPUNs, 10), strconv.FormatInt(h.ResponderCPUNs, 10),
			}
			for _, p := range params {
				rec = append(rec, r.Params[p])
			}
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// ParamNames returns the sorted union of the sweep parameter names of f's runs.
func ParamNames(f *File) []string {
	set := map[string]bool{}
	for _, r := range f.Runs {
		for k := range r.Params {
			set[k] = true
		}
	}
	names := make([]string, 0, len(set))
	for k := range set {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// rekeyCSVColumns are the fixed columns of a rekeys CSV file, one rekey
// exchange per line; the run's sweep parameters follow.
var rekeyCSVColumns = []string{
	"run", "seed", "initiator", "responder", "kind", "start_ns", "latency_ns",
	"outcome", "reason", "bytes", "datagrams",
}

// WriteRekeysCSV writes the rekey records of f, one per line, with a
// header. Outcome is "established", "failed" or "collision-lost" (the
// exchange lost a rekey collision: the other gateway's exchange, on the
// line with initiator and responder swapped, rekeyed the SA); latency_ns
// is set for established rekeys only.
func WriteRekeysCSV(w io.Writer, f *File) error {
	params := ParamNames(f)
	cw := csv.NewWriter(w)
	if err := cw.Write(append(append([]string{}, rekeyCSVColumns...), params...)); err != nil {
		return err
	}
	for _, r := range f.Runs {
		for _, k := range r.Rekeys {
			rec := []string{
				r.Name, strconv.FormatInt(r.Seed, 10), k.Initiator, k.Responder, k.Kind,
				strconv.FormatInt(k.StartNs, 10), strconv.FormatInt(k.LatencyNs, 10),
				k.Outcome, k.Reason, strconv.Itoa(k.Bytes), strconv.Itoa(k.Datagrams),
			}
			for _, p := range params {
				rec = append(rec, r.Params[p])
			}
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}
