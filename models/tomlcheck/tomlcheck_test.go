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
