package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/datajetty/webhooks/shared/domain"
)

// ReplayRetention is how long replay records are kept (DynamoDB TTL on expires_at).
const ReplayRetention = 30 * 24 * time.Hour

// replayItem is the stored shape of a replay job in the replays table.
type replayItem struct {
	TenantID   string `dynamodbav:"tenant_id"`
	ReplayID   string `dynamodbav:"replay_id"`
	EndpointID string `dynamodbav:"endpoint_id"`
	From       string `dynamodbav:"from"`
	Until      string `dynamodbav:"until"`
	OnlyFailed bool   `dynamodbav:"only_failed,omitempty"`
	Status     string `dynamodbav:"status"`
	Enqueued   int64  `dynamodbav:"enqueued"`
	Cursor     string `dynamodbav:"cursor,omitempty"`
	Error      string `dynamodbav:"error,omitempty"`
	CreatedAt  string `dynamodbav:"created_at"`
	UpdatedAt  string `dynamodbav:"updated_at"`
	ExpiresAt  int64  `dynamodbav:"expires_at"`
}

func (it replayItem) toDomain() (domain.Replay, error) {
	r := domain.Replay{
		TenantID:   it.TenantID,
		ID:         it.ReplayID,
		EndpointID: it.EndpointID,
		OnlyFailed: it.OnlyFailed,
		Status:     domain.ReplayStatus(it.Status),
		Enqueued:   it.Enqueued,
		Cursor:     it.Cursor,
		Error:      it.Error,
	}
	var errs [4]error
	r.From, errs[0] = parseTime(it.From)
	r.Until, errs[1] = parseTime(it.Until)
	r.CreatedAt, errs[2] = parseTime(it.CreatedAt)
	r.UpdatedAt, errs[3] = parseTime(it.UpdatedAt)
	if err := errors.Join(errs[:]...); err != nil {
		return domain.Replay{}, fmt.Errorf("decode replay %s: %w", it.ReplayID, err)
	}
	return r, nil
}

// endpointLock is the part of the endpoint item that StartReplay's condition looks at.
type endpointLock struct {
	Status            string `dynamodbav:"status"`
	ActiveReplayID    string `dynamodbav:"active_replay_id"`
	ActiveReplayUntil int64  `dynamodbav:"active_replay_until"`
}

// Replays stores replay jobs in the replays table and the per-endpoint replay lock on the
// endpoint item (active_replay_id, active_replay_until) in the endpoints table.
type Replays struct {
	db        *dynamodb.Client
	replays   string
	endpoints string
}

// NewReplays returns a replay store on the given replays and endpoints tables.
func NewReplays(client *dynamodb.Client, replaysTable, endpointsTable string) *Replays {
	return &Replays{db: client, replays: replaysTable, endpoints: endpointsTable}
}

func replayKey(tenantID, replayID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"tenant_id": &types.AttributeValueMemberS{Value: tenantID},
		"replay_id": &types.AttributeValueMemberS{Value: replayID},
	}
}

func unix(t time.Time) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(t.Unix(), 10)}
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func replayNotFound(id string) error { return domain.NotFound("replay %s not found", id) }

