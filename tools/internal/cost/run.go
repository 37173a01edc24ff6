package cost

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/config"
	"github.com/datajetty/webhooks/shared/dev/awsmeter"
	"github.com/datajetty/webhooks/shared/dev/devissuer"
	"github.com/datajetty/webhooks/shared/dev/devstack"
	"github.com/datajetty/webhooks/shared/dev/localsqs"
	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/producer"
	"github.com/datajetty/webhooks/shared/wiring"
)

// Sources of the measured calls: the code that made them.
const (
	SourceProducer   = "producer"
	SourceIngest     = "ingest"
	SourceIngestESM  = "ingest ESM"
	SourceDeliver    = "deliver"
	SourceDeliverESM = "deliver ESM"
	// The replay scenario's.
	SourceReplayWorker = "replay-worker"
	SourceReplayESM    = "replay-worker ESM"
)

// Result is what one scenario's run counted.
type Result struct {
	Scenario Scenario
	// Events were published; Deliveries reached the receivers (each event once per
	// matching endpoint, on the first attempt).
	Events, Deliveries int
	// Lines are the meter's tally, with resources named by their template logical ids.
	Lines []awsmeter.Line
	// Invocations counts each function's invocations (the SQS event source's).
	Invocations map[string]int
	// MemoryMB is each function's memory size in the template.
	MemoryMB map[string]int
}

// Run provisions a fresh copy of the template's resources through base (pointed at the
// emulator), runs the scenario through the real ingest and deliver handlers, and returns
// what they counted. root is the repository root.
func Run(ctx context.Context, base aws.Config, root string, sc Scenario) (*Result, error) {
	tmplPath := filepath.Join(root, "template.yaml")
	tmpl, err := devstack.LoadTemplate(tmplPath)
	if err != nil {
		return nil, err
	}
	var suffix [3]byte
	_, _ = rand.Read(suffix[:])
	stack, err := devstack.Provision(ctx, base, tmplPath, devstack.Options{Prefix: "cost-" + sc.Name + "-" + hex.EncodeToString(suffix[:]) + "-"})
	if stack != nil {
		defer func() {
			tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			_ = stack.Teardown(tctx)
		}()
	}
	if err != nil {
		return nil, err
	}
	r := &runner{sc: sc, base: base, stack: stack, log: slog.New(slog.NewTextHandler(io.Discard, nil)), sim: &clock{t: time.Now()}}
	defer func() {
		for _, c := range r.closers {
			c()
		}
	}()
	return r.run(ctx, tmpl)
}

type runner struct {
	sc    Scenario
	base  aws.Config
	stack *devstack.Stack
	log   *slog.Logger
	sim   *clock

	cfg      config.Config
	apiURL   string
	issuer   *devissuer.Issuer
	received *receiver
	closers  []func()
	// matching are the ids of each tenant's matching endpoints, by tenant.
	matching map[string][]string
}

