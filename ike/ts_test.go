package ike

import "testing"

func TestParseTrafficSelector(t *testing.T) {
	for _, c := range []struct{ in, out string }{
		{"10.1.0.0/16", "10.1.0.0/16"},
		{"10.1.2.3/16", "10.1.0.0/16"},
		{"10.1.0.1", "10.1.0.1/32"},
		{"10.1.0.0-10.1.0.254", "10.1.0.0-10.1.0.254"},
		{"0.0.0.0/0[udp/500]", "0.0.0.0/0[17/500]"},
		{"2001:db8::/32[tcp/80-443]", "2001:db8::/32[6/80-443]"},
		{"::/0[icmp6]", "::/0[58]"},
	} {
		ts, err := ParseTrafficSelector(c.in)
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if ts.String() != c.out {
			t.Errorf("%s: got %s, want %s", c.in, ts, c.out)
		}
		back, err := ParseTrafficSelector(ts.String())
		if err != nil || back != ts {
			t.Errorf("%s: round trip %v %v", c.in, back, err)
		}
	}
	for _, bad := range []string{"", "10.1.0.0/33", "10.0.0.2-10.0.0.1", "10.0.0.0/8[foo]", "10.0.0.0/8[udp/70000]", "10.0.0.0-::1", "10.0.0.0/8[udp"} {
		if _, err := ParseTrafficSelector(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestNarrow(t *testing.T) {
	prop := []TrafficSelector{MustTS("10.0.0.0/8"), MustTS("192.168.0.0/16")}
	conf := []TrafficSelector{MustTS("10.1.0.0/16[udp]")}
	got := narrow(prop, conf)
	if len(got) != 1 || got[0] != MustTS("10.1.0.0/16[udp]") {
		t.Fatalf("narrow: %v", got)
	}
	if !subsetOf(got, prop) {
		t.Fatal("narrowed not a subset of proposal")
	}
	if subsetOf([]TrafficSelector{MustTS("11.0.0.0/8")}, prop) {
		t.Fatal("foreign selector accepted")
	}
	if len(narrow(prop, []TrafficSelector{MustTS("172.16.0.0/12")})) != 0 {
		t.Fatal("disjoint selectors intersect")
	}
	if _, ok := MustTS("10.0.0.0/8[tcp]").Intersect(MustTS("10.0.0.0/8[udp]")); ok {
		t.Fatal("tcp and udp intersect")
	}
	if _, ok := MustTS("10.0.0.0/8").Intersect(MustTS("::/0")); ok {
		t.Fatal("v4 and v6 intersect")
	}
}
