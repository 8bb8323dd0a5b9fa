package lldp

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"time"
)

// Lldpd is a Source backed by a running lldpd, queried through lldpcli.
type Lldpd struct {
	// Lldpcli is the lldpcli binary; default "lldpcli".
	Lldpcli string
	// Socket is lldpd's control socket (lldpcli -u); default lldpd's own.
	Socket string
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (l *Lldpd) command(ctx context.Context, args ...string) *exec.Cmd {
	bin := l.Lldpcli
	if bin == "" {
		bin = "lldpcli"
	}
	var a []string
	if l.Socket != "" {
		a = append(a, "-u", l.Socket)
	}
	return exec.CommandContext(ctx, bin, append(a, args...)...)
}

func (l *Lldpd) run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := l.command(ctx, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Neighbors lists lldpd's neighbors; equivalent to
// `lldpcli [-u SOCKET] -f json0 show neighbors details`. lldpd expires
// neighbors itself, so every one listed is alive and LastSeen is now;
// Changed is now minus lldpd's age. The order is Native's: by interface, most
// recently changed first.
func (l *Lldpd) Neighbors(ctx context.Context) ([]Neighbor, error) {
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	out, err := l.run(ctx, "-f", "json0", "show", "neighbors", "details")
	if err != nil {
		return nil, err
	}
	ns, err := parseJSON0(out, now())
	if err != nil {
		return nil, err
	}
	sortNeighbors(ns)
	return ns, nil
}

// Running reports whether lldpd answers, equivalent to
// `lldpcli [-u SOCKET] show configuration`.
func (l *Lldpd) Running(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := l.run(ctx, "show", "configuration")
	return err == nil
}

// Run waits for ctx: lldpd does the listening.
func (l *Lldpd) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// Auto returns lld when lldpd answers, else a Native listener on ifaces; the
// caller runs the result (Run) next to Watch. Native sockets are opened in the
// calling thread's network namespace.
func Auto(ctx context.Context, lld *Lldpd, ifaces []string, log *slog.Logger) (Runner, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if lld == nil {
		lld = &Lldpd{}
	}
	if lld.Running(ctx) {
		log.Info("lldp source: lldpd", "socket", lld.Socket)
		return lld, nil
	}
	log.Info("lldp source: native AF_PACKET listener (lldpd does not answer)", "interfaces", ifaces)
	return NewNative(ifaces, log)
}
