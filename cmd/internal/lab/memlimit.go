package lab

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// SetMemoryLimit sets the Go soft memory limit to 80 % of the machine's
// memory (MemTotal in /proc/meminfo) unless GOMEMLIMIT is set. Large
// topologies (100,000 branches hold about 10 GiB live) would otherwise let the
// heap grow past the machine's memory before the collector catches up.
func SetMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			if f := strings.Fields(rest); len(f) >= 1 {
				if kb, err := strconv.ParseUint(f[0], 10, 64); err == nil {
					debug.SetMemoryLimit(int64(kb * 1024 / 10 * 8))
				}
			}
		}
	}
}
