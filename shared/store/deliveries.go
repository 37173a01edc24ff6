package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/datajetty/webhooks/shared/domain"
)

// sortableTime is a fixed-width UTC layout: unlike time.RFC3339Nano, which drops trailing
// zeros of the fraction (so "…:05Z" would sort after "…:05.1Z"), its strings compare in
// time order. time.Parse with time.RFC3339Nano reads it back.
const sortableTime = "2006-01-02T15:04:05.000000000Z"

func formatSortable(t time.Time) string { return t.UTC().Format(sortableTime) }

// Batch and paging limits of the delivery log.
const (
	// maxBatchWrite is DynamoDB's BatchWriteItem limit.
	maxBatchWrite = 25
	// unprocessedRetries bounds the resubmissions of items DynamoDB left unprocessed
	// (throttling); the backoff doubles from unprocessedBackoff.
	unprocessedRetries = 6
	unprocessedBackoff = 50 * time.Millisecond
	// maxListPages bounds the Queries one List call makes: a selective status filter over a
	// long log could otherwise read the whole partition for one page.
	maxListPages = 10
	// filteredPageItems is the evaluation budget of one Query when a status filter applies:
	// filtered-out items cost reads too, so asking for just the missing count would turn a
	// selective filter into many tiny Queries.
	filteredPageItems = 100
)

// deliveryItem is the stored shape of one delivery attempt in the deliveries table.
type deliveryItem struct {
	PK          string `dynamodbav:"pk"`
	SK          string `dynamodbav:"sk"`
	EventID     string `dynamodbav:"event_id"`
	EventType   string `dynamodbav:"event_type"`
	OccurredAt  string `dynamodbav:"occurred_at"`
	ReplayID    string `dynamodbav:"replay_id,omitempty"`
	Resend      bool   `dynamodbav:"resend,omitempty"`
	Attempt     int    `dynamodbav:"attempt"`
	Status      string `dynamodbav:"status"`
	HTTPStatus  int    `dynamodbav:"http_status,omitempty"`
	ErrorClass  string `dynamodbav:"error_class,omitempty"`
	LatencyMS   int64  `dynamodbav:"latency_ms"`
	AttemptedAt string `dynamodbav:"attempted_at"`
	NextAt      string `dynamodbav:"next_attempt_at,omitempty"`
	Test        bool   `dynamodbav:"test,omitempty"`
	ExpiresAt   int64  `dynamodbav:"expires_at"`
}

// deliveryPK is the partition of one endpoint's log. tenantKey length-prefixes the tenant,
// so no tenant's key can equal another's whatever characters ids contain.
func deliveryPK(tenantID, endpointID string) string { return tenantKey(tenantID, endpointID) }

// deliverySK orders attempts by time; the event id and attempt number make the key unique
// when two attempts share an instant.
func deliverySK(a domain.Attempt) string {
	return formatSortable(a.AttemptedAt) + "#" + a.EventID + "#" + fmt.Sprintf("%02d", a.Number)
}

func toDeliveryItem(a domain.Attempt) deliveryItem {
	return deliveryItem{
		PK:          deliveryPK(a.TenantID, a.EndpointID),
		SK:          deliverySK(a),
		EventID:     a.EventID,
		EventType:   a.EventType,
		OccurredAt:  formatTime(a.OccurredAt),
		ReplayID:    a.ReplayID,
		Resend:      a.Resend,
		Attempt:     a.Number,
		Status:      string(a.Status),
		HTTPStatus:  a.HTTPStatus,
		ErrorClass:  a.ErrorClass,
		LatencyMS:   a.Latency.Milliseconds(),
		AttemptedAt: formatTime(a.AttemptedAt),
		NextAt:      formatTime(a.NextAt),
		Test:        a.Test,
		ExpiresAt:   a.AttemptedAt.Add(domain.EventRetention).Unix(),
	}
}