func (r *runner) run(ctx context.Context, tmpl *devstack.Template) (*Result, error) {
	sc := r.sc
	if err := r.serve(ctx); err != nil {
		return nil, err
	}
	if err := r.register(); err != nil {
		return nil, err
	}

	meter := awsmeter.New(r.base)
	invocations := map[string]int{}
	var invMu sync.Mutex
	counted := func(fn string, h wiring.SQSHandler) localsqs.Handler {
		return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			invMu.Lock()
			invocations[fn]++
			invMu.Unlock()
			resp, err := h(ctx, ev)
			if err == nil && len(resp.BatchItemFailures) > 0 {
				err = fmt.Errorf("%s reported %d failed messages", fn, len(resp.BatchItemFailures))
			}
			return resp, err
		}
	}
	opts := wiring.WorkerOptions{Logger: r.log}
	ingestH, err := wiring.Ingest(r.cfg, meter.Attach(r.base, SourceIngest), opts)
	if err != nil {
		return nil, err
	}
	ingest := &localsqs.Poller{
		Client: sqs.NewFromConfig(meter.Attach(r.base, SourceIngestESM)), QueueURL: r.stack.Resources["IngestQueue"],
		Handler: counted("ingest", ingestH), BatchSize: sc.Batch, Logger: r.log,
	}
	deliverESM := sqs.NewFromConfig(meter.Attach(r.base, SourceDeliverESM))
	// The instances end with the run, as Lambda ends them (SIGTERM): what they left for
	// their shutdown (waiting watermarks) is written, and counted, at the end.
	shutdown := &wiring.Shutdown{}
	var delivers []*localsqs.Poller
	for range sc.Instances {
		h, err := wiring.Deliver(r.cfg, meter.Attach(r.base, SourceDeliver), wiring.WorkerOptions{Logger: r.log, Now: r.sim.now, Shutdown: shutdown})
		if err != nil {
			return nil, err
		}
		delivers = append(delivers, &localsqs.Poller{
			Client: deliverESM, QueueURL: r.stack.Resources["DeliveryQueue"],
			Handler: counted("deliver", h), BatchSize: sc.DeliverBatch, Logger: r.log,
		})
	}
	// The pollers look their queue's ARN up once; that and the empty receives are not part
	// of the measurement.
	for _, p := range append([]*localsqs.Poller{ingest}, delivers...) {
		if _, err := p.Once(ctx); err != nil {
			return nil, err
		}
	}
	meter.Reset()
	invocations = map[string]int{}

	producerSQS := sqs.NewFromConfig(meter.Attach(r.base, SourceProducer))
	// A long linger: every batch the run hands over is full, so it leaves at once; the
	// linger only matters for the last, partial batch of a real producer.
	prod := producer.New(producerSQS, r.stack.Resources["IngestQueue"], producer.Options{Linger: 10 * time.Second, Timeout: time.Minute})
	defer prod.Close()

	start := time.Now().Add(-time.Duration(float64(sc.Events)/sc.Rate*float64(time.Second)) - 10*time.Minute).Truncate(time.Second)
	var nextIngest, nextDeliver int
	for first := 0; first < sc.Events; first += sc.Batch {
		group := min(sc.Batch, sc.Events-first)
		evs := make([]domain.Event, group)
		for j := range evs {
			i := first + j
			at := start.Add(time.Duration(float64(i) / sc.Rate * float64(time.Second))).Add(time.Duration(i%997+1) * time.Microsecond)
			evs[j] = domain.Event{ID: eventID(i), TenantID: tenantID(i % sc.Tenants), Type: eventType, OccurredAt: at,
				Data: eventData(i, sc.Envelope, at, sc.Incompressible)}
		}
		if err := r.publish(ctx, prod, producerSQS, evs); err != nil {
			return nil, err
		}
		if err := drain(ctx, []*localsqs.Poller{ingest}, &nextIngest, group); err != nil {
			return nil, fmt.Errorf("ingest: %w", err)
		}
		if err := drain(ctx, delivers, &nextDeliver, group*sc.Endpoints); err != nil {
			return nil, fmt.Errorf("deliver: %w", err)
		}
		r.sim.advance(time.Duration(float64(group) / sc.Rate * float64(time.Second)))
	}
	if sc.Replay {
		// What the scenario measures is the replay: the pipeline's own run above only
		// stored the events.
		worker, err := wiring.ReplayWorker(r.cfg, meter.Attach(r.base, SourceReplayWorker), opts)
		if err != nil {
			return nil, err
		}
		poller := &localsqs.Poller{
			Client: sqs.NewFromConfig(meter.Attach(r.base, SourceReplayESM)), QueueURL: r.stack.Resources["ReplayQueue"],
			Handler: counted("replay-worker", worker), BatchSize: 1, Timeout: 2 * time.Minute, Logger: r.log,
		}
		if _, err := poller.Once(ctx); err != nil {
			return nil, err
		}
		shutdown.Run(ctx)
		meter.Reset()
		invocations = map[string]int{}
		r.received.reset()
		if err := r.replay(ctx, start.Add(-time.Minute), poller, delivers); err != nil {
			return nil, err
		}
	}
	shutdown.Run(ctx)
	if err := meter.Err(); err != nil {
		return nil, err
	}
	res := &Result{
		Scenario: sc, Events: sc.Events, Deliveries: r.received.count(),
		Lines: r.logical(meter.Lines()), Invocations: invocations, MemoryMB: memorySizes(tmpl),
	}
	if want := sc.Events * sc.Endpoints; res.Deliveries != want {
		return nil, fmt.Errorf("the receivers got %d deliveries, want %d (every event once per matching endpoint)", res.Deliveries, want)
	}
	return res, nil
}

