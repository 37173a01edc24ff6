package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/datajetty/webhooks/shared/app"
	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/signing"
)

// fakeSender records what a test send would POST and answers with result.
type fakeSender struct {
	mu     sync.Mutex
	result domain.PostResult
	sent   []sentTest
}

type sentTest struct {
	url, msgID string
	body       []byte
	secrets    []signing.Secret
	keep       int
}

func (f *fakeSender) Send(_ context.Context, url, msgID string, body []byte, secrets []signing.Secret, _ time.Time, keep int) domain.PostResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, sentTest{url, msgID, body, secrets, keep})
	return f.result
}

// memLog keeps recorded attempts.
type memLog struct {
	attempts []domain.Attempt
	err      error
}

func (l *memLog) Record(_ context.Context, a []domain.Attempt) error {
	if l.err != nil {
		return l.err
	}
	l.attempts = append(l.attempts, a...)
	return nil
}

func TestTestSendsOneSignedAttemptAndRecordsIt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture()
	s := secret(t)
	ep := f.endpoint(t, tenant, "https://example.com/hook", s, domain.StatusDisabled) // paused: tests still go
	sender := &fakeSender{result: domain.PostResult{Status: 204, Latency: 12 * time.Millisecond, Excerpt: []byte("ok"), Truncated: true}}
	log := &memLog{}
	tests := &app.Tests{Store: f.store, Secrets: f.box, Sender: sender, Log: log, Now: func() time.Time { return now }}

	out, err := tests.Send(ctx, tenant, ep.ID, app.TestInput{})
	if err != nil || out.RecordErr != nil {
		t.Fatalf("test send: %v / %v", err, out.RecordErr)
	}
	if len(sender.sent) != 1 {
		t.Fatalf("%d POSTs, want exactly one (no retry)", len(sender.sent))
	}
	sent := sender.sent[0]
	var payload struct {
		ID, Type, Timestamp string
		Data                struct {
			Message    string `json:"message"`
			EndpointID string `json:"endpoint_id"`
		}
	}
	if err := json.Unmarshal(sent.body, &payload); err != nil {
		t.Fatal(err)
	}
	if sent.url != ep.URL || len(sent.secrets) != 1 || !sent.secrets[0].Equal(s) || sent.keep != app.TestExcerptBytes ||
		payload.Type != "webhook.test" || payload.ID != sent.msgID || payload.Data.EndpointID != ep.ID || payload.Data.Message == "" {
		t.Fatalf("sent %+v, payload %+v", sent, payload)
	}
	a := out.Attempt
	if !a.Test || a.Status != domain.DeliverySucceeded || a.HTTPStatus != 204 || a.EventID != sent.msgID || a.Number != 1 || !a.AttemptedAt.Equal(now) {
		t.Fatalf("attempt %+v", a)
	}
	if len(log.attempts) != 1 || log.attempts[0] != a {
		t.Fatalf("recorded %+v, want the attempt", log.attempts)
	}
	if string(out.Excerpt) != "ok" || !out.Truncated {
		t.Fatalf("excerpt %q truncated %v", out.Excerpt, out.Truncated)
	}
	if cur := f.stored(t, ep.ID); cur.Version != ep.Version || cur.Status != domain.StatusDisabled {
		t.Fatalf("a test changed the endpoint: %+v", cur)
	}
}

func TestTestTypesDataAndFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture()
	ep := f.endpoint(t, tenant, "https://example.com/hook", secret(t), domain.StatusActive)
	sender := &fakeSender{}
	tests := &app.Tests{Store: f.store, Secrets: f.box, Sender: sender, Log: &memLog{}, Now: func() time.Time { return now }}

	// A declared type without data sends the catalog's example; with data, that data.
	if _, err := tests.Send(ctx, tenant, ep.ID, app.TestInput{Type: "export.done"}); err != nil {
		t.Fatal(err)
	}
	if _, err := tests.Send(ctx, tenant, ep.ID, app.TestInput{Type: "import.failed", Data: json.RawMessage(`{"custom":true}`)}); err != nil {
		t.Fatal(err)
	}
	var first, second struct {
		Type string
		Data map[string]any
	}
	_ = json.Unmarshal(sender.sent[0].body, &first)
	_ = json.Unmarshal(sender.sent[1].body, &second)
	if first.Type != "export.done" || first.Data["export_id"] != "exp_42" || second.Type != "import.failed" || second.Data["custom"] != true {
		t.Fatalf("payloads %+v, %+v", first, second)
	}

	// A receiver that failed: the attempt is dead (no retry), with the class.
	sender.result = domain.PostResult{Status: 503, Class: "http_5xx"}
	out, err := tests.Send(ctx, tenant, ep.ID, app.TestInput{})
	if err != nil || out.Attempt.Status != domain.DeliveryDead || out.Attempt.ErrorClass != "http_5xx" {
		t.Fatalf("failed test: %+v, %v", out.Attempt, err)
	}

	for _, tc := range []struct {
		name   string
		tenant string
		id     string
		in     app.TestInput
		kind   domain.Kind
		field  string
	}{
		{"undeclared type", tenant, ep.ID, app.TestInput{Type: "export.dnoe"}, domain.KindInvalid, "type"},
		{"null data", tenant, ep.ID, app.TestInput{Data: json.RawMessage("null")}, domain.KindInvalid, "data"},
		{"broken data", tenant, ep.ID, app.TestInput{Data: json.RawMessage("{")}, domain.KindInvalid, "data"},
		{"another tenant", "tenant-b", ep.ID, app.TestInput{}, domain.KindNotFound, ""},
		{"malformed id", tenant, "ep_x", app.TestInput{}, domain.KindNotFound, ""},
	} {
		before := len(sender.sent)
		_, err := tests.Send(ctx, tc.tenant, tc.id, tc.in)
		var de *domain.Error
		if !errors.As(err, &de) || de.Kind != tc.kind || de.Field != tc.field {
			t.Errorf("%s: %v, want kind %d field %q", tc.name, err, tc.kind, tc.field)
		}
		if len(sender.sent) != before {
			t.Errorf("%s: a refused test was sent", tc.name)
		}
	}

	// The log being down does not undo the send: the outcome carries the error.
	tests.Log = &memLog{err: errors.New("down")}
	out, err = tests.Send(ctx, tenant, ep.ID, app.TestInput{})
	if err != nil || out.RecordErr == nil {
		t.Fatalf("log down: %v, record error %v", err, out.RecordErr)
	}
}
