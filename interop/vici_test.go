package interop

import (
	"bytes"
	"strings"
	"testing"
)

func sampleViciMessage() *ViciMessage {
	child := NewViciMessage().Set("name", "c").Set("local-ts", []string{"198.51.100.1/32", "198.51.100.3/32"})
	return NewViciMessage().
		Set("ike", "t").
		Set("timeout", "1500").
		Set("empty-list", []string{}).
		Set("child-sas", NewViciMessage().Set("c-1", child))
}

func TestViciMessageRoundTrip(t *testing.T) {
	m := sampleViciMessage()
	b, err := m.encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Element layout of vici's message encoding: type, 8-bit name length, name, then a 16-bit
	// value length and the value for key/value pairs.
	if want := []byte{viciKeyValue, 3, 'i', 'k', 'e', 0, 1, 't'}; !bytes.HasPrefix(b, want) {
		t.Fatalf("encoding starts % x, want % x", b[:len(want)], want)
	}
	got, err := decodeViciMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != m.String() {
		t.Errorf("round trip:\n got %s\nwant %s", got, m)
	}
	if got.Section("child-sas").Section("c-1").List("local-ts")[1] != "198.51.100.3/32" {
		t.Error("nested list lost")
	}
	// Every strict prefix that ends inside the nested section or inside an element must fail.
	for n := 0; n < len(b); n++ {
		if _, err := decodeViciMessage(b[:n]); err == nil && n > 0 && !isElementBoundary(b, n) {
			t.Errorf("prefix of %d bytes decoded", n)
		}
	}
}

// isElementBoundary reports whether b[:n] ends after a complete top-level element, which is a
// valid shorter message.
func isElementBoundary(b []byte, n int) bool {
	m, err := decodeViciMessage(b[:n])
	if err != nil {
		return false
	}
	re, err := m.encode(nil)
	return err == nil && bytes.Equal(re, b[:n])
}

func TestViciDecodeRejects(t *testing.T) {
	deep := []byte{}
	for i := 0; i <= viciMaxDepth+1; i++ {
		deep = append(deep, viciSectionStart, 1, 's')
	}
	for i := 0; i <= viciMaxDepth+1; i++ {
		deep = append(deep, viciSectionEnd)
	}
	cases := map[string][]byte{
		"end without start":  {viciSectionEnd},
		"unknown element":    {9},
		"truncated name":     {viciKeyValue, 5, 'a'},
		"truncated value":    {viciKeyValue, 1, 'a', 0, 9, 'x'},
		"item outside list":  {viciListItem, 0, 0},
		"key inside list":    {viciListStart, 1, 'l', viciKeyValue},
		"unterminated list":  {viciListStart, 1, 'l', viciListItem, 0, 1, 'x'},
		"unterminated sect.": {viciSectionStart, 1, 's', viciKeyValue, 1, 'k', 0, 0},
		"too deep":           deep,
	}
	for name, b := range cases {
		if m, err := decodeViciMessage(b); err == nil {
			t.Errorf("%s: decoded %s", name, m)
		}
	}
}

func TestViciEncodeRejects(t *testing.T) {
	for name, m := range map[string]*ViciMessage{
		"long name":  NewViciMessage().Set(strings.Repeat("n", 256), "v"),
		"empty name": NewViciMessage().Set("", "v"),
		"long value": NewViciMessage().Set("k", strings.Repeat("v", 65536)),
		"bad type":   NewViciMessage().Set("k", 42),
	} {
		if _, err := m.encode(nil); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
}

// FuzzViciDecode: decoding never panics, and whatever decodes re-encodes to a message that
// decodes to the same thing.
func FuzzViciDecode(f *testing.F) {
	b, _ := sampleViciMessage().encode(nil)
	f.Add(b)
	f.Add([]byte{viciSectionStart, 1, 's', viciSectionEnd})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeViciMessage(b)
		if err != nil {
			return
		}
		re, err := m.encode(nil)
		if err != nil {
			t.Fatalf("decoded message does not encode: %v", err)
		}
		m2, err := decodeViciMessage(re)
		if err != nil || m2.String() != m.String() {
			t.Fatalf("re-encoding changed the message: %v %s vs %s", err, m2, m)
		}
	})
}
