package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/pqlab/pqlab/models"
	"github.com/pqlab/pqlab/sim/gateway"
)

// Suite is a key exchange configuration the default experiment compares.
type Suite struct {
	Label    string // short name for run names and tables
	Proposal string // IKE proposal, strongSwan syntax
}

// DefaultSuites are the suites of the default experiment: classical
// X25519; hybrid X25519 + ML-KEM-768 with ML-KEM in IKE_INTERMEDIATE (RFC
// 9370); ML-KEM-768 alone in IKE_SA_INIT; hybrid ECP-384 + ML-KEM-1024
// (the combination Cisco and Cloudflare validated).
var DefaultSuites = []Suite{
	{"x25519", "aes256gcm16-prfsha384-x25519"},
	{"x25519+mlkem768", "aes256gcm16-prfsha384-x25519-ke1_mlkem768"},
	{"mlkem768-init", "aes256gcm16-prfsha384-mlkem768"},
	{"ecp384+mlkem1024", "aes256gcm16-prfsha384-ecp384-ke1_mlkem1024"},
}

// Default experiment grid.
var (
	// DefaultRTTs are the round-trip times of the clean path (two-sites,
	// both access links given a quarter each).
	DefaultRTTs = []time.Duration{20 * time.Millisecond, 80 * time.Millisecond, 200 * time.Millisecond, 600 * time.Millisecond}
	// DefaultLosses are per-direction loss rates of site B's access link
	// at an RTT of 80 ms.
	DefaultLosses = []float64{0.01, 0.03, 0.1}
)

// DefaultInteropModels are the peer models paired in the default
// experiment's interoperability matrix (each as initiator, when its
// profile initiates, against each as responder).
var DefaultInteropModels = []string{"strongswan-6", "libreswan-5.4", "cisco-8000", "fortios-7.6.6", "fortios-pre-7.6.6", "cloudflare", "legacy-classical"}

// Suites of the default interoperability matrix: both ends are configured
// with DefaultInteropSuite (group 20 plus ML-KEM-768 in IKE_INTERMEDIATE,
// what Cloudflare, Cisco and FortiOS 7.6.6 were validated with); a model
// without any ML-KEM runs DefaultClassical instead.
const (
	DefaultInteropSuite = "aes256gcm16-prfsha384-ecp384-ke1_mlkem768"
	DefaultClassical    = "aes256gcm16-prfsha384-ecp384"
)

// Durations of the default runs: long enough for pings after the
// handshake on the clean path, and past strongSwan's give-up time
// (165 s) on the fragment-dropping path so failures are timeouts.
const (
	defaultCleanDuration = 20 * time.Second
	defaultLossDuration  = 120 * time.Second
	defaultFragDuration  = 180 * time.Second
)

// FindRoot returns the source tree holding topologies/ and models/ at or
// above the working directory.
func FindRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if st, err := os.Stat(filepath.Join(d, "topologies", "two-sites.toml")); err == nil && !st.IsDir() {
			if st, err := os.Stat(filepath.Join(d, "models", "peers")); err == nil && st.IsDir() {
				return d, nil
			}
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("lab: no topologies/two-sites.toml and models/peers at or above %s", wd)
		}
	}
}