func (it deliveryItem) toDomain(tenantID, endpointID string) (domain.Attempt, error) {
	a := domain.Attempt{
		TenantID:   tenantID,
		EndpointID: endpointID,
		EventID:    it.EventID,
		EventType:  it.EventType,
		ReplayID:   it.ReplayID,
		Number:     it.Attempt,
		Status:     domain.DeliveryStatus(it.Status),
		HTTPStatus: it.HTTPStatus,
		ErrorClass: it.ErrorClass,
		Latency:    time.Duration(it.LatencyMS) * time.Millisecond,
		Test:       it.Test,
		Resend:     it.Resend,
	}
	var errs [3]error
	a.OccurredAt, errs[0] = parseTime(it.OccurredAt)
	a.AttemptedAt, errs[1] = parseTime(it.AttemptedAt)
	a.NextAt, errs[2] = parseTime(it.NextAt)
	if err := errors.Join(errs[:]...); err != nil {
		return domain.Attempt{}, fmt.Errorf("decode delivery %s: %w", it.SK, err)
	}
	return a, nil
}

// Deliveries stores the delivery log: one item per attempt, partitioned by tenant endpoint
// and sorted by attempt time, expiring (TTL) after the event retention.
type Deliveries struct {
	db    *dynamodb.Client
	table string
	// sleep waits between resubmissions of unprocessed items; tests shorten it.
	sleep func(context.Context, time.Duration) error
	// maxPages and filteredPage are maxListPages and filteredPageItems; tests shrink them.
	maxPages, filteredPage int
}

// NewDeliveries returns a delivery log on the given table.
func NewDeliveries(client *dynamodb.Client, table string) *Deliveries {
	return &Deliveries{db: client, table: table, sleep: sleepCtx, maxPages: maxListPages, filteredPage: filteredPageItems}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Record stores attempts with BatchWriteItem, 25 items per call, resubmitting the items
// DynamoDB leaves unprocessed with a doubling backoff. Beside each attempt's log item it
// keeps, for every attempt of a stored event (not a test send, nor a job skipped because
// its endpoint is gone), the two per-event items of the endpoint (see eventIndexItem and
// unsucceededItem): the event index item, and the unsucceeded item, written when the
// attempt did not succeed and deleted when one that may follow a failure succeeded. Writes
// of the same key in one call are collapsed (one batch may not hold two writes of a key):
// the last attempt of a log key wins, a delete of an unsucceeded item beats a put.
func (s *Deliveries) Record(ctx context.Context, attempts []domain.Attempt) error {
	writes := map[string]types.WriteRequest{}
	var order []string
	add := func(pk, sk string, w types.WriteRequest, replace bool) {
		key := pk + "\x00" + sk
		if _, seen := writes[key]; seen && !replace {
			return
		}
		if _, seen := writes[key]; !seen {
			order = append(order, key)
		}
		writes[key] = w
	}
	put := func(v any) (types.WriteRequest, error) {
		av, err := attributevalue.MarshalMap(v)
		if err != nil {
			return types.WriteRequest{}, fmt.Errorf("record deliveries: encode: %w", err)
		}
		return types.WriteRequest{PutRequest: &types.PutRequest{Item: av}}, nil
	}
	for i := len(attempts) - 1; i >= 0; i-- { // the last attempt of a duplicated key wins
		a := attempts[i]
		it := toDeliveryItem(a)
		w, err := put(it)
		if err != nil {
			return err
		}
		add(it.PK, it.SK, w, false)
		if a.Test || a.Status == domain.DeliverySkipped && a.ErrorClass == domain.SkippedDeleted {
			continue
		}
		idx := toEventIndexItem(a)
		if w, err = put(idx); err != nil {
			return err
		}
		add(idx.PK, idx.SK, w, false)
		u := toUnsucceededItem(a)
		switch {
		case a.Status != domain.DeliverySucceeded:
			if w, err = put(u); err != nil {
				return err
			}
			add(u.PK, u.SK, w, false)
		case a.MayFollowFailure():
			add(u.PK, u.SK, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: deliveryKey(u.PK, u.SK)}}, true)
		}
	}
	all := make([]types.WriteRequest, 0, len(order))
	for _, k := range order {
		all = append(all, writes[k])
	}
	for start := 0; start < len(all); start += maxBatchWrite {
		if err := s.writeBatch(ctx, all[start:min(start+maxBatchWrite, len(all))]); err != nil {
			return err
		}
	}
	return nil
}

