package api_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/app"
	"github.com/datajetty/webhooks/shared/auth"
	"github.com/datajetty/webhooks/shared/domain"
)

// A GET's rate-limit write and its read go out together; these fakes prove it without
// timing anything: each waits until the other has started, so a handler that made them one
// after the other would leave the first waiting (until patience runs out and it reports so).

const patience = 5 * time.Second

type readerAuth struct{}

func (readerAuth) Verify(context.Context, string) (auth.Principal, error) {
	return auth.Principal{TenantID: "acme", Scopes: []string{api.ScopeRead}}, nil
}

// meeting is where the limiter and the read wait for each other.
type meeting struct{ limit, read chan struct{} }

func newMeeting() *meeting { return &meeting{limit: make(chan struct{}), read: make(chan struct{})} }

// await closes mine and waits for theirs; false when theirs never came.
func await(mine, theirs chan struct{}) bool {
	close(mine)
	select {
	case <-theirs:
		return true
	case <-time.After(patience):
		return false
	}
}

type meetingLimiter struct {
	m     *meeting
	allow bool
	err   error
}

func (l meetingLimiter) Take(_ context.Context, _, _ string, _ int, window time.Duration, now time.Time) (app.RateDecision, error) {
	if !await(l.m.limit, l.m.read) {
		return app.RateDecision{}, errors.New("the read did not start while the rate limit was taken")
	}
	if l.err != nil {
		return app.RateDecision{}, l.err
	}
	if !l.allow {
		return app.RateDecision{Count: 10, Reset: now.Add(window)}, nil
	}
	return app.RateDecision{Allowed: true, Count: 1, Reset: now.Add(window)}, nil
}

// meetingReplays is the read: it answers not found (or panics), after meeting the limiter.
// With cancelled set it waits for its context to end, as a DynamoDB call would, and records
// how it ended.
type meetingReplays struct {
	app.ReplayStore
	m         *meeting
	panics    bool
	cancelled chan error
}

func (s meetingReplays) GetReplay(ctx context.Context, _, id string) (domain.Replay, error) {
	if !await(s.m.read, s.m.limit) {
		return domain.Replay{}, errors.New("the rate limit was not taken while the read ran")
	}
	if s.panics {
		panic("read exploded")
	}
	if s.cancelled != nil {
		select {
		case <-ctx.Done():
			s.cancelled <- ctx.Err()
		case <-time.After(patience):
			s.cancelled <- errors.New("not cancelled")
		}
		return domain.Replay{}, ctx.Err()
	}
	return domain.Replay{}, domain.NotFound("replay %s not found", id)
}

func TestReadRoutesTakeTheRateLimitWhileReading(t *testing.T) {
	t.Parallel()
	serve := func(t *testing.T, lim meetingLimiter, store meetingReplays) (*httptest.ResponseRecorder, string) {
		t.Helper()
		var logs bytes.Buffer
		h, err := api.NewHandler(api.Deps{Auth: readerAuth{}, RateLimiter: lim, Replays: &app.Replays{Store: store},
			Logger: slog.New(slog.NewJSONHandler(&logs, nil))}, api.RouteGetReplay)
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, api.BasePath+"/replays/"+domain.NewID(domain.ReplayIDPrefix), nil)
		req.Header.Set("Authorization", "Bearer x")
		h.ServeHTTP(rec, req)
		return rec, logs.String()
	}

	t.Run("admitted: the read's answer", func(t *testing.T) {
		t.Parallel()
		m := newMeeting()
		rec, _ := serve(t, meetingLimiter{m: m, allow: true}, meetingReplays{m: m})
		if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), `"error":"not_found"`) || rec.Header().Get("RateLimit-Remaining") != "9" {
			t.Fatalf("%d %s %v; want the read's 404 with the rate-limit headers", rec.Code, rec.Body, rec.Header())
		}
	})
	t.Run("refused: 429, the read cancelled and not logged", func(t *testing.T) {
		t.Parallel()
		m := newMeeting()
		cancelled := make(chan error, 1)
		rec, logs := serve(t, meetingLimiter{m: m}, meetingReplays{m: m, cancelled: cancelled})
		if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
			t.Fatalf("%d %s %v; want 429 with Retry-After", rec.Code, rec.Body, rec.Header())
		}
		if err := <-cancelled; !errors.Is(err, context.Canceled) {
			t.Errorf("the discarded read ended with %v, want its context cancelled", err)
		}
		if strings.Contains(logs, "request failed") {
			t.Errorf("the discarded read was logged as a failure:\n%s", logs)
		}
	})
	t.Run("rate limit unavailable: 503", func(t *testing.T) {
		t.Parallel()
		m := newMeeting()
		rec, _ := serve(t, meetingLimiter{m: m, err: &domain.Error{Kind: domain.KindUnavailable, Msg: "table down"}}, meetingReplays{m: m})
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"error":"dependency_down"`) {
			t.Fatalf("%d %s; want 503 dependency_down", rec.Code, rec.Body)
		}
	})
	t.Run("a panicking read: 500", func(t *testing.T) {
		t.Parallel()
		m := newMeeting()
		rec, logs := serve(t, meetingLimiter{m: m, allow: true}, meetingReplays{m: m, panics: true})
		if rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), "exploded") || !strings.Contains(logs, "read exploded") {
			t.Fatalf("%d %s; want 500 without internals, the panic logged", rec.Code, rec.Body)
		}
	})
}
