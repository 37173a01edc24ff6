package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// MaxEventBytes caps an ingested envelope (the whole SQS message body). Delivery jobs carry
// the event's rendered payload, so the cap keeps every job well inside SQS's message size
// limit.
const MaxEventBytes = 128 << 10

// Event is a platform event as producers send it to the IngestQueue.
type Event struct {
	ID         string          `json:"id"`
	TenantID   string          `json:"tenant_id"`
	Type       string          `json:"type"`
	OccurredAt time.Time       `json:"occurred_at"`
	Data       json.RawMessage `json:"data"`
}

// ParseEvent decodes and validates an ingest envelope. Its error says what is wrong, for
// the reason attribute of the dead-lettered message. The fields are checked in the order
// id, tenant_id, type, occurred_at, data (docs/events.md); the first failure is the reason.
func ParseEvent(body []byte) (Event, error) {
	if len(body) > MaxEventBytes {
		return Event{}, Invalid("", "event is %d bytes; the limit is %d", len(body), MaxEventBytes)
	}
	var raw struct {
		ID         *string         `json:"id"`
		TenantID   *string         `json:"tenant_id"`
		Type       *string         `json:"type"`
		OccurredAt *string         `json:"occurred_at"`
		Data       json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te) && te.Field != "":
			return Event{}, Invalid(te.Field, "%s must be a string, not a JSON %s", te.Field, te.Value)
		case errors.As(err, &te):
			return Event{}, Invalid("", "event is not a JSON object but a JSON %s", te.Value)
		case errors.As(err, &se):
			return Event{}, Invalid("", "event is not valid JSON (at byte %d)", se.Offset)
		}
		return Event{}, Invalid("", "event is not valid JSON")
	}
	var e Event
	switch {
	case raw.ID == nil || !validEventID(*raw.ID):
		return e, Invalid("id", "id must be 1-128 visible ASCII characters other than '#'")
	case raw.TenantID == nil || !ValidTenantID(*raw.TenantID):
		return e, Invalid("tenant_id", "tenant_id must be 1-128 visible ASCII characters other than '#'")
	case raw.Type == nil || !ValidEventType(*raw.Type):
		return e, Invalid("type", "type must be an event type like \"export.done\"")
	case raw.OccurredAt == nil:
		return e, Invalid("occurred_at", "occurred_at is required (RFC 3339)")
	}
	at, err := time.Parse(time.RFC3339Nano, *raw.OccurredAt)
	if err != nil {
		return e, Invalid("occurred_at", "occurred_at must be an RFC 3339 timestamp")
	}
	if len(raw.Data) == 0 || string(raw.Data) == "null" {
		return e, Invalid("data", "data is required")
	}
	return Event{ID: *raw.ID, TenantID: *raw.TenantID, Type: *raw.Type, OccurredAt: at.UTC(), Data: raw.Data}, nil
}

// ValidEventID reports whether s can be an event id: 1-128 visible ASCII characters other
// than '#' (the rule of the envelope's id).
func ValidEventID(s string) bool { return validEventID(s) }

func validEventID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return r < 0x21 || r > 0x7e || r == '#' })
}

// MaxTenantIDLength bounds a tenant id, in tokens and in events alike.
const MaxTenantIDLength = 128

// ValidTenantID reports whether s can be a tenant id: 1-128 visible ASCII characters
// other than '#'. Tokens (shared/auth) and event envelopes follow the same rule, so a
// tenant that can call the API can also be named by an event, and every key built from a
// tenant id stays far below DynamoDB's key size limits.
func ValidTenantID(s string) bool {
	return len(s) <= MaxTenantIDLength && validEventID(s)
}

// MaxClockSkew is how far ahead of the service's clock an event's occurred_at may be: a
// producer's clock may run a little fast. A later time is refused, not clamped: occurred_at
// is part of the event's identity (clamping it would store a producer's retry as a second
// event), and an event from the future would push its endpoints' watermarks, and so replays'
// natural starting point, into the future.
const MaxClockSkew = 5 * time.Minute

// CheckEventTime refuses an event whose occurred_at is more than MaxClockSkew ahead of now,
// with a reason that gives both clocks, so the producer can see its own is fast. Such an
// event is accepted once its time has come (a redrive from the DLQ then succeeds).
func CheckEventTime(e Event, now time.Time) error {
	if ahead := e.OccurredAt.Sub(now); ahead > MaxClockSkew {
		return Invalid("occurred_at", "occurred_at %s is %s ahead of the service's clock (%s); at most %s is tolerated",
			e.OccurredAt.Format(time.RFC3339Nano), ahead.Round(time.Second), now.UTC().Format(time.RFC3339), MaxClockSkew)
	}
	return nil
}

