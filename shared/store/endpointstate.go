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

	"github.com/datajetty/webhooks/shared/domain"
)

// Delivery-side state of the endpoint item. The deliver function owns these attributes;
// UpdateEndpoint (the tenant's side) never writes them:
//   - watermark: occurred_at of the latest event delivered successfully, in the fixed-width
//     sortableTime layout so that the condition "watermark < :t" compares times;
//   - dead_streak: consecutive deliveries that exhausted every retry, reset by a success
//     and by disabling the endpoint;
//   - failing_since: when the first delivery of the current streak exhausted its retries
//     (the endpoint is failing: the webhooks.endpoint.failing notification), removed by a
//     success (webhooks.endpoint.recovered) and by disabling the endpoint.
//
// Every update is conditional on attribute_exists(sk): UpdateItem would otherwise create
// an item for a deleted endpoint.

// AdvanceWatermark moves the endpoint's watermark forward to `to` and ends its streak of
// exhausted deliveries and its failing state (a success ends them). An older `to` leaves
// the watermark alone and is not an error: deliveries complete out of order. A missing
// endpoint is not an error either.
//
// recovered is the endpoint as it was before the call when this call ended its failing
// state (its FailingSince set), nil otherwise: exactly one caller sees it, the one whose
// update removed failing_since. It costs no call: the update returns the old item.
func (s *Endpoints) AdvanceWatermark(ctx context.Context, tenantID, endpointID string, to time.Time) (recovered *domain.Endpoint, err error) {
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &s.table,
		Key:                      itemKey(tenantID, endpointSK(endpointID)),
		UpdateExpression:         aws.String("SET #wm = :t REMOVE #streak, #failing"),
		ConditionExpression:      aws.String("attribute_exists(sk) AND (attribute_not_exists(#wm) OR #wm < :t)"),
		ExpressionAttributeNames: map[string]string{"#wm": "watermark", "#streak": "dead_streak", "#failing": "failing_since"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":t": &types.AttributeValueMemberS{Value: formatSortable(to)},
		},
		ReturnValues: types.ReturnValueAllOld,
		// On a failed condition the stored item comes back for free, which tells whether a
		// streak is left to reset.
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return endedFailing(out.Attributes)
	}
	ccf, ok := conditionFailed(err)
	if !ok {
		return nil, dbErr("advance watermark of "+endpointID, err)
	}
	if ccf.Item == nil {
		// Either the endpoint is gone or the client stripped the item; in the latter case a
		// streak may survive, which only makes auto-disable a little more eager.
		return nil, nil
	}
	_, streak := ccf.Item["dead_streak"]
	_, failing := ccf.Item["failing_since"]
	if !streak && !failing {
		return nil, nil
	}
	// An older event was delivered (a replay, or out-of-order completion) while a streak
	// was running: the success still ends the streak. Conditional on failing_since being
	// as read, so that of two concurrent successes one only reports the recovery.
	in := &dynamodb.UpdateItemInput{
		TableName:                &s.table,
		Key:                      itemKey(tenantID, endpointSK(endpointID)),
		UpdateExpression:         aws.String("REMOVE #streak, #failing"),
		ConditionExpression:      aws.String("attribute_exists(sk) AND attribute_not_exists(#failing)"),
		ExpressionAttributeNames: map[string]string{"#streak": "dead_streak", "#failing": "failing_since"},
		ReturnValues:             types.ReturnValueAllOld,
	}
	if failing {
		in.ConditionExpression = aws.String("attribute_exists(sk) AND #failing = :since")
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":since": ccf.Item["failing_since"]}
	}
	out, err = s.db.UpdateItem(ctx, in)
	if _, ok := conditionFailed(err); ok {
		return nil, nil // gone, or another success ended the failing state first
	}
	if err != nil {
		return nil, dbErr("reset dead streak of "+endpointID, err)
	}
	return endedFailing(out.Attributes)
}

// endedFailing returns the endpoint an update's old item holds when it was failing.
func endedFailing(old map[string]types.AttributeValue) (*domain.Endpoint, error) {
	if _, failing := old["failing_since"]; !failing {
		return nil, nil
	}
	ep, err := decodeEndpoint(old)
	if err != nil {
		return nil, err
	}
	return &ep, nil
}

