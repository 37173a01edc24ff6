package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// rateLimitGrace keeps a window's counter a little past its end, so a request that started
// just before the boundary still finds it; TTL removes it afterwards.
const rateLimitGrace = time.Minute

// RateLimits counts requests in fixed windows in the rate-limit table: one item per
// tenant, rule and window, pk = tenantKey(tenant, rule) + "#" + the window's start in Unix
// seconds.
type RateLimits struct {
	db    *dynamodb.Client
	table string
}

// NewRateLimits returns a rate limiter on the given table.
func NewRateLimits(client *dynamodb.Client, table string) *RateLimits {
	return &RateLimits{db: client, table: table}
}

// Take counts one request with a single conditional UpdateItem: the increment and the
// limit check are one atomic step, so concurrent instances never admit more than limit
// requests in a window. window must be at least a second.
func (s *RateLimits) Take(ctx context.Context, tenantID, rule string, limit int, window time.Duration, now time.Time) (int, bool, error) {
	key := tenantKey(tenantID, rule)
	if window < time.Second {
		return 0, false, fmt.Errorf("rate limit %s: window %s is shorter than a second", key, window)
	}
	if limit <= 0 {
		return 0, false, nil
	}
	start := now.UnixNano() / int64(window) * int64(window)
	end := time.Unix(0, start).Add(window)
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           &s.table,
		Key:                 pkKey(key + "#" + strconv.FormatInt(start/int64(time.Second), 10)),
		UpdateExpression:    aws.String("ADD hits :one SET expires_at = :exp"),
		ConditionExpression: aws.String("attribute_not_exists(hits) OR hits < :limit"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":one":   &types.AttributeValueMemberN{Value: "1"},
			":limit": &types.AttributeValueMemberN{Value: strconv.Itoa(limit)},
			":exp":   unix(end.Add(rateLimitGrace)),
		},
		ReturnValues: types.ReturnValueUpdatedNew,
	})
	if _, ok := conditionFailed(err); ok {
		return limit, false, nil
	}
	if err != nil {
		return 0, false, dbErr("rate limit "+key, err)
	}
	var got struct {
		Hits int `dynamodbav:"hits"`
	}
	if err := attributevalue.UnmarshalMap(out.Attributes, &got); err != nil {
		return 0, false, fmt.Errorf("rate limit %s: decode: %w", key, err)
	}
	return got.Hits, true, nil
}