// EventExpiry is when a stored event is deleted (DynamoDB TTL): the retention counted from
// its occurred_at or, for a late event, from when it was stored, so a backfilled event is
// still de-duplicated and replayable for the whole retention, plus a day of slack.
func EventExpiry(e Event, storedAt time.Time) time.Time {
	from := e.OccurredAt
	if storedAt.After(from) {
		from = storedAt
	}
	return from.Add(EventRetention + 24*time.Hour)
}

// Payload is the JSON body POSTed to endpoints (Standard Webhooks' recommended shape). data
// is the producer's JSON byte for byte, only compacted (insignificant whitespace removed):
// no HTML escaping of <, > and &, no re-encoding of strings, so the body holds the data as
// sent and is never larger than it.
func (e Event) Payload() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	err := enc.Encode(struct {
		ID        string          `json:"id"`
		Type      string          `json:"type"`
		Timestamp string          `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}{e.ID, e.Type, e.OccurredAt.UTC().Format(time.RFC3339Nano), e.Data})
	if err != nil {
		return nil, fmt.Errorf("render payload of %s: %w", e.ID, err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// DeliveryJob is one event for one endpoint. On the DeliveryQueue its message body is the
// payload to POST, rendered once by the sender, and the other fields travel as message
// attributes (queue.EncodeDeliveryJob, queue.ParseDeliveryMessage), so a delivery needs no
// database read for the event and decodes no JSON.
//
// Producers fill Event (with Data). Consumers get Event without Data, and Payload instead.
type DeliveryJob struct {
	TenantID   string `json:"tenant_id"`
	EndpointID string `json:"endpoint_id"`
	Event      Event  `json:"event"`
	// ReplayID is set for deliveries enqueued by a replay.
	ReplayID string `json:"replay_id,omitempty"`
	// Resend marks a delivery the tenant asked for again (POST …/resend).
	Resend bool `json:"resend,omitempty"`
	// Payload is the exact body to POST; set by the consumer side from the message body,
	// rendered from Event (Event.Payload) by the sender when empty.
	Payload []byte `json:"-"`
}

// DeliveryStatus is the outcome recorded for one delivery attempt.
type DeliveryStatus string

// Attempt outcomes. "failed" is a filter that matches pending and dead attempts.
const (
	DeliverySucceeded DeliveryStatus = "succeeded" // 2xx
	DeliveryPending   DeliveryStatus = "pending"   // failed; another attempt is scheduled
	DeliveryDead      DeliveryStatus = "dead"      // failed for good: retries exhausted or 410 Gone
	DeliverySkipped   DeliveryStatus = "skipped"   // the endpoint was disabled or deleted
	DeliveryFailed    DeliveryStatus = "failed"    // filter only: pending or dead
)

// Why a skipped delivery was not sent: the ErrorClass of a DeliverySkipped attempt.
const (
	SkippedDisabled = "disabled" // the endpoint is disabled
	SkippedDeleted  = "deleted"  // the endpoint was deleted
)

// Attempt is one recorded delivery attempt.
type Attempt struct {
	TenantID    string
	EndpointID  string
	EventID     string
	EventType   string
	OccurredAt  time.Time
	ReplayID    string
	Number      int // 1 for the first attempt
	Status      DeliveryStatus
	HTTPStatus  int    // 0 when no response
	ErrorClass  string // timeout, connect, blocked, http_4xx, http_5xx, redirect, gone…
	Latency     time.Duration
	AttemptedAt time.Time
	NextAt      time.Time // when pending: the next attempt's earliest time
	// Test marks a test send (POST /endpoints/{endpoint_id}/test): its event is not a
	// stored event, and it changes nothing about the endpoint's state.
	Test bool
	// Resend marks an attempt of a delivery the tenant asked for again.
	Resend bool
}

// EventRef locates a stored event: its key in the events table is (tenant, OccurredAt, ID).
type EventRef struct {
	ID         string
	Type       string
	OccurredAt time.Time
}

// MayFollowFailure reports whether the attempt may come after an unsucceeded delivery of the
// same event to the same endpoint: any retry, replay or resend may; the first attempt of a
// fan-out job almost never does (only when an event was fanned out twice), so the delivery
// log spends no write on clearing a failure after it.
func (a Attempt) MayFollowFailure() bool { return a.Number > 1 || a.ReplayID != "" || a.Resend }

// PostResult is what one signed POST to an endpoint came to (shared/sender.Sender).
type PostResult struct {
	Status     int    // the receiver's HTTP status; 0 when it did not answer
	Class      string // why it failed (the delivery error classes); "" on a 2xx
	Latency    time.Duration
	RetryAfter time.Duration // set for a 429/503 asking for a usable delay
	// Excerpt is the first bytes of the response body, when the caller asked to keep
	// some; Truncated says the body was longer.
	Excerpt   []byte
	Truncated bool
}

// OK reports a 2xx.
func (r PostResult) OK() bool { return r.Class == "" }

// TypeTest is the type of the default test event.
const TypeTest = "webhook.test"
