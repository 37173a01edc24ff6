package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/datajetty/webhooks/shared/app"
	"github.com/datajetty/webhooks/shared/domain"
)

// Key layout of the events table. An event lives in the partition of its tenant and UTC
// hour of occurred_at, so a busy tenant spreads over one partition per hour instead of one
// hot partition, and a replay reads a time range with one Query per hour. The sort key is
// occurred_at in a fixed-width UTC format followed by the event id, so string order is time
// order and two events of the same instant stay distinct.
const (
	bucketLayout = "2006-01-02T15"
	sortLayout   = "2006-01-02T15:04:05.000000000Z"
)

// eventItem is the stored shape of an event.
type eventItem struct {
	PK         string `dynamodbav:"pk"`
	SK         string `dynamodbav:"sk"`
	EventID    string `dynamodbav:"event_id"`
	TenantID   string `dynamodbav:"tenant_id"`
	Type       string `dynamodbav:"type"`
	OccurredAt string `dynamodbav:"occurred_at"`
	Data       string `dynamodbav:"data"` // the event's data, raw JSON
	FannedOut  bool   `dynamodbav:"fanned_out"`
	ExpiresAt  int64  `dynamodbav:"expires_at"`
}

func bucketPK(tenantID string, hour time.Time) string {
	return tenantKey(tenantID, hour.UTC().Format(bucketLayout))
}

func eventSK(e domain.Event) string { return e.OccurredAt.UTC().Format(sortLayout) + "#" + e.ID }

func eventKey(e domain.Event) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": str(bucketPK(e.TenantID, e.OccurredAt)), "sk": str(eventSK(e))}
}

// Events stores platform events for fan-out and replay.
type Events struct {
	db    *dynamodb.Client
	table string
}

// NewEvents returns an event store on the given table.
func NewEvents(client *dynamodb.Client, table string) *Events {
	return &Events{db: client, table: table}
}

// Put stores the event unless it is already stored (one conditional PutItem).
//
// The dedupe key is (tenant, occurred_at, id): the item's key. A producer's retry and an
// SQS redelivery resend the same envelope, so they land on the same key and are reported
// as Duplicate, with FannedOut telling whether the first copy's jobs were all sent. The
// stored copy is kept as it is; the duplicate's content is ignored.
func (s *Events) Put(ctx context.Context, e domain.Event) (app.PutResult, error) {
	if e.TenantID == "" || e.ID == "" || e.OccurredAt.IsZero() {
		return app.PutResult{}, fmt.Errorf("put event: tenant, id and occurred_at are required")
	}
	av, err := attributevalue.MarshalMap(eventItem{
		PK:         bucketPK(e.TenantID, e.OccurredAt),
		SK:         eventSK(e),
		EventID:    e.ID,
		TenantID:   e.TenantID,
		Type:       e.Type,
		OccurredAt: e.OccurredAt.UTC().Format(sortLayout),
		Data:       string(e.Data),
		// A day beyond the retention, so a replay of the oldest allowed range still finds
		// events that TTL (which runs late, never early) has not removed yet.
		ExpiresAt: domain.EventExpiry(e, time.Now()).Unix(),
	})
	if err != nil {
		return app.PutResult{}, fmt.Errorf("put event %s: encode: %w", e.ID, err)
	}
	// The stored copy may expire (TTL) between a failed put and the read that follows, so
	// the pair is tried twice.
	for attempt := 0; attempt < 2; attempt++ {
		_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:                           &s.table,
			Item:                                av,
			ConditionExpression:                 aws.String("attribute_not_exists(pk)"),
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		if err == nil {
			return app.PutResult{}, nil
		}
		ccf, ok := conditionFailed(err)
		if !ok {
			return app.PutResult{}, dbErr("put event "+e.ID, err)
		}
		old := ccf.Item
		if old == nil {
			out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
				TableName:            &s.table,
				Key:                  eventKey(e),
				ConsistentRead:       aws.Bool(true),
				ProjectionExpression: aws.String("fanned_out"),
			})
			if err != nil {
				return app.PutResult{}, dbErr("read event "+e.ID, err)
			}
			if out.Item == nil {
				continue
			}
			old = out.Item
		}
		fanned, _ := old["fanned_out"].(*types.AttributeValueMemberBOOL)
		return app.PutResult{Duplicate: true, FannedOut: fanned != nil && fanned.Value}, nil
	}
	return app.PutResult{}, dbErr("put event "+e.ID, err)
}

// MarkFannedOut records that all of the event's delivery jobs were sent (one UpdateItem).
// It fails with NotFound, rather than creating a stub, if the event is not stored.
func (s *Events) MarkFannedOut(ctx context.Context, e domain.Event) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       eventKey(e),
		UpdateExpression:          aws.String("SET fanned_out = :t"),
		ConditionExpression:       aws.String("attribute_exists(pk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": &types.AttributeValueMemberBOOL{Value: true}},
	})
	if _, ok := conditionFailed(err); ok {
		return domain.NotFound("event %s not found", e.ID)
	}
	if err != nil {
		return dbErr("mark event "+e.ID+" fanned out", err)
	}
	return nil
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
// short, and when the previous page ended exactly at the end of the data the last page is
// empty, so callers loop until next is "" rather than until a page is short.
//
// It reads one hour bucket at a time with a strongly consistent Query (never a Scan): an
// empty hour costs one Query, an hour with many events as many Query pages as it needs.
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
		pk := bucketPK(tenantID, b)
		in := &dynamodb.QueryInput{
			TableName:                 &s.table,
			KeyConditionExpression:    aws.String("pk = :pk AND sk BETWEEN :lo AND :hi"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(pk), ":lo": str(lo), ":hi": str(hi)},
			ConsistentRead:            aws.Bool(true),
		}
		if b.Equal(pos.bucket) && pos.after != "" {
			in.ExclusiveStartKey = map[string]types.AttributeValue{"pk": str(pk), "sk": str(pos.after)}
		}
		for {
			// One more than needed, to know whether this hour goes on after a full page.
			in.Limit = aws.Int32(int32(limit - len(evs) + 1))
			out, err := s.db.Query(ctx, in)
			if err != nil {
				return nil, "", dbErr("page events", err)
			}
			for _, av := range out.Items {
				var it eventItem
				if err := attributevalue.UnmarshalMap(av, &it); err != nil {
					return nil, "", fmt.Errorf("page events: decode: %w", err)
				}
				if len(evs) == limit {
					return evs, eventCursor{bucket: b, after: eventSK(evs[len(evs)-1])}.encode(), nil
				}
				e, err := it.toDomain()
				if err != nil {
					return nil, "", err
				}
				evs = append(evs, e)
			}
			if len(out.LastEvaluatedKey) == 0 {
				break
			}
			in.ExclusiveStartKey = out.LastEvaluatedKey
		}
	}
	return evs, "", nil
}

func (it eventItem) toDomain() (domain.Event, error) {
	at, err := time.Parse(time.RFC3339Nano, it.OccurredAt)
	if err != nil {
		return domain.Event{}, fmt.Errorf("decode event %s: occurred_at: %w", it.EventID, err)
	}
	return domain.Event{ID: it.EventID, TenantID: it.TenantID, Type: it.Type, OccurredAt: at.UTC(), Data: json.RawMessage(it.Data)}, nil
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
	return it.toDomain()
}
