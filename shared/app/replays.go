package app

import (
	"context"
	"fmt"
	"time"

	"github.com/datajetty/webhooks/shared/domain"
)

// Replays starts and reports replays of past events to an endpoint.
type Replays struct {
	Store ReplayStore
	Queue ReplayQueue
	// Endpoints reads the endpoint's watermark when a replay gives no from.
	Endpoints EndpointStore
	Now       func() time.Time
}

// ReplayInput is what a replay asks for.
type ReplayInput struct {
	// From is the first occurred_at to replay; nil: right after the endpoint's watermark.
	From *time.Time
	// OnlyFailed replays only the events whose latest delivery to the endpoint did not
	// succeed (the deliveries' unsucceeded index).
	OnlyFailed bool
}

// Start starts a replay of the endpoint's events from from (see StartWith).
func (s *Replays) Start(ctx context.Context, tenantID, endpointID string, from time.Time) (domain.Replay, error) {
	return s.StartWith(ctx, tenantID, endpointID, ReplayInput{From: &from})
}

// StartWith validates the start, takes the endpoint's replay lock, stores the replay and
// hands it to the worker. If the hand-off fails the lock is released, so the tenant can
// simply retry. Without From the replay starts right after the endpoint's watermark (the
// occurred_at of its newest successful delivery), so it sends exactly what came after it;
// an endpoint with no watermark yet needs a From.
func (s *Replays) StartWith(ctx context.Context, tenantID, endpointID string, in ReplayInput) (domain.Replay, error) {
	if !domain.ValidID(domain.EndpointIDPrefix, endpointID) {
		return domain.Replay{}, domain.NotFound("endpoint %s not found", endpointID)
	}
	now := s.Now().UTC()
	var from time.Time
	if in.From != nil {
		from = *in.From
		if err := domain.ValidateReplayFrom(from, now); err != nil {
			return domain.Replay{}, err
		}
	} else {
		if s.Endpoints == nil {
			return domain.Replay{}, fmt.Errorf("replay of %s: no endpoint store to read the watermark from", endpointID)
		}
		ep, err := s.Endpoints.GetEndpoint(ctx, tenantID, endpointID)
		if err != nil {
			return domain.Replay{}, fmt.Errorf("load endpoint %s: %w", endpointID, err)
		}
		if ep.Watermark.IsZero() {
			return domain.Replay{}, domain.Invalid("from", "from is required: endpoint %s has no watermark yet (no delivery to it has succeeded)", endpointID)
		}
		from = ep.Watermark.Add(time.Nanosecond)
		if err := domain.ValidateReplayFrom(from, now); err != nil {
			return domain.Replay{}, domain.Invalid("from", "the watermark of endpoint %s (%s) is older than the event retention of %d days; give from",
				endpointID, ep.Watermark.UTC().Format(time.RFC3339Nano), int(domain.EventRetention.Hours()/24))
		}
	}
	r := domain.Replay{
		TenantID:   tenantID,
		ID:         domain.NewID(domain.ReplayIDPrefix),
		EndpointID: endpointID,
		From:       from.UTC(),
		Until:      now,
		OnlyFailed: in.OnlyFailed,
		Status:     domain.ReplayStarted,
		CreatedAt:  now,
		UpdatedAt:  now,
	}
	if err := s.Store.StartReplay(ctx, r, now.Add(domain.ReplayLease), now); err != nil {
		return domain.Replay{}, fmt.Errorf("start replay of %s: %w", endpointID, err)
	}
	if err := s.Queue.SendReplay(ctx, tenantID, r.ID); err != nil {
		// Best effort: the lease expires on its own if this fails too.
		if aerr := s.Store.AbortReplay(ctx, r, "could not be queued", s.Now().UTC()); aerr != nil {
			err = fmt.Errorf("%w (and releasing the replay lock failed: %v)", err, aerr)
		}
		return domain.Replay{}, fmt.Errorf("queue replay %s: %w", r.ID, err)
	}
	return r, nil
}

// Get returns one of the tenant's replays.
func (s *Replays) Get(ctx context.Context, tenantID, replayID string) (domain.Replay, error) {
	if !domain.ValidID(domain.ReplayIDPrefix, replayID) {
		return domain.Replay{}, domain.NotFound("replay %s not found", replayID)
	}
	r, err := s.Store.GetReplay(ctx, tenantID, replayID)
	if err != nil {
		return r, fmt.Errorf("load replay %s: %w", replayID, err)
	}
	return r, nil
}