// Disable marks the endpoint disabled with reason and detail, so later deliveries are
// skipped until it is enabled again (one UpdateItem). It increments version, so a tenant's
// concurrent update made from the old version conflicts instead of silently re-enabling
// the endpoint, and resets the dead streak and the failing state, so a re-enabled endpoint
// starts afresh. It
// returns the endpoint as it is after the call and whether this call disabled it. An
// endpoint already disabled is left alone (its first reason stays; changed is false); a
// missing one is NotFound.
func (s *Endpoints) Disable(ctx context.Context, tenantID, endpointID string, reason domain.DisabledReason, detail string, now time.Time) (domain.Endpoint, bool, error) {
	names := map[string]string{
		"#status": "status", "#reason": "disabled_reason", "#updated": "updated_at",
		"#version": "version", "#streak": "dead_streak", "#detail": "disabled_detail",
		"#failing": "failing_since",
	}
	values := map[string]types.AttributeValue{
		":disabled": &types.AttributeValueMemberS{Value: string(domain.StatusDisabled)},
		":reason":   &types.AttributeValueMemberS{Value: string(reason)},
		":now":      &types.AttributeValueMemberS{Value: formatTime(now)},
		":one":      &types.AttributeValueMemberN{Value: "1"},
	}
	update := "SET #status = :disabled, #reason = :reason, #updated = :now"
	remove := " REMOVE #streak, #failing"
	if detail != "" {
		update += ", #detail = :detail"
		values[":detail"] = &types.AttributeValueMemberS{Value: detail}
	} else {
		remove += ", #detail"
	}
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           &s.table,
		Key:                                 itemKey(tenantID, endpointSK(endpointID)),
		UpdateExpression:                    aws.String(update + " ADD #version :one" + remove),
		ConditionExpression:                 aws.String("attribute_exists(sk) AND #status <> :disabled"),
		ExpressionAttributeNames:            names,
		ExpressionAttributeValues:           values,
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		ep, err := decodeEndpoint(out.Attributes)
		return ep, true, err
	}
	ccf, ok := conditionFailed(err)
	if !ok {
		return domain.Endpoint{}, false, dbErr("disable endpoint "+endpointID, err)
	}
	if ccf.Item == nil {
		// Missing, or the old item did not come back: read it to tell.
		ep, err := s.GetEndpoint(ctx, tenantID, endpointID)
		return ep, false, err
	}
	ep, err := decodeEndpoint(ccf.Item)
	return ep, false, err
}

// RecordExhausted counts one delivery that exhausted all its retries against the active
// endpoint, and marks the endpoint failing (failing_since = now) if it was not: one
// UpdateItem. When the consecutive count reaches threshold the endpoint is disabled (reason
// failing, detail "<N> consecutive deliveries exhausted all retries": one more UpdateItem).
// A missing or disabled endpoint counts nothing.
func (s *Endpoints) RecordExhausted(ctx context.Context, tenantID, endpointID string, threshold int, now time.Time) (domain.Exhausted, error) {
	if threshold <= 0 {
		return domain.Exhausted{}, fmt.Errorf("record exhausted delivery: threshold %d must be positive", threshold)
	}
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &s.table,
		Key:                      itemKey(tenantID, endpointSK(endpointID)),
		UpdateExpression:         aws.String("ADD #streak :one SET #failing = if_not_exists(#failing, :now)"),
		ConditionExpression:      aws.String("attribute_exists(sk) AND #status = :active"),
		ExpressionAttributeNames: map[string]string{"#streak": "dead_streak", "#status": "status", "#failing": "failing_since"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":one":    &types.AttributeValueMemberN{Value: "1"},
			":active": &types.AttributeValueMemberS{Value: string(domain.StatusActive)},
			":now":    &types.AttributeValueMemberS{Value: formatSortable(now)},
		},
		// The old item: whether failing_since was there, and the endpoint for a notification.
		ReturnValues: types.ReturnValueAllOld,
	})
	if _, ok := conditionFailed(err); ok {
		return domain.Exhausted{}, nil
	}
	if err != nil {
		return domain.Exhausted{}, dbErr("record exhausted delivery of "+endpointID, err)
	}
	ep, err := decodeEndpoint(out.Attributes)
	if err != nil {
		return domain.Exhausted{}, fmt.Errorf("record exhausted delivery of %s: %w", endpointID, err)
	}
	streak := 1
	if n, ok := out.Attributes["dead_streak"].(*types.AttributeValueMemberN); ok {
		old, err := strconv.Atoi(n.Value)
		if err != nil {
			return domain.Exhausted{}, fmt.Errorf("record exhausted delivery of %s: dead_streak %q: %w", endpointID, n.Value, err)
		}
		streak = old + 1
	}
	res := domain.Exhausted{Failing: ep.FailingSince.IsZero()}
	if res.Failing {
		ep.FailingSince = now.UTC()
	}
	res.Endpoint = ep
	if streak < threshold {
		return res, nil
	}
	disabled, changed, err := s.Disable(ctx, tenantID, endpointID, domain.DisabledFailing, fmt.Sprintf("%d consecutive deliveries exhausted all retries", streak), now)
	if errors.Is(err, domain.ErrNotFound) {
		return res, nil // deleted meanwhile
	}
	if err != nil {
		return res, err
	}
	if changed {
		res.Disabled, res.Endpoint = true, disabled
		res.Endpoint.FailingSince = ep.FailingSince
	}
	return res, nil
}
