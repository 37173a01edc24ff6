package handshake_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/datajetty/webhooks/shared/handshake"
	"github.com/datajetty/webhooks/shared/signing"
	"github.com/datajetty/webhooks/shared/ssrf"
)

// bodyMarker is written by misbehaving receivers; it must never surface in an error.
const bodyMarker = "RECEIVER-BODY-MARKER"

// seen is what a receiver observed, checked by the test after Verify returns.
type seen struct {
	mu        sync.Mutex
	hits      int
	verifyErr error
	header    http.Header
	payload   map[string]any
}

// receiver starts a loopback server that decodes the challenge and hands it to respond.
func receiver(t *testing.T, secret signing.Secret, respond func(w http.ResponseWriter, r *http.Request, challenge string)) (*httptest.Server, *seen) {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret.Encode())
	if err != nil {
		t.Fatal(err)
	}
	s := &seen{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var payload map[string]any
		_ = json.Unmarshal(body, &payload)
		s.mu.Lock()
		s.hits++
		s.verifyErr = wh.Verify(body, r.Header)
		s.header = r.Header.Clone()
		s.payload = payload
		s.mu.Unlock()
		challenge, _ := payload["challenge"].(string)
		respond(w, r, challenge)
	}))
	t.Cleanup(srv.Close)
	return srv, s
}

// observation is a race-free copy of what a receiver saw.
type observation struct {
	hits      int
	verifyErr error
	header    http.Header
	payload   map[string]any
}

func (s *seen) snapshot() observation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return observation{s.hits, s.verifyErr, s.header, s.payload}
}

