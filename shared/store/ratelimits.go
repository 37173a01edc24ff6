package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/datajetty/webhooks/shared/app"
)

// rateLimitGrace keeps a tenant's log a little past its window, so a request that started
// just before still finds it; TTL removes it afterwards (and the next request of the tenant
// starts a new log).
const rateLimitGrace = time.Minute

// maxRateLimit bounds a rule's limit: the log holds one number per admitted request.
const maxRateLimit = 1000

// RateLimits is a sliding-window limiter in the rate-limit table. One item per tenant and
// rule (pk = tenantKey(tenant, rule) + "#" + limit + "/" + window) holds the log `ts`: the
// admission times, in Unix milliseconds, of the last limit admitted requests, oldest first.
// A request is admitted when the oldest of them has left the window, which holds the limit
// over every interval of length window, not only over aligned ones.
type RateLimits struct {
	db    *dynamodb.Client
	table string
}

// NewRateLimits returns a rate limiter on the given table.
func NewRateLimits(client *dynamodb.Client, table string) *RateLimits {
	return &RateLimits{db: client, table: table}
}

// Take admits one request with a single conditional UpdateItem: the condition checks that
// the oldest logged admission left the window, and the update drops it and appends now, in
// one atomic step, so concurrent instances never admit more than limit requests in any
// window. The very first request of a log (none stored, or removed by TTL) also makes one
// PutItem that creates it. window must be at least a second.
func (s *RateLimits) Take(ctx context.Context, tenantID, rule string, limit int, window time.Duration, now time.Time) (app.RateDecision, error) {
	key := tenantKey(tenantID, rule)
	switch {
	case window < time.Second:
		return app.RateDecision{}, fmt.Errorf("rate limit %s: window %s is shorter than a second", key, window)
	case limit > maxRateLimit:
		return app.RateDecision{}, fmt.Errorf("rate limit %s: limit %d is above %d", key, limit, maxRateLimit)
	case limit <= 0:
		return app.RateDecision{Reset: now.Add(window)}, nil
	}
	pk := pkKey(key + "#" + strconv.Itoa(limit) + "/" + strconv.FormatInt(window.Milliseconds(), 10) + "ms")
	nowMS, windowMS := now.UnixMilli(), window.Milliseconds()
	for attempt := 0; ; attempt++ {
		out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: &s.table,
			Key:       pk,
			// ts has exactly limit entries: SET ts[limit] appends, REMOVE ts[0] drops the
			// oldest (in either order the result is the same).
			UpdateExpression:    aws.String("REMOVE ts[0] SET ts[" + strconv.Itoa(limit) + "] = :now, expires_at = :exp"),
			ConditionExpression: aws.String("ts[0] <= :cutoff"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":now":    num(nowMS),
				":cutoff": num(nowMS - windowMS),
				":exp":    unix(now.Add(window + rateLimitGrace)),
			},
			ReturnValues:                        types.ReturnValueAllNew,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		if err == nil {
			return decide(true, out.Attributes, nowMS, windowMS, key)
		}
		ccf, failed := conditionFailed(err)
		if !failed {
			return app.RateDecision{}, dbErr("rate limit "+key, err)
		}
		if len(ccf.Item) > 0 {
			return decide(false, ccf.Item, nowMS, windowMS, key)
		}
		// No log yet: create it with this request in it. If another instance created it
		// first, take again through the update.
		created, err := s.create(ctx, pk, limit, nowMS, now.Add(window+rateLimitGrace))
		if err != nil {
			return app.RateDecision{}, dbErr("rate limit "+key, err)
		}
		if created {
			return app.RateDecision{Allowed: true, Count: 1, Reset: time.UnixMilli(nowMS + windowMS)}, nil
		}
		if attempt > 0 {
			return app.RateDecision{}, fmt.Errorf("rate limit %s: the log was neither found nor created", key)
		}
	}
}

// create writes a new log holding only nowMS (the other entries are 0: long past).
func (s *RateLimits) create(ctx context.Context, pk map[string]types.AttributeValue, limit int, nowMS int64, expires time.Time) (bool, error) {
	ts := make([]types.AttributeValue, limit)
	for i := range ts {
		ts[i] = num(0)
	}
	ts[limit-1] = num(nowMS)
	item := map[string]types.AttributeValue{"ts": &types.AttributeValueMemberL{Value: ts}, "expires_at": unix(expires)}
	for k, v := range pk {
		item[k] = v
	}
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &s.table, Item: item,
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	if _, failed := conditionFailed(err); failed {
		return false, nil
	}
	return err == nil, err
}

// decide reads a log (after an admission, or as it stood when refusing): how many of its
// admissions are inside the window that ends at nowMS, and when the oldest of those leaves.
func decide(allowed bool, item map[string]types.AttributeValue, nowMS, windowMS int64, key string) (app.RateDecision, error) {
	list, ok := item["ts"].(*types.AttributeValueMemberL)
	if !ok || len(list.Value) == 0 {
		return app.RateDecision{}, fmt.Errorf("rate limit %s: the stored log has no ts list", key)
	}
	d := app.RateDecision{Allowed: allowed, Reset: time.UnixMilli(nowMS + windowMS)}
	oldest := int64(-1)
	for _, v := range list.Value {
		n, ok := v.(*types.AttributeValueMemberN)
		if !ok {
			return app.RateDecision{}, errors.New("rate limit " + key + ": the stored log holds a non-number")
		}
		t, err := strconv.ParseInt(n.Value, 10, 64)
		if err != nil {
			return app.RateDecision{}, fmt.Errorf("rate limit %s: decode: %w", key, err)
		}
		if t > nowMS-windowMS {
			d.Count++
			if oldest < 0 || t < oldest {
				oldest = t
			}
		}
	}
	if oldest >= 0 {
		d.Reset = time.UnixMilli(oldest + windowMS)
	}
	return d, nil
}

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}
