//go:build unix

package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// EmulatorCommand returns the command that runs the local AWS emulator (moto in server
// mode from the project's virtualenv, through tools/emulator/serve.py, which serializes
// DynamoDB requests so conditional writes are atomic as in DynamoDB) on 127.0.0.1:port.
func EmulatorCommand(repoRoot string, port int) (*exec.Cmd, error) {
	python := filepath.Join(repoRoot, ".venv", "bin", "python")
	script := filepath.Join(repoRoot, "tools", "emulator", "serve.py")
	for _, p := range []string{python, script} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%s not found (run `make venv`)", p)
		}
	}
	cmd := exec.Command(python, script, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
	// Its own process group, so Stop ends the server and anything it spawned, and a
	// terminal's Ctrl-C reaches only the command that started it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd, nil
}

// Emulator is a running emulator process started by StartEmulator. Every starter (make
// emulator-start through tools/emulator, the tests through testenv, make dev) launches it
// this one way.
type Emulator struct {
	// URL is the emulator's endpoint, for AWS_ENDPOINT_URL.
	URL  string
	Port int

	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited (attached emulators only)
	stopped sync.Once
}

// EmulatorOptions tells StartEmulator where to listen and log.
type EmulatorOptions struct {
	// Port is the loopback port; 0 picks a free one (retrying if it is taken meanwhile).
	Port int
	// Log receives the emulator's output (nil: discarded). An *os.File is handed to the
	// process as is, so its output keeps flowing after this process exits (Detach).
	Log io.Writer
	// Detach leaves the emulator running after this process exits (make emulator-start);
	// otherwise the caller must Stop it.
	Detach bool
	// DieWithParent has the kernel end the emulator when this process dies, even without
	// a Stop (Linux only): a test binary killed by its timeout leaves no server behind.
	DieWithParent bool
	// Ready bounds the wait for the emulator to answer (default 60 s).
	Ready time.Duration
}

// StartEmulator starts the emulator and waits until it answers HTTP.
func StartEmulator(ctx context.Context, repoRoot string, o EmulatorOptions) (*Emulator, error) {
	if o.Ready == 0 {
		o.Ready = 60 * time.Second
	}
	tries := 1
	if o.Port == 0 {
		tries = 3 // a free port is only reserved until the probe listener closes
	}
	var lastErr error
	for range tries {
		port := o.Port
		if port == 0 {
			p, err := freePort()
			if err != nil {
				return nil, err
			}
			port = p
		}
		e, err := launch(repoRoot, port, o)
		if err != nil {
			return nil, err
		}
		if lastErr = e.waitReady(ctx, o.Ready); lastErr == nil {
			return e, nil
		}
		e.Stop()
	}
	return nil, fmt.Errorf("emulator did not start: %w", lastErr)
}

func launch(repoRoot string, port int, o EmulatorOptions) (*Emulator, error) {
	cmd, err := EmulatorCommand(repoRoot, port)
	if err != nil {
		return nil, err
	}
	if o.Log != nil {
		cmd.Stdout, cmd.Stderr = o.Log, o.Log
	}
	e := &Emulator{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Port: port, cmd: cmd}
	if o.Detach {
		// Not waited for here: the process outlives us. Exited polls it instead.
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start emulator: %w", err)
		}
		return e, nil
	}
	e.done = make(chan struct{})
	if err := startAttached(cmd, e.done, o.DieWithParent); err != nil {
		return nil, fmt.Errorf("start emulator: %w", err)
	}
	return e, nil
}

// Pid is the emulator's process id.
func (e *Emulator) Pid() int { return e.cmd.Process.Pid }

// Exited reports whether the emulator process has ended.
func (e *Emulator) Exited() bool {
	if e.done == nil {
		return e.cmd.Process.Signal(syscall.Signal(0)) != nil
	}
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}

// Stop ends the emulator's process group and waits (up to 5 s, then kills it). A nil
// Emulator (none was started) has nothing to stop.
func (e *Emulator) Stop() {
	if e == nil {
		return
	}
	e.stopped.Do(func() {
		if e.cmd == nil || e.cmd.Process == nil {
			return
		}
		pid := e.cmd.Process.Pid
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		if e.done == nil {
			return
		}
		select {
		case <-e.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-e.done
		}
	})
}

// waitReady polls the emulator until it answers HTTP at all, its process exits, or the
// timeout passes.
func (e *Emulator) waitReady(ctx context.Context, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		if Answers(e.URL, client) {
			return nil
		}
		lastErr = fmt.Errorf("no answer on %s", e.URL)
		if e.Exited() {
			return errors.New("the emulator process exited")
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no answer after %s: %w", timeout, lastErr)
}

// Answers reports whether an emulator answers on url.
func Answers(url string, client *http.Client) bool {
	if client == nil {
		client = &http.Client{Timeout: 2 * time.Second}
	}
	resp, err := client.Get(strings.TrimRight(url, "/") + "/moto-api/")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
