package store

import (
	"context"
	"errors"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/datajetty/webhooks/shared/dev/testenv"
	"github.com/datajetty/webhooks/shared/domain"
)

func newRateLimits(t *testing.T) *RateLimits {
	db, env := newStack(t)
	return NewRateLimits(db, env["WEBHOOKS_RATE_LIMIT_TABLE"])
}

// TestRateLimitWindowEdges: the limit holds across what would be a fixed window's boundary.
// Ten requests late in one second leave no room early in the next: the eleventh is admitted
// only once the first of the ten is a whole window old.
func TestRateLimitWindowEdges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newRateLimits(t)
	start := t0.Truncate(time.Second)
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }

	for i := 1; i <= 10; i++ {
		d, err := s.Take(ctx, "tenant-a", "default", 10, time.Second, at(950))
		if err != nil || !d.Allowed || d.Count != i || !d.Reset.Equal(at(1950)) {
			t.Fatalf("take %d at 0.95 s = %+v, %v; want allowed, count %d, reset at 1.95 s", i, d, err, i)
		}
	}
	for _, ms := range []int{1000, 1050, 1949} {
		d, err := s.Take(ctx, "tenant-a", "default", 10, time.Second, at(ms))
		if err != nil || d.Allowed || d.Count != 10 || !d.Reset.Equal(at(1950)) {
			t.Fatalf("take at %d ms = %+v, %v; want refused until 1.95 s (a fixed window would admit 10 more from 1 s)", ms, d, err)
		}
	}
	d, err := s.Take(ctx, "tenant-a", "default", 10, time.Second, at(1950))
	if err != nil || !d.Allowed || d.Count != 1 || !d.Reset.Equal(at(2950)) {
		t.Fatalf("take at 1.95 s = %+v, %v; want allowed, the only one in (0.95 s, 1.95 s]", d, err)
	}
	// Other tenants, and another rule, have their own budget.
	if d, err := s.Take(ctx, "tenant-b", "default", 10, time.Second, at(1000)); err != nil || !d.Allowed || d.Count != 1 {
		t.Fatalf("tenant-b = %+v, %v", d, err)
	}
	if d, err := s.Take(ctx, "tenant-a", "replay", 5, time.Minute, at(1000)); err != nil || !d.Allowed || d.Count != 1 {
		t.Fatalf("replay rule = %+v, %v", d, err)
	}
	if d, _ := s.Take(ctx, "tenant-a", "default", 0, time.Second, start); d.Allowed {
		t.Error("limit 0 admitted a request")
	}
	if _, err := s.Take(ctx, "tenant-a", "default", 10, time.Millisecond, start); err == nil {
		t.Error("a sub-second window was accepted")
	}
	if _, err := s.Take(ctx, "tenant-a", "default", maxRateLimit+1, time.Second, start); err == nil {
		t.Error("a limit above the maximum was accepted")
	}
}

// TestRateLimitHoldsOverEveryInterval feeds bursty random traffic through the limiter and
// checks both ways against the rule "at most limit in any window-long interval": no interval
// (t-window, t] holds more than limit admitted requests, and every refused request found
// exactly limit admitted in the window before it (the limiter is not stricter than the rule).
func TestRateLimitHoldsOverEveryInterval(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newRateLimits(t)
	const limit = 10
	window := time.Second
	rng := rand.New(rand.NewPCG(7, 11))
	var arrivals []time.Time
	for burst := 0; burst < 25; burst++ {
		// Bursts of up to 12 requests around random points of a 6 s stretch, packed at the
		// edges of seconds half of the time (where a fixed window lets twice the limit in).
		center := t0.Truncate(time.Second).Add(time.Duration(rng.IntN(6)) * time.Second)
		if burst%2 == 0 {
			center = center.Add(time.Duration(rng.IntN(100)-50) * time.Millisecond)
		} else {
			center = center.Add(time.Duration(rng.IntN(1000)) * time.Millisecond)
		}
		for range 1 + rng.IntN(12) {
			arrivals = append(arrivals, center.Add(time.Duration(rng.IntN(60))*time.Millisecond))
		}
	}
	sort.Slice(arrivals, func(i, j int) bool { return arrivals[i].Before(arrivals[j]) })
	arrivals = truncateMillis(arrivals)

	var admitted []time.Time
	inWindow := func(at time.Time) int {
		n := 0
		for _, a := range admitted {
			if a.After(at.Add(-window)) && !a.After(at) {
				n++
			}
		}
		return n
	}
	refused := 0
	for _, at := range arrivals {
		before := inWindow(at)
		d, err := s.Take(ctx, "tenant-a", "default", limit, window, at)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case d.Allowed && before >= limit:
			t.Fatalf("admitted at %s with %d already in the window", at.Format("15:04:05.000"), before)
		case !d.Allowed && before < limit:
			t.Fatalf("refused at %s with only %d in the window", at.Format("15:04:05.000"), before)
		}
		if d.Allowed {
			admitted = append(admitted, at)
			refused--
		}
		refused++
		if got := inWindow(at); d.Count != got {
			t.Fatalf("count at %s = %d, want %d", at.Format("15:04:05.000"), d.Count, got)
		}
	}
	worst := 0
	for _, a := range admitted {
		worst = max(worst, inWindow(a))
	}
	if worst > limit {
		t.Fatalf("%d admitted in one second; the limit is %d", worst, limit)
	}
	t.Logf("%d requests: %d admitted, %d refused; at most %d in any 1 s (a fixed window would have admitted up to %d in one)",
		len(arrivals), len(admitted), refused, worst, fixedWindowWorst(arrivals, limit, window))
}

