package realnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var nsSeq atomic.Uint64

// testNetns creates a network namespace for the test (skipping when not root or without
// iproute2) and deletes it afterwards. The name follows interop.NetnsPrefix conventions
// ("pqi-PID-N-role") so that interop.CleanupStale removes it if this process is killed.
func testNetns(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root (network namespaces)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipping: ip (iproute2) not installed")
	}
	name := fmt.Sprintf("pqi-%d-%d-rn", os.Getpid(), nsSeq.Add(1))
	ipCmd(t, "netns", "add", name)
	t.Cleanup(func() { ipCmd(t, "netns", "del", name) })
	ipCmd(t, "-n", name, "link", "set", "lo", "up")
	// No IPv6: the TUN device then carries only the test's packets.
	err := InNetns(NetnsPath(name), func() error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/default/disable_ipv6", []byte("1"), 0)
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return name
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func nsInode(path string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// TestInNetns checks that fn runs in the namespace, that sockets made there keep it, and that no
// thread of the process is left in the namespace afterwards, even after many concurrent calls
// (one of which may land on the main thread).
func TestInNetns(t *testing.T) {
	name := testNetns(t)
	ipCmd(t, "-n", name, "addr", "add", "192.0.2.77/32", "dev", "lo")
	want, err := nsInode(NetnsPath(name))
	if err != nil {
		t.Fatal(err)
	}
	own, err := nsInode("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if own == want {
		t.Fatal("test process already in the test namespace")
	}

	var conn *net.UDPConn
	err = InNetns(NetnsPath(name), func() error {
		got, err := nsInode("/proc/thread-self/ns/net")
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("thread in netns %d, want %d", got, want)
		}
		conn, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(192, 0, 2, 77)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The address exists only in the namespace: binding it here must fail.
	if c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(192, 0, 2, 77)}); err == nil {
		c.Close()
		t.Error("192.0.2.77 bindable outside the namespace")
	}
	// The socket made inside works from this goroutine: send to itself.
	if _, err := conn.WriteToUDPAddrPort([]byte("x"), conn.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, _, err := conn.ReadFromUDPAddrPort(make([]byte, 4)); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			InNetns(NetnsPath(name), func() error { time.Sleep(time.Millisecond); return nil })
		}()
	}
	wg.Wait()
	tasks, _ := filepath.Glob("/proc/self/task/*/ns/net")
	for _, p := range tasks {
		if ino, err := nsInode(p); err == nil && ino == want {
			t.Errorf("%s left in the test namespace", p)
		}
	}

	sentinel := errors.New("sentinel")
	if err := InNetns(NetnsPath(name), func() error { return sentinel }); !errors.Is(err, sentinel) {
		t.Errorf("fn's error not returned: %v", err)
	}
	if err := InNetns(NetnsPath("pqi-does-not-exist"), func() error { return nil }); err == nil {
		t.Error("missing namespace accepted")
	}
}