func newSecret(t *testing.T) signing.Secret {
	t.Helper()
	s, err := signing.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func loopbackChallenger(timeout time.Duration) *handshake.Challenger {
	return &handshake.Challenger{
		Client:    ssrf.NewClient(ssrf.Policy{AllowPrivate: true}, 0),
		Timeout:   timeout,
		UserAgent: "datajetty-webhooks-test/1",
	}
}

func writeStatus(status int, body string) func(http.ResponseWriter, *http.Request, string) {
	return func(w http.ResponseWriter, _ *http.Request, _ string) {
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func TestVerifyAgainstReceivers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		path     string
		respond  func(w http.ResponseWriter, r *http.Request, challenge string)
		wantKind handshake.Kind // 0 means success
		wantMsg  string
	}{
		{
			name: "json echo",
			respond: func(w http.ResponseWriter, _ *http.Request, c string) {
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(map[string]string{"challenge": c})
			},
		},
		{
			name: "json echo with extra fields",
			respond: func(w http.ResponseWriter, _ *http.Request, c string) {
				_, _ = fmt.Fprintf(w, `{"ok":true,"challenge":%q}`, c)
			},
		},
		{
			name: "plain echo",
			respond: func(w http.ResponseWriter, _ *http.Request, c string) {
				w.Header().Set("Content-Type", "text/plain")
				_, _ = io.WriteString(w, "\n  "+c+"\r\n")
			},
		},
		{
			name: "202 plain echo",
			respond: func(w http.ResponseWriter, _ *http.Request, c string) {
				w.WriteHeader(http.StatusAccepted)
				_, _ = io.WriteString(w, c)
			},
		},
		{
			name:     "server error",
			path:     "/hooks/in",
			respond:  writeStatus(http.StatusInternalServerError, bodyMarker),
			wantKind: handshake.KindStatus,
			wantMsg:  "/hooks/in answered HTTP 500 (expected 2xx echoing the challenge)",
		},
		{
			name: "404 echoing anyway",
			respond: func(w http.ResponseWriter, _ *http.Request, c string) {
				w.WriteHeader(http.StatusNotFound)
				_, _ = io.WriteString(w, c)
			},
			wantKind: handshake.KindStatus,
			wantMsg:  "answered HTTP 404 (expected 2xx echoing the challenge)",
		},
		{
			name:     "wrong echo",
			respond:  writeStatus(http.StatusOK, bodyMarker),
			wantKind: handshake.KindEcho,
			wantMsg:  "answered HTTP 200 but did not echo the challenge",
		},
		{
			name: "wrong json echo",
			respond: func(w http.ResponseWriter, _ *http.Request, c string) {
				_, _ = fmt.Fprintf(w, `{"challenge":%q}`, c+"x")
			},
			wantKind: handshake.KindEcho,
		},
		{
			name: "json echo under another key",
			respond: func(w http.ResponseWriter, _ *http.Request, c string) {
				_, _ = fmt.Fprintf(w, `{"data":%q}`, c)
			},
			wantKind: handshake.KindEcho,
		},
		{
			name:     "missing echo",
			respond:  writeStatus(http.StatusOK, ""),
			wantKind: handshake.KindEcho,
			wantMsg:  "did not echo the challenge (empty body)",
		},
		{
			name:     "no content",
			respond:  writeStatus(http.StatusNoContent, ""),
			wantKind: handshake.KindEcho,
			wantMsg:  "answered HTTP 204 but did not echo the challenge",
		},
		{
			name: "echo beyond the 4 KiB read limit",
			respond: func(w http.ResponseWriter, _ *http.Request, c string) {
				_, _ = io.WriteString(w, strings.Repeat(" ", 5000)+c)
			},
			wantKind: handshake.KindEcho,
		},
		{
			name: "echo plus trailing text",
			respond: func(w http.ResponseWriter, _ *http.Request, c string) {
				_, _ = io.WriteString(w, c+" "+bodyMarker)
			},
			wantKind: handshake.KindEcho,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			secret := newSecret(t)
			srv, s := receiver(t, secret, tc.respond)
			err := loopbackChallenger(5*time.Second).Verify(context.Background(), srv.URL+tc.path, secret)

			obs := s.snapshot()
			hits, verifyErr, header, payload := obs.hits, obs.verifyErr, obs.header, obs.payload
			if hits != 1 {
				t.Fatalf("receiver got %d requests, want 1", hits)
			}
			// Every challenge, whatever the outcome, must be a valid signed delivery.
			if verifyErr != nil {
				t.Errorf("official verifier rejected the challenge: %v", verifyErr)
			}
			if got := header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q", got)
			}
			if got := header.Get("User-Agent"); got != "datajetty-webhooks-test/1" {
				t.Errorf("User-Agent %q", got)
			}
			if !strings.HasPrefix(header.Get("webhook-id"), "msg_") {
				t.Errorf("webhook-id %q lacks the msg_ prefix", header.Get("webhook-id"))
			}
			if payload["type"] != "webhook.challenge" {
				t.Errorf("payload type %v", payload["type"])
			}
			c, _ := payload["challenge"].(string)
			if raw, err := base64.RawURLEncoding.DecodeString(c); err != nil || len(raw) != 32 {
				t.Errorf("challenge %q is not 32 random bytes in base64url", c)
			}

			if tc.wantKind == 0 {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			checkError(t, err, tc.wantKind, tc.wantMsg, secret)
		})
	}
}

// checkError asserts err is a *handshake.Error of kind whose message contains msg and
// leaks neither the secret nor the receiver's body.
func checkError(t *testing.T, err error, kind handshake.Kind, msg string, secret signing.Secret) *handshake.Error {
	t.Helper()
	var he *handshake.Error
	if !errors.As(err, &he) {
		t.Fatalf("Verify = %v (%T), want *handshake.Error", err, err)
	}
	if he.Kind != kind {
		t.Fatalf("Kind = %v, want %v (%v)", he.Kind, kind, err)
	}
	text := err.Error()
	if !strings.HasPrefix(text, "challenge handshake failed: ") {
		t.Errorf("message %q lacks the standard prefix", text)
	}
	if msg != "" && !strings.Contains(text, msg) {
		t.Errorf("message %q does not contain %q", text, msg)
	}
	for _, leak := range []string{bodyMarker, secret.Encode(), strings.TrimPrefix(secret.Encode(), "whsec_")} {
		if strings.Contains(text, leak) {
			t.Errorf("message %q leaks %q", text, leak)
		}
	}
	return he
}

func TestVerifyRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	secret := newSecret(t)
	var targetHits atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		targetHits.Add(1)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	// A client that would follow redirects: Verify must override it.
	followingClient := ssrf.NewClient(ssrf.Policy{AllowPrivate: true}, 0)
	followingClient.CheckRedirect = nil

	for _, tc := range []struct {
		name   string
		client *http.Client
	}{
		{"ssrf client", ssrf.NewClient(ssrf.Policy{AllowPrivate: true}, 0)},
		{"client that follows redirects", followingClient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := &handshake.Challenger{Client: tc.client}
			err := c.Verify(context.Background(), srv.URL+"/hook", secret)
			he := checkError(t, err, handshake.KindStatus, "answered HTTP 302 (redirects are not followed; expected 2xx echoing the challenge)", secret)
			if he.StatusCode != http.StatusFound {
				t.Errorf("StatusCode %d", he.StatusCode)
			}
			if n := targetHits.Load(); n != 0 {
				t.Fatalf("redirect target was requested %d times", n)
			}
		})
	}
	// Parallel subtests run after this function returns; check once they are done.
	t.Cleanup(func() {
		if followingClient.CheckRedirect != nil {
			t.Error("Verify mutated the caller's client")
		}
	})
}

func TestVerifyTimeout(t *testing.T) {
	t.Parallel()
	secret := newSecret(t)
	release := make(chan struct{})
	srv, _ := receiver(t, secret, func(w http.ResponseWriter, r *http.Request, c string) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	// Registered after receiver's srv.Close, so it runs first and Close does not wait on
	// a handler that is still parked.
	t.Cleanup(func() { close(release) })

	err := loopbackChallenger(200*time.Millisecond).Verify(context.Background(), srv.URL, secret)
	he := checkError(t, err, handshake.KindTimeout, "did not answer within 200ms", secret)
	if he.Timeout != 200*time.Millisecond {
		t.Errorf("Timeout %v", he.Timeout)
	}
}

func TestVerifyCallerCancel(t *testing.T) {
	t.Parallel()
	secret := newSecret(t)
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	srv, _ := receiver(t, secret, func(w http.ResponseWriter, r *http.Request, c string) {
		cancel() // the caller gives up while the endpoint is still working
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })

	err := loopbackChallenger(time.Minute).Verify(ctx, srv.URL, secret)
	var he *handshake.Error
	if errors.As(err, &he) {
		t.Fatalf("caller cancellation reported as endpoint failure: %v", err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify = %v, want context.Canceled", err)
	}
}

func TestVerifyConnectionRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	secret := newSecret(t)
	err = loopbackChallenger(5*time.Second).Verify(context.Background(), "http://"+addr+"/hook", secret)
	checkError(t, err, handshake.KindConnect, "could not be reached: connection refused", secret)
}

func TestVerifyBlocked(t *testing.T) {
	t.Parallel()
	secret := newSecret(t)
	tests := []struct {
		name    string
		client  *http.Client // nil exercises the guarded default
		host    string
		wantMsg string
	}{
		{"production policy, IP literal", ssrf.NewClient(ssrf.Policy{}, 0), "127.0.0.1", "destination is not allowed: it resolves to a loopback address"},
		{"production policy, hostname", ssrf.NewClient(ssrf.Policy{}, 0), "localhost", "destination is not allowed: it resolves to a loopback address"},
		{"nil client uses the guarded default", nil, "localhost", "destination is not allowed: it resolves to a loopback address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, s := receiver(t, secret, writeStatus(http.StatusOK, ""))
			_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
			c := &handshake.Challenger{Client: tc.client}
			err := c.Verify(context.Background(), "http://"+tc.host+":"+port+"/hook", secret)
			checkError(t, err, handshake.KindBlocked, tc.wantMsg, secret)
			if !ssrf.IsBlocked(err) {
				t.Error("error does not unwrap to ssrf.ErrBlockedDestination")
			}
			if tc.host != "127.0.0.1" && strings.Contains(err.Error(), "127.0.0.1") {
				t.Errorf("message %q reveals the resolved address", err)
			}
			if hits := s.snapshot().hits; hits != 0 {
				t.Fatalf("receiver got %d requests, want none", hits)
			}
		})
	}
}

