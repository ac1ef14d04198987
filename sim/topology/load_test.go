package topology

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLoadShippedTopologies(t *testing.T) {
	files, err := filepath.Glob("../../topologies/*.toml")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 9)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			top, err := Load(f, LoadOptions{})
			require.NoError(t, err)
			require.NotEmpty(t, top.Nodes)
			require.NotNil(t, top.Costs)
		})
	}
}
