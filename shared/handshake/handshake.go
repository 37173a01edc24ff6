// Package handshake proves that whoever registers a webhook URL controls the receiver: we
// POST a signed, random challenge and the endpoint must echo it back. Without this, a tenant
// could point deliveries (and our retries) at someone else's server.
//
// Errors are written to be shown to the tenant as-is: they say what went wrong but never
// carry the response body, the signing secret, or the IP address a host resolved to.
package handshake

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/datajetty/webhooks/shared/signing"
	"github.com/datajetty/webhooks/shared/ssrf"
)

// DefaultTimeout bounds a handshake when Challenger.Timeout is zero. Registration is an
// interactive API call, so a receiver gets seconds, not the delivery retry budget.
const DefaultTimeout = 5 * time.Second

// EventType is the "type" field of the challenge payload, so receivers can tell it apart
// from real events.
const EventType = "webhook.challenge"

// maxResponseBytes caps how much of the answer we read: an echo is ~60 bytes, and the
// receiver is untrusted.
const maxResponseBytes = 4 << 10

// Kind classifies a handshake failure so callers can map it (e.g. to an API error code)
// without parsing text.
type Kind int

// Failure kinds.
const (
	// KindBlocked: the URL or the address it resolved to is not an allowed destination.
	KindBlocked Kind = iota + 1
	// KindTimeout: no complete answer within the timeout.
	KindTimeout
	// KindConnect: DNS failure, connection refused/reset, or TLS failure.
	KindConnect
	// KindStatus: the endpoint answered with a non-2xx status (3xx included: redirects are
	// not followed).
	KindStatus
	// KindEcho: the endpoint answered 2xx but did not echo the challenge.
	KindEcho
)

// String returns a stable lower-case name, suitable for metrics and API error codes.
func (k Kind) String() string {
	switch k {
	case KindBlocked:
		return "blocked"
	case KindTimeout:
		return "timeout"
	case KindConnect:
		return "connect"
	case KindStatus:
		return "status"
	case KindEcho:
		return "echo"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Error is a failed handshake. Its message is safe to return to the tenant.
type Error struct {
	Kind Kind
	// URL is the endpoint with user info, query and fragment removed (they may hold
	// credentials); "" if the URL could not be parsed.
	URL string
	// StatusCode is the HTTP status for KindStatus and KindEcho.
	StatusCode int
	// Timeout is the limit that expired, for KindTimeout.
	Timeout time.Duration
	// Detail is a short client-safe explanation (the blocked category, "connection
	// refused", ...); it never contains addresses or response content.
	Detail string
	// Err is the underlying cause, for logs; it may contain resolved addresses, so it is
	// not part of Error().
	Err error
}

// Error renders the client-safe message, e.g. "challenge handshake failed:
// https://host/path answered HTTP 500 (expected 2xx echoing the challenge)".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("challenge handshake failed: ")
	if e.URL != "" {
		b.WriteString(e.URL)
		b.WriteByte(' ')
	}
	switch e.Kind {
	case KindBlocked:
		b.WriteString("destination is not allowed: ")
		b.WriteString(e.Detail)
	case KindTimeout:
		fmt.Fprintf(&b, "did not answer within %s", e.Timeout)
	case KindConnect:
		b.WriteString("could not be reached: ")
		b.WriteString(e.Detail)
	case KindStatus:
		fmt.Fprintf(&b, "answered HTTP %d (", e.StatusCode)
		if e.StatusCode >= 300 && e.StatusCode < 400 {
			b.WriteString("redirects are not followed; ")
		}
		b.WriteString("expected 2xx echoing the challenge)")
	case KindEcho:
		fmt.Fprintf(&b, "answered HTTP %d but did not echo the challenge", e.StatusCode)
		if e.Detail != "" {
			b.WriteString(" (")
			b.WriteString(e.Detail)
			b.WriteByte(')')
		}
	default:
		b.WriteString("unknown error")
	}
	return b.String()
}

// Unwrap returns the underlying cause, so errors.Is(err, ssrf.ErrBlockedDestination) and
// errors.Is(err, context.DeadlineExceeded) keep working.
func (e *Error) Unwrap() error { return e.Err }

// Challenger runs ownership handshakes. The zero value is usable.
type Challenger struct {
	// Client sends the challenge. It should come from ssrf.NewClient; when nil, a client
	// with the production ssrf.Policy is used (never http.DefaultClient, which has no
	// destination guard). Redirects are never followed whatever its CheckRedirect says.
	Client *http.Client
	// Timeout bounds the whole exchange, body included; DefaultTimeout when zero.
	Timeout time.Duration
	// UserAgent is sent as the User-Agent header; Go's default when empty.
	UserAgent string
}

var (
	defaultClientOnce sync.Once
	defaultClient     *http.Client
)

// guardedDefault is shared so handshakes reuse its connection pool.
func guardedDefault() *http.Client {
	defaultClientOnce.Do(func() { defaultClient = ssrf.NewClient(ssrf.Policy{}, 0) })
	return defaultClient
}

type challengeRequest struct {
	Type      string `json:"type"`
	Challenge string `json:"challenge"`
}

type challengeResponse struct {
	Challenge *string `json:"challenge"`
}

// Verify POSTs a signed challenge to rawURL and returns nil if the endpoint answers 2xx
// echoing it, either as JSON {"challenge":"..."} or as the bare value in a text body.
// Endpoint failures are *Error. If ctx itself ends first, the caller gave up rather than
// the endpoint failing, so a plain error wrapping ctx's cause is returned instead.
func (c *Challenger) Verify(ctx context.Context, rawURL string, secret signing.Secret) error {
	u, err := url.Parse(rawURL)
	if err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		display := ""
		if err == nil {
			display = displayURL(u)
		}
		return &Error{Kind: KindBlocked, URL: display, Detail: "the URL must be an absolute http or https URL", Err: err}
	}
	display := displayURL(u)
	// A zero secret would send an empty signature header: a caller bug, not an endpoint
	// failure, so it is not reported as *Error.
	if secret.IsZero() {
		return errors.New("challenge handshake: no signing secret")
	}

	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	client := c.Client
	if client == nil {
		client = guardedDefault()
	}
	// A shallow copy lets us force the no-redirect rule without mutating a shared client:
	// following a redirect would let the endpoint send our signed request anywhere.
	noFollow := *client
	noFollow.CheckRedirect = ssrf.NoRedirect

	challenge, err := randomToken(32)
	if err != nil {
		return fmt.Errorf("challenge handshake: %w", err)
	}
	msgRand, err := randomToken(18)
	if err != nil {
		return fmt.Errorf("challenge handshake: %w", err)
	}
	body, err := json.Marshal(challengeRequest{Type: EventType, Challenge: challenge})
	if err != nil {
		return fmt.Errorf("challenge handshake: %w", err)
	}

	reqCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return &Error{Kind: KindBlocked, URL: display, Detail: "the URL cannot be requested", Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	signing.SetHeaders(req.Header, "msg_"+msgRand, time.Now(), body, secret)

	resp, err := noFollow.Do(req)
	if err != nil {
		return c.transportError(ctx, display, timeout, err)
	}
	defer resp.Body.Close()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &Error{Kind: KindStatus, URL: display, StatusCode: resp.StatusCode}
	}
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return c.transportError(ctx, display, timeout, err)
	}
	if !echoes(answer, challenge) {
		detail := ""
		if len(bytes.TrimSpace(answer)) == 0 {
			detail = "empty body"
		}
		return &Error{Kind: KindEcho, URL: display, StatusCode: resp.StatusCode, Detail: detail}
	}
	return nil
}