// StartReplay takes the endpoint's replay lock and stores r in one transaction (one
// TransactWriteItems; one more consistent GetItem only when it fails and DynamoDB did not
// return the endpoint with the cancellation reasons).
func (s *Replays) StartReplay(ctx context.Context, r domain.Replay, leaseUntil, now time.Time) error {
	if r.TenantID == "" || r.ID == "" || r.EndpointID == "" {
		return fmt.Errorf("start replay: tenant, id and endpoint id are required")
	}
	created := r.CreatedAt
	if created.IsZero() {
		created = now
	}
	if r.Status == "" {
		r.Status = domain.ReplayStarted
	}
	rec := replayItem{
		TenantID:   r.TenantID,
		ReplayID:   r.ID,
		EndpointID: r.EndpointID,
		From:       formatTime(r.From),
		Until:      formatTime(r.Until),
		OnlyFailed: r.OnlyFailed,
		Status:     string(r.Status),
		Enqueued:   r.Enqueued,
		Cursor:     r.Cursor,
		Error:      r.Error,
		CreatedAt:  formatTime(created),
		UpdatedAt:  formatTime(now),
		ExpiresAt:  created.Add(ReplayRetention).Unix(),
	}
	av, err := attributevalue.MarshalMap(rec)
	if err != nil {
		return fmt.Errorf("start replay %s: encode: %w", r.ID, err)
	}
	_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: []types.TransactWriteItem{
			{Update: &types.Update{
				TableName:        &s.endpoints,
				Key:              itemKey(r.TenantID, endpointSK(r.EndpointID)),
				UpdateExpression: aws.String("SET active_replay_id = :rid, active_replay_until = :until"),
				ConditionExpression: aws.String("attribute_exists(sk) AND #status = :active AND " +
					"(attribute_not_exists(active_replay_id) OR active_replay_until < :now)"),
				ExpressionAttributeNames: map[string]string{"#status": "status"},
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":rid":    str(r.ID),
					":until":  unix(leaseUntil),
					":active": str(string(domain.StatusActive)),
					":now":    unix(now),
				},
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			}},
			{Put: &types.Put{
				TableName:           &s.replays,
				Item:                av,
				ConditionExpression: aws.String("attribute_not_exists(replay_id)"),
			}},
		},
	})
	if err == nil {
		return nil
	}
	c, ok := cancelled(err)
	if !ok || c.transient() {
		return dbErr("start replay "+r.ID, err)
	}
	if c.complete(2) && !c.conditionFailed(0) {
		if c.conditionFailed(1) {
			return fmt.Errorf("start replay %s: the replay id already exists", r.ID)
		}
		return dbErr("start replay "+r.ID, err)
	}
	// The lock condition failed (or DynamoDB gave no reasons): find out why from the
	// endpoint as the transaction saw it, or else as it is now.
	cur := c.item(0)
	if cur == nil {
		out, rerr := s.db.GetItem(ctx, &dynamodb.GetItemInput{
			TableName:      &s.endpoints,
			Key:            itemKey(r.TenantID, endpointSK(r.EndpointID)),
			ConsistentRead: aws.Bool(true),
		})
		if rerr != nil {
			return dbErr("start replay "+r.ID, rerr)
		}
		if out.Item == nil {
			return endpointNotFound(r.EndpointID)
		}
		cur = out.Item
	}
	var lock endpointLock
	if err := attributevalue.UnmarshalMap(cur, &lock); err != nil {
		return fmt.Errorf("start replay %s: decode endpoint: %w", r.ID, err)
	}
	if lock.Status != string(domain.StatusActive) {
		return domain.Conflict(domain.ReasonEndpointDisabled, "endpoint %s is disabled; re-enable it before replaying", r.EndpointID)
	}
	return domain.Conflict(domain.ReasonReplayInProgress, "a replay of endpoint %s is already in progress", r.EndpointID)
}

// GetReplay loads one replay with a consistent read (one GetItem).
func (s *Replays) GetReplay(ctx context.Context, tenantID, replayID string) (domain.Replay, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.replays,
		Key:            replayKey(tenantID, replayID),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return domain.Replay{}, dbErr("get replay "+replayID, err)
	}
	if out.Item == nil {
		return domain.Replay{}, replayNotFound(replayID)
	}
	var it replayItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return domain.Replay{}, fmt.Errorf("decode replay %s: %w", replayID, err)
	}
	return it.toDomain()
}

// AbortReplay marks r failed with reason and releases the endpoint's lock if r still holds
// it (two UpdateItems; see FinishReplay).
func (s *Replays) AbortReplay(ctx context.Context, r domain.Replay, reason string, now time.Time) error {
	r.Status = domain.ReplayFailed
	r.Error = reason
	return s.FinishReplay(ctx, r, now)
}

