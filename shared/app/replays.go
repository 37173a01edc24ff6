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
	Now   func() time.Time
}

// Start validates the watermark, takes the endpoint's replay lock, stores the replay and
// hands it to the worker. If the hand-off fails the lock is released, so the tenant can
// simply retry.
func (s *Replays) Start(ctx context.Context, tenantID, endpointID string, from time.Time) (domain.Replay, error) {
	if !domain.ValidID(domain.EndpointIDPrefix, endpointID) {
		return domain.Replay{}, domain.NotFound("endpoint %s not found", endpointID)
	}
	now := s.Now().UTC()
	if err := domain.ValidateReplayFrom(from, now); err != nil {
		return domain.Replay{}, err
	}
	r := domain.Replay{
		TenantID:   tenantID,
		ID:         domain.NewID(domain.ReplayIDPrefix),
		EndpointID: endpointID,
		From:       from.UTC(),
		Until:      now,
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