// The per-event items of an endpoint, in partitions of their own beside its attempt log
// (endpoint ids hold no '#', so no log partition can take these keys):
//
//   - the event index, pk "<len>:<tenant>#<endpoint>#events", sk the event id: every
//     event the endpoint's log holds an attempt of, with its type and occurred_at, so that a
//     resend finds the stored event from its id alone (one GetItem);
//   - the unsucceeded index, pk "<len>:<tenant>#<endpoint>#unsucceeded", sk
//     "<occurred_at, fixed-width>#<event id>": a sparse index of the events whose latest
//     attempt did not succeed (pending, dead, skipped), removed on success, so that a
//     replay of only the failed events is a Query of these items in time order, never a
//     scan of the log or of the events.
func eventIndexPK(tenantID, endpointID string) string {
	return tenantKey(tenantID, endpointID+"#events")
}

func unsucceededPK(tenantID, endpointID string) string {
	return tenantKey(tenantID, endpointID+"#unsucceeded")
}

// eventIndexItem is one event of an endpoint's log, by id.
type eventIndexItem struct {
	PK         string `dynamodbav:"pk"`
	SK         string `dynamodbav:"sk"` // the event id
	EventType  string `dynamodbav:"event_type"`
	OccurredAt string `dynamodbav:"occurred_at"` // fixed-width
	ExpiresAt  int64  `dynamodbav:"expires_at"`
}

// unsucceededItem is one event whose latest attempt to the endpoint did not succeed.
type unsucceededItem struct {
	PK          string `dynamodbav:"pk"`
	SK          string `dynamodbav:"sk"` // occurred_at (fixed-width) # event id
	EventID     string `dynamodbav:"event_id"`
	EventType   string `dynamodbav:"event_type"`
	OccurredAt  string `dynamodbav:"occurred_at"`
	Status      string `dynamodbav:"status"`
	AttemptedAt string `dynamodbav:"attempted_at"`
	ExpiresAt   int64  `dynamodbav:"expires_at"`
}

// perEventExpiry keeps a per-event item as long as its event can be stored (EventExpiry
// counted from the attempt, which is never before the event was stored).
func perEventExpiry(a domain.Attempt) int64 {
	return domain.EventExpiry(domain.Event{OccurredAt: a.OccurredAt}, a.AttemptedAt).Unix()
}

func toEventIndexItem(a domain.Attempt) eventIndexItem {
	return eventIndexItem{
		PK: eventIndexPK(a.TenantID, a.EndpointID), SK: a.EventID, EventType: a.EventType,
		OccurredAt: formatSortable(a.OccurredAt), ExpiresAt: perEventExpiry(a),
	}
}

func toUnsucceededItem(a domain.Attempt) unsucceededItem {
	return unsucceededItem{
		PK: unsucceededPK(a.TenantID, a.EndpointID), SK: formatSortable(a.OccurredAt) + "#" + a.EventID,
		EventID: a.EventID, EventType: a.EventType, OccurredAt: formatSortable(a.OccurredAt),
		Status: string(a.Status), AttemptedAt: formatTime(a.AttemptedAt), ExpiresAt: perEventExpiry(a),
	}
}

// Lookup finds an event the endpoint's log holds an attempt of (one consistent GetItem of
// the event index); NotFound when there is none.
func (s *Deliveries) Lookup(ctx context.Context, tenantID, endpointID, eventID string) (domain.EventRef, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            deliveryKey(eventIndexPK(tenantID, endpointID), eventID),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return domain.EventRef{}, dbErr("look up event "+eventID, err)
	}
	if out.Item == nil {
		return domain.EventRef{}, domain.NotFound("event %s is not in the delivery log of endpoint %s", eventID, endpointID)
	}
	var it eventIndexItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return domain.EventRef{}, fmt.Errorf("decode event index item %s: %w", eventID, err)
	}
	at, err := time.Parse(time.RFC3339Nano, it.OccurredAt)
	if err != nil {
		return domain.EventRef{}, fmt.Errorf("decode event index item %s: occurred_at: %w", eventID, err)
	}
	return domain.EventRef{ID: it.SK, Type: it.EventType, OccurredAt: at.UTC()}, nil
}

