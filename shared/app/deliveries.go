package app

import (
	"context"
	"fmt"

	"github.com/datajetty/webhooks/shared/domain"
)

// AttemptLog reads recorded delivery attempts (shared/store.Deliveries).
type AttemptLog interface {
	// List returns up to limit attempts of the endpoint, newest first, after the position
	// after ("" = newest), filtered by status ("" = all), and the position to continue
	// from ("" = no more).
	List(ctx context.Context, tenantID, endpointID string, status domain.DeliveryStatus, limit int, after string) ([]domain.Attempt, string, error)
}

// Deliveries shows tenants the delivery log of their endpoints.
type Deliveries struct {
	Endpoints EndpointStore
	Log       AttemptLog
}

// List returns a page of one of the tenant's endpoints' delivery attempts. Another
// tenant's endpoint is not found.
//
// The endpoint is read and the log listed at the same time, one round trip of latency
// instead of two: the log is keyed by tenant and endpoint, so it can hold nothing of
// another tenant's, and when the endpoint is not the tenant's (or the read fails) the
// listing is discarded and the endpoint's error is the answer, as if it had been read first.
func (s *Deliveries) List(ctx context.Context, tenantID, endpointID string, status domain.DeliveryStatus, limit int, after string) ([]domain.Attempt, string, error) {
	if !domain.ValidID(domain.EndpointIDPrefix, endpointID) {
		return nil, "", domain.NotFound("endpoint %s not found", endpointID)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	found := make(chan error, 1)
	go func() {
		_, err := s.Endpoints.GetEndpoint(ctx, tenantID, endpointID)
		if err != nil {
			cancel() // the listing is not needed
		}
		found <- err
	}()
	items, next, err := s.Log.List(ctx, tenantID, endpointID, status, limit, after)
	if ferr := <-found; ferr != nil {
		return nil, "", fmt.Errorf("load endpoint %s: %w", endpointID, ferr)
	}
	if err != nil {
		return nil, "", fmt.Errorf("list deliveries of %s: %w", endpointID, err)
	}
	return items, next, nil
}
