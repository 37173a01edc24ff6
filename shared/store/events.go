package store

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/datajetty/webhooks/shared/domain"
)

// Key layout of the events table. An event lives in the partition of its tenant, the UTC
// hour of its occurred_at, and one of EventShards shards picked by a hash of its id: a
// tenant's events of one hour spread over EventShards partition keys, so one tenant can
// write EventShards times what one partition takes (see docs/performance.md), and a
// replay reads a time range hour by hour, merging the hour's shards. The sort key is
// occurred_at in a fixed-width UTC format followed by the event id, so string order is time
// order and two events of the same instant stay distinct.
//
// Shard 0's key is the hour's key without a shard suffix, the key of every event stored
// before events were sharded, so those are read as part of shard 0.
const (
	bucketLayout = "2006-01-02T15"
	sortLayout   = "2006-01-02T15:04:05.000000000Z"
	// EventShards is how many partition keys share a tenant's hour. Readers query all of
	// them; raising it later is safe for readers that use the new value (the new shards
	// are empty for older hours), lowering it would hide events.
	EventShards = 8
)

// eventItem is the stored shape of an event, kept within one write unit (1 KB) for the
// usual event: short attribute names, the tenant, id and occurred_at only in the keys, and
// the data DEFLATE-compressed whenever that makes it smaller.
type eventItem struct {
	PK        string `dynamodbav:"pk"`
	SK        string `dynamodbav:"sk"`
	Type      string `dynamodbav:"t,omitempty"`
	Data      string `dynamodbav:"d,omitempty"` // the event's data, raw JSON
	Deflated  []byte `dynamodbav:"z,omitempty"` // or the event's data, DEFLATE-compressed (RFC 1951)
	ExpiresAt int64  `dynamodbav:"expires_at"`
	// Items stored before the compact layout name these "type" and "data".
	OldType string `dynamodbav:"type,omitempty"`
	OldData string `dynamodbav:"data,omitempty"`
}

// shardOf is the shard an event lives in: a hash of its id, so every copy of the event
// lands on the same key.
func shardOf(id string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return int(h.Sum32() % EventShards)
}

// shardPK is the partition key of one shard of a tenant's hour.
func shardPK(tenantID string, hour time.Time, shard int) string {
	b := hour.UTC().Format(bucketLayout)
	if shard > 0 {
		b += "#" + strconv.Itoa(shard)
	}
	return tenantKey(tenantID, b)
}

func eventPK(e domain.Event) string { return shardPK(e.TenantID, e.OccurredAt, shardOf(e.ID)) }

func eventSK(e domain.Event) string { return e.OccurredAt.UTC().Format(sortLayout) + "#" + e.ID }

func eventKey(e domain.Event) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": str(eventPK(e)), "sk": str(eventSK(e))}
}

// Events stores platform events for fan-out and replay.
type Events struct {
	db    *dynamodb.Client
	table string
	// sleep waits between retries of unprocessed keys; tests shorten it.
	sleep func(context.Context, time.Duration) error
}

// NewEvents returns an event store on the given table.
func NewEvents(client *dynamodb.Client, table string) *Events {
	return &Events{db: client, table: table, sleep: sleepCtx}
}

// deflaters reuses DEFLATE writers: each holds a few hundred KB of state.
var deflaters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(io.Discard, flate.BestCompression)
	return w
}}

func deflate(data []byte) []byte {
	var buf bytes.Buffer
	w := deflaters.Get().(*flate.Writer)
	w.Reset(&buf)
	_, _ = w.Write(data)
	_ = w.Close()
	deflaters.Put(w)
	return buf.Bytes()
}

func newEventItem(e domain.Event, storedAt time.Time) eventItem {
	it := eventItem{
		PK: eventPK(e), SK: eventSK(e), Type: e.Type,
		// A day beyond the retention, so a replay of the oldest allowed range still finds
		// events that TTL (which runs late, never early) has not removed yet.
		ExpiresAt: domain.EventExpiry(e, storedAt).Unix(),
	}
	if z := deflate(e.Data); len(z) < len(e.Data) {
		it.Deflated = z
	} else {
		it.Data = string(e.Data)
	}
	return it
}

