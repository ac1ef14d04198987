package tomlcheck

import (
	"testing"

	"github.com/stretchr/testify/require"
)

type cfg struct {
	Name string
	Frag struct {
		Size int
	} `toml:"fragmentation"`
	Node []struct {
		Name string
	}
}

func TestUnknownKeyHasLine(t *testing.T) {
	src := "name = \"x\"\n\n[fragmentation]\nsize = 1280\nsise = 1\n"
	var c cfg
	_, err := Decode("p.toml", []byte(src), &c)
	require.EqualError(t, err, "p.toml:5: fragmentation.sise: unknown key")
}

func TestTypeErrorHasLine(t *testing.T) {
	src := "name = \"x\"\n[fragmentation]\nsize = \"big\"\n"
	var c cfg
	_, err := Decode("p.toml", []byte(src), &c)
	require.Error(t, err)
	require.Contains(t, err.Error(), "p.toml:3:")
}

func TestSyntaxError(t *testing.T) {
	var c cfg
	_, err := Decode("p.toml", []byte("name = \n"), &c)
	require.ErrorContains(t, err, "p.toml:1")
}

func TestErrorfLocatesArrayTables(t *testing.T) {
	src := "[[node]]\nname = \"a\"\n[[node]]\nname = \"b\"\n"
	var c cfg
	f, err := Decode("p.toml", []byte(src), &c)
	require.NoError(t, err)
	require.EqualError(t, f.Errorf("node[1].name", "duplicate"), "p.toml:4: node[1].name: duplicate")
	require.Equal(t, 3, f.Line("node[1].missing"))
	require.Equal(t, 0, f.Line("nothing"))
}

func TestLocator(t *testing.T) {
	src := `# comment = 1
[[link]]
a_to_b = { delay = "1ms", loss = 0.1 }
[[link]]
list = [
  { x = 1 },
]
name = "l1" # name = "no"
[[link.event]]
at = "1s"
`
	l := NewLocator([]byte(src))
	for path, want := range map[string]int{
		"link": 2, "link[0].a_to_b.loss": 3, "link[1]": 4, "link[1].list": 5, "link[1].name": 8,
		"link.name": 8, "link[1].event[0].at": 10, "link.event.at": 10, "link[1].event[0].nothing": 9,
		"comment": 0, "x": 0,
	} {
		require.Equal(t, want, l.Line(path), path)
	}
}
