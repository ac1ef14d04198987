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
	return writeRecords(w, f, csvColumns, func(r *Run, emit func(...string) error) error {
		for _, h := range r.Handshakes {
			if err := emit(h.Initiator, h.Responder,
				h.InitiatorModel, h.ResponderModel, h.Suite, h.Placement, h.Auth,
				strconv.FormatInt(h.StartNs, 10), strconv.FormatInt(h.LatencyNs, 10),
				h.Outcome, h.Reason, strconv.Itoa(h.Bytes), strconv.Itoa(h.Datagrams),
				strconv.Itoa(h.IPPackets), strconv.Itoa(h.IPFragments), strconv.Itoa(h.IKEFragments),
				strconv.Itoa(h.Retransmissions), strconv.Itoa(h.RoundTrips),
				strconv.FormatInt(h.InitiatorCPUNs, 10), strconv.FormatInt(h.ResponderCPUNs, 10)); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeRecords writes a CSV file of f's records: a header of columns (which
// start with run and seed) and the sweep parameter names, then per run the
// lines that each calls emit with (the fields after run and seed).
func writeRecords(w io.Writer, f *File, columns []string, each func(r *Run, emit func(...string) error) error) error {
	params := ParamNames(f)
	cw := csv.NewWriter(w)
	if err := cw.Write(append(append([]string{}, columns...), params...)); err != nil {
		return err
	}
	for i := range f.Runs {
		r := &f.Runs[i]
		emit := func(fields ...string) error {
			rec := append([]string{r.Name, strconv.FormatInt(r.Seed, 10)}, fields...)
			for _, p := range params {
				rec = append(rec, r.Params[p])
			}
			return cw.Write(rec)
		}
		if err := each(r, emit); err != nil {
			return err
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
	return writeRecords(w, f, rekeyCSVColumns, func(r *Run, emit func(...string) error) error {
		for _, k := range r.Rekeys {
			if err := emit(k.Initiator, k.Responder, k.Kind,
				strconv.FormatInt(k.StartNs, 10), strconv.FormatInt(k.LatencyNs, 10),
				k.Outcome, k.Reason, strconv.Itoa(k.Bytes), strconv.Itoa(k.Datagrams)); err != nil {
				return err
			}
		}
		return nil
	})
}
