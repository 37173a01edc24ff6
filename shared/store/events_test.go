package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/datajetty/webhooks/shared/dev/awsmeter"
	"github.com/datajetty/webhooks/shared/domain"
)

func newEvents(t *testing.T) (*Events, *dynamodb.Client, string) {
	db, env := newStack(t)
	table := env["WEBHOOKS_EVENTS_TABLE"]
	return NewEvents(db, table), db, table
}

func newEvent(tenant, id string, at time.Time) domain.Event {
	return domain.Event{ID: id, TenantID: tenant, Type: "export.done", OccurredAt: at, Data: json.RawMessage(`{"n":1}`)}
}

func TestEventPutOnceAndStored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, db, table := newEvents(t)

	e := newEvent("tenant-a", "evt_1", t0)
	if st, err := s.Stored(ctx, []domain.Event{e}); err != nil || st[0] {
		t.Fatalf("Stored before Put = %v, %v", st, err)
	}
	if dup, err := s.Put(ctx, e); err != nil || dup {
		t.Fatalf("first Put = %v, %v; want a new event", dup, err)
	}
	// A producer retry resends the same envelope; different content under the same key is
	// still the same event, and the stored copy wins.
	again := e
	again.Data = json.RawMessage(`{"n":2}`)
	if dup, err := s.Put(ctx, again); err != nil || !dup {
		t.Fatalf("second Put = %v, %v; want a duplicate", dup, err)
	}
	// The same id at another instant is another event (the key is tenant, occurred_at, id).
	later := newEvent("tenant-a", "evt_1", t0.Add(time.Nanosecond))
	if dup, err := s.Put(ctx, later); err != nil || dup {
		t.Fatalf("Put at another instant = %v, %v; want a new event", dup, err)
	}
	// Stored looks up a batch at once, the same event twice included.
	unknown := newEvent("tenant-a", "evt_2", t0)
	other := newEvent("tenant-b", "evt_1", t0)
	if st, err := s.Stored(ctx, []domain.Event{e, unknown, later, e, other}); err != nil || !reflect.DeepEqual(st, []bool{true, false, true, true, false}) {
		t.Fatalf("Stored = %v, %v", st, err)
	}
	evs, _ := drain(t, s, "tenant-a", t0.Add(-time.Hour), t0.Add(time.Hour), 10)
	if len(evs) != 2 || string(evs[0].Data) != `{"n":1}` || !evs[0].OccurredAt.Equal(t0) || evs[0].Type != "export.done" || evs[0].TenantID != "tenant-a" {
		t.Fatalf("stored events %+v", evs)
	}

	// The stored item: compact, keys sharded, TTL.
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &table, Key: eventKey(e)})
	if err != nil {
		t.Fatal(err)
	}
	wantPK := "8:tenant-a#2026-03-14T15"
	if sh := shardOf("evt_1"); sh > 0 {
		wantPK += "#" + strconv.Itoa(sh)
	}
	for k, v := range map[string]string{"pk": wantPK, "sk": "2026-03-14T15:09:26.535897932Z#evt_1", "t": "export.done", "d": `{"n":1}`} {
		if got, _ := out.Item[k].(*types.AttributeValueMemberS); got == nil || got.Value != v {
			t.Errorf("%s = %#v, want %q", k, out.Item[k], v)
		}
	}
	if len(out.Item) != 5 {
		t.Errorf("item has %d attributes, want pk, sk, t, d and expires_at: %v", len(out.Item), out.Item)
	}
	// t0 is long past, so the retention counts from when the event was stored.
	lo, hi := domain.EventExpiry(domain.Event{}, time.Now().Add(-time.Minute)).Unix(), domain.EventExpiry(domain.Event{}, time.Now()).Unix()
	got, _ := out.Item["expires_at"].(*types.AttributeValueMemberN)
	if got == nil {
		t.Fatalf("expires_at missing")
	}
	if exp, _ := strconv.ParseInt(got.Value, 10, 64); exp < lo || exp > hi {
		t.Errorf("expires_at = %s, want between %d and %d", got.Value, lo, hi)
	}
}

