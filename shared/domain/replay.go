package domain

import "time"

// EventRetention is how long events are kept, and so how far back a replay may start.
const EventRetention = 30 * 24 * time.Hour

// ReplayStatus is the state of a replay job.
type ReplayStatus string

// Replay states.
const (
	ReplayStarted   ReplayStatus = "started"   // accepted and queued
	ReplayRunning   ReplayStatus = "running"   // the worker is paging events
	ReplayCompleted ReplayStatus = "completed" // every matching event was enqueued
	ReplayFailed    ReplayStatus = "failed"    // gave up; Error says why
)

// Replay re-delivers an endpoint's events from a watermark up to the moment it was asked.
type Replay struct {
	TenantID   string
	ID         string
	EndpointID string
	From       time.Time
	Until      time.Time // the request time: later events are delivered normally
	// OnlyFailed: only the events whose latest delivery to the endpoint did not succeed.
	OnlyFailed bool
	Status     ReplayStatus
	Enqueued   int64
	Cursor     string // the worker's checkpoint (opaque)
	Error      string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// ReplayLease bounds how long a started replay blocks another one on the same endpoint if
// its worker dies without releasing it; the worker renews it while it runs. It must exceed
// the ReplayQueue's visibility timeout (template.yaml), so a job retried after a crash still
// finds its lock.
const ReplayLease = 20 * time.Minute

// ValidateReplayFrom checks the replay watermark against now and the event retention.
func ValidateReplayFrom(from, now time.Time) error {
	if from.After(now) {
		return Invalid("from", "from %s is in the future", from.UTC().Format(time.RFC3339))
	}
	if from.Before(now.Add(-EventRetention)) {
		return Invalid("from", "from %s is older than the event retention of %d days", from.UTC().Format(time.RFC3339), int(EventRetention.Hours()/24))
	}
	return nil
}
