// Command coldstart measures every Lambda function's own init against a hello-world
// bootstrap built the same way (make coldstart): process start to the first request to the
// Runtime API's /next, alternately, with the median ratio per function, and each function's
// SDK floor (hello-world that links the same SDK clients). It ends with the line
//
//	cold start init ratio to hello-world: max X.XX (<FunctionLogicalId>)
//
// The functions run against a stack provisioned in the local emulator (started here unless
// AWS_ENDPOINT_URL names one) and a JWKS this command serves. Linux only, like Lambda.
//
//	go run ./tools/coldstart [-rounds 15] [-fn GetReplayFunction] [-go-build '<go build command>']
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/datajetty/webhooks/shared/dev/devissuer"
	"github.com/datajetty/webhooks/shared/dev/devstack"
	"github.com/datajetty/webhooks/tools/internal/coldbench"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "coldstart:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		rounds  = flag.Int("rounds", 15, "rounds of hello-world, function and SDK floor per function")
		only    = flag.String("fn", "", "measure only this function (logical id)")
		goBuild = flag.String("go-build", "GOOS=linux GOARCH="+runtime.GOARCH+" CGO_ENABLED=0 go build -tags lambda.norpc -trimpath -ldflags='-s -w'",
			"the go build command of the Lambda bootstraps, without -o and package (make coldstart passes the Makefile's)")
	)
	flag.Parse()
	if runtime.GOOS != "linux" {
		return fmt.Errorf("make coldstart runs Linux bootstraps, so Linux only")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, err := devstack.RepoRoot()
	if err != nil {
		return err
	}
	fns, err := coldbench.Functions(root)
	if err != nil {
		return err
	}
	if *only != "" {
		var keep []coldbench.Function
		for _, f := range fns {
			if f.LogicalID == *only {
				keep = append(keep, f)
			}
		}
		if keep == nil {
			return fmt.Errorf("no function %s in the Makefile", *only)
		}
		fns = keep
	}

	work := filepath.Join(root, "build", "coldstart")
	builder := coldbench.Builder{Root: root, Command: *goBuild}
	fmt.Fprintf(os.Stderr, "building %d functions, hello-world and their SDK floors with: %s\n", len(fns), *goBuild)
	hello := filepath.Join(work, "hello")
	if err := builder.Build(ctx, coldbench.HelloPackage, hello); err != nil {
		return err
	}
	bins, floors := map[string]string{}, map[string]string{}
	for _, f := range fns {
		bins[f.LogicalID] = filepath.Join(work, "functions", f.LogicalID)
		if err := builder.Build(ctx, f.Package, bins[f.LogicalID]); err != nil {
			return err
		}
		key := strings.Join(f.Clients, "-")
		if _, done := floors[key]; done {
			continue
		}
		pkg, err := coldbench.FloorPackage(root, work, f.Clients)
		if err != nil {
			return err
		}
		floors[key] = filepath.Join(work, "floor-"+key)
		if err := builder.Build(ctx, pkg, floors[key]); err != nil {
			return err
		}
	}

	env, cleanup, err := stackEnv(ctx, root)
	if err != nil {
		return err
	}
	defer cleanup()
	iss, err := devissuer.New("https://issuer.coldstart/", "coldstart")
	if err != nil {
		return err
	}
	api, err := coldbench.StartRuntimeAPI(map[string]http.Handler{"GET /jwks.json": iss.JWKSHandler()})
	if err != nil {
		return err
	}
	defer api.Close()
	env = append(env, "WEBHOOKS_JWKS_URL=http://"+api.Addr+"/jwks.json", "WEBHOOKS_JWT_ISSUER=https://issuer.coldstart/", "WEBHOOKS_JWT_AUDIENCE=coldstart")
	init := func(ctx context.Context, bin string) (time.Duration, error) { return api.Init(ctx, bin, env) }

	fmt.Fprintf(os.Stderr, "measuring %d rounds per function (hello-world, function, SDK floor, in rotating order)\n", *rounds)
	var results []coldbench.Result
	for _, f := range fns {
		r, err := coldbench.Measure(ctx, f, *rounds, hello, bins[f.LogicalID], floors[strings.Join(f.Clients, "-")], init)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	return coldbench.Report(os.Stdout, results)
}

// stackEnv provisions the template's resources in the emulator (started here unless
// AWS_ENDPOINT_URL names one) and returns the functions' environment.
func stackEnv(ctx context.Context, root string) ([]string, func(), error) {
	var cleanups []func()
	cleanup := func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	endpoint := os.Getenv("AWS_ENDPOINT_URL")
	if endpoint == "" {
		emu, err := devstack.StartEmulator(ctx, root, devstack.EmulatorOptions{DieWithParent: true})
		if err != nil {
			return nil, cleanup, fmt.Errorf("start the emulator (make venv): %w", err)
		}
		cleanups = append(cleanups, emu.Stop)
		endpoint = emu.URL
	}
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")}
	stack, err := devstack.Provision(ctx, cfg, filepath.Join(root, "template.yaml"), devstack.Options{Prefix: fmt.Sprintf("coldstart-%d-", os.Getpid())})
	if stack != nil {
		cleanups = append(cleanups, func() {
			tctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_ = stack.Teardown(tctx)
		})
	}
	if err != nil {
		return nil, cleanup, fmt.Errorf("provision template.yaml in the emulator: %w", err)
	}
	env := []string{"AWS_ENDPOINT_URL=" + endpoint, "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local"}
	for k, v := range stack.Env {
		env = append(env, k+"="+v)
	}
	return env, cleanup, nil
}
