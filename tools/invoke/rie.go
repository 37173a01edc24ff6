package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"time"
)

// invocationsPath is where the RIE takes invocations (the Lambda Invoke API's path).
const invocationsPath = "/2015-03-31/functions/function/invocations"

// rieConfig describes one function run under the Lambda Runtime Interface Emulator.
type rieConfig struct {
	RIE       string            // the aws-lambda-rie binary
	Bootstrap string            // the function's bootstrap, built for this machine
	Env       map[string]string // the function's whole environment (the RIE passes its own on)
	Output    io.Writer         // the RIE's and the function's logs
}

// rieProc is a running RIE with its function.
type rieProc struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{} // closed when the RIE has exited
}

// startRIE starts the RIE on free loopback ports (one for invocations, one for the Runtime
// API the bootstrap polls, so that several runs never collide) and waits until it accepts
// connections. The function itself starts (cold start) on the first invocation.
func startRIE(ctx context.Context, c rieConfig) (*rieProc, error) {
	if _, err := os.Stat(c.RIE); err != nil {
		return nil, fmt.Errorf("the Lambda Runtime Interface Emulator is not installed (%w): run `make tools`", err)
	}
	bootstrap, err := filepath.Abs(c.Bootstrap)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bootstrap); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		ports, err := freePorts(2)
		if err != nil {
			return nil, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(ports[0])
		cmd := exec.Command(c.RIE,
			"--log-level", "error",
			"--runtime-interface-emulator-address", addr,
			"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(ports[1]),
			bootstrap)
		cmd.Dir = filepath.Dir(bootstrap) // like /var/task
		cmd.Env = envList(c.Env)
		cmd.Stdout, cmd.Stderr = c.Output, c.Output
		cmd.SysProcAttr = newProcAttr()
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start %s: %w", c.RIE, err)
		}
		p := &rieProc{cmd: cmd, url: "http://" + addr, done: make(chan struct{})}
		go func() { _ = cmd.Wait(); close(p.done) }()
		if lastErr = p.waitReady(ctx, 10*time.Second); lastErr == nil {
			return p, nil
		}
		p.stop()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("the RIE did not start: %w", lastErr)
}

func (p *rieProc) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", p.url[len("http://"):], time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-p.done:
			return errors.New("it exited (port taken?)")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer on %s after %s: %w", p.url, timeout, err)
		}
	}
}

// invoke sends one event and returns the RIE's HTTP status and body: the function's
// response, or its error document.
func (p *rieProc) invoke(ctx context.Context, event []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url+invocationsPath, bytes.NewReader(event))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("invoke: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// stop ends the RIE and the function it started (their process group), politely first.
func (p *rieProc) stop() {
	signalGroup(p.cmd, false)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		signalGroup(p.cmd, true)
		<-p.done
	}
	signalGroup(p.cmd, true) // the bootstrap, should it outlive the RIE
}

// runOnce starts the RIE, invokes the function once with event, and stops the RIE.
func runOnce(ctx context.Context, c rieConfig, event []byte) (int, []byte, error) {
	p, err := startRIE(ctx, c)
	if err != nil {
		return 0, nil, err
	}
	defer p.stop()
	return p.invoke(ctx, event)
}

func freePorts(n int) ([]int, error) {
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
