package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/datajetty/webhooks/shared/dev/testenv"
	"github.com/datajetty/webhooks/shared/domain"
)

func newDeliveries(t *testing.T) *Deliveries {
	db, env := newStack(t)
	return NewDeliveries(db, env["WEBHOOKS_DELIVERIES_TABLE"])
}

// tWhole is a whole second: attempts a quarter second apart from it mix whole seconds and
// fractions, which RFC 3339 with trimmed zeros would sort wrongly.
var tWhole = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

var cycle = []domain.DeliveryStatus{
	domain.DeliverySucceeded, domain.DeliveryPending, domain.DeliverySucceeded,
	domain.DeliveryDead, domain.DeliverySkipped, domain.DeliverySucceeded,
}

// attemptsFor returns n attempts of one endpoint with varied statuses and times.
func attemptsFor(tenant, endpoint string, n int) []domain.Attempt {
	out := make([]domain.Attempt, n)
	for i := range out {
		a := domain.Attempt{
			TenantID:    tenant,
			EndpointID:  endpoint,
			EventID:     fmt.Sprintf("evt_%03d", i),
			EventType:   "export.done",
			OccurredAt:  t0.Add(time.Duration(i) * time.Second),
			Number:      1 + i%8,
			Status:      cycle[i%len(cycle)],
			Latency:     time.Duration(i) * time.Millisecond,
			AttemptedAt: tWhole.Add(time.Duration(i) * 250 * time.Millisecond),
		}
		switch a.Status {
		case domain.DeliverySucceeded:
			a.HTTPStatus = 200
		case domain.DeliveryPending:
			a.HTTPStatus = 503
			a.ErrorClass = "http_5xx"
			a.NextAt = a.AttemptedAt.Add(5 * time.Minute)
		case domain.DeliveryDead:
			a.ErrorClass = "timeout"
		}
		if i%5 == 0 {
			a.ReplayID = "rp_x"
		}
		out[i] = a
	}
	// Two attempts at one instant: the event id breaks the tie.
	out[n-1].AttemptedAt = out[n-2].AttemptedAt
	return out
}

// newestFirst returns the attempts matching status in the order List must return them.
func newestFirst(attempts []domain.Attempt, status domain.DeliveryStatus) []domain.Attempt {
	var out []domain.Attempt
	for _, a := range attempts {
		if status == "" || a.Status == status ||
			status == domain.DeliveryFailed && (a.Status == domain.DeliveryPending || a.Status == domain.DeliveryDead) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b domain.Attempt) int {
		sa, sb := deliverySK(a), deliverySK(b)
		switch {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return 0
	})
	return out
}

// listAll follows next until it is "", failing if that takes unreasonably many calls.
func listAll(t *testing.T, s *Deliveries, tenant, endpoint string, status domain.DeliveryStatus, limit int) []domain.Attempt {
	t.Helper()
	var all []domain.Attempt
	after := ""
	for calls := 0; ; calls++ {
		if calls > 500 {
			t.Fatalf("status %q limit %d: List never reached the end", status, limit)
		}
		page, next, err := s.List(context.Background(), tenant, endpoint, status, limit, after)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > limit {
			t.Fatalf("status %q: page of %d items exceeds the limit %d", status, len(page), limit)
		}
		if next != "" && next == after {
			t.Fatalf("status %q: next %q did not move", status, next)
		}
		all = append(all, page...)
		if next == "" {
			return all
		}
		after = next
	}
}

func TestDeliveriesRecordList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newDeliveries(t)

	mine := attemptsFor("tenant-a", "ep_1", 61) // three BatchWriteItem calls
	noise := append(attemptsFor("tenant-a", "ep_2", 5), attemptsFor("tenant-b", "ep_1", 5)...)
	if err := s.Record(ctx, append(slices.Clone(mine), noise...)); err != nil {
		t.Fatal(err)
	}

	// A tight page budget as well as the production one: a selective filter then runs out
	// of pages before filling one, and next must still lose nothing.
	tight := *s
	tight.maxPages, tight.filteredPage = 2, 3

	for _, status := range []domain.DeliveryStatus{"", domain.DeliverySucceeded, domain.DeliveryFailed,
		domain.DeliveryPending, domain.DeliveryDead, domain.DeliverySkipped} {
		want := newestFirst(mine, status)
		for _, limit := range []int{1, 7, 25, 100} {
			for name, store := range map[string]*Deliveries{"default": s, "tight": &tight} {
				got := listAll(t, store, "tenant-a", "ep_1", status, limit)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s budget, status %q, limit %d: got %d attempts, want %d", name, status, limit, len(got), len(want))
					for i := range min(len(got), len(want)) {
						if !reflect.DeepEqual(got[i], want[i]) {
							t.Errorf("first difference at %d:\n got %#v\nwant %#v", i, got[i], want[i])
							break
						}
					}
				}
			}
		}
	}

	t.Run("a full last page says there is no more", func(t *testing.T) {
		page, next, err := s.List(ctx, "tenant-a", "ep_1", "", len(mine), "")
		if err != nil || len(page) != len(mine) || next != "" {
			t.Fatalf("List(limit = all) = %d items, next %q, %v; want %d, \"\"", len(page), next, err, len(mine))
		}
	})

	t.Run("unknown endpoint is empty", func(t *testing.T) {
		page, next, err := s.List(ctx, "tenant-c", "ep_1", "", 10, "")
		if err != nil || len(page) != 0 || next != "" {
			t.Fatalf("List = %v, %q, %v", page, next, err)
		}
	})

	t.Run("limit must be positive", func(t *testing.T) {
		if _, _, err := s.List(ctx, "tenant-a", "ep_1", "", 0, ""); err == nil {
			t.Fatal("List(limit 0) succeeded")
		}
	})
}

