package demo

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// oscScript runs the openstack CLI's own shell once per JSON line on stdin (an argv), answering a
// JSON line {rc, out, err} per command. It is what /usr/bin/openstack runs, without paying the
// Python start-up per command.
const oscScript = `
import sys, json, io, contextlib
from openstackclient import shell
class NoInput(io.StringIO):
    def isatty(self):  # as at a terminal: "image create" must not read image data from our pipe
        return True
commands = sys.stdin
sys.stdin = NoInput("")
for line in commands:
    args = json.loads(line)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = shell.OpenStackShell().run(args)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
    sys.stdout.write(json.dumps({"rc": rc, "out": out.getvalue(), "err": err.getvalue()}) + "\n")
    sys.stdout.flush()
`

type osc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

// startOSC starts the CLI runner with the interpreter /usr/bin/openstack names.
func startOSC(ctx context.Context, env []string) (*osc, error) {
	py := "python3"
	if path, err := exec.LookPath("openstack"); err == nil {
		if b, err := os.ReadFile(path); err == nil {
			first, _, _ := strings.Cut(string(b), "\n")
			if strings.HasPrefix(first, "#!") {
				if f := strings.Fields(strings.TrimPrefix(first, "#!")); len(f) > 0 {
					py = f[0]
				}
			}
		}
	} else {
		return nil, fmt.Errorf("the openstack CLI is not installed (apt-get install -y python3-openstackclient)")
	}
	cmd := exec.CommandContext(ctx, py, "-c", oscScript)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &osc{cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<20)}, nil
}

// run runs one CLI command: its stdout, its stderr, and an error when it exits non-zero.
func (o *osc) run(args []string) (string, string, error) {
	b, _ := json.Marshal(args)
	if _, err := o.in.Write(append(b, '\n')); err != nil {
		return "", "", err
	}
	line, err := o.out.ReadString('\n')
	if err != nil {
		return "", "", fmt.Errorf("the openstack CLI runner ended: %w", err)
	}
	var r struct {
		RC  int    `json:"rc"`
		Out string `json:"out"`
		Err string `json:"err"`
	}
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		return "", "", fmt.Errorf("openstack CLI runner: %w: %s", err, line)
	}
	if r.RC != 0 {
		return r.Out, r.Err, fmt.Errorf("exit status %d: %s", r.RC, strings.TrimSpace(r.Err))
	}
	return r.Out, "", nil
}

func (o *osc) close() {
	o.in.Close()
	o.cmd.Wait()
}