// TestEventItemFitsOneWriteUnit: a 1 KiB envelope of the JSON platform events are made of
// is stored compressed, in one write unit, and read back byte for byte; data that does
// not compress is stored as it is.
func TestEventItemFitsOneWriteUnit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, db, table := newEvents(t)
	var files []string
	for i := range 8 {
		files = append(files, fmt.Sprintf(`{"path":"s3://datajetty-exports/tenant-a/orders/exp_42/part-%05d.parquet","rows":%d,"bytes":%d}`, i, 1000+i*37, 200000+i*4099))
	}
	data := `{"export_id":"exp_42","dataset":"orders","format":"parquet","files":[` + strings.Join(files, ",") + `]}`
	big := newEvent("tenant-a", "evt_big", t0)
	big.Data = json.RawMessage(data)
	envelope, _ := json.Marshal(big)
	if len(envelope) < 1000 || len(envelope) > 1100 {
		t.Fatalf("test envelope is %d bytes, want about 1 KiB", len(envelope))
	}
	small := newEvent("tenant-a", "evt_small", t0.Add(time.Second)) // {"n":1}: deflate would grow it
	for _, e := range []domain.Event{big, small} {
		if _, err := s.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &table, Key: eventKey(big)})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := out.Item["z"].(*types.AttributeValueMemberB); !ok || out.Item["d"] != nil {
		t.Errorf("a compressible event is stored as %v, want compressed data (z)", out.Item)
	}
	if size := awsmeter.ItemSize(out.Item); size > 1024 {
		t.Errorf("the item of a %d-byte envelope is %d bytes: over one write unit", len(envelope), size)
	}
	evs, _ := drain(t, s, "tenant-a", t0.Add(-time.Hour), t0.Add(time.Hour), 10)
	if len(evs) != 2 || string(evs[0].Data) != data || string(evs[1].Data) != `{"n":1}` {
		t.Fatalf("read back %q and %q", evs[0].Data, evs[1].Data)
	}
}

// TestEventPageReadsItemsStoredBeforeSharding: events written with the earlier layout
// (hour key without shard, long attribute names) are read as part of shard 0.
func TestEventPageReadsItemsStoredBeforeSharding(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, db, table := newEvents(t)
	old := newEvent("tenant-a", "evt_old", t0)
	item := map[string]types.AttributeValue{
		"pk": str(tenantKey("tenant-a", t0.Format(bucketLayout))), "sk": str(eventSK(old)),
		"event_id": str("evt_old"), "tenant_id": str("tenant-a"), "type": str("export.done"),
		"occurred_at": str("2026-03-14T15:09:26.535897932Z"), "data": str(`{"legacy":true}`),
		"fanned_out": &types.AttributeValueMemberBOOL{Value: true}, "expires_at": &types.AttributeValueMemberN{Value: "4102444800"},
	}
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: item}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, newEvent("tenant-a", "evt_new", t0.Add(time.Second))); err != nil {
		t.Fatal(err)
	}
	evs, _ := drain(t, s, "tenant-a", t0.Add(-time.Hour), t0.Add(time.Hour), 1)
	if ids(evs) != "evt_old evt_new" || string(evs[0].Data) != `{"legacy":true}` || evs[0].Type != "export.done" || !evs[0].OccurredAt.Equal(t0) {
		t.Fatalf("read %s: %+v", ids(evs), evs)
	}
}

