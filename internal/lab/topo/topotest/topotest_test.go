package topotest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/vflink/vflink/internal/lab"
)

func TestStart(t *testing.T) {
	var l interface{ WaitLLDP(context.Context) error }
	var dir string
	t.Run("lab", func(t *testing.T) {
		lb := Start(t, lab.Plan{})
		l, dir = lb, lb.Plan.Dir
		if lb.Plan.Hosts != 2 || lb.Plan.VFsPerPF != 2 {
			t.Errorf("plan %+v, want Small", lb.Plan)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		if err := l.WaitLLDP(ctx); err != nil {
			t.Error(err)
		}
	})
	if l == nil {
		return // skipped
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the lab directory %s remains after the test (%v)", dir, err)
	}
	// (The namespaces are not checked here: once the lock is released, another test binary may
	// have built its lab. topo's own tests check them while holding the lock.)
}
