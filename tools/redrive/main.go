// Command redrive moves the messages of a dead-letter queue back to its source queue
// (`make redrive QUEUE=DeliveryDLQ`), printing progress as it goes. See tools/internal/redrive for
// how it never loses a message.
//
//	go run ./tools/redrive -queue DeliveryDLQ -dev-env .local/dev.env      # the make dev stack
//	go run ./tools/redrive -queue DeliveryDLQ -stack datajetty-webhooks     # AWS (default credentials)
//	go run ./tools/redrive -queue https://sqs.…/…-DeliveryDLQ-… -dry-run    # AWS, by URL
//
// -queue and -source take a template logical id (DeliveryDLQ, IngestDLQ, ReplayDLQ, …), a
// queue name or a queue URL. Without -source, the destination is the queue whose
// RedrivePolicy names the DLQ (ListDeadLetterSourceQueues).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/datajetty/webhooks/tools/internal/devenv"
	"github.com/datajetty/webhooks/tools/internal/redrive"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "redrive:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		queue   = flag.String("queue", "", "the DLQ: logical id (DeliveryDLQ, IngestDLQ, ReplayDLQ), queue name or URL (required)")
		source  = flag.String("source", "", "the destination: logical id, queue name or URL (default: the queue whose RedrivePolicy points at the DLQ)")
		maxN    = flag.Int("max", 0, "move at most this many messages (0: all); uses receive → send → delete")
		dryRun  = flag.Bool("dry-run", false, "only show the queues and their approximate message counts")
		method  = flag.String("method", "auto", "auto (StartMessageMoveTask where available, else receive), task, or receive")
		devEnv  = flag.String("dev-env", "", "use the local stack recorded in this file by `make dev` (.local/dev.env)")
		stack   = flag.String("stack", "", "AWS: the CloudFormation stack whose logical ids -queue/-source name (samconfig.toml: datajetty-webhooks)")
		visible = flag.Duration("visibility-timeout", redrive.DefaultVisibilityTimeout, "how long a batch in flight stays hidden in the DLQ")
	)
	flag.Parse()
	if *queue == "" || flag.NArg() > 0 {
		flag.Usage()
		return errors.New("usage: redrive -queue <DLQ> [-source <queue>] [-max N] [-dry-run] [-dev-env FILE | -stack NAME]")
	}
	m, err := redrive.ParseMethod(*method)
	if err != nil {
		return err
	}

	// The first Ctrl-C stops after the batch in flight; a second one ends the process at once
	// (still safe: at worst the batch in flight is in both queues).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() { <-ctx.Done(); stop() }()

	naming := redrive.Naming{Stack: *stack}
	where := "AWS"
	if *devEnv != "" {
		env, err := devenv.Load(*devEnv)
		if err != nil {
			return err
		}
		if err := devenv.CheckRunning(env); err != nil {
			return err
		}
		if err := devenv.UseLocalAWS(env); err != nil {
			return err
		}
		naming = redrive.Naming{Prefix: devenv.QueuePrefix(env)}
		where = "the local stack at " + env["AWS_ENDPOINT_URL"]
	} else if *stack != "" {
		where = "AWS stack " + *stack
	}
	// The SDK's full loader, not the functions' (wiring.LoadAWS): against a real account an
	// operator's profile, SSO or assumed role supplies the credentials.
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRetryMaxAttempts(3))
	if err != nil {
		return fmt.Errorf("load AWS config: %w", err)
	}
	if *devEnv == "" && os.Getenv("AWS_ENDPOINT_URL") != "" {
		where = "the endpoint " + os.Getenv("AWS_ENDPOINT_URL")
	}
	c := sqs.NewFromConfig(cfg)

	dlq, err := redrive.ResolveQueue(ctx, c, *queue, naming)
	if err != nil {
		return err
	}
	var src string
	if *source != "" {
		src, err = redrive.ResolveQueue(ctx, c, *source, naming)
	} else {
		src, err = redrive.FindSource(ctx, c, dlq)
	}
	if err != nil {
		return err
	}
	fmt.Printf("redrive in %s (region %s)\n  from %s\n  to   %s\n", where, cfg.Region, dlq, src)

	dlqCount, err := redrive.Count(ctx, c, dlq)
	if err != nil {
		return err
	}
	srcCount, err := redrive.Count(ctx, c, src)
	if err != nil {
		return err
	}
	fmt.Printf("  DLQ:    ~%d messages (%d in flight, %d delayed)\n", dlqCount.Visible, dlqCount.InFlight, dlqCount.Delayed)
	fmt.Printf("  source: ~%d messages (%d in flight, %d delayed)\n", srcCount.Visible, srcCount.InFlight, srcCount.Delayed)
	if *dryRun {
		n := dlqCount.Visible
		if *maxN > 0 && int64(*maxN) < n {
			n = int64(*maxN)
		}
		fmt.Printf("dry run: would move ~%d messages; nothing was changed\n", n)
		return nil
	}

	start := time.Now()
	res, err := redrive.Run(ctx, c, redrive.Options{
		DLQ: dlq, Source: src, Method: m, Max: *maxN, VisibilityTimeout: *visible,
		Progress: func(p redrive.Progress) {
			line := fmt.Sprintf("  moved %d", p.Moved)
			if p.Total > 0 {
				line += fmt.Sprintf(" of ~%d", p.Total)
			}
			if p.Status != "" {
				line += " (task " + p.Status + ")"
			}
			fmt.Println(line)
		},
		Logf: func(format string, args ...any) { fmt.Printf("  note: "+format+"\n", args...) },
	})
	fmt.Printf("%s: %d messages moved in %s", res.Method, res.Moved, time.Since(start).Round(time.Millisecond))
	if res.NotDeleted > 0 {
		fmt.Printf("; %d are in BOTH queues (delete failed)", res.NotDeleted)
	}
	if res.Returned > 0 {
		fmt.Printf("; %d could not be sent and stay in the DLQ", res.Returned)
	}
	if res.CameBack > 0 {
		fmt.Printf("; %d failed again at once and are back in the DLQ (not moved twice)", res.CameBack)
	}
	fmt.Println()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if n, cerr := redrive.Count(cctx, c, dlq); cerr == nil {
		fmt.Printf("  DLQ now: ~%d messages (%d in flight)\n", n.Visible, n.InFlight)
	}
	if errors.Is(err, context.Canceled) {
		return errors.New("interrupted: the messages not moved are still in the DLQ")
	}
	return err
}
