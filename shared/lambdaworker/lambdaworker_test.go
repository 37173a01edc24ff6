package lambdaworker

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/datajetty/webhooks/shared/config"
	"github.com/datajetty/webhooks/shared/wiring/coldstart"
	"github.com/datajetty/webhooks/shared/wiring/workerfn"
)

// childEnv makes the test binary run a consumer through Run instead of the tests: "hook"
// builds one that leaves shutdown work (as the deliver function does with its waiting
// watermarks), "none" one that leaves nothing (as ingest and replay-worker do).
const childEnv = "LAMBDAWORKER_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "hook":
		Run(workerfn.Function("test", childConsumer(true)))
	default:
		Run(workerfn.Function("test", childConsumer(false)))
	}
}

// childConsumer answers every batch with no failures; with hook it registers shutdown work
// that prints "flushed" and how much time its context leaves.
func childConsumer(hook bool) workerfn.Builder {
	return func(_ config.Config, _ aws.Config, o workerfn.Options, _ coldstart.Services) (workerfn.SQSHandler, error) {
		if hook {
			o.Shutdown.Add(func(ctx context.Context) {
				deadline, ok := ctx.Deadline()
				fmt.Printf("flushed: deadline %v, %d ms left\n", ok, time.Until(deadline).Milliseconds())
			})
		}
		return func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
			return events.SQSEventResponse{}, nil
		}, nil
	}
}

// runtimeAPI is the part of Lambda's Runtime and Extensions APIs the Lambda loop uses: it
// records the extensions registered and the calls in order, hands out one invocation and
// then holds every /next open, as Lambda does with an idle instance until it ends it.
type runtimeAPI struct {
	mu         sync.Mutex
	calls      []string
	extensions []string
	responded  chan struct{}
	idle       chan struct{} // closed at the second /runtime/invocation/next
	nexts      int
}

func (a *runtimeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.calls = append(a.calls, r.Method+" "+r.URL.Path)
	a.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/2020-01-01/extension/register":
		a.mu.Lock()
		a.extensions = append(a.extensions, r.Header.Get("Lambda-Extension-Name"))
		a.mu.Unlock()
		w.Header().Set("Lambda-Extension-Identifier", "ext-1")
		_, _ = io.WriteString(w, "{}")
	case r.Method == http.MethodGet && r.URL.Path == "/2018-06-01/runtime/invocation/next":
		a.mu.Lock()
		a.nexts++
		first := a.nexts == 1
		a.mu.Unlock()
		if !first {
			close(a.idle)
			<-r.Context().Done()
			return
		}
		body, _ := json.Marshal(events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m1", Body: "{}"}}})
		w.Header().Set("Lambda-Runtime-Aws-Request-Id", "req-1")
		w.Header().Set("Lambda-Runtime-Deadline-Ms", fmt.Sprint(time.Now().Add(time.Minute).UnixMilli()))
		w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:test")
		_, _ = w.Write(body)
	case r.Method == http.MethodPost && r.URL.Path == "/2018-06-01/runtime/invocation/req-1/response":
		w.WriteHeader(http.StatusAccepted)
		close(a.responded)
	default: // the extension's /event/next: held open, no event is ever sent
		<-r.Context().Done()
	}
}

// startChild runs the test binary as a function instance of the given kind against api,
// returning its process and its stdout lines.
func startChild(t *testing.T, kind string, api *runtimeAPI) (*exec.Cmd, <-chan string) {
	t.Helper()
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		childEnv+"="+kind,
		"AWS_LAMBDA_RUNTIME_API="+strings.TrimPrefix(srv.URL, "http://"),
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 16)
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	return cmd, lines
}

func waitFor(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("the instance never %s", what)
	}
}

// TestShutdownWorkRunsOnSIGTERM: a consumer that leaves shutdown work registers an
// extension before its first invocation (what makes Lambda send SIGTERM before ending an
// instance: without one it is killed outright), and when the idle instance gets SIGTERM the
// work runs, within a deadline inside the 500 ms Lambda waits before SIGKILL.
func TestShutdownWorkRunsOnSIGTERM(t *testing.T) {
	api := &runtimeAPI{responded: make(chan struct{}), idle: make(chan struct{})}
	cmd, lines := startChild(t, "hook", api)
	waitFor(t, "answered its invocation", api.responded)
	waitFor(t, "waited for the next invocation", api.idle)
	api.mu.Lock()
	calls, extensions := append([]string{}, api.calls...), append([]string{}, api.extensions...)
	api.mu.Unlock()
	if len(extensions) != 1 {
		t.Fatalf("extensions registered: %q, want one (Lambda sends SIGTERM only to a function with an extension)", extensions)
	}
	if calls[0] != "POST /2020-01-01/extension/register" {
		t.Errorf("first call %q, want the extension's registration, during init (calls: %q)", calls[0], calls)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(30 * time.Second)
	for {
		select {
		case line, open := <-lines:
			if !open {
				t.Fatal("the instance exited without running its shutdown work")
			}
			var ok bool
			var left int
			if _, err := fmt.Sscanf(line, "flushed: deadline %t, %d ms left", &ok, &left); err != nil {
				continue // the instance's own log lines
			}
			if !ok || left <= 0 || left > 500 {
				t.Errorf("the shutdown work had deadline %v with %d ms left, want one within Lambda's 500 ms", ok, left)
			}
			return
		case <-timeout:
			t.Fatal("the shutdown work did not run on SIGTERM")
		}
	}
}

// TestNoShutdownWorkNoExtension: a consumer that leaves nothing for shutdown registers no
// extension, so its instances end as before.
func TestNoShutdownWorkNoExtension(t *testing.T) {
	api := &runtimeAPI{responded: make(chan struct{}), idle: make(chan struct{})}
	startChild(t, "none", api)
	waitFor(t, "answered its invocation", api.responded)
	waitFor(t, "waited for the next invocation", api.idle)
	api.mu.Lock()
	defer api.mu.Unlock()
	if len(api.extensions) != 0 {
		t.Errorf("extensions registered: %q, want none", api.extensions)
	}
}
