package api

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/datajetty/webhooks/shared/domain"
)

// Rate-limit rule names.
const (
	RuleDefault = "default"
	RuleReplay  = "replay"
)

// Rule admits Limit requests per Window per tenant.
type Rule struct {
	Limit  int
	Window time.Duration
}

// Limits holds the rules by name.
type Limits struct {
	Default Rule
	Replay  Rule
}

// DefaultLimits are the documented defaults: 10 requests/s per tenant on every route, and
// the routes that make the service send (replays, which fan out work, test sends and
// resends) to 5 a minute per tenant, together.
func DefaultLimits() Limits {
	return Limits{
		Default: Rule{Limit: 10, Window: time.Second},
		Replay:  Rule{Limit: 5, Window: time.Minute},
	}
}

func (l Limits) rule(name string) Rule {
	if name == RuleReplay {
		return l.Replay
	}
	return l.Default
}

// rateLimit admits the request under the route's rule for the tenant, over a sliding
// window: one atomic DynamoDB update shared by every Lambda instance. It returns the
// RateLimit-* headers: Remaining is what is left in the window that ends now, Reset the
// seconds until the oldest request in it leaves (one more is then admitted).
func (h *Handler) rateLimit(ctx context.Context, tenantID string, rt Route) (http.Header, error) {
	rule := h.deps.Limits.rule(rt.Limit)
	now := h.deps.Now()
	d, err := h.deps.RateLimiter.Take(ctx, tenantID, rt.Limit, rule.Limit, rule.Window, now)
	if err != nil {
		return nil, fmt.Errorf("rate limit: %w", err)
	}
	reset := max(int(math.Ceil(d.Reset.Sub(now).Seconds())), 1)
	hdr := http.Header{}
	hdr.Set("RateLimit-Limit", strconv.Itoa(rule.Limit))
	hdr.Set("RateLimit-Remaining", strconv.Itoa(max(rule.Limit-d.Count, 0)))
	hdr.Set("RateLimit-Reset", strconv.Itoa(reset))
	if !d.Allowed {
		hdr.Set("RateLimit-Remaining", "0")
		hdr.Set("Retry-After", strconv.Itoa(reset))
		return hdr, &domain.Error{Kind: domain.KindRateLimited, Msg: fmt.Sprintf("rate limit of %d requests per %s exceeded; retry after %d s", rule.Limit, rule.Window, reset)}
	}
	return hdr, nil
}
