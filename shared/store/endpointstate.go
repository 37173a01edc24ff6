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
//     and by disabling the endpoint.
//
// Every update is conditional on attribute_exists(sk): UpdateItem would otherwise create
// an item for a deleted endpoint.

// AdvanceWatermark moves the endpoint's watermark forward to `to` and resets its dead
// streak (a success ends the streak). An older `to` leaves the watermark alone and is not
// an error: deliveries complete out of order. A missing endpoint is not an error either.
func (s *Endpoints) AdvanceWatermark(ctx context.Context, tenantID, endpointID string, to time.Time) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &s.table,
		Key:                      itemKey(tenantID, endpointSK(endpointID)),
		UpdateExpression:         aws.String("SET #wm = :t REMOVE #streak"),
		ConditionExpression:      aws.String("attribute_exists(sk) AND (attribute_not_exists(#wm) OR #wm < :t)"),
		ExpressionAttributeNames: map[string]string{"#wm": "watermark", "#streak": "dead_streak"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":t": &types.AttributeValueMemberS{Value: formatSortable(to)},
		},
		// On a failed condition the stored item comes back for free, which tells whether a
		// streak is left to reset.
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return nil
	}
	ccf, ok := conditionFailed(err)
	if !ok {
		return dbErr("advance watermark of "+endpointID, err)
	}
	if ccf.Item == nil {
		// Either the endpoint is gone or the client stripped the item; in the latter case a
		// streak may survive, which only makes auto-disable a little more eager.
		return nil
	}
	if _, streak := ccf.Item["dead_streak"]; !streak {
		return nil
	}
	// An older event was delivered (a replay, or out-of-order completion) while a streak
	// was running: the success still ends the streak.
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &s.table,
		Key:                      itemKey(tenantID, endpointSK(endpointID)),
		UpdateExpression:         aws.String("REMOVE #streak"),
		ConditionExpression:      aws.String("attribute_exists(sk)"),
		ExpressionAttributeNames: map[string]string{"#streak": "dead_streak"},
	})
	if _, ok := conditionFailed(err); ok || err == nil {
		return nil
	}
	return dbErr("reset dead streak of "+endpointID, err)
}

// Disable marks the endpoint disabled with reason and detail, so later deliveries are
// skipped until it is enabled again (one UpdateItem). It increments version, so a tenant's
// concurrent update made from the old version conflicts instead of silently re-enabling
// the endpoint, and resets the dead streak, so a re-enabled endpoint starts afresh. It
// returns the endpoint as it is after the call and whether this call disabled it. An
// endpoint already disabled is left alone (its first reason stays; changed is false); a
// missing one is NotFound.
func (s *Endpoints) Disable(ctx context.Context, tenantID, endpointID string, reason domain.DisabledReason, detail string, now time.Time) (domain.Endpoint, bool, error) {
	names := map[string]string{
		"#status": "status", "#reason": "disabled_reason", "#updated": "updated_at",
		"#version": "version", "#streak": "dead_streak", "#detail": "disabled_detail",
	}
	values := map[string]types.AttributeValue{
		":disabled": &types.AttributeValueMemberS{Value: string(domain.StatusDisabled)},
		":reason":   &types.AttributeValueMemberS{Value: string(reason)},
		":now":      &types.AttributeValueMemberS{Value: formatTime(now)},
		":one":      &types.AttributeValueMemberN{Value: "1"},
	}
	update := "SET #status = :disabled, #reason = :reason, #updated = :now"
	remove := " REMOVE #streak"
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
// endpoint. When the consecutive count reaches threshold the endpoint is disabled (reason
// failing, detail "<N> consecutive deliveries exhausted all retries"), and disabled reports
// true (for exactly one caller: the increment is atomic, and Disable leaves an already
// disabled endpoint alone). A missing or disabled endpoint counts nothing.
func (s *Endpoints) RecordExhausted(ctx context.Context, tenantID, endpointID string, threshold int, now time.Time) (bool, error) {
	if threshold <= 0 {
		return false, fmt.Errorf("record exhausted delivery: threshold %d must be positive", threshold)
	}
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &s.table,
		Key:                      itemKey(tenantID, endpointSK(endpointID)),
		UpdateExpression:         aws.String("ADD #streak :one"),
		ConditionExpression:      aws.String("attribute_exists(sk) AND #status = :active"),
		ExpressionAttributeNames: map[string]string{"#streak": "dead_streak", "#status": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":one":    &types.AttributeValueMemberN{Value: "1"},
			":active": &types.AttributeValueMemberS{Value: string(domain.StatusActive)},
		},
		ReturnValues: types.ReturnValueUpdatedNew,
	})
	if _, ok := conditionFailed(err); ok {
		return false, nil
	}
	if err != nil {
		return false, dbErr("record exhausted delivery of "+endpointID, err)
	}
	n, ok := out.Attributes["dead_streak"].(*types.AttributeValueMemberN)
	if !ok {
		return false, fmt.Errorf("record exhausted delivery of %s: no dead_streak in the response", endpointID)
	}
	streak, err := strconv.Atoi(n.Value)
	if err != nil {
		return false, fmt.Errorf("record exhausted delivery of %s: dead_streak %q: %w", endpointID, n.Value, err)
	}
	if streak < threshold {
		return false, nil
	}
	_, disabled, err := s.Disable(ctx, tenantID, endpointID, domain.DisabledFailing, fmt.Sprintf("%d consecutive deliveries exhausted all retries", streak), now)
	if errors.Is(err, domain.ErrNotFound) {
		return false, nil // deleted meanwhile
	}
	return disabled, err
}
