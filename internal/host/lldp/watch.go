package lldp

import (
	"context"
	"log/slog"
	"time"
)

// NoLLDPHintAfter is how long Watch waits for a PF's first LLDPDU before it
// logs the firmware hint: three times the usual 30 s transmit interval.
const NoLLDPHintAfter = 90 * time.Second

// Watch polls src every interval and calls onChange(iface, n) when the link
// of one of ifaces changes: a first neighbor, a different switch or port
// (re-cabling) or different announced names, and onChange(iface, nil) when
// the neighbor expires. When a PF has several neighbors, its link is the most
// recently changed one. A PF that hears no LLDP for NoLLDPHintAfter gets one
// warning with the Intel firmware hint (again only after it heard some).
// Errors from src are logged and the last known links kept. Watch returns nil
// when ctx is done. onChange runs on Watch's goroutine.
func Watch(ctx context.Context, src Source, ifaces []string, every time.Duration, onChange func(iface string, n *Neighbor), log *slog.Logger) error {
	w := watcher{src: src, ifaces: ifaces, onChange: onChange, log: log, hintAfter: NoLLDPHintAfter, now: time.Now}
	return w.run(ctx, every)
}

type watcher struct {
	src       Source
	ifaces    []string
	onChange  func(string, *Neighbor)
	log       *slog.Logger
	hintAfter time.Duration
	now       func() time.Time

	links   map[string]Neighbor  // the reported link per PF
	silent  map[string]time.Time // since when a PF has had no neighbor
	hinted  map[string]bool
	lastErr string
}

func (w *watcher) run(ctx context.Context, every time.Duration) error {
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	w.log = w.log.With("component", "lldp")
	if every <= 0 {
		every = time.Second
	}
	w.links = make(map[string]Neighbor)
	w.silent = make(map[string]time.Time)
	w.hinted = make(map[string]bool)
	start := w.now()
	for _, pf := range w.ifaces {
		w.silent[pf] = start
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		w.poll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// poll reads src once and reports what changed.
func (w *watcher) poll(ctx context.Context) {
	all, err := w.src.Neighbors(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		// Log a failing source once per distinct error, not every poll.
		if msg := err.Error(); msg != w.lastErr {
			w.log.Warn("list lldp neighbors; keeping the last known links", "err", err)
			w.lastErr = msg
		}
		return
	}
	w.lastErr = ""
	now := w.now()
	for _, pf := range w.ifaces {
		cur, ok := pick(all, pf)
		old, had := w.links[pf]
		switch {
		case ok && (!had || !sameLink(old, cur)):
			w.links[pf] = cur
			delete(w.silent, pf)
			w.hinted[pf] = false
			w.log.Info("lldp link", "pf", pf, "device", cur.SystemName, "chassis", cur.ChassisID,
				"port", cur.SwitchPort(), "port_id", cur.PortID, "port_id_subtype", cur.PortIDSubtype)
			w.onChange(pf, &cur)
		case ok:
			w.links[pf] = cur // same link; keep LastSeen fresh
		case had:
			delete(w.links, pf)
			w.silent[pf] = now
			w.log.Info("lldp link expired", "pf", pf, "device", old.SystemName, "port", old.SwitchPort())
			w.onChange(pf, nil)
		default:
			since, ok := w.silent[pf]
			if !ok {
				since = now
				w.silent[pf] = now
			}
			if !w.hinted[pf] && now.Sub(since) >= w.hintAfter {
				w.hinted[pf] = true
				w.log.Warn("no LLDP on "+pf+": is the switch sending LLDP? Intel X710/E810 firmware may consume LLDP frames; disable its LLDP agent (ethtool --set-priv-flags "+pf+" disable-fw-lldp on)",
					"pf", pf, "silent_for", now.Sub(since).Round(time.Second).String())
			}
		}
	}
}

// pick returns the link of pf among all: its most recently changed neighbor.
func pick(all []Neighbor, pf string) (Neighbor, bool) {
	var on []Neighbor
	for _, n := range all {
		if n.Interface == pf {
			on = append(on, n)
		}
	}
	if len(on) == 0 {
		return Neighbor{}, false
	}
	sortNeighbors(on)
	return on[0], true
}
