package interop

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestCleanupStale removes a namespace named after a dead process and keeps this process's own.
// It uses its own prefix: other test processes running at the same time clean NetnsPrefix names
// of dead processes too.
func TestCleanupStale(t *testing.T) {
	const prefix = "pqt-"
	requireNetns(t)
	ctx := testContext(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale, err := CreateNetns(ctx, fmt.Sprintf("%s%d-1-stale", prefix, dead.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stale.Delete(context.Background()) })
	mine, err := CreateNetns(ctx, prefix+strings.TrimPrefix(UniqueNetnsName("mine"), NetnsPrefix))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mine.Delete(context.Background()) })

	if err := cleanupStale(ctx, prefix); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale.Path()); !os.IsNotExist(err) {
		t.Errorf("stale namespace %s survived: %v", stale.Name, err)
	}
	if _, err := os.Stat(mine.Path()); err != nil {
		t.Errorf("own namespace %s removed: %v", mine.Name, err)
	}
	// IPv6 is off and loopback up in namespaces made here.
	out, err := mine.Exec(ctx, "cat", "/proc/sys/net/ipv6/conf/all/disable_ipv6")
	if err != nil || out != "1\n" {
		t.Errorf("disable_ipv6 = %q, %v", out, err)
	}
	if out, err := mine.IP(ctx, "-br", "link", "show", "lo"); err != nil || !slices.Contains(strings.Fields(out), "UNKNOWN") {
		t.Errorf("lo: %q, %v", out, err)
	}
}
