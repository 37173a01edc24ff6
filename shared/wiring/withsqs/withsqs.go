// Package withsqs gives an API function's wiring the SQS client: the entry points of
// POST /replay, of the resend route and of the disable route pass Services to hand replays
// to the ReplayQueue, resent events to the DeliveryQueue and notifications to the
// IngestQueue. (The queue consumers link SQS through
// shared/wiring/workerfn, since they all read and write queues.) Only the functions that
// import it link the SDK's SQS client.
package withsqs

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/datajetty/webhooks/shared/app"
	"github.com/datajetty/webhooks/shared/queue"
	"github.com/datajetty/webhooks/shared/wiring/coldstart"
)

// Services builds the ReplayQueue, DeliveryQueue and IngestQueue senders (shared/queue).
var Services = coldstart.Services{
	ReplayQueue: func(cfg aws.Config, queueURL string) app.ReplayQueue {
		return queue.NewReplayJobs(sqs.NewFromConfig(cfg), queueURL)
	},
	DeliveryQueue: func(cfg aws.Config, queueURL string) app.JobQueue {
		return queue.NewDeliveryJobs(sqs.NewFromConfig(cfg), queueURL)
	},
	ServiceEvents: func(cfg aws.Config, queueURL string) app.Notifier {
		return queue.NewServiceEvents(sqs.NewFromConfig(cfg), queueURL)
	},
}