// UpdateProgress is the replay worker's checkpoint: it stores r's status, enqueued count
// and cursor, and extends the endpoint's replay lock to leaseUntil, in one transaction
// (one TransactWriteItems). If another replay has taken the lock since (this one's lease
// expired) nothing is written and the error is a Conflict with ReasonReplayInProgress:
// the worker must stop. If the endpoint was deleted, nothing is written and the error wraps
// domain.ErrEndpointDeleted. An unknown replay is NotFound.
func (s *Replays) UpdateProgress(ctx context.Context, r domain.Replay, leaseUntil, now time.Time) error {
	update, names, values := replayProgress(r, now)
	_, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: []types.TransactWriteItem{
			{Update: &types.Update{
				TableName:                 &s.replays,
				Key:                       replayKey(r.TenantID, r.ID),
				UpdateExpression:          &update,
				ConditionExpression:       aws.String("attribute_exists(replay_id)"),
				ExpressionAttributeNames:  names,
				ExpressionAttributeValues: values,
			}},
			{Update: &types.Update{
				TableName:           &s.endpoints,
				Key:                 itemKey(r.TenantID, endpointSK(r.EndpointID)),
				UpdateExpression:    aws.String("SET active_replay_until = :until"),
				ConditionExpression: aws.String("active_replay_id = :rid"),
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":rid":   str(r.ID),
					":until": unix(leaseUntil),
				},
				// Whether the endpoint still exists tells a lost lock from a deleted endpoint.
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			}},
		},
	})
	if err == nil {
		return nil
	}
	if c, ok := cancelled(err); ok && c.complete(2) && !c.transient() {
		if c.conditionFailed(0) {
			return replayNotFound(r.ID)
		}
		if c.conditionFailed(1) {
			if c.item(1) == nil {
				// Either the endpoint is gone or the reasons came without the item: look.
				cur, rerr := s.db.GetItem(ctx, &dynamodb.GetItemInput{
					TableName: &s.endpoints, Key: itemKey(r.TenantID, endpointSK(r.EndpointID)), ConsistentRead: aws.Bool(true),
				})
				if rerr != nil {
					return dbErr("update replay "+r.ID, rerr)
				}
				if cur.Item == nil {
					return fmt.Errorf("update replay %s: endpoint %s: %w", r.ID, r.EndpointID, domain.ErrEndpointDeleted)
				}
			}
			return domain.Conflict(domain.ReasonReplayInProgress, "replay %s no longer holds the replay lock of endpoint %s", r.ID, r.EndpointID)
		}
	}
	return dbErr("update replay "+r.ID, err)
}

// FinishReplay stores r's final state (r.Status must be completed or failed) and then
// releases the endpoint's replay lock if r still holds it (two UpdateItems). The record is
// written first: should the release fail, the lock only lasts until its lease expires.
func (s *Replays) FinishReplay(ctx context.Context, r domain.Replay, now time.Time) error {
	if r.Status != domain.ReplayCompleted && r.Status != domain.ReplayFailed {
		return fmt.Errorf("finish replay %s: status %q is not final", r.ID, r.Status)
	}
	update, names, values := replayProgress(r, now)
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.replays,
		Key:                       replayKey(r.TenantID, r.ID),
		UpdateExpression:          &update,
		ConditionExpression:       aws.String("attribute_exists(replay_id)"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if _, ok := conditionFailed(err); ok {
		return replayNotFound(r.ID)
	}
	if err != nil {
		return dbErr("finish replay "+r.ID, err)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.endpoints,
		Key:                       itemKey(r.TenantID, endpointSK(r.EndpointID)),
		UpdateExpression:          aws.String("REMOVE active_replay_id, active_replay_until"),
		ConditionExpression:       aws.String("active_replay_id = :rid"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":rid": str(r.ID)},
	})
	if _, ok := conditionFailed(err); ok {
		return nil // the lock expired and is someone else's, or the endpoint is gone
	}
	if err != nil {
		return dbErr("release replay lock of endpoint "+r.EndpointID, err)
	}
	return nil
}

// replayProgress builds the update of a replay record's mutable attributes.
func replayProgress(r domain.Replay, now time.Time) (string, map[string]string, map[string]types.AttributeValue) {
	names := map[string]string{"#status": "status", "#cursor": "cursor", "#error": "error"}
	values := map[string]types.AttributeValue{
		":status":   str(string(r.Status)),
		":enqueued": &types.AttributeValueMemberN{Value: strconv.FormatInt(r.Enqueued, 10)},
		":updated":  str(formatTime(now)),
	}
	set := "SET #status = :status, enqueued = :enqueued, updated_at = :updated"
	var remove string
	addOrRemove := func(name, value string) {
		if value != "" {
			set += ", " + name + " = :" + name[1:]
			values[":"+name[1:]] = str(value)
		} else if remove == "" {
			remove = " REMOVE " + name
		} else {
			remove += ", " + name
		}
	}
	addOrRemove("#cursor", r.Cursor)
	addOrRemove("#error", r.Error)
	return set + remove, names, values
}
