// Command emulator starts and stops the local AWS emulator in the background for
// `make emulator-start` / `make emulator-stop` (and so for `make test`), through the one
// launcher the tests and `make dev` use too (devstack.StartEmulator). serve.py beside it is
// what runs: moto in server mode with DynamoDB requests serialized.
//
//	go run ./tools/emulator start -port 5000 -pidfile .local/moto.pid -log .local/moto.log
//	go run ./tools/emulator stop -pidfile .local/moto.pid
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/datajetty/webhooks/shared/dev/devstack"
)

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "start" && os.Args[1] != "stop") {
		fmt.Fprintln(os.Stderr, "usage: emulator start|stop [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	port := fs.Int("port", 5000, "loopback port to listen on")
	pidFile := fs.String("pidfile", ".local/moto.pid", "where the running emulator's process id is kept")
	logFile := fs.String("log", ".local/moto.log", "the emulator's log")
	_ = fs.Parse(os.Args[2:])
	var err error
	if os.Args[1] == "start" {
		err = start(*port, *pidFile, *logFile)
	} else {
		err = stop(*pidFile)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "emulator:", err)
		os.Exit(1)
	}
}

func start(port int, pidFile, logFile string) error {
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	if pid, ok := runningPid(pidFile); ok {
		fmt.Printf("moto already running (pid %d) on %s\n", pid, url)
		return nil
	}
	if devstack.Answers(url, nil) {
		return fmt.Errorf("port %d is already in use by another process; set MOTO_PORT", port)
	}
	root, err := devstack.RepoRoot()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(pidFile), 0o700); err != nil {
		return err
	}
	logf, err := os.Create(logFile)
	if err != nil {
		return err
	}
	defer logf.Close()
	emu, err := devstack.StartEmulator(context.Background(), root, devstack.EmulatorOptions{Port: port, Log: logf, Detach: true, Ready: 20 * time.Second})
	if err != nil {
		if b, rerr := os.ReadFile(logFile); rerr == nil {
			os.Stderr.Write(b)
		}
		return fmt.Errorf("moto did not start (log: %s): %w", logFile, err)
	}
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(emu.Pid())+"\n"), 0o600); err != nil {
		emu.Stop()
		return err
	}
	fmt.Printf("moto running (pid %d) on %s\n", emu.Pid(), url)
	return nil
}

func stop(pidFile string) error {
	pid, ok := runningPid(pidFile)
	if !ok {
		if _, err := os.Stat(pidFile); errors.Is(err, os.ErrNotExist) {
			fmt.Printf("moto not running (no %s)\n", pidFile)
			return nil
		}
		return os.Remove(pidFile)
	}
	// The emulator leads its own process group (devstack.EmulatorCommand).
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	for range 50 {
		if syscall.Kill(pid, 0) != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Printf("moto stopped (pid %d)\n", pid)
	return os.Remove(pidFile)
}

// runningPid reads the pid file and reports whether that process is alive.
func runningPid(pidFile string) (int, bool) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, syscall.Kill(pid, 0) == nil
}
