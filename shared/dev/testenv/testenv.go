// Package testenv gives tests an AWS configuration pointed at the local
// emulator (moto in server mode) and a freshly provisioned copy of the
// template's resources. Only tests import it.
//
// If AWS_ENDPOINT_URL is set (make test sets it), that emulator is used.
// Otherwise one emulator per test process is started (devstack.StartEmulator,
// from the virtualenv that make venv installs) on a free loopback port; call Main from the package's TestMain so it is stopped at the end:
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
	"fmt"
	"net/http"
	"os"
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

// server is the emulator this test process started, and its log.
type server struct {
	emu *devstack.Emulator
	log *os.File
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
			// Generous: on a busy machine the emulator serializes every test's DynamoDB calls.
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
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

// RepoRoot returns the directory holding go.mod (devstack.RepoRoot). It panics when
// there is none: a test run outside the repository cannot find its fixtures.
func RepoRoot() string {
	rootOnce.Do(func() {
		r, err := devstack.RepoRoot()
		if err != nil {
			panic("testenv: " + err.Error())
		}
		root = r
	})
	return root
}

// ---------------------------------------------------------------- emulator

func findEmulator() (string, error) {
	if u := os.Getenv("AWS_ENDPOINT_URL"); u != "" {
		// Generous: on a loaded machine (parallel test binaries on two cores) an emulator
		// that is up can take seconds to answer, and giving up fails the whole package.
		client := &http.Client{Timeout: 5 * time.Second}
		for deadline := time.Now().Add(30 * time.Second); !devstack.Answers(u, client); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				return "", fmt.Errorf("AWS_ENDPOINT_URL=%s does not answer", u)
			}
		}
		return u, nil
	}
	logf, err := os.CreateTemp("", "testenv-moto-*.log")
	if err != nil {
		return "", err
	}
	emu, err := devstack.StartEmulator(context.Background(), RepoRoot(), devstack.EmulatorOptions{Log: logf, DieWithParent: true})
	if err != nil {
		logf.Close()
		tail := logTail(logf.Name())
		os.Remove(logf.Name())
		return "", fmt.Errorf("%w; log:\n%s", err, tail)
	}
	serverMu.Lock()
	running = &server{emu: emu, log: logf}
	serverMu.Unlock()
	// Code under test that builds its own config from the environment must reach the
	// emulator too, never a real account.
	_ = os.Setenv("AWS_ENDPOINT_URL", emu.URL)
	return emu.URL, nil
}

// logTail returns the end of a log file.
func logTail(name string) string {
	b, err := os.ReadFile(name)
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
	srv.emu.Stop()
	srv.log.Close()
	os.Remove(srv.log.Name())
}