// TestEventPageMergesShardsInOrder: a busy tenant's events spread over every shard; paging
// returns each exactly once, in occurred_at then id order, whatever the page size, and a
// resumed walk neither repeats nor skips.
func TestEventPageMergesShardsInOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, db, table := newEvents(t)
	base := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(7, 11))
	var want []domain.Event
	for i := range 120 {
		// Over three hours, many sharing an instant (whole seconds) so that ties are
		// broken by id across shards.
		at := base.Add(time.Duration(rng.IntN(3*3600)) * time.Second)
		if i%5 == 0 && len(want) > 0 {
			at = want[rng.IntN(len(want))].OccurredAt
		}
		e := newEvent("tenant-a", fmt.Sprintf("evt_%04d", rng.IntN(10000)*1000+i), at)
		want = append(want, e)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(want))
	for _, e := range want {
		wg.Go(func() {
			if _, err := s.Put(ctx, e); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	sort.Slice(want, func(i, j int) bool { return eventSK(want[i]) < eventSK(want[j]) })

	// Every shard holds some of them.
	for sh := range EventShards {
		out, err := db.Query(ctx, &dynamodb.QueryInput{TableName: &table, KeyConditionExpression: aws.String("pk = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(shardPK("tenant-a", base.Add(time.Hour), sh))}, Select: types.SelectCount})
		if err != nil {
			t.Fatal(err)
		}
		if out.Count == 0 {
			t.Errorf("shard %d of hour 11 is empty: the events do not spread", sh)
		}
	}
	for _, limit := range []int{4, 25, 1000} {
		got, calls := drain(t, s, "tenant-a", base, base.Add(3*time.Hour), limit)
		if ids(got) != ids(want) {
			t.Fatalf("limit %d: got %d events, want %d, in order, once each", limit, len(got), len(want))
		}
		if max := len(want)/limit + 1; calls > max {
			t.Errorf("limit %d: %d calls, want at most %d", limit, calls, max)
		}
	}
	// A sub-range starting inside an hour and a cursor taken in the middle of a shard merge.
	from, until := want[17].OccurredAt, want[100].OccurredAt
	var sub []domain.Event
	for _, e := range want {
		if !e.OccurredAt.Before(from) && e.OccurredAt.Before(until) {
			sub = append(sub, e)
		}
	}
	if got, _ := drain(t, s, "tenant-a", from, until, 9); ids(got) != ids(sub) {
		t.Fatalf("sub-range: got %d events, want %d", len(got), len(sub))
	}
}

func TestEventPutStoreDown(t *testing.T) {
	t.Parallel()
	s := NewEvents(downClient(t), "events")
	_, err := s.Put(context.Background(), newEvent("tenant-a", "evt_1", t0))
	wantKind(t, err, domain.ErrUnavailable)
	_, _, err = s.Page(context.Background(), "tenant-a", t0, t0.Add(time.Hour), "", 10)
	wantKind(t, err, domain.ErrUnavailable)
	_, err = s.Stored(context.Background(), []domain.Event{newEvent("tenant-a", "evt_1", t0)})
	wantKind(t, err, domain.ErrUnavailable)
}

// drain pages through [from, until) with the given limit and returns every event and the
// number of calls, failing the test on a page over the limit.
func drain(t *testing.T, s *Events, tenant string, from, until time.Time, limit int) ([]domain.Event, int) {
	t.Helper()
	var all []domain.Event
	cursor := ""
	for calls := 1; ; calls++ {
		evs, next, err := s.Page(context.Background(), tenant, from, until, cursor, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) > limit {
			t.Fatalf("page of %d events, limit %d", len(evs), limit)
		}
		all = append(all, evs...)
		if next == "" {
			return all, calls
		}
		if calls > 100 {
			t.Fatal("Page does not end")
		}
		cursor = next
	}
}

func TestEventPage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newEvents(t)

	base := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	// Events over six hours (10:00–15:59), hour 12 empty, two events at one instant, plus
	// another tenant's events at the same instants.
	offsets := []time.Duration{
		0, 59*time.Minute + 59*time.Second + 999999999, // hour 10: its first and last instants
		time.Hour + 5*time.Minute, time.Hour + 5*time.Minute, time.Hour + 30*time.Minute, // hour 11
		3*time.Hour + time.Second,                                                                // hour 13
		4*time.Hour + 10*time.Minute, 4*time.Hour + 20*time.Minute, 4*time.Hour + 30*time.Minute, // hour 14
		5*time.Hour + 59*time.Minute, // hour 15
	}
	var stored []domain.Event
	for i, off := range offsets {
		e := newEvent("tenant-a", fmt.Sprintf("evt_%02d", i), base.Add(off))
		if _, err := s.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
		stored = append(stored, e)
		if _, err := s.Put(ctx, newEvent("tenant-b", fmt.Sprintf("other_%02d", i), base.Add(off))); err != nil {
			t.Fatal(err)
		}
	}
	// A tenant whose id embeds another's key must not see it either.
	if _, err := s.Put(ctx, newEvent("8:tenant-a", "evt_x", base)); err != nil {
		t.Fatal(err)
	}

	inRange := func(from, until time.Time) []domain.Event {
		var out []domain.Event
		for _, e := range stored {
			if !e.OccurredAt.Before(from) && e.OccurredAt.Before(until) {
				out = append(out, e)
			}
		}
		return out
	}
	cases := []struct {
		name        string
		from, until time.Time
	}{
		{"all", base.Add(-2 * time.Hour), base.Add(8 * time.Hour)},
		{"from and until inside hours", base.Add(time.Hour + 5*time.Minute), base.Add(4*time.Hour + 30*time.Minute)},
		{"until on an hour", base.Add(30 * time.Minute), base.Add(4 * time.Hour)},
		{"from at the last nanosecond of an hour", base.Add(59*time.Minute + 59*time.Second + 999999999), base.Add(time.Hour + 6*time.Minute)},
		{"empty range", base.Add(3 * time.Hour), base.Add(3 * time.Hour)},
		{"no events", base.Add(2 * time.Hour), base.Add(3 * time.Hour)},
	}
	for _, tc := range cases {
		for _, limit := range []int{1, 2, 3, 100} {
			t.Run(fmt.Sprintf("%s/limit %d", tc.name, limit), func(t *testing.T) {
				want := inRange(tc.from, tc.until)
				got, calls := drain(t, s, "tenant-a", tc.from, tc.until, limit)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("events:\n%s\nwant:\n%s", ids(got), ids(want))
				}
				// At most one trailing empty page.
				if max := len(want)/limit + 1; calls > max {
					t.Errorf("%d calls, want at most %d", calls, max)
				}
			})
		}
	}

	// After(e) resumes right after e, wherever e is: first or last of its hour, at the same
	// instant as another, before an empty hour.
	from, until := base.Add(-2*time.Hour), base.Add(8*time.Hour)
	all := inRange(from, until)
	for i, e := range all {
		got, next, err := s.Page(ctx, "tenant-a", from, until, s.After(e), 100)
		if err != nil || next != "" || ids(got) != ids(all[i+1:]) {
			t.Errorf("Page after %s = %s, %q, %v; want %s", e.ID, ids(got), next, err, ids(all[i+1:]))
		}
	}

	// Same-instant events come in id order.
	got, _ := drain(t, s, "tenant-a", base.Add(time.Hour), base.Add(2*time.Hour), 10)
	if ids(got) != "evt_02 evt_03 evt_04" {
		t.Errorf("hour 11 = %s", ids(got))
	}
	got, _ = drain(t, s, "tenant-b", base, base.Add(time.Hour), 10)
	if ids(got) != "other_00 other_01" {
		t.Errorf("tenant-b hour 10 = %s", ids(got))
	}
}

func TestEventPageCursor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newEvents(t)
	base := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	for i := range 5 {
		if _, err := s.Put(ctx, newEvent("tenant-a", fmt.Sprintf("evt_%d", i), base.Add(time.Duration(i)*time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	until := base.Add(time.Hour)
	// A full page in the range's last hour whose end is the data's end: the next call, with
	// one more event stored meanwhile, resumes after the last one returned.
	evs, next, err := s.Page(ctx, "tenant-a", base, until, "", 5)
	if err != nil || len(evs) != 5 {
		t.Fatalf("Page = %d events, %v", len(evs), err)
	}
	if next != "" {
		// Allowed, but then the next page must be empty and final.
		rest, next2, err := s.Page(ctx, "tenant-a", base, until, next, 5)
		if err != nil || len(rest) != 0 || next2 != "" {
			t.Fatalf("after the last event: %s, %q, %v", ids(rest), next2, err)
		}
	}
	evs, next, err = s.Page(ctx, "tenant-a", base, until, "", 2)
	if err != nil || ids(evs) != "evt_0 evt_1" || next == "" {
		t.Fatalf("first page = %s, %q, %v", ids(evs), next, err)
	}
	// A new event in the range after the cursor is found; one before it is not re-read.
	if _, err := s.Put(ctx, newEvent("tenant-a", "evt_late", base.Add(90*time.Second))); err != nil {
		t.Fatal(err)
	}
	evs, _, err = s.Page(ctx, "tenant-a", base, until, next, 10)
	if err != nil || ids(evs) != "evt_late evt_2 evt_3 evt_4" {
		t.Fatalf("resumed page = %s, %v", ids(evs), err)
	}

	for _, bad := range []string{"x", "e1.!!", "e1." + "bm9waXBl", eventCursor{bucket: base, after: "2020-01-01T00:00:00.000000000Z#e"}.encode()} {
		_, _, err := s.Page(ctx, "tenant-a", base, until, bad, 10)
		var de *domain.Error
		if !errors.As(err, &de) || de.Kind != domain.KindInvalid {
			t.Errorf("Page(cursor %q) error = %v, want invalid", bad, err)
		}
	}
	if _, _, err := s.Page(ctx, "tenant-a", base, until, "", 0); err == nil {
		t.Error("limit 0 accepted")
	}
}

func ids(evs []domain.Event) string {
	s := ""
	for i, e := range evs {
		if i > 0 {
			s += " "
		}
		s += e.ID
	}
	return s
}

// TestEventGet reads one stored event by its key; an unknown one, or one past its
// retention (TTL may not have removed it yet), is not found.
func TestEventGet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, env := newStack(t)
	s := NewEvents(db, env["WEBHOOKS_EVENTS_TABLE"])
	e := domain.Event{ID: "evt_get", TenantID: "tenant-a", Type: "export.done", OccurredAt: time.Now().UTC().Add(-time.Hour).Round(0), Data: json.RawMessage(`{"n":1}`)}
	if _, err := s.Put(ctx, e); err != nil {
		t.Fatal(err)
	}
	ref := domain.EventRef{ID: e.ID, Type: e.Type, OccurredAt: e.OccurredAt}
	got, err := s.Get(ctx, "tenant-a", ref, time.Now())
	if err != nil || got.ID != e.ID || got.Type != e.Type || !got.OccurredAt.Equal(e.OccurredAt) || string(got.Data) != string(e.Data) {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	for name, c := range map[string]struct {
		tenant string
		ref    domain.EventRef
		now    time.Time
	}{
		"another tenant":     {"tenant-b", ref, time.Now()},
		"another instant":    {"tenant-a", domain.EventRef{ID: e.ID, OccurredAt: e.OccurredAt.Add(time.Nanosecond)}, time.Now()},
		"past the retention": {"tenant-a", ref, domain.EventExpiry(e, time.Now()).Add(time.Second)},
		"never stored":       {"tenant-a", domain.EventRef{ID: "evt_none", OccurredAt: e.OccurredAt}, time.Now()},
	} {
		if _, err := s.Get(ctx, c.tenant, c.ref, c.now); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("%s: %v, want not found", name, err)
		}
	}
}
