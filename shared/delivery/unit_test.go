package delivery

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/datajetty/webhooks/shared/dev/testenv"
	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/signing"
	"github.com/datajetty/webhooks/shared/ssrf"
)

func TestStatusClass(t *testing.T) {
	t.Parallel()
	for code, want := range map[int]string{
		200: "", 201: "", 204: "", 299: "",
		301: ClassRedirect, 302: ClassRedirect, 307: ClassRedirect, 308: ClassRedirect,
		400: ClassHTTP4xx, 401: ClassHTTP4xx, 404: ClassHTTP4xx, 429: ClassHTTP4xx,
		410: ClassGone,
		500: ClassHTTP5xx, 503: ClassHTTP5xx, 599: ClassHTTP5xx, 600: ClassHTTP5xx, 100: ClassHTTP5xx,
	} {
		if got := statusClass(code); got != want {
			t.Errorf("statusClass(%d) = %q, want %q", code, got, want)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestErrorClass(t *testing.T) {
	t.Parallel()
	wrap := func(err error) error { return &url.Error{Op: "Post", URL: "https://example.com", Err: err} }
	for name, c := range map[string]struct {
		err  error
		want string
	}{
		"deadline":   {wrap(context.DeadlineExceeded), ClassTimeout},
		"net":        {wrap(&net.OpError{Op: "read", Err: timeoutErr{}}), ClassTimeout},
		"blocked":    {wrap(&net.OpError{Op: "dial", Err: &ssrf.BlockedError{Reason: "a loopback address"}}), ClassBlocked},
		"refused":    {wrap(&net.OpError{Op: "dial", Err: errors.New("connection refused")}), ClassConnect},
		"tls alert":  {wrap(tls.AlertError(40)), ClassTLS},
		"tls verify": {wrap(&tls.CertificateVerificationError{Err: errors.New("x509: unknown authority")}), ClassTLS},
		"tls record": {wrap(tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), ClassTLS},
		"dns":        {wrap(&net.DNSError{Err: "no such host", Name: "nope.invalid", IsNotFound: true}), ClassConnect},
	} {
		if got := errorClass(c.err); got != c.want {
			t.Errorf("%s: errorClass = %q, want %q", name, got, c.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                      0,
		"120":                   2 * time.Minute,
		" 5 ":                   5 * time.Second,
		"4":                     0, // below the floor: the schedule applies
		"43200":                 12 * time.Hour,
		"43201":                 0, // beyond what SQS can hold
		"-5":                    0,
		"1e3":                   0,
		"999999999999999999999": 0,
		now.Add(time.Hour).Format(http.TimeFormat):      time.Hour,
		now.Add(-time.Hour).Format(http.TimeFormat):     0,
		now.Add(13 * time.Hour).Format(http.TimeFormat): 0,
		now.Add(time.Minute).Format(time.RFC850):        time.Minute,
		"Sat, 14 Mar 2026 12:00:30 GMT":                 30 * time.Second,
		"tomorrow":                                      0,
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", v, got, want)
		}
	}
}

func TestJitter(t *testing.T) {
	t.Parallel()
	d := 5 * time.Minute
	for r, want := range map[float64]time.Duration{0: 4 * time.Minute, 0.5: d, 0.75: 5*time.Minute + 30*time.Second} {
		if got := jitter(d, 0.2, r); got != want {
			t.Errorf("jitter(%s, 0.2, %v) = %s, want %s", d, r, got, want)
		}
	}
	if got := jitter(d, 0.2, 0.999999); got <= 6*time.Minute-time.Second || got > 6*time.Minute {
		t.Errorf("jitter at the top = %s, want just under 6m", got)
	}
}

func TestScheduled(t *testing.T) {
	t.Parallel()
	h := &Handler{opts: DefaultOptions(), rand: func() float64 { return 0.5 }}
	want := []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour, 10 * time.Hour}
	for n := 1; n <= len(want); n++ {
		if got := h.scheduled(n); got != want[n-1] {
			t.Errorf("scheduled(%d) = %s, want %s", n, got, want[n-1])
		}
	}
	var total time.Duration
	for _, d := range DefaultOptions().Schedule {
		total += d
	}
	if total < 27*time.Hour || total > 28*time.Hour {
		t.Errorf("the schedule spans %s, want about 28 hours", total)
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	if err := DefaultOptions().validate(); err != nil {
		t.Fatalf("DefaultOptions: %v", err)
	}
	for name, mutate := range map[string]func(*Options){
		"timeout":   func(o *Options) { o.AttemptTimeout = 0 },
		"attempts":  func(o *Options) { o.MaxAttempts = 0 },
		"schedule":  func(o *Options) { o.Schedule = nil },
		"negative":  func(o *Options) { o.Schedule = []time.Duration{-time.Second} },
		"too long":  func(o *Options) { o.Schedule = []time.Duration{13 * time.Hour} },
		"jitter":    func(o *Options) { o.Jitter = 1 },
		"threshold": func(o *Options) { o.AutoDisableThreshold = 0 },
		"agent":     func(o *Options) { o.UserAgent = "" },
	} {
		o := DefaultOptions()
		mutate(&o)
		if o.validate() == nil {
			t.Errorf("%s: validate accepted %+v", name, o)
		}
	}
	if _, err := New(Deps{Options: DefaultOptions()}); err == nil {
		t.Error("New without dependencies succeeded")
	}
}

func TestCacheSingleLoadAndTTL(t *testing.T) {
	t.Parallel()
	c := newTargetCache(30 * time.Second)
	now := time.Unix(1_800_000_000, 0)
	var loads atomic.Int32
	release := make(chan struct{})
	load := func(context.Context) (*target, error) {
		loads.Add(1)
		<-release
		return &target{found: true}, nil
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if tg, err := c.get(context.Background(), "k", now, load); err != nil || !tg.found {
				t.Errorf("get = %v, %v", tg, err)
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := loads.Load(); n != 1 {
		t.Fatalf("20 concurrent gets loaded %d times, want 1", n)
	}
	get := func(at time.Time) {
		t.Helper()
		if _, err := c.get(context.Background(), "k", at, load); err != nil {
			t.Fatal(err)
		}
	}
	get(now.Add(29 * time.Second))
	if n := loads.Load(); n != 1 {
		t.Fatalf("a get within the TTL loaded again (%d loads)", n)
	}
	get(now.Add(30 * time.Second))
	if n := loads.Load(); n != 2 {
		t.Fatalf("a get after the TTL did not load again (%d loads)", n)
	}
	c.invalidate("k")
	get(now.Add(31 * time.Second))
	if n := loads.Load(); n != 3 {
		t.Fatalf("a get after invalidate did not load again (%d loads)", n)
	}
}

func TestCacheErrorsAreNotCached(t *testing.T) {
	t.Parallel()
	c := newTargetCache(time.Minute)
	now := time.Unix(1_800_000_000, 0)
	calls := 0
	load := func(context.Context) (*target, error) {
		calls++
		if calls == 1 {
			return nil, errors.New("throttled")
		}
		return &target{found: true}, nil
	}
	if _, err := c.get(context.Background(), "k", now, load); err == nil {
		t.Fatal("the failed load reported no error")
	}
	if tg, err := c.get(context.Background(), "k", now, load); err != nil || !tg.found {
		t.Fatalf("get after a failed load = %v, %v", tg, err)
	}
}

func TestCacheSweepsExpired(t *testing.T) {
	t.Parallel()
	c := newTargetCache(time.Second)
	now := time.Unix(1_800_000_000, 0)
	load := func(context.Context) (*target, error) { return &target{}, nil }
	for i := range cacheSweepAt {
		if _, err := c.get(context.Background(), fmt.Sprint(i), now, load); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.get(context.Background(), "late", now.Add(time.Hour), load); err != nil {
		t.Fatal(err)
	}
	if n := len(c.m); n != 1 {
		t.Fatalf("cache holds %d entries after a sweep, want 1", n)
	}
}

// TestSampleEvent keeps events/deliver.json (for sam local invoke) a valid delivery batch.
func TestSampleEvent(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "events", "deliver.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.SQSEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Records) == 0 {
		t.Fatal("no records")
	}
	for _, rec := range ev.Records {
		job, body, err := decode(&rec)
		if err != nil {
			t.Fatalf("record %s: %v", rec.MessageId, err)
		}
		if !domain.ValidID(domain.EndpointIDPrefix, job.EndpointID) || len(body) == 0 {
			t.Errorf("record %s: endpoint id %q, payload %d bytes", rec.MessageId, job.EndpointID, len(body))
		}
		// The body is the payload the sender renders from the event the attributes describe.
		var p struct {
			ID        string          `json:"id"`
			Type      string          `json:"type"`
			Timestamp string          `json:"timestamp"`
			Data      json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(body, &p); err != nil || p.ID != job.Event.ID || p.Type != job.Event.Type ||
			p.Timestamp != job.Event.OccurredAt.Format(time.RFC3339Nano) || len(p.Data) == 0 {
			t.Errorf("record %s: body %s does not match the attributes %+v (%v)", rec.MessageId, body, job.Event, err)
		}
		if rerendered, err := (domain.Event{ID: p.ID, Type: p.Type, OccurredAt: job.Event.OccurredAt, Data: p.Data}).Payload(); err != nil || !bytes.Equal(rerendered, body) {
			t.Errorf("record %s: body %s is not as the sender renders it (%s)", rec.MessageId, body, rerendered)
		}
		if rec.Attributes["ApproximateReceiveCount"] != "1" {
			t.Errorf("record %s: ApproximateReceiveCount %q", rec.MessageId, rec.Attributes["ApproximateReceiveCount"])
		}
	}
}

// TestSenderIsTheGuardedSigner: the Sender a test send uses refuses private destinations
// through the SSRF-guarded client (nothing is sent), and keeps at most keep bytes of an
// answer, saying when there was more.
func TestSenderIsTheGuardedSigner(t *testing.T) {
	t.Parallel()
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		if r.Header.Get("webhook-signature") == "" || r.Header.Get("User-Agent") != "ua-test" {
			w.WriteHeader(http.StatusBadRequest)
		}
		_, _ = io.WriteString(w, "0123456789")
	}))
	defer srv.Close()
	sec, err := signing.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	guarded := Sender{Client: ssrf.NewClient(ssrf.Policy{}, 5*time.Second), UserAgent: "ua-test", Timeout: 5 * time.Second, MaxResponseBytes: 64}
	if r := guarded.Send(context.Background(), srv.URL, "msg_1", []byte(`{}`), []signing.Secret{sec}, time.Now(), 4); r.Class != ClassBlocked || r.Status != 0 || hits != 0 {
		t.Fatalf("a loopback destination: %+v after %d requests, want blocked and nothing sent", r, hits)
	}
	open := guarded
	open.Client = ssrf.NewClient(ssrf.Policy{AllowPrivate: true}, 5*time.Second)
	r := open.Send(context.Background(), srv.URL, "msg_1", []byte(`{}`), []signing.Secret{sec}, time.Now(), 4)
	if !r.OK() || r.Status != 200 || string(r.Excerpt) != "0123" || !r.Truncated {
		t.Fatalf("excerpt of 4: %+v", r)
	}
	if r := open.Send(context.Background(), srv.URL, "msg_1", []byte(`{}`), []signing.Secret{sec}, time.Now(), 64); string(r.Excerpt) != "0123456789" || r.Truncated {
		t.Fatalf("excerpt of 64: %+v", r)
	}
}

func TestWatermarksCoalesce(t *testing.T) {
	t.Parallel()
	w := newWatermarks(5 * time.Second)
	a, b := endpointKey{"t", "a"}, endpointKey{"t", "b"}
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	ev := func(s int) time.Time { return t0.Add(-time.Hour + time.Duration(s)*time.Second) }
	check := func(step string, got, want map[endpointKey]time.Time) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: due %v, want %v", step, got, want)
		}
		for k, v := range want {
			if !got[k].Equal(v) {
				t.Fatalf("%s: due %v, want %v", step, got, want)
			}
		}
	}
	// The first success of an endpoint is written at once.
	check("first batch", w.due(map[endpointKey]time.Time{a: ev(10)}, t0, false), map[endpointKey]time.Time{a: ev(10)})
	// Within the period, later successes wait; an older one than written is dropped.
	check("second batch", w.due(map[endpointKey]time.Time{a: ev(20)}, t0.Add(time.Second), false), nil)
	check("older success", w.due(map[endpointKey]time.Time{a: ev(5)}, t0.Add(2*time.Second), false), nil)
	// Another endpoint's batch after the period writes what waited, the newest value.
	check("after the period", w.due(map[endpointKey]time.Time{b: ev(1)}, t0.Add(5*time.Second), false),
		map[endpointKey]time.Time{a: ev(20), b: ev(1)})
	// A failed write is put back and is due at the next batch, period or not.
	w.retry(b, ev(1))
	check("retry", w.due(nil, t0.Add(6*time.Second), false), map[endpointKey]time.Time{b: ev(1)})
	// Flush (all) writes what waits regardless of the period.
	check("waiting", w.due(map[endpointKey]time.Time{a: ev(30)}, t0.Add(7*time.Second), false), nil)
	check("flush", w.due(nil, t0.Add(7*time.Second), true), map[endpointKey]time.Time{a: ev(30)})
	check("nothing left", w.due(nil, t0.Add(time.Hour), true), nil)
}
