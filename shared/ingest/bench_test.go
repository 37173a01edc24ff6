package ingest_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/datajetty/webhooks/shared/domain"
)

// BenchmarkIngestFanOut measures one invocation of a full batch (10 events of one tenant)
// fanned out to 10 matching endpoints each, against the emulator: 1 BatchGetItem, 1 Query,
// 10 SendMessageBatch and 10 PutItem calls per operation. It measures the handler's
// overhead and call pattern more than AWS latency; the jobs are drained between operations.
func BenchmarkIngestFanOut(b *testing.B) {
	hs := newHarness(b)
	for range 10 {
		hs.endpoint("tenant-a", domain.StatusActive, "export.*")
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		var ev events.SQSEvent
		for j := range 10 {
			id := fmt.Sprintf("evt_%d_%d", i, j)
			ev.Records = append(ev.Records, events.SQSMessage{MessageId: id, Body: envelope("tenant-a", id, "export.done")})
		}
		resp, err := hs.h.Handle(ctx, ev)
		if err != nil || len(resp.BatchItemFailures) != 0 {
			b.Fatalf("Handle = %+v, %v", resp, err)
		}
		// The emulator slows down as its queue grows; a deliver function keeps it short.
		b.StopTimer()
		drain(b, hs)
		b.StartTimer()
	}
	b.ReportMetric(float64(10*b.N)/b.Elapsed().Seconds(), "events/s")
}

// drain deletes every message of the delivery queue.
func drain(b *testing.B, hs *harness) {
	ctx := context.Background()
	for {
		out, err := hs.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &hs.deliveryURL, MaxNumberOfMessages: 10})
		if err != nil {
			b.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return
		}
		del := &sqs.DeleteMessageBatchInput{QueueUrl: &hs.deliveryURL}
		for i, m := range out.Messages {
			del.Entries = append(del.Entries, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
		if _, err := hs.sqs.DeleteMessageBatch(ctx, del); err != nil {
			b.Fatal(err)
		}
	}
}