// DefaultSpecs returns the runs of the quick default experiment over the
// topologies in root/topologies, reps repetitions each under seeds 1..reps:
//
//   - path=clean: two-sites.toml, each suite at each RTT of DefaultRTTs;
//   - path=lossy: two-sites.toml at 80 ms RTT with each loss of
//     DefaultLosses on site B's access link;
//   - path=fragdrop: fragment-dropping.toml (a 1280-octet MTU behind a
//     middlebox that drops IP fragments), each suite;
//   - the interoperability matrix (first repetition only): two-sites.toml
//     with every pair of DefaultInteropModels whose profiles take the
//     roles, both ends configured with DefaultInteropSuite where the model
//     can express it and DefaultClassical where it has no ML-KEM
//     (parameters initiator_model, responder_model and suite).
//
// Each run records its parameters (path, suite, rtt or loss, rep).
func DefaultSpecs(root string, reps int) ([]Spec, error) {
	peers, err := models.LoadPeers(filepath.Join(root, "models", "peers"))
	if err != nil {
		return nil, err
	}
	two := filepath.Join(root, "topologies", "two-sites.toml")
	frag := filepath.Join(root, "topologies", "fragment-dropping.toml")
	var specs []Spec
	add := func(topo string, d time.Duration, s Suite, rep int, params map[string]string, ov Overrides) {
		params["suite"] = s.Label
		params["rep"] = fmt.Sprint(rep)
		ov["node[gw-a].proposals"] = []string{s.Proposal}
		ov["node[gw-b].proposals"] = []string{s.Proposal}
		name := fmt.Sprintf("path=%s", params["path"])
		for _, k := range []string{"rtt", "loss"} {
			if v, ok := params[k]; ok {
				name += fmt.Sprintf(",%s=%s", k, v)
			}
		}
		name += fmt.Sprintf(",suite=%s,rep=%d", s.Label, rep)
		specs = append(specs, Spec{Topology: topo, Name: name, Seed: uint64(rep), Duration: d, Params: params, Overrides: ov})
	}
	for rep := 1; rep <= reps; rep++ {
		for _, s := range DefaultSuites {
			for _, rtt := range DefaultRTTs {
				q := (rtt / 4).String()
				add(two, defaultCleanDuration, s, rep, map[string]string{"path": "clean", "rtt": rtt.String()},
					Overrides{"link[0].delay": q, "link[1].delay": q})
			}
			for _, loss := range DefaultLosses {
				q := (80 * time.Millisecond / 4).String()
				add(two, defaultLossDuration, s, rep, map[string]string{"path": "lossy", "loss": fmt.Sprint(loss)},
					Overrides{"link[0].delay": q, "link[1].delay": q, "link[1].loss": loss})
			}
			add(frag, defaultFragDuration, s, rep, map[string]string{"path": "fragdrop"}, Overrides{})
		}
	}
	proposal := func(model string) (string, error) {
		pm := peers[model]
		if pm == nil {
			return "", fmt.Errorf("lab: no peer model %q", model)
		}
		if Expressible(pm, DefaultInteropSuite) == nil {
			return DefaultInteropSuite, nil
		}
		return DefaultClassical, Expressible(pm, DefaultClassical)
	}
	for _, im := range DefaultInteropModels {
		pi, err := proposal(im)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(peers[im].Roles, "initiator") {
			continue // Cloudflare only responds
		}
		for _, rm := range DefaultInteropModels {
			pr, err := proposal(rm)
			if err != nil {
				return nil, err
			}
			if !slices.Contains(peers[rm].Roles, "responder") {
				continue
			}
			specs = append(specs, Spec{Topology: two, Name: fmt.Sprintf("interop,initiator=%s,responder=%s", im, rm),
				Seed: 1, Duration: defaultCleanDuration,
				Params: map[string]string{"initiator_model": im, "responder_model": rm, "suite": "ecp384+mlkem768"},
				Overrides: Overrides{"node[gw-a].peer_model": im, "node[gw-b].peer_model": rm,
					"node[gw-a].proposals": []string{pi}, "node[gw-b].proposals": []string{pr},
					"node[gw-a].esp_proposals": []string{"aes256gcm16"}, "node[gw-b].esp_proposals": []string{"aes256gcm16"}}})
		}
	}
	return specs, nil
}

// PlacementOf says where ML-KEM runs in a proposal (its first transform
// of each type): "init" (alone in IKE_SA_INIT), "intermediate" (an
// additional key exchange) or "none".
func PlacementOf(proposal string) string { return placementOf(proposal) }

// CheckProposal returns the engine configuration's objection to running
// an IKE proposal on a device of peer model p, or nil.
func CheckProposal(p *models.Peer, proposal string) error {
	_, err := gateway.EngineConfig(p, gateway.NodeSpec{Name: "check", Proposals: []string{proposal}})
	return err
}
