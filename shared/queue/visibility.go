package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/datajetty/webhooks/shared/awserr"
)

// maxVisibility is SQS's upper bound for a message's visibility timeout (12 hours).
const maxVisibility = 12 * time.Hour

// Visibility schedules the next receive of a delivery queue message: the deliver function's
// retry backoff is the failed message's visibility timeout, so a retry costs no extra
// message and SQS redrive still counts every receive.
type Visibility struct {
	sqs *sqs.Client
	url string
}

// NewVisibility returns a visibility setter for messages of the queue at queueURL.
func NewVisibility(client *sqs.Client, queueURL string) *Visibility {
	return &Visibility{sqs: client, url: queueURL}
}

// VisibilitySeconds is delay in whole seconds (rounded to the nearest), clamped to what
// SQS accepts: 0 to 43200.
func VisibilitySeconds(delay time.Duration) int32 {
	delay = min(max(delay, 0), maxVisibility)
	return int32((delay + time.Second/2) / time.Second)
}

// ChangeVisibility makes the received message with receiptHandle visible again after delay
// (one ChangeMessageVisibility call); 0 makes it visible at once.
func (v *Visibility) ChangeVisibility(ctx context.Context, receiptHandle string, delay time.Duration) error {
	_, err := v.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl:          &v.url,
		ReceiptHandle:     &receiptHandle,
		VisibilityTimeout: VisibilitySeconds(delay),
	})
	if err != nil {
		return awserr.Classify(dependency, fmt.Errorf("change message visibility: %w", err))
	}
	return nil
}
