package interop

import (
	"strings"
	"testing"
)

func TestSwanctlRender(t *testing.T) {
	c := SwanctlConfig{
		Conns: []Conn{{
			Name:        "t",
			LocalAddrs:  []string{"192.0.2.1"},
			RemoteAddrs: []string{"192.0.2.2"},
			RemotePort:  4500,
			Proposals:   []string{"aes256gcm16-prfsha256-x25519", "aes128-sha256-ecp256"},
			Encap:       true,
			Local:       Auth{Method: "pubkey", ID: "a.test", Certs: []string{"a.pem"}},
			Remote:      Auth{Method: "pubkey", ID: "b.test", CACerts: []string{"ca.pem"}},
			Children: []Child{{Name: "c", LocalTS: []string{"198.51.100.1/32"}, RemoteTS: []string{"198.51.100.2/32"},
				ESPProposals: []string{"aes256gcm16"}, Extra: map[string]string{"rekey_time": "0", "mode": "tunnel"}}},
			Extra: map[string]string{"mobike": "no"},
		}},
		PSKs: []PSK{{IDs: []string{"a.test", "b.test"}, Secret: "s3cret with spaces"}},
	}
	got, err := c.Render()
	if err != nil {
		t.Fatal(err)
	}
	want := `connections {
  t {
    version = "2"
    local_addrs = "192.0.2.1"
    remote_addrs = "192.0.2.2"
    remote_port = "4500"
    proposals = "aes256gcm16-prfsha256-x25519,aes128-sha256-ecp256"
    encap = "yes"
    mobike = "no"
    local {
      auth = "pubkey"
      id = "a.test"
      certs = "a.pem"
    }
    remote {
      auth = "pubkey"
      id = "b.test"
      cacerts = "ca.pem"
    }
    children {
      c {
        local_ts = "198.51.100.1/32"
        remote_ts = "198.51.100.2/32"
        esp_proposals = "aes256gcm16"
        start_action = "none"
        mode = "tunnel"
        rekey_time = "0"
      }
    }
  }
}
secrets {
  ike-1 {
    id-1 = "a.test"
    id-2 = "b.test"
    secret = "s3cret with spaces"
  }
}
`
	if got != want {
		t.Errorf("Render:\n%s\nwant:\n%s", got, want)
	}
}

func TestSwanctlRenderRejects(t *testing.T) {
	for name, c := range map[string]SwanctlConfig{
		"quote in secret":   {PSKs: []PSK{{IDs: []string{"a"}, Secret: `x"y`}}},
		"newline in value":  {Conns: []Conn{{Name: "t", Proposals: []string{"aes\n"}}}},
		"space in name":     {Conns: []Conn{{Name: "t 1"}}},
		"no name":           {Conns: []Conn{{}}},
		"brace in extra":    {Conns: []Conn{{Name: "t", Extra: map[string]string{"a{": "b"}}}},
		"file outside dir":  {Files: map[string][]byte{"../x": nil}},
		"absolute file":     {Files: map[string][]byte{"/etc/x": nil}},
		"backslash in ID":   {Conns: []Conn{{Name: "t", Local: Auth{ID: `a\b`}}}},
		"quote in child TS": {Conns: []Conn{{Name: "t", Children: []Child{{Name: "c", LocalTS: []string{`"`}}}}}},
	} {
		if out, err := c.Render(); err == nil {
			t.Errorf("%s: rendered\n%s", name, out)
		} else if !strings.HasPrefix(err.Error(), "interop: ") {
			t.Errorf("%s: error %q lacks the package prefix", name, err)
		}
	}
}

func TestAppArmorConfines(t *testing.T) {
	profiles := []byte("/usr/sbin/swanctl (enforce)\n/usr/lib/ipsec/charon (enforce)\nman_filter (enforce)\n")
	if err := apparmorConfines(profiles, DefaultCharonBinary); err == nil || !strings.Contains(err.Error(), "aa-complain") {
		t.Errorf("enforcing profile not reported: %v", err)
	}
	complain := []byte("/usr/lib/ipsec/charon (complain)\n")
	if err := apparmorConfines(complain, DefaultCharonBinary); err != nil {
		t.Errorf("complain-mode profile reported: %v", err)
	}
	if err := apparmorConfines(nil, DefaultCharonBinary); err != nil {
		t.Errorf("no profiles: %v", err)
	}
}
