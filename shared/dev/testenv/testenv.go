// Package testenv gives tests an AWS configuration pointed at the local
// emulator (moto in server mode) and a freshly provisioned copy of the
// template's resources. Only tests import it.
//
// If AWS_ENDPOINT_URL is set (make test sets it), that emulator is used.
// Otherwise one moto_server per test process is started from
// <repo root>/.venv/bin/moto_server (make venv installs it) on a free loopback
// port; call Main from the package's TestMain so it is stopped at the end:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// (On Linux the server also dies with the test process.) When no emulator can
// be had, tests that ask for one are skipped, or fail if
// WEBHOOKS_REQUIRE_EMULATOR=1.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/datajetty/webhooks/shared/dev/devstack"
)

// Region is the region of every emulator configuration.
const Region = "us-east-1"

var (
	endpointOnce sync.Once
	endpointURL  string
	endpointErr  error

	serverMu sync.Mutex
	running  *server
)

// server is a moto_server child process.
type server struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	log  *os.File
}

// Main runs the package's tests and then stops the emulator this process
// started, if any. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	stopServer()
	os.Exit(code)
}

// AWSConfig returns a configuration for the local emulator: region us-east-1,
// static dummy credentials, BaseEndpoint set to the emulator. It skips the
// test (or fails it under WEBHOOKS_REQUIRE_EMULATOR=1) if there is none.
func AWSConfig(t testing.TB) aws.Config {
	t.Helper()
	endpoint := Endpoint(t)
	return aws.Config{
		Region:       Region,
		Credentials:  aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider("testing", "testing", "")),
		BaseEndpoint: aws.String(endpoint),
	}
}

// Endpoint returns the emulator's URL, starting an emulator if needed (see
// AWSConfig for what happens when there is none).
func Endpoint(t testing.TB) string {
	t.Helper()
	endpointOnce.Do(func() { endpointURL, endpointErr = findEmulator() })
	if endpointErr != nil {
		msg := "local AWS emulator unavailable: " + endpointErr.Error() +
			" (run `make venv`, or `make test`, or set AWS_ENDPOINT_URL)"
		if os.Getenv("WEBHOOKS_REQUIRE_EMULATOR") == "1" {
			t.Fatal(msg + "; WEBHOOKS_REQUIRE_EMULATOR=1")
		}
		t.Skip(msg)
	}
	return endpointURL
}

// Stack provisions the repository's template.yaml in the emulator under a
// prefix unique to the test, and tears it down when the test ends.
// params overrides template parameters (nil: defaults).
func Stack(t testing.TB, params map[string]string) *devstack.Stack {
	t.Helper()
	cfg := AWSConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := devstack.Provision(ctx, cfg, filepath.Join(RepoRoot(), "template.yaml"), devstack.Options{
		Prefix:     Prefix(t),
		Parameters: params,
	})
	if st != nil {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := st.Teardown(ctx); err != nil {
				t.Errorf("testenv: teardown: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatalf("testenv: provision: %v", err)
	}
	return st
}

// Prefix returns a resource-name prefix unique to this call: the test name
// reduced to [A-Za-z0-9_-] (at most 40 characters), a random suffix and "-".
// Names built from it are valid DynamoDB table, SQS queue and secret names.
func Prefix(t testing.TB) string {
	name := strings.Map(func(r rune) rune {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-') {
			return r
		}
		return '-'
	}, t.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return name + "-" + hex.EncodeToString(b[:]) + "-"
}

var (
	rootOnce sync.Once
	root     string
)

// RepoRoot returns the directory holding go.mod, found by walking up from the
// working directory (a package's directory under go test). It panics when there
// is none.
func RepoRoot() string {
	rootOnce.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			panic("testenv: " + err.Error())
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				root = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				panic("testenv: no go.mod above the working directory")
			}
			dir = parent
		}
	})
	return root
}

// ---------------------------------------------------------------- emulator

func findEmulator() (string, error) {
	if u := os.Getenv("AWS_ENDPOINT_URL"); u != "" {
		if err := waitReady(u, 5*time.Second, nil); err != nil {
			return "", fmt.Errorf("AWS_ENDPOINT_URL=%s does not answer: %w", u, err)
		}
		return u, nil
	}
	return startServer()
}

// startServer starts moto_server on a free loopback port (a few tries, since
// the port is only reserved until we close our probe listener).
func startServer() (string, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return "", err
		}
		url := fmt.Sprintf("http://127.0.0.1:%d", port)
		if err := launch(port); err != nil {
			return "", err
		}
		if lastErr = waitReady(url, 60*time.Second, exited()); lastErr == nil {
			// Code under test that builds its own config from the environment
			// must reach the emulator too, never a real account.
			_ = os.Setenv("AWS_ENDPOINT_URL", url)
			return url, nil
		}
		if tail := serverLogTail(); tail != "" {
			lastErr = fmt.Errorf("%w; log:\n%s", lastErr, tail)
		}
		stopServer()
	}
	return "", fmt.Errorf("moto_server did not start: %w", lastErr)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func launch(port int) error {
	cmd, err := devstack.EmulatorCommand(RepoRoot(), port)
	if err != nil {
		return err
	}
	logf, err := os.CreateTemp("", "testenv-moto-*.log")
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	srv := &server{cmd: cmd, done: make(chan struct{}), log: logf}
	if err := startAndWait(srv); err != nil {
		logf.Close()
		os.Remove(logf.Name())
		return fmt.Errorf("start emulator: %w", err)
	}
	serverMu.Lock()
	running = srv
	serverMu.Unlock()
	return nil
}

// exited returns a function reporting whether the launched server has died.
func exited() func() bool {
	serverMu.Lock()
	srv := running
	serverMu.Unlock()
	return func() bool {
		if srv == nil {
			return true
		}
		select {
		case <-srv.done:
			return true
		default:
			return false
		}
	}
}

// serverLogTail returns the end of the running server's log.
func serverLogTail() string {
	serverMu.Lock()
	srv := running
	serverMu.Unlock()
	if srv == nil {
		return ""
	}
	b, err := os.ReadFile(srv.log.Name())
	if err != nil {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

func stopServer() {
	serverMu.Lock()
	srv := running
	running = nil
	serverMu.Unlock()
	if srv == nil {
		return
	}
	_ = srv.cmd.Process.Signal(os.Interrupt)
	select {
	case <-srv.done:
	case <-time.After(5 * time.Second):
		_ = srv.cmd.Process.Kill()
		<-srv.done
	}
	srv.log.Close()
	os.Remove(srv.log.Name())
}

// waitReady polls url until it answers HTTP at all, dead reports true, or the
// timeout passes.
func waitReady(url string, timeout time.Duration, dead func() bool) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		resp, err := client.Get(strings.TrimRight(url, "/") + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		lastErr = err
		if dead != nil && dead() {
			return errors.New("server process exited")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no answer after %s: %w", timeout, lastErr)
}