func TestDeliveriesItemShape(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, env := newStack(t)
	table := env["WEBHOOKS_DELIVERIES_TABLE"]
	s := NewDeliveries(db, table)

	a := attemptsFor("tenant-a", "ep_1", 2)[0]
	a.AttemptedAt = t0
	a.Number = 3
	if err := s.Record(ctx, []domain.Attempt{a}); err != nil {
		t.Fatal(err)
	}
	pk := tenantKey("tenant-a", "ep_1")
	sk := "2026-03-14T15:09:26.535897932Z#evt_000#03"
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &table, Key: deliveryKey(pk, sk)})
	if err != nil {
		t.Fatal(err)
	}
	if out.Item == nil {
		t.Fatalf("no item at pk %q sk %q", pk, sk)
	}
	exp, ok := out.Item["expires_at"].(*types.AttributeValueMemberN)
	if want := strconv.FormatInt(t0.Add(domain.EventRetention).Unix(), 10); !ok || exp.Value != want {
		t.Errorf("expires_at = %#v, want N %s", out.Item["expires_at"], want)
	}
	for _, name := range []string{"event_id", "event_type", "occurred_at", "replay_id", "attempt", "status",
		"http_status", "latency_ms", "attempted_at"} {
		if _, ok := out.Item[name]; !ok {
			t.Errorf("attribute %s missing", name)
		}
	}
}

func TestDeliveriesDuplicateKeysInOneBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newDeliveries(t)

	a := attemptsFor("tenant-a", "ep_1", 2)[0]
	b := a
	b.Status = domain.DeliveryDead
	if err := s.Record(ctx, []domain.Attempt{a, b}); err != nil {
		t.Fatalf("Record with a duplicated key: %v", err)
	}
	got, _, err := s.List(ctx, "tenant-a", "ep_1", "", 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Status != domain.DeliveryDead {
		t.Fatalf("List = %+v, want the last of the duplicates", got)
	}
}

// TestDeliveriesRecordRetriesUnprocessed makes the emulator's first answers report half of
// the batch as unprocessed, as DynamoDB does under throttling.
func TestDeliveriesRecordRetriesUnprocessed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, env := newStack(t)
	var calls atomic.Int32
	throttle := middleware.InitializeMiddlewareFunc("FakeUnprocessed", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		out, md, err := next.HandleInitialize(ctx, in)
		req, ok := in.Parameters.(*dynamodb.BatchWriteItemInput)
		if err != nil || !ok || calls.Add(1) > 2 {
			return out, md, err
		}
		left := map[string][]types.WriteRequest{}
		for table, writes := range req.RequestItems {
			left[table] = writes[:(len(writes)+1)/2]
		}
		out.Result.(*dynamodb.BatchWriteItemOutput).UnprocessedItems = left
		return out, md, err
	})
	db := dynamodb.NewFromConfig(testenv.AWSConfig(t), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Initialize.Add(throttle, middleware.After)
		})
	})
	s := NewDeliveries(db, env["WEBHOOKS_DELIVERIES_TABLE"])
	var slept []time.Duration
	s.sleep = func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }

	attempts := attemptsFor("tenant-a", "ep_1", 10)
	for i := range attempts {
		// Test sends: one item per attempt (no per-event items), so the ten fit one call.
		attempts[i].Test = true
	}
	if err := s.Record(ctx, attempts); err != nil {
		t.Fatal(err)
	}
	if got := calls.Load(); got != 3 {
		t.Errorf("BatchWriteItem calls = %d, want 3 (two with unprocessed items, then done)", got)
	}
	if want := []time.Duration{unprocessedBackoff, 2 * unprocessedBackoff}; !reflect.DeepEqual(slept, want) {
		t.Errorf("backoff = %v, want %v", slept, want)
	}
	if got := listAll(t, s, "tenant-a", "ep_1", "", 100); len(got) != len(attempts) {
		t.Errorf("stored %d attempts, want %d", len(got), len(attempts))
	}

	// Items that stay unprocessed are an error after the retries, not a silent loss.
	calls.Store(-100)
	if err := s.Record(ctx, attempts[:1]); err == nil {
		t.Error("Record succeeded although items stayed unprocessed")
	}
}