func TestVerifyBadURL(t *testing.T) {
	t.Parallel()
	secret := newSecret(t)
	for _, raw := range []string{"", "/relative/path", "ftp://example.com/x", "mailto:a@example.com", "http://%zz", "http:///nohost"} {
		t.Run(raw, func(t *testing.T) {
			t.Parallel()
			err := loopbackChallenger(0).Verify(context.Background(), raw, secret)
			checkError(t, err, handshake.KindBlocked, "destination is not allowed: the URL must be an absolute http or https URL", secret)
		})
	}
}

func TestVerifyZeroSecret(t *testing.T) {
	t.Parallel()
	err := loopbackChallenger(0).Verify(context.Background(), "https://example.com/hook", signing.Secret{})
	var he *handshake.Error
	if err == nil || errors.As(err, &he) {
		t.Fatalf("Verify with zero secret = %v, want a plain error", err)
	}
}

func TestErrorMessage(t *testing.T) {
	t.Parallel()
	cause := errors.New("dial tcp 10.0.0.7:443: secret internal detail")
	tests := []struct {
		name string
		err  *handshake.Error
		want string
	}{
		{"status", &handshake.Error{Kind: handshake.KindStatus, URL: "https://host/path", StatusCode: 500},
			"challenge handshake failed: https://host/path answered HTTP 500 (expected 2xx echoing the challenge)"},
		{"redirect", &handshake.Error{Kind: handshake.KindStatus, URL: "https://host/path", StatusCode: 301},
			"challenge handshake failed: https://host/path answered HTTP 301 (redirects are not followed; expected 2xx echoing the challenge)"},
		{"timeout", &handshake.Error{Kind: handshake.KindTimeout, URL: "https://host/path", Timeout: 5 * time.Second, Err: cause},
			"challenge handshake failed: https://host/path did not answer within 5s"},
		{"blocked", &handshake.Error{Kind: handshake.KindBlocked, URL: "https://host/path", Detail: "it resolves to a private address", Err: cause},
			"challenge handshake failed: https://host/path destination is not allowed: it resolves to a private address"},
		{"connect", &handshake.Error{Kind: handshake.KindConnect, URL: "https://host/path", Detail: "the TLS handshake failed", Err: cause},
			"challenge handshake failed: https://host/path could not be reached: the TLS handshake failed"},
		{"echo", &handshake.Error{Kind: handshake.KindEcho, URL: "https://host/path", StatusCode: 200},
			"challenge handshake failed: https://host/path answered HTTP 200 but did not echo the challenge"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q\nwant      %q", got, tc.want)
			}
			if tc.err.Err != nil && !errors.Is(tc.err, cause) {
				t.Error("Unwrap does not reach the cause")
			}
		})
	}
}

func TestVerifyURLDisplayDropsCredentials(t *testing.T) {
	t.Parallel()
	secret := newSecret(t)
	srv, _ := receiver(t, secret, writeStatus(http.StatusTeapot, ""))
	u := strings.Replace(srv.URL, "http://", "http://user:hunter2@", 1) + "/in?token=tok_abc123#frag"
	err := loopbackChallenger(0).Verify(context.Background(), u, secret)
	he := checkError(t, err, handshake.KindStatus, "/in answered HTTP 418", secret)
	for _, leak := range []string{"hunter2", "user", "tok_abc123", "frag"} {
		if strings.Contains(err.Error(), leak) || strings.Contains(he.URL, leak) {
			t.Errorf("message %q leaks %q", err, leak)
		}
	}
}
