package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"

	"github.com/datajetty/webhooks/shared/dev/devstack"
	"path/filepath"
	"syscall"
	"time"
)

// emulator is a moto server this command started (or a no-op for an external one).
type emulator struct{ cmd *exec.Cmd }

// startEmulator starts moto from the project's virtualenv on a free loopback port and
// points the AWS SDK at it, unless AWS_ENDPOINT_URL already names one.
func startEmulator(ctx context.Context, root string) (*emulator, error) {
	if os.Getenv("AWS_ENDPOINT_URL") != "" {
		return &emulator{}, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd, err := devstack.EmulatorCommand(root, port)
	if err != nil {
		return nil, err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, err := os.Create(filepath.Join(root, ".local", "dev-moto.log"))
	if err != nil {
		if err := os.MkdirAll(filepath.Join(root, ".local"), 0o700); err != nil {
			return nil, err
		}
		if logf, err = os.Create(filepath.Join(root, ".local", "dev-moto.log")); err != nil {
			return nil, err
		}
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start moto: %w", err)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	e := &emulator{cmd: cmd}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			e.Stop()
			return nil, fmt.Errorf("moto did not start on %s (see .local/dev-moto.log)", url)
		}
		time.Sleep(100 * time.Millisecond)
	}
	os.Setenv("AWS_ENDPOINT_URL", url)
	for k, v := range map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"} {
		if os.Getenv(k) == "" {
			os.Setenv(k, v)
		}
	}
	return e, nil
}

// Stop ends the emulator's whole process group.
func (e *emulator) Stop() {
	if e.cmd == nil || e.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-e.cmd.Process.Pid, syscall.SIGTERM)
	_ = e.cmd.Wait()
}
