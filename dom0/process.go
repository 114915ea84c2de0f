package dom0

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// process is a command started on a host that this process talks to while
// it runs, over its standard input and output.
type process struct {
	stdin  io.WriteCloser // closing it gives the command end of file
	stdout io.Reader
	// waitFn waits for the command to exit; call wait, which calls it once.
	waitFn func() error
	// kill ends the command (or, over SSH, its session) without waiting.
	kill func()

	waitOnce sync.Once
	waitErr  error
}

// wait waits for the command to exit and reports it as Run does (an
// *ExitError for a non-zero status). Later calls return the same result.
func (p *process) wait() error {
	p.waitOnce.Do(func() { p.waitErr = p.waitFn() })
	return p.waitErr
}

// starter is a host that can start a command and talk to it: SSHHost and
// LocalHost. Transfer's streaming check needs it; on other hosts it runs
// one command per segment instead.
type starter interface {
	start(ctx context.Context, argv []string) (*process, error)
}

// start runs argv on the host (after "cd /", like Run) with its standard
// input and output connected to the returned process. Cancelling ctx
// closes the session: the command sees end of file on its input and a
// broken pipe on its output, but sshd does not kill it. Unlike Run, the
// command is not killed when its input ends either: it must watch its
// input and exit at its end, even while busy (streamHashProgram does).
func (h *SSHHost) start(ctx context.Context, argv []string) (*process, error) {
	// env runs the program: the login shell's exec (bash's) would take a
	// program name starting with "-" for an option, and dash's exec knows
	// no "--".
	cmd, err := h.commandLine("exec env -- ", argv)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, h.opErr("run", argv[0], err)
	}
	s, err := h.client.NewSession()
	if err != nil {
		return nil, h.opErr("run", argv[0], err)
	}
	stderr := &limitedBuffer{max: 4096}
	s.Stderr = stderr
	in, err := s.StdinPipe()
	if err != nil {
		s.Close()
		return nil, h.opErr("run", argv[0], err)
	}
	out, err := s.StdoutPipe()
	if err != nil {
		s.Close()
		return nil, h.opErr("run", argv[0], err)
	}
	if err := s.Start(cmd); err != nil {
		s.Close()
		return nil, h.opErr("run", argv[0], err)
	}
	stop := context.AfterFunc(ctx, func() { s.Close() })
	p := &process{stdin: in, stdout: out, kill: func() { s.Close() }}
	p.waitFn = func() error {
		err := s.Wait()
		stop()
		s.Close()
		if ctx.Err() != nil {
			return h.opErr("run", argv[0], ctx.Err())
		}
		var ee *ssh.ExitError
		if errors.As(err, &ee) {
			x := &ExitError{Host: h.name, Argv: append([]string(nil), argv...), Code: ee.ExitStatus(), Stderr: firstLine(stderr.buf.Bytes(), 4096)}
			if ee.Signal() != "" {
				x.Code, x.Signal = -1, ee.Signal()
			}
			return x
		}
		if err != nil {
			return h.opErr("run", argv[0], err)
		}
		return nil
	}
	return p, nil
}

// start runs argv on this machine with the root as working directory and
// its standard input and output connected to the returned process.
// Cancelling ctx kills the command's process group.
func (h *LocalHost) start(ctx context.Context, argv []string) (*process, error) {
	if err := checkArgv(argv); err != nil {
		return nil, &OpError{Host: h.String(), Op: "run", Path: runName(argv), Err: err}
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = h.root
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	stderr := &limitedBuffer{max: 4096}
	cmd.Stderr = stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, &OpError{Host: h.String(), Op: "run", Path: argv[0], Err: err}
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, &OpError{Host: h.String(), Op: "run", Path: argv[0], Err: err}
	}
	if err := cmd.Start(); err != nil {
		return nil, &OpError{Host: h.String(), Op: "run", Path: argv[0], Err: err}
	}
	p := &process{stdin: in, stdout: out, kill: func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }}
	p.waitFn = func() error {
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			x := &ExitError{Host: h.String(), Argv: append([]string(nil), argv...), Code: ee.ExitCode(), Stderr: firstLine(stderr.buf.Bytes(), 4096)}
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				x.Code, x.Signal = -1, ws.Signal().String()
			}
			if ctx.Err() != nil {
				return &OpError{Host: h.String(), Op: "run", Path: argv[0], Err: errors.Join(ctx.Err(), x)}
			}
			return x
		}
		if err != nil {
			return &OpError{Host: h.String(), Op: "run", Path: argv[0], Err: err}
		}
		return nil
	}
	return p, nil
}
