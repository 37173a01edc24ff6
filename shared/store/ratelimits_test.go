package store

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/datajetty/webhooks/shared/domain"
)

func newRateLimits(t *testing.T) *RateLimits {
	db, env := newStack(t)
	return NewRateLimits(db, env["WEBHOOKS_RATE_LIMIT_TABLE"])
}

func TestRateLimitWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newRateLimits(t)
	window := time.Minute
	start := t0.Truncate(window)

	for i := 1; i <= 10; i++ {
		count, ok, err := s.Take(ctx, "tenant-a", "default", 10, window, start.Add(time.Duration(i)*time.Second))
		if err != nil || !ok || count != i {
			t.Fatalf("take %d = %d, %v, %v; want %d, true", i, count, ok, err, i)
		}
	}
	count, ok, err := s.Take(ctx, "tenant-a", "default", 10, window, start.Add(59*time.Second))
	if err != nil || ok || count != 10 {
		t.Fatalf("11th take = %d, %v, %v; want 10, false", count, ok, err)
	}
	// Other keys have their own budget.
	if _, ok, err := s.Take(ctx, "tenant-b", "default", 10, window, start); err != nil || !ok {
		t.Fatalf("tenant-b take = %v, %v", ok, err)
	}
	// The next window admits again.
	count, ok, err = s.Take(ctx, "tenant-a", "default", 10, window, start.Add(window))
	if err != nil || !ok || count != 1 {
		t.Fatalf("first take of the next window = %d, %v, %v; want 1, true", count, ok, err)
	}
	if _, ok, _ := s.Take(ctx, "tenant-a", "default", 0, window, start); ok {
		t.Error("limit 0 admitted a request")
	}
	if _, _, err := s.Take(ctx, "tenant-a", "default", 10, time.Millisecond, start); err == nil {
		t.Error("a sub-second window was accepted")
	}
}

func TestRateLimitConcurrentTakes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client, env := newStack(t)
	s := NewRateLimits(client, env["WEBHOOKS_RATE_LIMIT_TABLE"])
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
			_, ok, err := s.Take(ctx, "tenant-a", "default", limit, time.Minute, now)
			switch {
			case err != nil:
				errs <- err
			case ok:
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
	if admitted.Load() != limit || refused.Load() != callers-limit {
		t.Errorf("admitted %d and refused %d of %d; want %d admitted", admitted.Load(), refused.Load(), callers, limit)
	}
}

func TestRateLimitDatabaseDown(t *testing.T) {
	t.Parallel()
	s := NewRateLimits(downClient(t), "ratelimits")
	_, ok, err := s.Take(context.Background(), "tenant-a", "default", 10, time.Minute, t0)
	if ok || !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("Take = %v, %v; want not allowed and domain.ErrUnavailable", ok, err)
	}
}