// publish sends one producer batch: through the producer client, or, for batches of one,
// as a plain SendMessage per event.
func (r *runner) publish(ctx context.Context, prod *producer.Producer, client *sqs.Client, evs []domain.Event) error {
	if r.sc.Batch == 1 {
		for _, e := range evs {
			body, err := producer.Envelope(e, time.Now())
			if err != nil {
				return err
			}
			if len(body) != r.sc.Envelope {
				return fmt.Errorf("envelope of %s is %d bytes, want %d", e.ID, len(body), r.sc.Envelope)
			}
			if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(r.stack.Resources["IngestQueue"]), MessageBody: aws.String(string(body))}); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, len(evs))
	var wg sync.WaitGroup
	for i := range evs {
		wg.Go(func() { errs[i] = prod.Publish(ctx, evs[i]) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// drain polls until the pollers handled want messages, taking the pollers in turn (next is
// whose turn it is).
func drain(ctx context.Context, pollers []*localsqs.Poller, next *int, want int) error {
	for handled, empty := 0, 0; handled < want; {
		p := pollers[*next%len(pollers)]
		*next++
		n, err := p.Once(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			if empty++; empty > 50 {
				return fmt.Errorf("%d of %d messages never arrived", want-handled, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
		handled += n
	}
	return nil
}

// serve starts the receiver, a token issuer and the API (uncounted: endpoints are
// registered before the measurement).
func (r *runner) serve(ctx context.Context) error {
	r.received = &receiver{seen: map[string]bool{}}
	rcv := httptest.NewServer(r.received)
	r.closers = append(r.closers, rcv.Close)
	iss, err := devissuer.New("https://issuer.cost/", "webhooks-cost")
	if err != nil {
		return err
	}
	r.issuer = iss
	jwks := httptest.NewServer(iss.JWKSHandler())
	r.closers = append(r.closers, jwks.Close)
	env := map[string]string{}
	for k, v := range r.stack.Env {
		env[k] = v
	}
	env["WEBHOOKS_JWKS_URL"], env["WEBHOOKS_JWT_ISSUER"], env["WEBHOOKS_JWT_AUDIENCE"] = jwks.URL, "https://issuer.cost/", "webhooks-cost"
	env["WEBHOOKS_ALLOW_PRIVATE_TARGETS"] = "true"
	if r.cfg, err = config.FromMap(env); err != nil {
		return err
	}
	limits := api.Limits{Default: api.Rule{Limit: 1000, Window: time.Second}, Replay: api.Rule{Limit: 1000, Window: time.Second}}
	h, err := wiring.API(ctx, r.cfg, r.base, wiring.APIOptions{Logger: r.log, Limits: limits})
	if err != nil {
		return err
	}
	srv := httptest.NewServer(h)
	r.apiURL = srv.URL + api.BasePath
	r.received.url = rcv.URL
	r.closers = append(r.closers, srv.Close)
	return nil
}

// register gives each tenant its matching endpoints and one that does not match.
func (r *runner) register() error {
	r.matching = map[string][]string{}
	for t := range r.sc.Tenants {
		tenant := tenantID(t)
		tok, err := r.issuer.Mint(tenant, []string{api.ScopeWrite}, time.Hour)
		if err != nil {
			return err
		}
		for k := 0; k <= r.sc.Endpoints; k++ {
			patterns := []string{eventType}
			if k == r.sc.Endpoints {
				patterns = []string{"import.*"}
			}
			msg, err := r.post(tok, "/endpoints", map[string]any{"url": fmt.Sprintf("%s/hooks/%s/%d", r.received.url, tenant, k), "events": patterns}, http.StatusCreated)
			if err != nil {
				return fmt.Errorf("register an endpoint of %s: %w", tenant, err)
			}
			var ep struct {
				ID string `json:"endpoint_id"`
			}
			if err := json.Unmarshal(msg, &ep); err != nil || ep.ID == "" {
				return fmt.Errorf("register an endpoint of %s: no endpoint_id in %s", tenant, msg)
			}
			if k < r.sc.Endpoints {
				r.matching[tenant] = append(r.matching[tenant], ep.ID)
			}
		}
	}
	return nil
}

// replay asks for a replay of every matching endpoint from before the first event
// (uncounted: the API's calls are not the pipeline's), then runs the replay worker and the
// deliver function until both queues are empty.
func (r *runner) replay(ctx context.Context, from time.Time, worker *localsqs.Poller, delivers []*localsqs.Poller) error {
	for t := range r.sc.Tenants {
		tenant := tenantID(t)
		tok, err := r.issuer.Mint(tenant, []string{api.ScopeReplay}, time.Hour)
		if err != nil {
			return err
		}
		for _, id := range r.matching[tenant] {
			if _, err := r.post(tok, "/replay", map[string]any{"endpoint_id": id, "from": from.UTC().Format(time.RFC3339)}, http.StatusAccepted); err != nil {
				return fmt.Errorf("replay to an endpoint of %s: %w", tenant, err)
			}
		}
	}
	next := 0
	for idle := 0; idle < 2; {
		n, err := worker.Once(ctx)
		if err != nil {
			return fmt.Errorf("replay worker: %w", err)
		}
		handled := n
		for {
			p := delivers[next%len(delivers)]
			next++
			m, err := p.Once(ctx)
			if err != nil {
				return fmt.Errorf("deliver: %w", err)
			}
			handled += m
			if m == 0 {
				break
			}
		}
		if handled == 0 {
			idle++
		} else {
			idle = 0
		}
	}
	return nil
}

// post sends body as JSON to the API path with the token and returns the answer, which
// must have status want.
func (r *runner) post(token, path string, body any, want int) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, r.apiURL+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%d %s", resp.StatusCode, msg)
	}
	return msg, nil
}

// logical names resources by their template logical id instead of this run's names.
func (r *runner) logical(lines []awsmeter.Line) []awsmeter.Line {
	names := map[string]string{}
	for id, phys := range r.stack.Resources {
		names[phys] = id
		names[phys[strings.LastIndexByte(phys, '/')+1:]] = id
	}
	for i := range lines {
		if id, ok := names[lines[i].Resource]; ok {
			lines[i].Resource = id
		} else if lines[i].Service == "KMS" {
			lines[i].Resource = "SecretsKey"
		}
	}
	return lines
}

// memorySizes reads each pipeline function's MemorySize (its own, else the global one).
func memorySizes(t *devstack.Template) map[string]int {
	out := map[string]int{}
	global, _ := t.GlobalFunction["MemorySize"].(int)
	for fn, id := range map[string]string{"ingest": "IngestFunction", "deliver": "DeliverFunction", "replay-worker": "ReplayWorkerFunction"} {
		out[fn] = global
		if m, ok := t.Resources[id].Properties["MemorySize"].(int); ok {
			out[fn] = m
		}
	}
	return out
}

// receiver answers the handshake and acknowledges deliveries, counting each
// (endpoint, webhook-id) once.
type receiver struct {
	url  string
	mu   sync.Mutex
	seen map[string]bool
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var msg struct{ Type, Challenge string }
	_ = json.Unmarshal(body, &msg)
	if msg.Type == "webhook.challenge" {
		_ = json.NewEncoder(w).Encode(map[string]string{"challenge": msg.Challenge})
		return
	}
	if req.Header.Get("webhook-signature") == "" {
		http.Error(w, "unsigned", http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.seen[req.URL.Path+" "+req.Header.Get("webhook-id")] = true
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.seen)
}

// reset forgets the deliveries seen so far (a replay sends the same ones again).
func (rc *receiver) reset() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.seen = map[string]bool{}
}

// clock is the deliver function's simulated clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
