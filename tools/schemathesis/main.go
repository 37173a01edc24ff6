// Command schemathesis runs schemathesis (`make schemathesis`) against a local stack of its
// own, as make dev builds it: the emulator (unless AWS_ENDPOINT_URL names one), the
// template's tables, queues, keys and secret under a fresh prefix, every API route and the
// portal on a free loopback port behind the local server (tools/internal/devserver), and a
// development token issuer. It runs every check but positive-data acceptance (a generated
// URL cannot answer the challenge handshake) with a token of all scopes, then stops
// everything and removes the resources.
//
// Only loopback is ever tested: schemathesis is pointed at 127.0.0.1, and the challenge
// handshakes of the URLs it registers may dial loopback addresses only (an IP literal, no DNS),
// so generated host names never reach another machine.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/config"
	"github.com/datajetty/webhooks/shared/dev/devissuer"
	"github.com/datajetty/webhooks/shared/dev/devstack"
	"github.com/datajetty/webhooks/shared/portal"
	"github.com/datajetty/webhooks/shared/wiring"
	"github.com/datajetty/webhooks/tools/internal/devserver"
)

const audience = "datajetty-webhooks-schemathesis"

func main() {
	bin := flag.String("schemathesis", ".venv-schemathesis/bin/schemathesis", "the schemathesis executable")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: %s [-schemathesis path] [-- extra schemathesis run arguments]\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// schemathesis runs in .local (its own files go there), so the path must not be relative.
	exe, err := filepath.Abs(*bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "schemathesis:", err)
		os.Exit(1)
	}
	code, err := run(ctx, exe, flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "schemathesis:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(ctx context.Context, bin string, extra []string) (int, error) {
	root, err := devstack.RepoRoot()
	if err != nil {
		return 0, err
	}
	logDir := filepath.Join(root, ".local")
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return 0, err
	}
	if os.Getenv("AWS_ENDPOINT_URL") == "" {
		logf, err := os.Create(filepath.Join(logDir, "schemathesis-moto.log"))
		if err != nil {
			return 0, err
		}
		defer logf.Close()
		emu, err := devstack.StartEmulator(ctx, root, devstack.EmulatorOptions{Log: logf, Ready: 30 * time.Second})
		if err != nil {
			return 0, fmt.Errorf("%w (see .local/schemathesis-moto.log)", err)
		}
		defer emu.Stop()
		os.Setenv("AWS_ENDPOINT_URL", emu.URL)
	}
	for k, v := range map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"} {
		if os.Getenv(k) == "" {
			os.Setenv(k, v)
		}
	}
	awsCfg, err := wiring.LoadAWS(ctx)
	if err != nil {
		return 0, err
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	stack, err := devstack.Provision(ctx, awsCfg, filepath.Join(root, "template.yaml"), devstack.Options{Prefix: "schemathesis-" + hex.EncodeToString(suffix) + "-"})
	if err != nil {
		return 0, fmt.Errorf("create local resources from template.yaml: %w", err)
	}
	defer func() { _ = stack.Teardown(context.WithoutCancel(ctx)) }()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	base := "http://" + ln.Addr().String()
	issuer, err := devissuer.New(base+devserver.IssuerPath, audience)
	if err != nil {
		return 0, err
	}
	env := stack.Env
	env[config.JWKSURL.Name] = base + devserver.IssuerJWKSPath
	env[config.JWTIssuer.Name] = base + devserver.IssuerPath
	env[config.JWTAudience.Name] = audience
	env[config.AllowPrivateTargets.Name] = "true" // the handshake client below is loopback-only anyway
	cfg, err := config.FromMap(env)
	if err != nil {
		return 0, err
	}
	logf, err := os.Create(filepath.Join(logDir, "schemathesis-api.log"))
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	h, err := wiring.API(ctx, cfg, awsCfg, wiring.APIOptions{
		Logger:          slog.New(slog.NewJSONHandler(logf, nil)),
		HandshakeClient: loopbackOnlyClient(),
	})
	if err != nil {
		return 0, err
	}
	page, err := portal.NewHandler(api.BasePath, cfg.PortalFrameAncestors, api.RouteKeys())
	if err != nil {
		return 0, err
	}
	srv := devserver.NewServer(devserver.Root(h, page, issuer.JWKSHandler()))
	go func() {
		if err := srv.Serve(devserver.Listener(ln)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "server stopped:", err)
		}
	}()
	defer srv.Close()

	token, err := issuer.Mint("schemathesis-tenant", []string{api.ScopeRead, api.ScopeWrite, api.ScopeReplay}, 2*time.Hour)
	if err != nil {
		return 0, err
	}
	args := append([]string{"run", filepath.Join(root, "docs", "openapi.yaml"),
		"--url", base,
		"--header", "Authorization: Bearer " + token,
		"--checks", "all",
		"--exclude-checks", "positive_data_acceptance",
		// The default rule admits 10 requests per tenant per second (5 a minute for replays):
		// 429s are documented answers, but a pace under the limit tests the operations.
		"--rate-limit", "9/s",
		"--workers", "1",
		"--generation-database", filepath.Join(logDir, "schemathesis-examples"),
		"--report", "junit",
		"--report-junit-path", filepath.Join(logDir, "schemathesis-junit.xml"),
	}, extra...)
	fmt.Fprintf(os.Stderr, "schemathesis %s against %s (API log: .local/schemathesis-api.log)\n", filepath.Base(bin), base)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Dir = logDir // what schemathesis keeps for itself (.schemathesis/) goes to .local too
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	return 0, err
}

// loopbackOnlyClient is the challenge handshake's client for this run: it dials only IP
// literals on loopback (no DNS lookup of generated host names), follows no redirect and
// gives up fast.
func loopbackOnlyClient() *http.Client {
	dialer := &net.Dialer{Timeout: 2 * time.Second}
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
				host, _, err := net.SplitHostPort(address)
				if err != nil {
					return nil, err
				}
				ip, err := netip.ParseAddr(host)
				if err != nil || !ip.IsLoopback() {
					return nil, fmt.Errorf("schemathesis run: only loopback IP literals are dialled, not %q", host)
				}
				return dialer.DialContext(ctx, network, address)
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