// fixedWindowWorst is the most requests a fixed-window counter would admit, of these
// arrivals, within any window-long interval.
func fixedWindowWorst(arrivals []time.Time, limit int, window time.Duration) int {
	counts := map[int64]int{}
	var admitted []time.Time
	for _, at := range arrivals {
		w := at.UnixNano() / int64(window)
		if counts[w] < limit {
			counts[w]++
			admitted = append(admitted, at)
		}
	}
	worst := 0
	for i, a := range admitted {
		n := 0
		for _, b := range admitted[i:] {
			if b.Sub(a) < window {
				n++
			}
		}
		worst = max(worst, n)
	}
	return worst
}

func truncateMillis(ts []time.Time) []time.Time {
	for i := range ts {
		ts[i] = ts[i].Truncate(time.Millisecond)
	}
	return ts
}

// TestRateLimitConcurrentTakes: concurrent first requests (the log is created by one of
// them) and later ones, all at the same instant: exactly limit are admitted.
func TestRateLimitConcurrentTakes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, env := newStack(t)
	cfg := testenv.AWSConfig(t)
	var calls, tries atomic.Int32
	cfg.APIOptions = append(cfg.APIOptions, func(st *middleware.Stack) error {
		if err := st.Initialize.Add(middleware.InitializeMiddlewareFunc("countCalls", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			calls.Add(1)
			return next.HandleInitialize(ctx, in)
		}), middleware.After); err != nil {
			return err
		}
		// Inside the SDK's retry loop: once per try.
		return st.Finalize.Insert(middleware.FinalizeMiddlewareFunc("countTries", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			tries.Add(1)
			return next.HandleFinalize(ctx, in)
		}), "Retry", middleware.After)
	})
	s := NewRateLimits(dynamodb.NewFromConfig(cfg), env["WEBHOOKS_RATE_LIMIT_TABLE"])
	const limit, callers = 10, 30
	now := t0.Truncate(time.Minute).Add(5 * time.Second)

	var admitted, refused atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			d, err := s.Take(ctx, "tenant-a", "default", limit, time.Minute, now)
			switch {
			case err != nil:
				errs <- err
			case d.Allowed:
				admitted.Add(1)
			default:
				refused.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Never more than the limit. A try whose response was lost after DynamoDB applied it
	// (an emulator slowed by a loaded machine) is sent again by the SDK and takes a second
	// place in the log for one caller, so each retry may cost one admission; with no retry
	// exactly the limit is admitted.
	retries := int(tries.Load() - calls.Load())
	if a := int(admitted.Load()); a > limit || a < limit-retries || a+int(refused.Load()) != callers {
		t.Errorf("admitted %d and refused %d of %d with %d SDK retries; want %d admitted (one fewer per retry at most)", a, refused.Load(), callers, retries, limit)
	}
	if retries > 0 {
		t.Logf("the SDK retried %d calls", retries)
	}
}

func TestRateLimitDatabaseDown(t *testing.T) {
	t.Parallel()
	s := NewRateLimits(downClient(t), "ratelimits")
	d, err := s.Take(context.Background(), "tenant-a", "default", 10, time.Minute, t0)
	if d.Allowed || !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("Take = %+v, %v; want not allowed and domain.ErrUnavailable", d, err)
	}
}
