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

	"github.com/datajetty/webhooks/shared/app"
	"github.com/datajetty/webhooks/shared/domain"
)

// States of an idempotency record.
const (
	statePending = "pending" // a request holds the lease and is running
	stateDone    = "done"    // the response is stored
)

// idempotencyItem is the stored shape of an idempotency record.
type idempotencyItem struct {
	PK          string `dynamodbav:"pk"`
	Fingerprint string `dynamodbav:"fingerprint"`
	State       string `dynamodbav:"state"`
	LeaseUntil  int64  `dynamodbav:"lease_until,omitempty"`
	Status      int    `dynamodbav:"status,omitempty"`
	ContentType string `dynamodbav:"content_type,omitempty"`
	Location    string `dynamodbav:"location,omitempty"`
	Body        []byte `dynamodbav:"body,omitempty"`
	// SealedSecret is a generated secret of the response, KMS-encrypted; the body holds a
	// placeholder instead.
	SealedSecret     []byte `dynamodbav:"sealed_secret,omitempty"`
	SecretEndpointID string `dynamodbav:"secret_endpoint_id,omitempty"`
	ExpiresAt        int64  `dynamodbav:"expires_at"`
}

// Idempotency remembers POST responses by key in the idempotency table.
type Idempotency struct {
	db    *dynamodb.Client
	table string
}

// NewIdempotency returns an idempotency store on the given table.
func NewIdempotency(client *dynamodb.Client, table string) *Idempotency {
	return &Idempotency{db: client, table: table}
}

func pkKey(key string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": str(key)}
}

// Reserve writes a pending record unless a live one exists (one conditional PutItem). When
// the condition fails, DynamoDB returns the existing record with the failure, so no second
// call is needed; a consistent GetItem is the fallback if it does not.
func (s *Idempotency) Reserve(ctx context.Context, tenantID, requestID, fingerprint string, leaseUntil, now time.Time) (*app.StoredResponse, error) {
	key := tenantKey(tenantID, requestID)
	av, err := attributevalue.MarshalMap(idempotencyItem{
		PK:          key,
		Fingerprint: fingerprint,
		State:       statePending,
		LeaseUntil:  leaseUntil.Unix(),
		// A pending record is worth nothing once its lease is over.
		ExpiresAt: leaseUntil.Unix(),
	})
	if err != nil {
		return nil, fmt.Errorf("reserve idempotency key: encode: %w", err)
	}
	// The record may vanish (TTL, Release) between a failed put and the read that follows,
	// so try a few times before reporting the key as busy.
	for attempt := 0; attempt < 3; attempt++ {
		_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: &s.table,
			Item:      av,
			ConditionExpression: aws.String("attribute_not_exists(pk) OR expires_at < :now OR " +
				"(#state = :pending AND lease_until < :now)"),
			ExpressionAttributeNames: map[string]string{"#state": "state"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":now":     unix(now),
				":pending": str(statePending),
			},
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		if err == nil {
			return nil, nil
		}
		ccf, ok := conditionFailed(err)
		if !ok {
			return nil, dbErr("reserve idempotency key", err)
		}
		existing := ccf.Item
		if existing == nil {
			out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: pkKey(key), ConsistentRead: aws.Bool(true)})
			if err != nil {
				return nil, dbErr("read idempotency key", err)
			}
			if out.Item == nil {
				continue
			}
			existing = out.Item
		}
		var it idempotencyItem
		if err := attributevalue.UnmarshalMap(existing, &it); err != nil {
			return nil, fmt.Errorf("decode idempotency record: %w", err)
		}
		switch {
		case it.Fingerprint != fingerprint:
			return nil, domain.Conflict(domain.ReasonIdempotencyReused,
				"X-Request-Id %q was already used for a different request; use a new X-Request-Id for a new request", requestID)
		case it.State == stateDone:
			return &app.StoredResponse{Status: it.Status, ContentType: it.ContentType, Location: it.Location,
				Body: it.Body, SealedSecret: it.SealedSecret, SecretEndpointID: it.SecretEndpointID}, nil
		default:
			return nil, domain.Conflict(domain.ReasonRequestInProgress,
				"a request with X-Request-Id %q is still being processed; retry later", requestID)
		}
	}
	return nil, domain.Conflict(domain.ReasonRequestInProgress,
		"a request with X-Request-Id %q is still being processed; retry later", requestID)
}

// Complete turns the pending record into the stored response until expiresAt (one
// conditional UpdateItem, which keeps the fingerprint). It fails if the record is no
// longer pending: the reservation was released, or its lease expired and another request
// completed it.
func (s *Idempotency) Complete(ctx context.Context, tenantID, requestID string, resp app.StoredResponse, expiresAt time.Time) error {
	key := tenantKey(tenantID, requestID)
	update := "SET #state = :done, #status = :status, content_type = :ct, expires_at = :exp"
	values := map[string]types.AttributeValue{
		":done":    str(stateDone),
		":pending": str(statePending),
		":status":  &types.AttributeValueMemberN{Value: strconv.Itoa(resp.Status)},
		":ct":      str(resp.ContentType),
		":exp":     unix(expiresAt),
	}
	if resp.Location != "" {
		update += ", #location = :loc"
		values[":loc"] = str(resp.Location)
	}
	if len(resp.SealedSecret) > 0 {
		update += ", sealed_secret = :sealed, secret_endpoint_id = :sep"
		values[":sealed"] = &types.AttributeValueMemberB{Value: resp.SealedSecret}
		values[":sep"] = str(resp.SecretEndpointID)
	}
	if len(resp.Body) > 0 {
		update += ", body = :body"
		values[":body"] = &types.AttributeValueMemberB{Value: resp.Body}
		update += " REMOVE lease_until"
	} else {
		update += " REMOVE lease_until, body"
	}
	names := map[string]string{"#state": "state", "#status": "status"}
	if resp.Location != "" {
		names["#location"] = "location"
	}
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       pkKey(key),
		UpdateExpression:          &update,
		ConditionExpression:       aws.String("#state = :pending"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if _, ok := conditionFailed(err); ok {
		return fmt.Errorf("complete idempotency key: the reservation is gone (released, or its lease expired and another request completed it)")
	}
	if err != nil {
		return dbErr("complete idempotency key", err)
	}
	return nil
}

// Release deletes a pending reservation (one DeleteItem) so a retry may run. A completed
// record is kept: its response is still the answer to a retry.
func (s *Idempotency) Release(ctx context.Context, tenantID, requestID string) error {
	key := tenantKey(tenantID, requestID)
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 &s.table,
		Key:                       pkKey(key),
		ConditionExpression:       aws.String("#state = :pending"),
		ExpressionAttributeNames:  map[string]string{"#state": "state"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pending": str(statePending)},
	})
	if _, ok := conditionFailed(err); ok {
		return nil // already gone, or completed
	}
	if err != nil {
		return dbErr("release idempotency key", err)
	}
	return nil
}
