package topo

import (
	"context"
	"errors"
	"syscall"
	"time"
)

// MachineLock is the file whose flock(2) Acquire takes.
const MachineLock = "/run/vflink-lab.lock"

// Acquire waits until this process holds the machine's lab lock (an exclusive flock on
// MachineLock) or ctx ends. The lab's namespace names are fixed (lab.FabricNS, lab.HostNS), so
// one lab at a time fits on a machine: tests that build a lab hold the lock from before Up to
// after Down, so test binaries of different packages, run in parallel by `go test ./...`, take
// turns. Up itself does not take it (it refuses when the namespaces exist).
func Acquire(ctx context.Context) (release func(), err error) {
	for {
		release, err := flock(MachineLock, false)
		if err == nil {
			return release, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
