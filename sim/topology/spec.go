package topology

// The structures in this file mirror the TOML files field by field. Load
// turns them into the validated Topology; nothing outside the package sees
// them.

// fileSpec is a topology file.
type fileSpec struct {
	Name        string      `toml:"name"`
	Description string      `toml:"description"`
	Seed        *int64      `toml:"seed"`
	Duration    string      `toml:"duration"`
	IPv6        bool        `toml:"ipv6"`
	Models      string      `toml:"models"`
	CPUCosts    string      `toml:"cpu_costs"`
	Root        string      `toml:"root"`
	Node        []nodeSpec  `toml:"node"`
	Group       []groupSpec `toml:"group"`
	Link        []linkSpec  `toml:"link"`
	Event       []eventSpec `toml:"event"`
}

// memberSpec holds the fields shared by a node and a group of nodes.
type memberSpec struct {
	Kind         string        `toml:"kind"`
	CPU          string        `toml:"cpu"`
	PeerModel    string        `toml:"peer_model"`
	Role         string        `toml:"role"`
	Peers        []string      `toml:"peers"`
	Proposals    []string      `toml:"proposals"`
	ESPProposals []string      `toml:"esp_proposals"`
	LAN          string        `toml:"lan"`
	LANHosts     int           `toml:"lan_hosts"`
	Traffic      []trafficSpec `toml:"traffic"`
	NAT          *natSpec      `toml:"nat"`
}

type nodeSpec struct {
	Name string `toml:"name"`
	memberSpec
}

type groupSpec struct {
	Name   string    `toml:"name"`
	Count  int       `toml:"count"`
	Uplink *linkSpec `toml:"uplink"`
	memberSpec
}

type natSpec struct {
	Inside         string `toml:"inside"`
	Mapping        string `toml:"mapping"`
	Filtering      string `toml:"filtering"`
	Timeout        string `toml:"timeout"`
	InboundRefresh bool   `toml:"inbound_refresh"`
	Fragments      string `toml:"fragments"`
	// Uplink of the NAT itself, for group members put behind a NAT.
	Link *linkSpec `toml:"link"`
}

type trafficSpec struct {
	Kind     string `toml:"kind"`
	To       string `toml:"to"`
	Port     int    `toml:"port"`
	Start    *Value `toml:"start"`
	Interval *Value `toml:"interval"`
	Count    int    `toml:"count"`
	Size     int    `toml:"size"`
	Rate     *Value `toml:"rate"`
}

// impairSpec holds the per-direction link parameters.
type impairSpec struct {
	Delay          *Value       `toml:"delay"`
	Jitter         *Value       `toml:"jitter"`
	Bandwidth      *Value       `toml:"bandwidth"`
	Queue          *Value       `toml:"queue"`
	QueueBytes     *Value       `toml:"queue_bytes"`
	Loss           *Value       `toml:"loss"`
	Gilbert        *gilbertSpec `toml:"gilbert"`
	Duplicate      *Value       `toml:"duplicate"`
	Reorder        *Value       `toml:"reorder"`
	ReorderDelay   *Value       `toml:"reorder_delay"`
	Fragments      string       `toml:"fragments"`
	FragmentsKeep  *Value       `toml:"fragments_keep"`
	BlackholeAbove *Value       `toml:"blackhole_above"`
}

type gilbertSpec struct {
	P        *Value `toml:"p"`
	R        *Value `toml:"r"`
	LossGood *Value `toml:"loss_good"`
	LossBad  *Value `toml:"loss_bad"`
}

type linkSpec struct {
	Name    string `toml:"name"`
	A       string `toml:"a"`
	B       string `toml:"b"`
	To      string `toml:"to"` // group uplinks: the node the members connect to
	Profile string `toml:"profile"`
	MTU     *Value `toml:"mtu"`
	Subnet  string `toml:"subnet"`
	Down    bool   `toml:"down"`
	impairSpec
	AtoB *impairSpec `toml:"a_to_b"`
	BtoA *impairSpec `toml:"b_to_a"`
}

type eventSpec struct {
	At     string `toml:"at"`
	Action string `toml:"action"`
	Target string `toml:"target"`
	Value  string `toml:"value"`
}

// profileSpec is a link profile file in models/links.
type profileSpec struct {
	Name        string   `toml:"name"`
	Description string   `toml:"description"`
	Sources     []string `toml:"sources"`
	MTU         *Value   `toml:"mtu"`
	impairSpec
	AtoB *impairSpec `toml:"a_to_b"`
	BtoA *impairSpec `toml:"b_to_a"`
}

// cpuClassesSpec is models/cpu/classes.toml.
type cpuClassesSpec struct {
	Class map[string]cpuClassSpec `toml:"class"`
}

type cpuClassSpec struct {
	Cores       int     `toml:"cores"`
	Speed       float64 `toml:"speed"`
	Description string  `toml:"description"`
	Source      string  `toml:"source"`
}