// echoes accepts JSON {"challenge": value} or the bare value, whatever the Content-Type,
// because receivers written in a hurry rarely set it correctly.
func echoes(answer []byte, challenge string) bool {
	trimmed := bytes.TrimSpace(answer)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		var r challengeResponse
		if json.Unmarshal(trimmed, &r) == nil && r.Challenge != nil {
			return *r.Challenge == challenge
		}
		return false
	}
	return string(trimmed) == challenge
}

// transportError classifies a failure from Do or from reading the body.
func (c *Challenger) transportError(parent context.Context, display string, timeout time.Duration, err error) error {
	var blocked *ssrf.BlockedError
	switch {
	case errors.As(err, &blocked):
		// Only the category: the address reveals what our resolver answered for the host,
		// which is internal information when the host is an internal name.
		return &Error{Kind: KindBlocked, URL: display, Detail: "it resolves to " + blocked.Reason, Err: err}
	case ssrf.IsBlocked(err):
		return &Error{Kind: KindBlocked, URL: display, Detail: "it is not a public address", Err: err}
	case parent.Err() != nil:
		return fmt.Errorf("challenge handshake aborted: %w", context.Cause(parent))
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return &Error{Kind: KindTimeout, URL: display, Timeout: timeout, Err: err}
	}
	return &Error{Kind: KindConnect, URL: display, Detail: connectDetail(err), Err: err}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// connectDetail names the failure without echoing the low-level message, which contains
// the resolved IP address.
func connectDetail(err error) string {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var recErr tls.RecordHeaderError
	var alert tls.AlertError
	switch {
	case errors.As(err, &dnsErr):
		return "the host name could not be resolved"
	case errors.As(err, &certErr):
		return "its TLS certificate is not valid for this host"
	case errors.As(err, &recErr), errors.As(err, &alert):
		return "the TLS handshake failed"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the connection was closed before a complete response"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "the host is unreachable"
	}
	return "the connection failed"
}

// displayURL drops user info, query and fragment, which may carry credentials the tenant
// would not want echoed into logs or UIs.
func displayURL(u *url.URL) string {
	v := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return v.String()
}

func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
