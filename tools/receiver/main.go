// Command receiver is the demo webhook receiver of `make dev`: it answers the ownership
// challenge and, for every delivery, verifies the Standard Webhooks signature with the
// official Go library and prints one line per delivery plus the payload.
//
//	go run ./tools/receiver [-addr 127.0.0.1:8081] [-secret whsec_…]
//
// The secret is the endpoint's signing secret (-secret, else WEBHOOKS_DEMO_SECRET). Without
// one, the receiver makes one up and prints it: register the endpoint with it
// ("secret" in POST /endpoints). A delivery whose signature does not verify is answered
// 401, which the service treats as a failed attempt and retries.
package main

import (
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/datajetty/webhooks/shared/config"
	"github.com/datajetty/webhooks/tools/internal/devreceiver"
)

func main() {
	addr := flag.String("addr", config.DemoAddr.Default, "listen address")
	secret := flag.String("secret", config.DemoSecret.Get(), "endpoint signing secret, whsec_… (default $"+config.DemoSecret.Name+")")
	flag.Parse()
	if err := run(*addr, *secret); err != nil {
		fmt.Fprintln(os.Stderr, "receiver:", err)
		os.Exit(1)
	}
}

func run(addr, secret string) error {
	if secret == "" {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		secret = "whsec_" + base64.StdEncoding.EncodeToString(b[:])
		fmt.Printf("no -secret or WEBHOOKS_DEMO_SECRET given; register the endpoint with this secret:\n  %s\n", secret)
	} else if err := devreceiver.CheckSecret(secret); err != nil {
		return err
	}
	srv := &http.Server{
		Addr:              addr,
		Handler:           devreceiver.NewHandler(secret, os.Stdout),
		ReadHeaderTimeout: 10 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	fmt.Printf("demo receiver listening on http://%s/ (Ctrl-C stops it)\n", addr)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case err := <-errc:
		return err
	case <-sig:
		return srv.Close()
	}
}