// Put stores the event unless a copy is already stored (one conditional PutItem), and
// reports whether there was one. The dedupe key is (tenant, occurred_at, id), the item's
// key: a producer's retry and an SQS redelivery resend the same envelope and land on the
// same key. The stored copy is kept as it is; the duplicate's content is ignored.
func (s *Events) Put(ctx context.Context, e domain.Event) (duplicate bool, err error) {
	if e.TenantID == "" || e.ID == "" || e.OccurredAt.IsZero() {
		return false, fmt.Errorf("put event: tenant, id and occurred_at are required")
	}
	av, err := attributevalue.MarshalMap(newEventItem(e, time.Now()))
	if err != nil {
		return false, fmt.Errorf("put event %s: encode: %w", e.ID, err)
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           &s.table,
		Item:                av,
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	if _, ok := conditionFailed(err); ok {
		return true, nil
	}
	if err != nil {
		return false, dbErr("put event "+e.ID, err)
	}
	return false, nil
}

// maxBatchGet is DynamoDB's BatchGetItem limit.
const maxBatchGet = 100

// Stored reports, for each event, whether it is stored: BatchGetItem of the keys only, 100
// at a time, eventually consistent (half a read unit per event). A copy stored a moment
// ago may be missed; for the caller that means fanning an event out once more, never
// losing one.
func (s *Events) Stored(ctx context.Context, evs []domain.Event) ([]bool, error) {
	stored := make([]bool, len(evs))
	at := map[string][]int{} // pk \x00 sk -> positions in evs
	var keys []map[string]types.AttributeValue
	for i, e := range evs {
		k := eventPK(e) + "\x00" + eventSK(e)
		if _, seen := at[k]; !seen {
			keys = append(keys, eventKey(e)) // a batch may not name a key twice
		}
		at[k] = append(at[k], i)
	}
	for start := 0; start < len(keys); start += maxBatchGet {
		req := map[string]types.KeysAndAttributes{s.table: {
			Keys:                 keys[start:min(start+maxBatchGet, len(keys))],
			ProjectionExpression: aws.String("pk, sk"),
		}}
		backoff := unprocessedBackoff
		for try := 0; len(req) > 0; try++ {
			if try > 0 {
				if try > unprocessedRetries {
					return nil, dbErr("look up events", fmt.Errorf("keys still unprocessed after %d retries", unprocessedRetries))
				}
				if err := s.sleep(ctx, backoff); err != nil {
					return nil, dbErr("look up events", err)
				}
				backoff *= 2
			}
			out, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, dbErr("look up events", err)
			}
			for _, it := range out.Responses[s.table] {
				pk, _ := it["pk"].(*types.AttributeValueMemberS)
				sk, _ := it["sk"].(*types.AttributeValueMemberS)
				if pk == nil || sk == nil {
					continue
				}
				for _, i := range at[pk.Value+"\x00"+sk.Value] {
					stored[i] = true
				}
			}
			req = out.UnprocessedKeys
		}
	}
	return stored, nil
}

// eventCursor is a position in a Page walk: the hour bucket to read next and, within it,
// the sort key of the last event returned ("" for the bucket's start).
type eventCursor struct {
	bucket time.Time
	after  string
}

// cursorPrefix versions the cursor encoding.
const cursorPrefix = "e1."

func (c eventCursor) encode() string {
	return cursorPrefix + base64.RawURLEncoding.EncodeToString([]byte(c.bucket.Format(bucketLayout)+"|"+c.after))
}

func decodeEventCursor(s string) (eventCursor, error) {
	bad := domain.Invalid("cursor", "the event cursor is malformed")
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(s, cursorPrefix))
	if err != nil || !strings.HasPrefix(s, cursorPrefix) {
		return eventCursor{}, bad
	}
	b, after, ok := strings.Cut(string(raw), "|")
	if !ok {
		return eventCursor{}, bad
	}
	bucket, err := time.Parse(bucketLayout, b)
	if err != nil || (after != "" && !strings.HasPrefix(after, b)) {
		return eventCursor{}, bad
	}
	return eventCursor{bucket: bucket, after: after}, nil
}

