// Command dev runs the whole service locally with one command (`make dev`): it starts the
// moto emulator (unless AWS_ENDPOINT_URL points at one), creates the tables, queues, key
// and secret that template.yaml declares, starts a development token issuer (unless
// WEBHOOKS_JWKS_URL is set), serves every API route with the functions' own handler and the
// tenant portal, and prints a ready token, a curl command and portal links. Ctrl-C stops everything it started.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/config"
	"github.com/datajetty/webhooks/shared/dev/devissuer"
	"github.com/datajetty/webhooks/shared/dev/devstack"
	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/portal"
	"github.com/datajetty/webhooks/shared/wiring"
	"github.com/datajetty/webhooks/tools/internal/devserver"
)

const (
	devAudience = "datajetty-webhooks-local"
	demoTenant  = "demo-tenant"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := run(ctx, logger); err != nil {
		fmt.Fprintln(os.Stderr, "dev:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, logger *slog.Logger) error {
	root, err := devstack.RepoRoot()
	if err != nil {
		return err
	}
	addr := config.Addr.Get()
	emu, err := startEmulator(ctx, root)
	if err != nil {
		return err
	}
	defer emu.Stop()
	awsCfg, err := wiring.LoadAWS(ctx)
	if err != nil {
		return err
	}

	stack, err := devstack.Provision(ctx, awsCfg, filepath.Join(root, "template.yaml"), devstack.Options{Prefix: "dev-"})
	if err != nil {
		return fmt.Errorf("create local resources from template.yaml: %w", err)
	}
	env := stack.Env
	env[config.AllowPrivateTargets.Name] = "true" // local receivers live on loopback
	var issuer *devissuer.Issuer
	if url := os.Getenv(config.JWKSURL.Name); url != "" {
		env[config.JWKSURL.Name] = url
		env[config.JWTIssuer.Name] = os.Getenv(config.JWTIssuer.Name)
		env[config.JWTAudience.Name] = os.Getenv(config.JWTAudience.Name)
	} else {
		iss := "http://" + addr + "/dev-issuer" // devserver.IssuerPath
		issuer, err = devissuer.LoadOrCreate(filepath.Join(root, ".local", "dev-issuer.pem"), iss, devAudience)
		if err != nil {
			return err
		}
		env[config.JWKSURL.Name] = iss + "/.well-known/jwks.json"
		env[config.JWTIssuer.Name] = iss
		env[config.JWTAudience.Name] = devAudience
	}
	for _, v := range []config.Var{config.TenantClaim, config.PortalFrameAncestors} {
		if s := os.Getenv(v.Name); s != "" {
			env[v.Name] = s
		}
	}
	// The server answers before the API handler is built: the handler's cold start fetches
	// the token issuer's JWKS, which this server serves for the development issuer.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s (set %s to use another address): %w", addr, config.Addr.Name, err)
	}
	var jwks http.Handler
	if issuer != nil {
		jwks = issuer.JWKSHandler()
	}
	var apiHandler, portalHandler lateHandler
	srv := devserver.NewServer(devserver.Root(&apiHandler, &portalHandler, jwks))
	go func() {
		if err := srv.Serve(devserver.Listener(ln)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("server stopped", "error", err)
		}
	}()
	defer srv.Close() // on an error before the orderly shutdown below

	cfg, err := config.FromMap(env)
	if err != nil {
		return err
	}
	h, err := wiring.API(ctx, cfg, awsCfg, wiring.APIOptions{Logger: logger})
	if err != nil {
		return err
	}
	page, err := portal.NewHandler(api.BasePath, cfg.PortalFrameAncestors, api.RouteKeys())
	if err != nil {
		return err
	}
	apiHandler.set(h)
	portalHandler.set(page)
	consumersDone := &wiring.Shutdown{}
	if err := startConsumers(ctx, cfg, awsCfg, stack, logger, consumersDone); err != nil {
		return err
	}
	env[config.IngestQueueURL.Name] = stack.Resources["IngestQueue"]

	if err := writeEnvFile(root, env); err != nil {
		return err
	}
	// The file describes this run's emulator; it must not outlive it.
	defer os.Remove(filepath.Join(root, ".local", "dev.env"))
	demo, err := startDemoReceiver(ctx, addr, issuer)
	if err != nil {
		return err
	}
	printBanner(addr, issuer, env, demo)
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "\nstopping…")
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	consumersDone.Run(shutdown)
	return srv.Shutdown(shutdown)
}

func printBanner(addr string, issuer *devissuer.Issuer, env map[string]string, demo string) {
	base := "http://" + addr + api.BasePath
	fmt.Printf("\nDataJetty Webhooks is running locally.\n  API:      %s\n  Emulator: %s\n", base, os.Getenv("AWS_ENDPOINT_URL"))
	if issuer == nil {
		fmt.Printf("  Tokens:   verified against %s\n\n", env[config.JWKSURL.Name])
		return
	}
	tok, err := issuer.Mint(demoTenant, []string{api.ScopeRead, api.ScopeWrite, api.ScopeReplay}, 24*time.Hour)
	if err != nil {
		fmt.Println("  could not mint a demo token:", err)
		return
	}
	fmt.Printf("  Tenant:   %s (token valid 24 h, scopes webhooks:read webhooks:write webhooks:replay)\n\n", demoTenant)
	fmt.Printf("export TOKEN=%s\n\n", tok)
	fmt.Printf("curl -s %s/endpoints -H \"Authorization: Bearer $TOKEN\"\n\n", base)
	fmt.Printf("The tenant portal (open in a browser; the token travels in the fragment):\n  %s%s/#token=%s\n", base, portal.Prefix, tok)
	if ro, err := issuer.Mint(demoTenant, []string{api.ScopeRead}, 24*time.Hour); err == nil {
		fmt.Printf("Read-only portal (webhooks:read):\n  %s%s/#token=%s\n", base, portal.Prefix, ro)
	}
	fmt.Println()
	if demo != "" {
		fmt.Printf("A demo receiver on %s is registered for every event of %s (%s).\n", demo, demoTenant, "events [\"*\"]")
		fmt.Println("Publish a sample event in another terminal and watch the signed delivery arrive here:")
		fmt.Println("  make publish")
		fmt.Println()
	}
	fmt.Println("Ctrl-C stops the server, the consumers and the emulator.")
}

// writeEnvFile records the resolved configuration for other local tools (make invoke).
func writeEnvFile(root string, env map[string]string) error {
	dir := filepath.Join(root, ".local")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, "dev.env"), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(f, "AWS_ENDPOINT_URL=%s\n", os.Getenv("AWS_ENDPOINT_URL"))
	fmt.Fprintf(f, "AWS_REGION=%s\n", envOr("AWS_REGION", "us-east-1"))
	for k, v := range env {
		fmt.Fprintf(f, "%s=%s\n", k, v)
	}
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// lateHandler is a handler set once the server is already listening; until then it answers
// 503 with the API's error body.
type lateHandler struct{ h atomic.Pointer[http.Handler] }

func (l *lateHandler) set(h http.Handler) { l.h.Store(&h) }

func (l *lateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := l.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	id := domain.NewID("req_")
	status, body := api.RenderError(domain.Unavailable("the local server", errors.New("still starting")), id)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Request-Id", id)
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
