package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/config"
	"github.com/datajetty/webhooks/shared/dev/devissuer"
	"github.com/datajetty/webhooks/shared/dev/devstack"
	"github.com/datajetty/webhooks/shared/dev/localsqs"
	"github.com/datajetty/webhooks/shared/signing"
	"github.com/datajetty/webhooks/shared/wiring"
	"github.com/datajetty/webhooks/tools/internal/devreceiver"
)

// startConsumers runs the three queue consumers the way Lambda's SQS event source does
// (shared/dev/localsqs: batches of up to 10, partial failures honoured, visibility respected).
// The consumers register their shutdown work (the deliver function's waiting watermarks)
// with shutdown, which make dev runs when it stops, as Lambda does on SIGTERM.
func startConsumers(ctx context.Context, cfg config.Config, awsCfg aws.Config, stack *devstack.Stack, logger *slog.Logger, shutdown *wiring.Shutdown) error {
	consumers := []struct {
		name, queue string
		build       func(config.Config, aws.Config, wiring.WorkerOptions) (wiring.SQSHandler, error)
		timeout     time.Duration
	}{
		{"ingest", stack.Resources["IngestQueue"], wiring.Ingest, 30 * time.Second},
		{"deliver", stack.Resources["DeliveryQueue"], wiring.Deliver, 30 * time.Second},
		{"replay-worker", stack.Resources["ReplayQueue"], wiring.ReplayWorker, 120 * time.Second},
	}
	client := sqs.NewFromConfig(awsCfg)
	for _, c := range consumers {
		if c.queue == "" {
			return fmt.Errorf("template.yaml has no queue for the %s consumer", c.name)
		}
		h, err := c.build(cfg, awsCfg, wiring.WorkerOptions{Logger: logger.With("function", c.name), Shutdown: shutdown})
		if err != nil {
			return fmt.Errorf("%s consumer: %w", c.name, err)
		}
		p := &localsqs.Poller{Client: client, QueueURL: c.queue, Handler: localsqs.Handler(h), Timeout: c.timeout, Logger: logger.With("poller", c.name)}
		go func() {
			if err := p.Run(ctx); err != nil {
				logger.Error("consumer stopped", "function", c.name, "error", err)
			}
		}()
	}
	return nil
}

// startDemoReceiver serves the demo receiver on WEBHOOKS_DEMO_ADDR (default
// 127.0.0.1:8081) and registers it, through the API, for every event of the demo tenant.
// It returns the receiver's URL, or "" when there is no dev issuer to register with.
func startDemoReceiver(ctx context.Context, apiAddr string, issuer *devissuer.Issuer) (string, error) {
	if issuer == nil {
		return "", nil
	}
	secret, err := signing.GenerateSecret()
	if err != nil {
		return "", err
	}
	addr := config.DemoAddr.Get()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("demo receiver: listen on %s (set %s): %w", addr, config.DemoAddr.Name, err)
	}
	srv := &http.Server{Handler: devreceiver.NewHandler(secret.Encode(), os.Stdout), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	go func() { <-ctx.Done(); _ = srv.Close() }()

	url := "http://" + addr + "/webhooks"
	token, err := issuer.Mint(demoTenant, []string{api.ScopeWrite}, time.Minute)
	if err != nil {
		return "", err
	}
	body, _ := json.Marshal(map[string]any{"url": url, "events": []string{"*"}, "secret": secret.Encode()})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+apiAddr+api.BasePath+"/endpoints", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("register the demo receiver: %w", err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return "", errors.New("register the demo receiver: " + resp.Status + ": " + string(out))
	}
	return url, nil
}
