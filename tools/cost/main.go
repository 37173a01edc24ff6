// Command cost measures what a delivery costs: it runs the scenarios of
// tools/internal/cost through the real ingest and deliver handlers against the local
// emulator, counts every AWS request and the DynamoDB capacity each consumes, and prints
// them priced per million deliveries. The last line is the typical scenario's:
//
//	cost per million deliveries: on-demand $X.XX, provisioned $Y.YY (typical scenario)
//
// make cost runs it with the emulator of make test; -write regenerates the cost section of
// docs/performance.md from the same run.
//
//	go run ./tools/cost [-scenario typical] [-write docs/performance.md]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/datajetty/webhooks/shared/dev/devstack"
	"github.com/datajetty/webhooks/tools/internal/cost"
)

func main() {
	scenario := flag.String("scenario", "", "run only this scenario (default: all)")
	write := flag.String("write", "", "regenerate the cost section of this markdown file (all scenarios only)")
	flag.Parse()
	if err := run(*scenario, *write); err != nil {
		fmt.Fprintln(os.Stderr, "cost:", err)
		os.Exit(1)
	}
}

func run(only, write string) error {
	endpoint := os.Getenv("AWS_ENDPOINT_URL")
	if endpoint == "" {
		return fmt.Errorf("AWS_ENDPOINT_URL is not set: make cost points it at the local emulator (never at an AWS account)")
	}
	if only != "" && write != "" {
		return fmt.Errorf("-write needs every scenario; drop -scenario")
	}
	root, err := devstack.RepoRoot()
	if err != nil {
		return err
	}
	base := aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String(endpoint),
	}
	scenarios := cost.Scenarios
	if only != "" {
		sc, err := cost.Find(only)
		if err != nil {
			return err
		}
		scenarios = []cost.Scenario{sc}
	}
	ctx := context.Background()
	var bs []*cost.Breakdown
	var results []*cost.Result
	for _, sc := range scenarios {
		start := time.Now()
		res, err := cost.Run(ctx, base, root, sc)
		if err != nil {
			return fmt.Errorf("scenario %s: %w", sc.Name, err)
		}
		fmt.Fprintf(os.Stderr, "scenario %s: %d deliveries measured in %s\n", sc.Name, res.Deliveries, time.Since(start).Round(time.Second))
		results = append(results, res)
		bs = append(bs, cost.Price(res, cost.Prices))
	}
	if write != "" {
		path := write
		if !filepath.IsAbs(path) {
			path = filepath.Join(root, path)
		}
		if err := cost.WriteDoc(path, cost.Markdown(bs)); err != nil {
			return err
		}
		if err := cost.SaveResults(filepath.Join(root, cost.ResultsFile), results); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "regenerated the cost section of", write, "and", cost.ResultsFile)
	}
	return cost.WriteText(os.Stdout, bs)
}
