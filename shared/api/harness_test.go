package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/config"
	"github.com/datajetty/webhooks/shared/dev/devissuer"
	"github.com/datajetty/webhooks/shared/dev/testenv"
	"github.com/datajetty/webhooks/shared/metrics"
	"github.com/datajetty/webhooks/shared/wiring"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	testIssuer   = "https://issuer.test/"
	testAudience = "datajetty-webhooks-test"
)

// world is one provisioned stack (tables, queues, key) plus a token issuer; several API
// servers may share it, as several Lambda instances share the real tables.
type world struct {
	t      *testing.T
	env    map[string]string
	aws    aws.Config
	issuer *devissuer.Issuer
	jwks   *httptest.Server
}

func newWorld(t *testing.T) *world {
	t.Helper()
	stack := testenv.Stack(t, nil)
	iss, err := devissuer.New(testIssuer, testAudience)
	if err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(iss.JWKSHandler())
	t.Cleanup(jwks.Close)
	env := map[string]string{}
	for k, v := range stack.Env {
		env[k] = v
	}
	env["WEBHOOKS_JWKS_URL"] = jwks.URL
	env["WEBHOOKS_JWT_ISSUER"] = testIssuer
	env["WEBHOOKS_JWT_AUDIENCE"] = testAudience
	env["WEBHOOKS_ALLOW_PRIVATE_TARGETS"] = "true"
	return &world{t: t, env: env, aws: testenv.AWSConfig(t), issuer: iss, jwks: jwks}
}

type serverOpts struct {
	limits api.Limits
	env    map[string]string // overrides
	aws    *aws.Config
	logs   io.Writer
	emf    io.Writer // EMF metrics output
	now    func() time.Time
}

// server starts an API server over the world's tables with every route enabled.
func (w *world) server(o serverOpts) *client {
	w.t.Helper()
	env := map[string]string{}
	for k, v := range w.env {
		env[k] = v
	}
	for k, v := range o.env {
		env[k] = v
	}
	cfg, err := config.FromMap(env)
	if err != nil {
		w.t.Fatal(err)
	}
	awsCfg := w.aws
	if o.aws != nil {
		awsCfg = *o.aws
	}
	logs := o.logs
	if logs == nil {
		logs = io.Discard
	}
	if o.limits == (api.Limits{}) {
		// Generous by default so tests of other behaviour are not rate limited; the
		// rate-limit tests set the real defaults.
		o.limits = api.Limits{Default: api.Rule{Limit: 1000, Window: time.Second}, Replay: api.Rule{Limit: 1000, Window: time.Second}}
	}
	h, err := wiring.API(context.Background(), cfg, awsCfg, wiring.APIOptions{Logger: slog.New(slog.NewJSONHandler(logs, nil)), Limits: o.limits, Metrics: emitter(o.emf), Now: o.now})
	if err != nil {
		w.t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	w.t.Cleanup(srv.Close)
	return &client{t: w.t, base: srv.URL + api.BasePath, w: w}
}

func (w *world) token(tenant string, scopes ...string) string {
	w.t.Helper()
	if len(scopes) == 0 {
		scopes = []string{api.ScopeRead, api.ScopeWrite, api.ScopeReplay}
	}
	tok, err := w.issuer.Mint(tenant, scopes, time.Hour)
	if err != nil {
		w.t.Fatal(err)
	}
	return tok
}

type client struct {
	t    *testing.T
	base string
	w    *world
}

type reply struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    []byte
}

func (r reply) str(key string) string {
	s, _ := r.Body[key].(string)
	return s
}

// do sends a request as tenant (token with all scopes unless hdr sets Authorization).
func (c *client) do(method, path, tenant string, body any, hdr map[string]string) reply {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tenant != "" {
		req.Header.Set("Authorization", "Bearer "+c.w.token(tenant))
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	return c.send(req)
}

// send sends a prepared request and decodes the JSON answer (every answer must be JSON
// with an X-Request-Id).
func (c *client) send(req *http.Request) reply {
	c.t.Helper()
	method, path := req.Method, strings.TrimPrefix(req.URL.Path, api.BasePath)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.Body); err != nil {
			c.t.Fatalf("%s %s: response is not a JSON object: %s", method, path, raw)
		}
	}
	if resp.Header.Get("X-Request-Id") == "" {
		c.t.Errorf("%s %s: response has no X-Request-Id", method, path)
	}
	return r
}

// expectError checks an error response's status, code and that it names what it should.
func expectError(t *testing.T, r reply, status int, code, mention string) {
	t.Helper()
	if r.Status != status || r.str("error") != code {
		t.Fatalf("want %d %s, got %d %s", status, code, r.Status, r.Raw)
	}
	if r.str("message") == "" || r.str("request_id") == "" {
		t.Fatalf("error response lacks message or request_id: %s", r.Raw)
	}
	if mention != "" && !strings.Contains(strings.ToLower(r.str("message")), strings.ToLower(mention)) {
		t.Fatalf("message %q does not mention %q", r.str("message"), mention)
	}
}

// receiver is a local webhook endpoint that answers the challenge handshake.
type receiver struct {
	*httptest.Server
	challenges atomic.Int64
	mode       atomic.Value // "echo", "echo-plain", "500", "wrong", "redirect", "slow"
	release    chan struct{}
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{release: make(chan struct{})}
	rc.mode.Store("echo")
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Type      string `json:"type"`
			Challenge string `json:"challenge"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		if body.Type == "webhook.challenge" {
			rc.challenges.Add(1)
		}
		switch rc.mode.Load().(string) {
		case "echo":
			_ = json.NewEncoder(w).Encode(map[string]string{"challenge": body.Challenge})
		case "echo-plain":
			_, _ = io.WriteString(w, body.Challenge)
		case "500":
			w.WriteHeader(http.StatusInternalServerError)
		case "wrong":
			_ = json.NewEncoder(w).Encode(map[string]string{"challenge": "not-it"})
		case "redirect":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "slow":
			select {
			case <-rc.release:
				_ = json.NewEncoder(w).Encode(map[string]string{"challenge": body.Challenge})
			case <-r.Context().Done():
			}
		}
	}))
	t.Cleanup(func() { close(rc.release); rc.Close() })
	return rc
}

func (rc *receiver) url(path string) string { return rc.URL + path }

// register creates an endpoint for tenant at url and returns its id.
func (c *client) register(tenant, url string, events ...string) reply {
	c.t.Helper()
	if len(events) == 0 {
		events = []string{"export.done"}
	}
	return c.do("POST", "/endpoints", tenant, map[string]any{"url": url, "events": events}, nil)
}

func emitter(w io.Writer) *metrics.Emitter {
	if w == nil {
		return nil
	}
	return metrics.New(w, "api-test")
}

// metricTotal sums a metric over every EMF document written to w.
func metricTotal(t *testing.T, emf string, name string) float64 {
	t.Helper()
	total := 0.0
	for _, line := range strings.Split(strings.TrimSpace(emf), "\n") {
		if line == "" {
			continue
		}
		var doc map[string]any
		if err := json.Unmarshal([]byte(line), &doc); err != nil {
			t.Fatalf("EMF line is not JSON: %s", line)
		}
		if v, ok := doc[name].(float64); ok {
			total += v
		}
	}
	return total
}
