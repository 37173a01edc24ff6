package queue

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/datajetty/webhooks/shared/awserr"
	"github.com/datajetty/webhooks/shared/domain"
)

// The webhooks service publishes its own events (notifications about endpoints) to the
// IngestQueue like any producer, marked with this message attribute, so that ingest accepts
// the types the catalog reserves for the service (eventtypes.SourceService) from it only.
// The mark keeps a producer from publishing such a type by mistake; it is not a security
// boundary (any principal allowed to send to the queue can set it).
const (
	AttrProducer    = "producer"
	ProducerService = "datajetty-webhooks"
)

// FromService reports whether an IngestQueue message carries the service's mark.
func FromService(msg events.SQSMessage) bool {
	a, ok := msg.MessageAttributes[AttrProducer]
	return ok && a.StringValue != nil && *a.StringValue == ProducerService
}

// ServiceEvents publishes the service's own events to the IngestQueue: one SendMessage of
// the ingest envelope per event, with the service's mark.
type ServiceEvents struct {
	sqs *sqs.Client
	url string
}

// NewServiceEvents returns a publisher to the IngestQueue at queueURL.
func NewServiceEvents(client *sqs.Client, queueURL string) *ServiceEvents {
	return &ServiceEvents{sqs: client, url: queueURL}
}

// Publish sends e as an ingest envelope ({"id","tenant_id","type","occurred_at","data"}).
func (q *ServiceEvents) Publish(ctx context.Context, e domain.Event) error {
	e.OccurredAt = e.OccurredAt.UTC()
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("publish %s %s: %w", e.Type, e.ID, err)
	}
	s := string(body)
	_, err = q.sqs.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:          &q.url,
		MessageBody:       &s,
		MessageAttributes: map[string]types.MessageAttributeValue{AttrProducer: stringAttr(ProducerService)},
	})
	if err != nil {
		return awserr.Classify(dependency, fmt.Errorf("publish %s %s: %w", e.Type, e.ID, err))
	}
	return nil
}
