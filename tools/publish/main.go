// Command publish sends sample platform events to the IngestQueue through the producer
// client platform producers use (shared/producer: batches of up to 10 per
// SendMessageBatch), and prints their ids on stdout:
//
//	go run ./tools/publish [-tenant demo-tenant] [-type export.done] [-data '{"rows":3}'] [-id evt_…] [-n 1] [-queue URL]
//
// `make publish ARGS='-type export.failed'` runs it against `make dev`. The queue is -queue,
// else $WEBHOOKS_INGEST_QUEUE_URL, else the one `make dev` recorded in .local/dev.env. The
// AWS configuration is the SDK's default one; AWS_ENDPOINT_URL, when not set in the
// environment, also comes from .local/dev.env, so the event goes to the local emulator.
// Each envelope is validated with the ingest function's own rules before it is sent.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/datajetty/webhooks/shared/config"
	"github.com/datajetty/webhooks/shared/dev/devstack"
	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/producer"
	"github.com/datajetty/webhooks/tools/internal/devenv"
)

const (
	// devQueueName is the IngestQueue's name under make dev's resource prefix, the last
	// resort when neither the flag, the environment nor .local/dev.env names the queue.
	devQueueName = "dev-IngestQueue"

	defaultData = `{"export_id":"exp_demo","dataset":"orders","format":"parquet","rows":1234}`
)

func main() {
	var o options
	flag.StringVar(&o.tenant, "tenant", "demo-tenant", "tenant id")
	flag.StringVar(&o.typ, "type", "export.done", "event type")
	flag.StringVar(&o.data, "data", defaultData, "event data (JSON)")
	flag.StringVar(&o.id, "id", "", "event id (default: a new evt_… id); with -n > 1, the ids are <id>-1, <id>-2, …")
	flag.IntVar(&o.n, "n", 1, "number of events to publish (batched 10 per SendMessageBatch)")
	flag.StringVar(&o.queue, "queue", "", "IngestQueue URL (default: $"+config.IngestQueueURL.Name+", else .local/dev.env from make dev)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "publish: unexpected arguments %q\n", flag.Args())
		flag.Usage()
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, o, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "publish:", err)
		os.Exit(1)
	}
}

type options struct {
	tenant, typ, data, id, queue string
	n                            int
}

func run(ctx context.Context, o options, stdout, stderr io.Writer) error {
	evs, err := events(o, time.Now())
	if err != nil {
		return err
	}
	devEnv, err := readDevEnv()
	if err != nil {
		return err
	}
	// .local/dev.env fills in what the environment does not set.
	if os.Getenv(config.AWSEndpointURL.Name) == "" && devEnv[config.AWSEndpointURL.Name] != "" {
		if err := os.Setenv(config.AWSEndpointURL.Name, devEnv[config.AWSEndpointURL.Name]); err != nil {
			return err
		}
	}
	local := os.Getenv(config.AWSEndpointURL.Name) != ""
	if local {
		// make dev runs the emulator with any region and credentials; supply them when
		// this shell has none so that the SDK does not refuse to sign.
		setDefault("AWS_REGION", "us-east-1")
		if os.Getenv("AWS_ACCESS_KEY_ID") == "" && os.Getenv("AWS_PROFILE") == "" {
			setDefault("AWS_ACCESS_KEY_ID", "local")
			setDefault("AWS_SECRET_ACCESS_KEY", "local")
		}
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("load AWS config: %w", err)
	}
	client := sqs.NewFromConfig(cfg)

	queue := firstOf(o.queue, os.Getenv(config.IngestQueueURL.Name), devEnv[config.IngestQueueURL.Name])
	if queue == "" {
		if !local {
			return errors.New("no queue: pass -queue, set " + config.IngestQueueURL.Name + ", or start `make dev` (it writes .local/dev.env)")
		}
		out, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(devQueueName)})
		if err != nil {
			return fmt.Errorf("no -queue or %s given, and %s has no queue %s (is `make dev` running?): %w",
				config.IngestQueueURL.Name, os.Getenv(config.AWSEndpointURL.Name), devQueueName, err)
		}
		queue = aws.ToString(out.QueueUrl)
	}

	p := producer.New(client, queue, producer.Options{Timeout: 30 * time.Second})
	errs := make([]error, len(evs))
	var wg sync.WaitGroup
	for i := range evs {
		wg.Go(func() { errs[i] = p.Publish(ctx, evs[i]) })
	}
	wg.Wait()
	_ = p.Close()
	sent := 0
	for i, err := range errs {
		if err != nil {
			fmt.Fprintf(stderr, "event %s not published: %v\n", evs[i].ID, err)
			continue
		}
		sent++
		fmt.Fprintln(stdout, evs[i].ID)
	}
	fmt.Fprintf(stderr, "published %d %s event(s) for tenant %s to %s\n", sent, o.typ, o.tenant, queue)
	if sent < len(evs) {
		return fmt.Errorf("%d of %d events not published", len(evs)-sent, len(evs))
	}
	return nil
}

// events builds the events to publish and checks each as the ingest function will.
func events(o options, now time.Time) ([]domain.Event, error) {
	if o.n < 1 {
		return nil, fmt.Errorf("-n must be at least 1, not %d", o.n)
	}
	if !json.Valid([]byte(o.data)) {
		return nil, fmt.Errorf("-data is not valid JSON: %s", o.data)
	}
	id := o.id
	if id == "" {
		var b [12]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		id = "evt_" + hex.EncodeToString(b[:])
	}
	evs := make([]domain.Event, o.n)
	for i := range evs {
		evs[i] = domain.Event{ID: id, TenantID: o.tenant, Type: o.typ, OccurredAt: now, Data: json.RawMessage(o.data)}
		if o.n > 1 {
			evs[i].ID = fmt.Sprintf("%s-%d", id, i+1)
		}
		if _, err := producer.Envelope(evs[i], now); err != nil {
			return nil, fmt.Errorf("the ingest function would reject this event: %w", err)
		}
	}
	return evs, nil
}

// readDevEnv reads the environment `make dev` recorded (devenv.FileName); no repository
// around, or no recorded stack, is an empty map.
func readDevEnv() (map[string]string, error) {
	root, err := devstack.RepoRoot()
	if err != nil {
		return map[string]string{}, nil
	}
	env, err := devenv.Load(filepath.Join(root, devenv.FileName))
	if errors.Is(err, devenv.ErrNotRunning) {
		return map[string]string{}, nil
	}
	return env, err
}

func setDefault(k, v string) {
	if os.Getenv(k) == "" {
		_ = os.Setenv(k, v)
	}
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
