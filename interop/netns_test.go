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
func TestCleanupStale(t *testing.T) {
	requireNetns(t)
	ctx := testContext(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale, err := CreateNetns(ctx, fmt.Sprintf("%s%d-1-stale", NetnsPrefix, dead.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stale.Delete(context.Background()) })
	mine, err := CreateNetns(ctx, UniqueNetnsName("mine"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mine.Delete(context.Background()) })

	if err := CleanupStale(ctx); err != nil {
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
