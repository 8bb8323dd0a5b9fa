package hypervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"

	"libvirt.org/go/libvirtxml"
)

// Libvirt implements Hypervisor with the virsh command-line client:
//
//	virsh -c URI list --all --uuid --name   which domains exist (Start, Stop)
//	virsh -c URI list --uuid --name         which domains run (Running)
//	virsh -c URI dumpxml UUID               a domain's interfaces and whether it runs (id attribute)
//	virsh -c URI define FILE                (re)define from DomainXML, written to a temporary file
//	virsh -c URI start UUID
//	virsh -c URI destroy UUID               hard power-off; libvirt hands managed VFs back to the host
//	virsh -c URI undefine UUID
//
// Domains are addressed by UUID (the server ID); only domains named "vflink-..." are reported or
// touched. Calls for one server must not run concurrently (the agent reconciles each server in one
// worker); calls for different servers may.
type Libvirt struct {
	// URI is the libvirt connection URI, e.g. "qemu:///system" or "test:///default".
	URI string
	// Virsh is the virsh binary; "" means "virsh" from $PATH.
	Virsh string
	// DomainType is the domain type DomainXML renders; "" means "test" for a test:// URI and
	// "kvm" otherwise.
	DomainType string

	// replay, when set, runs every call in one virsh process that first replays the
	// state-changing commands that succeeded before; for libvirt's test driver, whose state
	// lives only as long as one virsh process. See newReplay.
	replay *replay
}

var _ Hypervisor = Libvirt{}

func (l Libvirt) virshPath() string {
	if l.Virsh == "" {
		return "virsh"
	}
	return l.Virsh
}

func (l Libvirt) domainType() string {
	switch {
	case l.DomainType != "":
		return l.DomainType
	case strings.HasPrefix(l.URI, "test:"):
		return "test"
	default:
		return "kvm"
	}
}

// Start defines and starts s. A running domain with s's UUID, name and interfaces (MAC, VF, VLAN)
// is left alone, even if its memory or vcpus differ from s; otherwise a running domain is
// destroyed first, a domain under another name is undefined, and s is defined and started.
func (l Libvirt) Start(ctx context.Context, s Server) error {
	want, err := buildDomain(s, l.domainType())
	if err != nil {
		return fmt.Errorf("start server %q: %w", s.ID, err)
	}
	doc, err := want.Marshal()
	if err != nil {
		return fmt.Errorf("start server %s: render domain: %w", want.UUID, err)
	}
	cur, err := l.lookup(ctx, want.UUID)
	if err != nil {
		return fmt.Errorf("start server %s: %w", want.UUID, err)
	}
	if cur != nil {
		running := cur.ID != nil && *cur.ID >= 0
		sameName := cur.Name == want.Name
		if running && sameName && slices.Equal(interfaceKeys(cur), interfaceKeys(want)) {
			return nil
		}
		if running {
			if _, err := l.virsh(ctx, "destroy", want.UUID); err != nil {
				return fmt.Errorf("start server %s: stop domain %s to change it: %w", want.UUID, cur.Name, err)
			}
		}
		if !sameName {
			if _, err := l.virsh(ctx, "undefine", want.UUID); err != nil {
				return fmt.Errorf("start server %s: undefine domain %s to rename it to %s: %w", want.UUID, cur.Name, want.Name, err)
			}
		}
	}
	if err := l.define(ctx, doc+"\n"); err != nil {
		return fmt.Errorf("start server %s: %w", want.UUID, err)
	}
	if _, err := l.virsh(ctx, "start", want.UUID); err != nil {
		return fmt.Errorf("start server %s: %w", want.UUID, err)
	}
	return nil
}

// Stop powers the server's domain off (virsh destroy) if it runs and removes its definition.
// A server without a domain is already stopped.
func (l Libvirt) Stop(ctx context.Context, serverID string) error {
	id, err := canonicalID(serverID)
	if err != nil {
		return fmt.Errorf("stop server: %w", err)
	}
	cur, err := l.lookup(ctx, id)
	if err != nil {
		return fmt.Errorf("stop server %s: %w", id, err)
	}
	if cur == nil {
		return nil
	}
	if cur.ID != nil && *cur.ID >= 0 {
		if _, err := l.virsh(ctx, "destroy", id); err != nil {
			return fmt.Errorf("stop server %s: %w", id, err)
		}
	}
	if _, err := l.virsh(ctx, "undefine", id); err != nil {
		return fmt.Errorf("stop server %s: %w", id, err)
	}
	return nil
}

