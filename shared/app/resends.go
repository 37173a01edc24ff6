package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/datajetty/webhooks/shared/domain"
)

// EventIndex finds the events an endpoint's delivery log holds (shared/store.Deliveries).
type EventIndex interface {
	// Lookup returns where the event is stored; NotFound when the endpoint's log has no
	// attempt of it.
	Lookup(ctx context.Context, tenantID, endpointID, eventID string) (domain.EventRef, error)
}

// EventReader reads one stored event (shared/store.Events); NotFound when it is not stored
// or its retention is over.
type EventReader interface {
	Get(ctx context.Context, tenantID string, ref domain.EventRef, now time.Time) (domain.Event, error)
}

// JobQueue enqueues delivery jobs (shared/queue.DeliveryJobs); failed are the jobs not
// known to be enqueued.
type JobQueue interface {
	Send(ctx context.Context, jobs []domain.DeliveryJob) (failed []domain.DeliveryJob, err error)
}

// Resends queues one stored event again for one endpoint.
type Resends struct {
	Endpoints EndpointStore
	Index     EventIndex
	Events    EventReader
	Jobs      JobQueue
	Now       func() time.Time
}

// Resend queues the stored event eventID for the tenant's endpoint again: the same event
// (same webhook-id, same body), a fresh delivery job and so a fresh series of attempts,
// also when the endpoint's patterns no longer match it. The event must be in the
// endpoint's delivery log and still stored (else NotFound); the endpoint must be active
// (else a Conflict with ReasonEndpointDisabled: the job would only be skipped).
func (s *Resends) Resend(ctx context.Context, tenantID, endpointID, eventID string) error {
	if !domain.ValidID(domain.EndpointIDPrefix, endpointID) {
		return domain.NotFound("endpoint %s not found", endpointID)
	}
	if !domain.ValidEventID(eventID) {
		return domain.NotFound("event %s is not in the delivery log of endpoint %s", eventID, endpointID)
	}
	ep, err := s.Endpoints.GetEndpoint(ctx, tenantID, endpointID)
	if err != nil {
		return fmt.Errorf("load endpoint %s: %w", endpointID, err)
	}
	if ep.Status != domain.StatusActive {
		return domain.Conflict(domain.ReasonEndpointDisabled, "endpoint %s is disabled; enable it before resending", endpointID)
	}
	ref, err := s.Index.Lookup(ctx, tenantID, endpointID, eventID)
	if err != nil {
		return fmt.Errorf("look up event %s: %w", eventID, err)
	}
	e, err := s.Events.Get(ctx, tenantID, ref, s.Now())
	if err != nil {
		return fmt.Errorf("read event %s: %w", eventID, err)
	}
	failed, err := s.Jobs.Send(ctx, []domain.DeliveryJob{{TenantID: tenantID, EndpointID: endpointID, Event: e, Resend: true}})
	if err == nil && len(failed) > 0 {
		err = errors.New("the job was not accepted")
	}
	if err != nil {
		if domain.KindOf(err) == domain.KindInternal {
			err = domain.Unavailable("queue", err)
		}
		return fmt.Errorf("queue resend of %s: %w", eventID, err)
	}
	return nil
}