func (s *Deliveries) writeBatch(ctx context.Context, batch []types.WriteRequest) error {
	pending := map[string][]types.WriteRequest{s.table: batch}
	backoff := unprocessedBackoff
	for try := 0; ; try++ {
		out, err := s.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
		if err != nil {
			return dbErr("record deliveries", err)
		}
		left := len(out.UnprocessedItems[s.table])
		if left == 0 {
			return nil
		}
		if try == unprocessedRetries {
			return dbErr("record deliveries", fmt.Errorf("%d items still unprocessed after %d retries", left, try))
		}
		if err := s.sleep(ctx, backoff); err != nil {
			return dbErr("record deliveries", err)
		}
		backoff *= 2
		pending = out.UnprocessedItems
	}
}

// List returns up to limit attempts of the endpoint, newest first, starting after the
// position after (the sort key of the last attempt of the previous page; "" for the
// newest). status "" lists all attempts, DeliveryFailed pending and dead ones, any other
// status only its own.
//
// A status filter is applied by DynamoDB after reading, so a Query may return fewer items
// than it read; List keeps querying until it has limit items or the log ends, but reads at
// most maxListPages (10) pages. next is where the following page starts ("" when the log is
// exhausted): the sort key of the last attempt returned, or, when the page budget ran out,
// the last key read, so that nothing between two pages is ever skipped.
func (s *Deliveries) List(ctx context.Context, tenantID, endpointID string, status domain.DeliveryStatus, limit int, after string) ([]domain.Attempt, string, error) {
	if limit <= 0 {
		return nil, "", fmt.Errorf("list deliveries: limit %d must be positive", limit)
	}
	pk := deliveryPK(tenantID, endpointID)
	in := &dynamodb.QueryInput{
		TableName:                 &s.table,
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ExpressionAttributeNames:  map[string]string{"#pk": "pk"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: pk}},
		ScanIndexForward:          aws.Bool(false),
	}
	filtered := status != ""
	if filtered {
		in.ExpressionAttributeNames["#status"] = "status"
		if status == domain.DeliveryFailed {
			in.FilterExpression = aws.String("#status IN (:pending, :dead)")
			in.ExpressionAttributeValues[":pending"] = &types.AttributeValueMemberS{Value: string(domain.DeliveryPending)}
			in.ExpressionAttributeValues[":dead"] = &types.AttributeValueMemberS{Value: string(domain.DeliveryDead)}
		} else {
			in.FilterExpression = aws.String("#status = :status")
			in.ExpressionAttributeValues[":status"] = &types.AttributeValueMemberS{Value: string(status)}
		}
	}
	if after != "" {
		in.ExclusiveStartKey = deliveryKey(pk, after)
	}
	var raw []map[string]types.AttributeValue
	next := ""
	for page := 0; ; page++ {
		if page == s.maxPages {
			// Out of budget: resume at the last key read, the items between it and the last
			// one returned were read and filtered out.
			next = skOf(in.ExclusiveStartKey)
			break
		}
		// One more than needed, so that a full page knows whether anything follows.
		budget := limit + 1 - len(raw)
		if filtered {
			budget = max(budget, s.filteredPage)
		}
		in.Limit = aws.Int32(int32(budget))
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return nil, "", dbErr("list deliveries", err)
		}
		raw = append(raw, out.Items...)
		if len(raw) > limit {
			raw = raw[:limit]
			next = skOf(raw[limit-1])
			break
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	attempts := make([]domain.Attempt, 0, len(raw))
	for _, av := range raw {
		var it deliveryItem
		if err := attributevalue.UnmarshalMap(av, &it); err != nil {
			return nil, "", fmt.Errorf("decode delivery: %w", err)
		}
		a, err := it.toDomain(tenantID, endpointID)
		if err != nil {
			return nil, "", err
		}
		attempts = append(attempts, a)
	}
	return attempts, next, nil
}

func deliveryKey(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: pk},
		"sk": &types.AttributeValueMemberS{Value: sk},
	}
}

func skOf(av map[string]types.AttributeValue) string {
	if s, ok := av["sk"].(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}