// Running returns the UUIDs of the running vflink domains, sorted.
func (l Libvirt) Running(ctx context.Context) ([]string, error) {
	out, err := l.virsh(ctx, "list", "--uuid", "--name")
	if err != nil {
		return nil, fmt.Errorf("list running servers: %w", err)
	}
	doms, err := parseList(out)
	if err != nil {
		return nil, fmt.Errorf("list running servers: %w", err)
	}
	ids := []string{}
	for id, name := range doms {
		if strings.HasPrefix(name, domainPrefix) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// lookup returns the domain with UUID id as dumpxml shows it (the id attribute is set while it
// runs), or nil if there is none. A domain with that UUID that vflink does not own is an error.
func (l Libvirt) lookup(ctx context.Context, id string) (*libvirtxml.Domain, error) {
	out, err := l.virsh(ctx, "list", "--all", "--uuid", "--name")
	if err != nil {
		return nil, err
	}
	doms, err := parseList(out)
	if err != nil {
		return nil, err
	}
	name, ok := doms[id]
	if !ok {
		return nil, nil
	}
	if !strings.HasPrefix(name, domainPrefix) {
		return nil, fmt.Errorf("domain %s with uuid %s is not managed by vflink (its name does not start with %q)", name, id, domainPrefix)
	}
	out, err = l.virsh(ctx, "dumpxml", id)
	if err != nil {
		return nil, err
	}
	var d libvirtxml.Domain
	if err := d.Unmarshal(out); err != nil {
		return nil, fmt.Errorf("parse dumpxml of domain %s: %w", name, err)
	}
	return &d, nil
}

// define writes doc to a temporary file and runs virsh define on it.
func (l Libvirt) define(ctx context.Context, doc string) error {
	dir := ""
	if l.replay != nil {
		dir = l.replay.dir // replay runs define again later, so the file must stay
	}
	f, err := os.CreateTemp(dir, "vflink-domain-*.xml")
	if err != nil {
		return fmt.Errorf("write domain xml: %w", err)
	}
	if l.replay == nil {
		defer os.Remove(f.Name())
	}
	if _, err := f.WriteString(doc); err != nil {
		f.Close()
		return fmt.Errorf("write domain xml %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write domain xml %s: %w", f.Name(), err)
	}
	_, err = l.virsh(ctx, "define", f.Name())
	return err
}

// virsh runs one virsh command and returns its standard output. The error names the command
// line and carries virsh's standard error.
func (l Libvirt) virsh(ctx context.Context, args ...string) (string, error) {
	if l.URI == "" {
		return "", errors.New("no libvirt URI configured; want e.g. qemu:///system")
	}
	if l.replay != nil {
		return l.replay.run(ctx, l, args)
	}
	stdout, _, err := l.exec(ctx, append([]string{"-c", l.URI}, args...))
	return stdout, err
}

// exec runs virsh with argv and returns its standard output and standard error.
func (l Libvirt) exec(ctx context.Context, argv []string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, l.virshPath(), argv...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), errOut.String(), commandError(cmd.Args, errOut.String(), err)
	}
	return out.String(), errOut.String(), nil
}

func commandError(argv []string, stderr string, err error) error {
	msg := strings.Join(strings.Fields(strings.ReplaceAll(strings.TrimSpace(stderr), "\n", "; ")), " ")
	if msg == "" {
		return fmt.Errorf("%s: %w", commandLine(argv), err)
	}
	return fmt.Errorf("%s: %w: %s", commandLine(argv), err, msg)
}

// commandLine renders argv for messages, quoting as a shell (and virsh's own parser) would read it.
func commandLine(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = quote(a)
	}
	return strings.Join(q, " ")
}

var plainArg = regexp.MustCompile(`^[A-Za-z0-9_./:=@+,-]+$`)

// quote single-quotes s unless it is plain; virsh's command parser, like sh, reads 'a'\”b' as a'b.
func quote(s string) string {
	if plainArg.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// parseList parses `virsh list --uuid --name` output: one "UUID NAME" line per domain, and a
// blank line at the end. It returns name by UUID.
func parseList(out string) (map[string]string, error) {
	doms := map[string]string{}
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
			continue
		case len(f) != 2:
			return nil, fmt.Errorf("parse virsh list output: line %q is not \"UUID NAME\"", strings.TrimSpace(line))
		}
		id, err := canonicalID(f[0])
		if err != nil {
			return nil, fmt.Errorf("parse virsh list output: line %q: %w", strings.TrimSpace(line), err)
		}
		doms[id] = f[1]
	}
	return doms, nil
}

// replay makes libvirt's test driver usable across calls. test:///default lives in the memory of
// one virsh process, so each call runs a single virsh process with one ';'-separated script:
// every state-changing command (define, start, destroy, undefine) that succeeded so far, then an
// echo of a marker, then the new command. The output after the marker is the new command's;
// virsh's exit status is that of the last command. Every script run is recorded.
type replay struct {
	dir string // where define's domain files stay, since later scripts define them again

	mu      sync.Mutex
	journal [][]string // state-changing commands that succeeded, in order
	runs    [][]string // argv of every virsh process started
}

const replayMarker = "vflink-replay:output-follows" // plain: no quoting in scripts

func newReplay(dir string) *replay { return &replay{dir: dir} }

func (r *replay) run(ctx context.Context, l Libvirt, args []string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cmds := append(slices.Clone(r.journal), []string{"echo", replayMarker}, args)
	parts := make([]string, len(cmds))
	for i, c := range cmds {
		for _, a := range c {
			if strings.Contains(a, "\n") {
				return "", fmt.Errorf("virsh %s: argument %q holds a newline and cannot be put in a virsh script", commandLine(args), a)
			}
		}
		parts[i] = commandLine(c)
	}
	argv := []string{"-c", l.URI, strings.Join(parts, "; ")}
	r.runs = append(r.runs, argv)
	stdout, stderr, err := l.exec(ctx, argv)
	if err != nil {
		return "", err
	}
	// virsh carries on after a failed command and reports only the last status: a replayed
	// command that fails now (it succeeded before) shows only on stderr.
	if strings.Contains(stderr, "error:") {
		return "", commandError(append([]string{l.virshPath()}, argv...), stderr, errors.New("a replayed command failed"))
	}
	_, out, ok := strings.Cut(stdout, replayMarker+"\n")
	if !ok {
		return "", fmt.Errorf("%s: replay marker missing from output %q", commandLine(append([]string{l.virshPath()}, argv...)), stdout)
	}
	switch args[0] {
	case "define", "start", "destroy", "undefine":
		r.journal = append(r.journal, slices.Clone(args))
	}
	return out, nil
}

// ran returns the argv of every virsh process the replay started.
func (r *replay) ran() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.runs)
}