func TestDeliveriesDependencyDown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := NewDeliveries(downClient(t), "deliveries")
	wantKind(t, s.Record(ctx, attemptsFor("tenant-a", "ep_1", 2)), domain.ErrUnavailable)
	_, _, err := s.List(ctx, "tenant-a", "ep_1", "", 10, "")
	wantKind(t, err, domain.ErrUnavailable)
}

// unsucceededIDs reads an endpoint's unsucceeded index straight from the table, in order.
func unsucceededIDs(t *testing.T, s *Deliveries, tenant, endpoint string) []string {
	t.Helper()
	out, err := s.db.Query(context.Background(), &dynamodb.QueryInput{
		TableName:                 &s.table,
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: unsucceededPK(tenant, endpoint)}},
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, it := range out.Items {
		ids = append(ids, it["event_id"].(*types.AttributeValueMemberS).Value)
	}
	return ids
}

// TestDeliveriesPerEventIndexes: Record keeps, beside the log, the event index (any event
// of a stored event's attempt, found by id) and the sparse unsucceeded index (an event
// whose latest attempt did not succeed, in occurred_at order), and neither for test sends
// nor for jobs skipped because the endpoint is gone.
func TestDeliveriesPerEventIndexes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newDeliveries(t)
	at := func(id string, sec int, status domain.DeliveryStatus, n int) domain.Attempt {
		return domain.Attempt{TenantID: "tenant-a", EndpointID: "ep_1", EventID: id, EventType: "export.done",
			OccurredAt: t0.Add(time.Duration(sec) * time.Second), Number: n, Status: status, AttemptedAt: tWhole.Add(time.Duration(sec) * time.Second)}
	}
	deleted := at("evt_e", 5, domain.DeliverySkipped, 1)
	deleted.ErrorClass = domain.SkippedDeleted
	paused := at("evt_d", 4, domain.DeliverySkipped, 1)
	paused.ErrorClass = domain.SkippedDisabled
	test := at("test_1", 6, domain.DeliverySucceeded, 1)
	test.Test = true
	if err := s.Record(ctx, []domain.Attempt{
		at("evt_c", 3, domain.DeliveryDead, 8), at("evt_a", 1, domain.DeliveryPending, 1),
		at("evt_b", 2, domain.DeliverySucceeded, 1), paused, deleted, test,
	}); err != nil {
		t.Fatal(err)
	}
	for id, sec := range map[string]int{"evt_a": 1, "evt_b": 2, "evt_c": 3, "evt_d": 4} {
		ref, err := s.Lookup(ctx, "tenant-a", "ep_1", id)
		if err != nil || ref.ID != id || ref.Type != "export.done" || !ref.OccurredAt.Equal(t0.Add(time.Duration(sec)*time.Second)) {
			t.Errorf("Lookup(%s) = %+v, %v", id, ref, err)
		}
	}
	for _, c := range []struct{ tenant, endpoint, id string }{
		{"tenant-a", "ep_1", "evt_e"}, {"tenant-a", "ep_1", "test_1"}, {"tenant-a", "ep_2", "evt_a"}, {"tenant-b", "ep_1", "evt_a"},
	} {
		if _, err := s.Lookup(ctx, c.tenant, c.endpoint, c.id); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("Lookup(%s/%s/%s) = %v, want not found", c.tenant, c.endpoint, c.id, err)
		}
	}
	if got, want := unsucceededIDs(t, s, "tenant-a", "ep_1"), []string{"evt_a", "evt_c", "evt_d"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("unsucceeded %v, want %v (in occurred_at order)", got, want)
	}
	if got := listAll(t, s, "tenant-a", "ep_1", "", 100); len(got) != 6 {
		t.Fatalf("the log holds %d attempts, want the 6 recorded (index items are not attempts)", len(got))
	}

	// A retry that succeeds, and a replay that does, clear their events; a first fan-out
	// attempt is not looked at (it almost never follows a failure). A put and a delete of
	// one key in one batch: the success wins.
	replayed := at("evt_c", 3, domain.DeliverySucceeded, 1)
	replayed.ReplayID = "rp_1"
	if err := s.Record(ctx, []domain.Attempt{
		at("evt_a", 1, domain.DeliverySucceeded, 2), replayed, at("evt_d", 4, domain.DeliverySucceeded, 1),
		at("evt_x", 7, domain.DeliveryPending, 1), at("evt_x", 7, domain.DeliverySucceeded, 2),
	}); err != nil {
		t.Fatal(err)
	}
	if got, want := unsucceededIDs(t, s, "tenant-a", "ep_1"), []string{"evt_d"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("unsucceeded after the successes %v, want %v", got, want)
	}
	resent := at("evt_d", 4, domain.DeliverySucceeded, 1)
	resent.Resend = true
	if err := s.Record(ctx, []domain.Attempt{resent}); err != nil {
		t.Fatal(err)
	}
	if got := unsucceededIDs(t, s, "tenant-a", "ep_1"); len(got) != 0 {
		t.Fatalf("a resend that succeeded left %v unsucceeded", got)
	}
}
