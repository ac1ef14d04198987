package realnet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// NetnsDir is where iproute2 ("ip netns add NAME") keeps the bind mounts that name network
// namespaces.
const NetnsDir = "/run/netns"

// NetnsPath returns the path iproute2 uses for the network namespace called name.
func NetnsPath(name string) string { return filepath.Join(NetnsDir, name) }

// InNetns runs fn on a fresh OS thread that has joined the network namespace at path (for example
// NetnsPath("pqi-a")) and returns fn's error.
//
// Sockets, raw sockets and TUN devices that fn creates belong to that namespace for their whole
// life, and may be used afterwards from any goroutine: a descriptor's namespace is fixed when it is
// created, not when it is used. fn must create what it needs and return; goroutines it starts do not
// run in the namespace.
//
// The thread is locked to the call. Afterwards it rejoins its own namespace and is unlocked; if
// that fails it stays locked, and the Go runtime retires it when the goroutine ends instead of
// handing a thread in a foreign namespace to other goroutines (runtime.LockOSThread, Go 1.10+).
// Restoring matters: when the locked thread happens to be the main thread, the runtime cannot
// retire it, and a main thread left in the namespace makes the whole process appear to live there
// ("ip netns pids", /proc/PID/ns/net) and keeps the namespace alive.
func InNetns(path string, fn func() error) error {
	type result struct{ err error }
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// Unlocked only once the thread is back in its own namespace; see the doc comment.
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			done <- result{fmt.Errorf("realnet: open own netns: %w", err)}
			return
		}
		defer orig.Close()
		f, err := os.Open(path)
		if err != nil {
			done <- result{fmt.Errorf("realnet: open netns: %w", err)}
			return
		}
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
		f.Close()
		if err != nil {
			done <- result{fmt.Errorf("realnet: setns %s: %w", path, err)}
			return
		}
		r := result{fn()}
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- r
	}()
	r := <-done
	return r.err
}

// ErrClosed is returned by Endpoint and TUN methods after Close.
var ErrClosed = errors.New("realnet: closed")
