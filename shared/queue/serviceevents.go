package queue

import "github.com/aws/aws-lambda-go/events"

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
