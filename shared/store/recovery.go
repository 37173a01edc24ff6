package store

import (
	"context"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/datajetty/webhooks/shared/domain"
)

// Recovery reads the events whose latest delivery to an endpoint did not succeed, in time
// order: a page of the endpoint's unsucceeded index (deliveries table), then those events
// from the events table. It serves a replay with only_failed, which so reads the failures
// only, never the period's other events nor the log.
type Recovery struct {
	deliveries *Deliveries
	events     *Events
}

// NewRecovery returns a Recovery over the deliveries and events stores.
func NewRecovery(deliveries *Deliveries, events *Events) *Recovery {
	return &Recovery{deliveries: deliveries, events: events}
}

// failedCursorPrefix versions the cursor of a PageFailed walk.
const failedCursorPrefix = "u1."

// AfterFailed returns the cursor that resumes a PageFailed walk right after e.
func (r *Recovery) AfterFailed(e domain.Event) string {
	return failedCursorPrefix + base64.RawURLEncoding.EncodeToString([]byte(formatSortable(e.OccurredAt)+"#"+e.ID))
}

// PageFailed returns up to limit events of the endpoint's unsucceeded index with
// from <= occurred_at < until, in time order, and the cursor that resumes after the last
// index entry read ("" once the range is exhausted). An entry whose event is no longer
// stored (past the retention) is passed over. Calls: one strongly consistent Query of the
// index, and one BatchGetItem of the events (more only for unprocessed keys).
func (r *Recovery) PageFailed(ctx context.Context, tenantID, endpointID string, from, until time.Time, cursor string, limit int) ([]domain.Event, string, error) {
	if limit <= 0 || limit > maxBatchGet {
		return nil, "", fmt.Errorf("page failed events: limit %d must be 1..%d", limit, maxBatchGet)
	}
	pk := unsucceededPK(tenantID, endpointID)
	in := &dynamodb.QueryInput{
		TableName:              &r.deliveries.table,
		KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :lo AND :hi"),
		// No sort key equals a bare timestamp (each ends in "#id"): entries at from are
		// included, entries at until excluded.
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(pk), ":lo": str(formatSortable(from)), ":hi": str(formatSortable(until)),
		},
		ConsistentRead: aws.Bool(true),
		Limit:          aws.Int32(int32(limit)),
	}
	if cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(cursor, failedCursorPrefix))
		if err != nil || !strings.HasPrefix(cursor, failedCursorPrefix) {
			return nil, "", domain.Invalid("cursor", "the failed-events cursor is malformed")
		}
		in.ExclusiveStartKey = deliveryKey(pk, string(raw))
	}
	out, err := r.deliveries.db.Query(ctx, in)
	if err != nil {
		return nil, "", dbErr("page failed events", err)
	}
	refs := make([]domain.EventRef, 0, len(out.Items))
	for _, av := range out.Items {
		var it unsucceededItem
		if err := attributevalue.UnmarshalMap(av, &it); err != nil {
			return nil, "", fmt.Errorf("page failed events: decode: %w", err)
		}
		at, err := time.Parse(time.RFC3339Nano, it.OccurredAt)
		if err != nil {
			return nil, "", fmt.Errorf("page failed events: occurred_at of %s: %w", it.EventID, err)
		}
		refs = append(refs, domain.EventRef{ID: it.EventID, Type: it.EventType, OccurredAt: at.UTC()})
	}
	evs, err := r.events.GetMany(ctx, tenantID, refs, time.Now())
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out.LastEvaluatedKey) > 0 {
		next = failedCursorPrefix + base64.RawURLEncoding.EncodeToString([]byte(skOf(out.LastEvaluatedKey)))
	}
	return evs, next, nil
}

// GetMany reads the stored events refs name (BatchGetItem, 100 keys per call, strongly
// consistent, unprocessed keys asked again), in time order then id order. An event not
// stored, or past its retention at now, is left out.
func (s *Events) GetMany(ctx context.Context, tenantID string, refs []domain.EventRef, now time.Time) ([]domain.Event, error) {
	var evs []domain.Event
	for start := 0; start < len(refs); start += maxBatchGet {
		keys := make([]map[string]types.AttributeValue, 0, maxBatchGet)
		for _, ref := range refs[start:min(start+maxBatchGet, len(refs))] {
			keys = append(keys, eventKey(domain.Event{TenantID: tenantID, ID: ref.ID, OccurredAt: ref.OccurredAt}))
		}
		pending := map[string]types.KeysAndAttributes{s.table: {Keys: keys, ConsistentRead: aws.Bool(true)}}
		for try := 0; len(pending) > 0; try++ {
			if try > unprocessedRetries {
				return nil, dbErr("get events", fmt.Errorf("%d keys still unprocessed after %d retries", len(pending[s.table].Keys), try-1))
			}
			if try > 0 {
				if err := sleepCtx(ctx, unprocessedBackoff<<(try-1)); err != nil {
					return nil, dbErr("get events", err)
				}
			}
			out, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: pending})
			if err != nil {
				return nil, dbErr("get events", err)
			}
			for _, av := range out.Responses[s.table] {
				var it eventItem
				if err := attributevalue.UnmarshalMap(av, &it); err != nil {
					return nil, fmt.Errorf("get events: decode: %w", err)
				}
				if it.ExpiresAt <= now.Unix() {
					continue
				}
				e, err := it.toDomain(tenantID)
				if err != nil {
					return nil, err
				}
				evs = append(evs, e)
			}
			pending = out.UnprocessedKeys
		}
	}
	sort.Slice(evs, func(i, j int) bool {
		if !evs[i].OccurredAt.Equal(evs[j].OccurredAt) {
			return evs[i].OccurredAt.Before(evs[j].OccurredAt)
		}
		return evs[i].ID < evs[j].ID
	})
	return evs, nil
}
