// Package sender makes the service's signed POSTs to tenants' endpoints: the deliver
// function's deliveries (shared/delivery) and POST /endpoints/{endpoint_id}/test send
// through the same Sender, and their failures get the same error classes. It links no AWS
// client, so an API function that sends a test does not link the queues'.
package sender

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/signing"
	"github.com/datajetty/webhooks/shared/ssrf"
)

// Error classes recorded for failed attempts.
const (
	ClassTimeout  = "timeout"
	ClassConnect  = "connect"
	ClassBlocked  = "blocked"
	ClassTLS      = "tls"
	ClassRedirect = "redirect"
	ClassHTTP4xx  = "http_4xx"
	ClassHTTP5xx  = "http_5xx"
	ClassGone     = "gone"
)

// Bounds of a receiver's Retry-After: shorter would hammer a struggling receiver, and
// longer than SQS can hold a message invisible is impossible to honour.
const (
	minRetryAfter = 5 * time.Second
	maxRetryAfter = 12 * time.Hour
)

// The production limits of one POST (shared/delivery.DefaultOptions uses them too).
const (
	// DefaultTimeout bounds one POST, from dialling to the response headers.
	DefaultTimeout = 15 * time.Second
	// DefaultMaxResponseBytes caps how much of a response body is read.
	DefaultMaxResponseBytes = 64 << 10
)

// Sender makes one signed POST exactly as every delivery does: the Standard Webhooks
// headers, the service's User-Agent, its client (in production ssrf.NewClient: the
// destination checked at dial time, redirects not followed) and a capped read of the
// response. The deliver function's Handler sends through one; POST /endpoints/{id}/test
// sends through another built the same way (shared/wiring/apifn), so a test exercises
// the real path.
type Sender struct {
	Client           *http.Client
	UserAgent        string
	Timeout          time.Duration // bounds one POST, from dialling to the response headers
	MaxResponseBytes int64         // how much of a response body is read
}

// Send POSTs body to url as message msgID, signed at now with every secret given, and
// keeps the first keep bytes of the response body (0: none). The response body is read up
// to MaxResponseBytes and then dropped: reading lets the connection be reused, the cap
// keeps a hostile receiver from streaming at us. The content is never logged.
func (s Sender) Send(ctx context.Context, url, msgID string, body []byte, secrets []signing.Secret, now time.Time, keep int) domain.PostResult {
	if s.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return domain.PostResult{Class: ClassConnect}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", s.UserAgent)
	signing.SetHeaders(req.Header, msgID, now, body, secrets...)

	start := time.Now()
	resp, err := s.Client.Do(req)
	latency := time.Since(start)
	if err != nil {
		return domain.PostResult{Class: ErrorClass(err), Latency: latency}
	}
	defer resp.Body.Close()
	r := domain.PostResult{Status: resp.StatusCode, Class: StatusClass(resp.StatusCode), Latency: latency}
	limited := io.LimitReader(resp.Body, s.MaxResponseBytes)
	if keep > 0 {
		head, _ := io.ReadAll(io.LimitReader(limited, int64(keep)+1))
		if len(head) > keep {
			head, r.Truncated = head[:keep], true
		}
		r.Excerpt = head
	}
	_, _ = io.Copy(io.Discard, limited)
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		r.RetryAfter = RetryAfter(resp.Header.Get("Retry-After"), now)
	}
	return r
}

// StatusClass classifies an HTTP status: "" for 2xx, else the attempt's error class.
// Redirects are failures because they are not followed (the target would be another,
// unvetted URL).
func StatusClass(code int) string {
	switch {
	case code >= 200 && code < 300:
		return ""
	case code == http.StatusGone:
		return ClassGone
	case code >= 300 && code < 400:
		return ClassRedirect
	case code >= 400 && code < 500:
		return ClassHTTP4xx
	default:
		return ClassHTTP5xx
	}
}

// ErrorClass classifies a failed exchange with no HTTP response.
func ErrorClass(err error) string {
	if ssrf.IsBlocked(err) {
		return ClassBlocked
	}
	var (
		netErr    net.Error
		recordErr tls.RecordHeaderError
		alert     tls.AlertError
		verify    *tls.CertificateVerificationError
		authority x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return ClassTimeout
	case errors.As(err, &recordErr), errors.As(err, &alert), errors.As(err, &verify),
		errors.As(err, &authority), errors.As(err, &hostname), errors.As(err, &invalid):
		return ClassTLS
	}
	return ClassConnect
}

// RetryAfter parses a Retry-After value (delay-seconds or an HTTP-date) and returns the
// delay if it is within [minRetryAfter, maxRetryAfter], else 0 (use the schedule).
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 || secs > int64(maxRetryAfter/time.Second) {
			return 0
		}
		d = time.Duration(secs) * time.Second
	} else if at, err := http.ParseTime(v); err == nil {
		d = at.Sub(now)
	} else {
		return 0
	}
	if d < minRetryAfter || d > maxRetryAfter {
		return 0
	}
	return d
}