// After returns the cursor that resumes a Page walk right after e, an event a Page call
// returned: for a caller that used a page only up to e (the replay worker, which sends
// full batches and carries the rest of a page over).
func (s *Events) After(e domain.Event) string {
	return eventCursor{bucket: e.OccurredAt.UTC().Truncate(time.Hour), after: eventSK(e)}.encode()
}

// Page returns up to limit of the tenant's events with from <= occurred_at < until, in
// time order (then id order), and the cursor that resumes exactly after the last one.
//
// cursor is "" for the start of the range, or a next value returned by an earlier call
// with the same tenant and range. next is "" once the range is exhausted; a page may be
// short, and may even be empty, so callers loop until next is "" rather than until a page
// is short.
//
// It reads one hour bucket at a time, merging the bucket's EventShards shards in sort-key
// order with strongly consistent Queries (never a Scan): an empty hour costs one Query per
// shard, an hour with many events a few Queries per shard per page.
func (s *Events) Page(ctx context.Context, tenantID string, from, until time.Time, cursor string, limit int) ([]domain.Event, string, error) {
	if limit <= 0 {
		return nil, "", fmt.Errorf("page events: limit %d must be positive", limit)
	}
	from, until = from.UTC(), until.UTC()
	pos := eventCursor{bucket: from.Truncate(time.Hour)}
	if cursor != "" {
		c, err := decodeEventCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		if c.bucket.After(pos.bucket) {
			pos = c
		} else if c.bucket.Equal(pos.bucket) {
			pos.after = c.after
		}
	}
	// BETWEEN is inclusive, and no sort key equals a bare timestamp (each ends in "#id"):
	// every event at from is included, every event at until excluded.
	lo, hi := from.Format(sortLayout), until.Format(sortLayout)
	var evs []domain.Event
	for b := pos.bucket; b.Before(until); b = b.Add(time.Hour) {
		if len(evs) == limit {
			// Full, and more hours remain: resume at the start of the next one.
			return evs, eventCursor{bucket: b}.encode(), nil
		}
		after := ""
		if b.Equal(pos.bucket) {
			after = pos.after
		}
		m := &bucketMerge{s: s, tenantID: tenantID, bucket: b, lo: lo, hi: hi, after: after}
		more, err := m.read(ctx, limit-len(evs), &evs)
		if err != nil {
			return nil, "", err
		}
		if more {
			return evs, eventCursor{bucket: b, after: eventSK(evs[len(evs)-1])}.encode(), nil
		}
	}
	return evs, "", nil
}

// bucketMerge reads one hour of a tenant's events from all its shards in sort-key order.
type bucketMerge struct {
	s             *Events
	tenantID      string
	bucket        time.Time
	lo, hi, after string
	shards        []*shardReader
}

// shardReader reads one shard in sort-key order, a chunk at a time.
type shardReader struct {
	in   *dynamodb.QueryInput
	buf  []map[string]types.AttributeValue
	done bool
}

func (r *shardReader) head() string {
	sk, _ := r.buf[0]["sk"].(*types.AttributeValueMemberS)
	if sk == nil {
		return ""
	}
	return sk.Value
}

