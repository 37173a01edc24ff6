package domain

import (
	"encoding/json"
	"strings"
	"time"
)

// The service's own events about tenants' endpoints (declared in the event-type catalog
// with source "service"). Each is published once per change of an endpoint's state, to the
// IngestQueue, and delivered through the normal pipeline to the tenant's other endpoints
// that subscribe; never to the endpoint it is about.
const (
	TypeEndpointDisabled  = "webhooks.endpoint.disabled"
	TypeEndpointFailing   = "webhooks.endpoint.failing"
	TypeEndpointRecovered = "webhooks.endpoint.recovered"
)

// notificationPrefix starts the type of every notification about an endpoint.
const notificationPrefix = "webhooks.endpoint."

// Exhausted is what counting an exhausted delivery did to its endpoint.
type Exhausted struct {
	// Failing is true for the call whose exhausted delivery was the first of the streak: it
	// made the endpoint failing.
	Failing bool
	// Disabled is true for the call that disabled the endpoint (the streak reached the
	// auto-disable threshold).
	Disabled bool
	// Endpoint is the endpoint as the call left it, when Failing or Disabled.
	Endpoint Endpoint
}

// LastError is the failed attempt a notification names as the endpoint's latest error.
type LastError struct {
	EventID     string `json:"event_id"`
	HTTPStatus  int    `json:"http_status,omitempty"`
	ErrorClass  string `json:"error_class,omitempty"`
	AttemptedAt string `json:"attempted_at"`
}

func lastError(a *Attempt) *LastError {
	if a == nil {
		return nil
	}
	return &LastError{EventID: a.EventID, HTTPStatus: a.HTTPStatus, ErrorClass: a.ErrorClass, AttemptedAt: rfc3339(a.AttemptedAt)}
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// notification builds the event of one change of ep's state at now.
func notification(ep Endpoint, typ string, now time.Time, data any) Event {
	raw, err := json.Marshal(data)
	if err != nil {
		panic("marshal a notification: " + err.Error()) // plain structs of strings and numbers
	}
	return Event{ID: NewID("evt_"), TenantID: ep.TenantID, Type: typ, OccurredAt: now.UTC(), Data: raw}
}

// EndpointDisabledEvent is the webhooks.endpoint.disabled event of ep, disabled at now for
// reason (detail in words); last is the attempt that made the service disable it (nil when
// the tenant did).
func EndpointDisabledEvent(ep Endpoint, reason DisabledReason, detail string, last *Attempt, now time.Time) Event {
	return notification(ep, TypeEndpointDisabled, now, struct {
		EndpointID string         `json:"endpoint_id"`
		URL        string         `json:"url"`
		Reason     DisabledReason `json:"reason"`
		Detail     string         `json:"detail,omitempty"`
		DisabledAt string         `json:"disabled_at"`
		LastError  *LastError     `json:"last_error,omitempty"`
	}{ep.ID, ep.URL, reason, detail, rfc3339(now), lastError(last)})
}

// EndpointFailingEvent is the webhooks.endpoint.failing event of ep: a delivery to it, the
// last attempt being last, exhausted its retries at now with no success since since.
func EndpointFailingEvent(ep Endpoint, since time.Time, last Attempt, now time.Time) Event {
	return notification(ep, TypeEndpointFailing, now, struct {
		EndpointID   string     `json:"endpoint_id"`
		URL          string     `json:"url"`
		FailingSince string     `json:"failing_since"`
		LastError    *LastError `json:"last_error"`
	}{ep.ID, ep.URL, rfc3339(since), lastError(&last)})
}

// EndpointRecoveredEvent is the webhooks.endpoint.recovered event of ep: a delivery to it
// succeeded, recorded at now, after it had been failing since since.
func EndpointRecoveredEvent(ep Endpoint, since, now time.Time) Event {
	return notification(ep, TypeEndpointRecovered, now, struct {
		EndpointID   string `json:"endpoint_id"`
		URL          string `json:"url"`
		FailingSince string `json:"failing_since"`
		RecoveredAt  string `json:"recovered_at"`
	}{ep.ID, ep.URL, rfc3339(since), rfc3339(now)})
}

// NotificationSubject returns the endpoint a notification is about ("" for any other
// event): ingest never fans such an event out to that endpoint.
func NotificationSubject(e Event) string {
	if !strings.HasPrefix(e.Type, notificationPrefix) {
		return ""
	}
	var d struct {
		EndpointID string `json:"endpoint_id"`
	}
	if json.Unmarshal(e.Data, &d) != nil {
		return ""
	}
	return d.EndpointID
}
