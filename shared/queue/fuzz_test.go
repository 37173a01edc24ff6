package queue

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// FuzzParseDeliveryMessage: a DeliveryQueue message as Lambda hands it over (body and String
// attributes; an empty argument leaves that attribute out). Invariants: no panic; a
// rejection is an error; an accepted message encodes back (EncodeDeliveryJob) into a
// message that parses to the same job, with the same body.
func FuzzParseDeliveryMessage(f *testing.F) {
	f.Add(`{"id":"evt_1"}`, JobVersion, "acme", "ep_1", "evt_1", "export.done", "2026-11-27T12:00:00.5Z", "")
	f.Add(`x`, JobVersion, "acme", "ep_1", "evt_1", "export.done", "2026-11-27T13:00:00+01:00", "rp_1")
	f.Add(`{}`, "1", "acme", "ep_1", "evt_1", "export.done", "2026-11-27T12:00:00Z", "")
	f.Add(``, JobVersion, "", "", "", "", "yesterday", "")
	f.Fuzz(func(t *testing.T, body, version, tenant, endpoint, eventID, eventType, occurredAt, replayID string) {
		msg := events.SQSMessage{MessageId: "m-1", Body: body, MessageAttributes: map[string]events.SQSMessageAttribute{}}
		for name, v := range map[string]string{JobAttrVersion: version, JobAttrTenantID: tenant, JobAttrEndpointID: endpoint,
			JobAttrEventID: eventID, JobAttrEventType: eventType, JobAttrOccurredAt: occurredAt, JobAttrReplayID: replayID} {
			if v != "" {
				msg.MessageAttributes[name] = events.SQSMessageAttribute{DataType: "String", StringValue: &v}
			}
		}
		job, err := ParseDeliveryMessage(msg)
		if err != nil {
			return
		}
		if job.TenantID != tenant || job.EndpointID != endpoint || job.Event.ID != eventID || job.Event.Type != eventType ||
			job.ReplayID != replayID || string(job.Payload) != body || job.Event.TenantID != tenant {
			t.Fatalf("parsed job %+v does not hold the message's fields", job)
		}
		again := deliveryMessage(t, job)
		if again.Body != body {
			t.Fatalf("re-encoded body %q, want %q", again.Body, body)
		}
		job2, err := ParseDeliveryMessage(again)
		if err != nil || !reflect.DeepEqual(job, job2) {
			t.Fatalf("round trip: %+v\n%+v (%v)", job, job2, err)
		}
	})
}

// FuzzParseReplayJob: a ReplayQueue message body. Invariants: no panic; an accepted job
// encodes (as SendReplay does) into a body that parses to the same job.
func FuzzParseReplayJob(f *testing.F) {
	f.Add(`{"tenant_id":"acme","replay_id":"rp_1"}`)
	f.Add(`{"tenant_id":"acme"}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, body string) {
		j, err := ParseReplayJob(body)
		if err != nil {
			return
		}
		raw, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		j2, err := ParseReplayJob(string(raw))
		if err != nil || j2 != j {
			t.Fatalf("round trip of %+v: %+v, %v", j, j2, err)
		}
	})
}