// read appends up to n of the bucket's events to evs, in sort-key order, and reports
// whether the bucket may hold more (when it says so the next read can still be empty).
//
// Each shard is queried a chunk at a time (n/EventShards + 2 items), all shards at first,
// then only a shard whose chunk ran out: an event is taken only when every shard that may
// still hold events has its next one in hand, so the order is exact. What a page reads
// beyond what it returns is at most a chunk per shard.
func (m *bucketMerge) read(ctx context.Context, n int, evs *[]domain.Event) (bool, error) {
	chunk := int32(n/EventShards + 2)
	for sh := range EventShards {
		pk := shardPK(m.tenantID, m.bucket, sh)
		in := &dynamodb.QueryInput{
			TableName:                 &m.s.table,
			KeyConditionExpression:    aws.String("pk = :pk AND sk BETWEEN :lo AND :hi"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(pk), ":lo": str(m.lo), ":hi": str(m.hi)},
			ConsistentRead:            aws.Bool(true),
			Limit:                     aws.Int32(chunk),
		}
		if m.after != "" {
			// A position, not necessarily a stored item of this shard: the Query starts
			// after it in sort-key order.
			in.ExclusiveStartKey = map[string]types.AttributeValue{"pk": str(pk), "sk": str(m.after)}
		}
		m.shards = append(m.shards, &shardReader{in: in})
	}
	for {
		var empty []*shardReader
		for _, r := range m.shards {
			if len(r.buf) == 0 && !r.done {
				empty = append(empty, r)
			}
		}
		if n == 0 {
			for _, r := range m.shards {
				if len(r.buf) > 0 || !r.done {
					return true, nil
				}
			}
			return false, nil
		}
		if len(empty) > 0 {
			if err := m.fill(ctx, empty); err != nil {
				return false, err
			}
			continue
		}
		var next *shardReader
		for _, r := range m.shards {
			if len(r.buf) > 0 && (next == nil || r.head() < next.head()) {
				next = r
			}
		}
		if next == nil {
			return false, nil
		}
		var it eventItem
		if err := attributevalue.UnmarshalMap(next.buf[0], &it); err != nil {
			return false, fmt.Errorf("page events: decode: %w", err)
		}
		next.buf = next.buf[1:]
		e, err := it.toDomain(m.tenantID)
		if err != nil {
			return false, err
		}
		*evs = append(*evs, e)
		n--
	}
}

// fill queries the next chunk of each reader, concurrently.
func (m *bucketMerge) fill(ctx context.Context, rs []*shardReader) error {
	errs := make([]error, len(rs))
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Go(func() {
			out, err := m.s.db.Query(ctx, r.in)
			if err != nil {
				errs[i] = dbErr("page events", err)
				return
			}
			r.buf = append(r.buf, out.Items...)
			if len(out.LastEvaluatedKey) == 0 {
				r.done = true
			} else {
				r.in.ExclusiveStartKey = out.LastEvaluatedKey
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// toDomain reads the event back: id and occurred_at from the sort key, the data inflated.
func (it eventItem) toDomain(tenantID string) (domain.Event, error) {
	stamp, id, ok := strings.Cut(it.SK, "#")
	at, err := time.Parse(time.RFC3339Nano, stamp)
	if !ok || err != nil {
		return domain.Event{}, fmt.Errorf("decode event: sort key %q is not <occurred_at>#<id>", it.SK)
	}
	e := domain.Event{ID: id, TenantID: tenantID, Type: it.Type, OccurredAt: at.UTC()}
	switch {
	case it.Deflated != nil:
		data, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(it.Deflated)), domain.MaxEventBytes+1))
		if err != nil {
			return domain.Event{}, fmt.Errorf("decode event %s: inflate data: %w", id, err)
		}
		e.Data = data
	case it.Data != "":
		e.Data = json.RawMessage(it.Data)
	default:
		e.Data = json.RawMessage(it.OldData)
	}
	if e.Type == "" {
		e.Type = it.OldType
	}
	return e, nil
}

// Get reads one stored event (one consistent GetItem); NotFound when it is not stored, or
// when its retention is over (TTL deletes lazily, so an expired item may still be there).
func (s *Events) Get(ctx context.Context, tenantID string, ref domain.EventRef, now time.Time) (domain.Event, error) {
	key := eventKey(domain.Event{TenantID: tenantID, ID: ref.ID, OccurredAt: ref.OccurredAt})
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return domain.Event{}, dbErr("get event "+ref.ID, err)
	}
	gone := domain.NotFound("event %s is no longer stored (the retention is %d days)", ref.ID, int(domain.EventRetention.Hours()/24))
	if out.Item == nil {
		return domain.Event{}, gone
	}
	var it eventItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return domain.Event{}, fmt.Errorf("get event %s: decode: %w", ref.ID, err)
	}
	if it.ExpiresAt <= now.Unix() {
		return domain.Event{}, gone
	}
	return it.toDomain(tenantID)
}
