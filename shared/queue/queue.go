// Package queue holds the SQS adapters: handing work from one function to the next.
package queue

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/datajetty/webhooks/shared/awserr"
)

// dependency names SQS in errors a client may see.
const dependency = "queue"

// ReplayJob is the body of a replay queue message: which replay the worker should run.
// The worker loads everything else from the replay record, so the message stays small and
// a redelivered message never carries stale state.
type ReplayJob struct {
	TenantID string `json:"tenant_id"`
	ReplayID string `json:"replay_id"`
}

// ParseReplayJob decodes a replay queue message body.
func ParseReplayJob(body string) (ReplayJob, error) {
	var j ReplayJob
	if err := json.Unmarshal([]byte(body), &j); err != nil {
		return ReplayJob{}, fmt.Errorf("decode replay job: %w", err)
	}
	if j.TenantID == "" || j.ReplayID == "" {
		return ReplayJob{}, fmt.Errorf("decode replay job: tenant_id and replay_id are required")
	}
	return j, nil
}

// ReplayJobs sends replay jobs to the replay queue.
type ReplayJobs struct {
	sqs *sqs.Client
	url string
}

// NewReplayJobs returns a sender to the queue at queueURL.
func NewReplayJobs(client *sqs.Client, queueURL string) *ReplayJobs {
	return &ReplayJobs{sqs: client, url: queueURL}
}

// SendReplay enqueues one replay job.
func (q *ReplayJobs) SendReplay(ctx context.Context, tenantID, replayID string) error {
	body, err := json.Marshal(ReplayJob{TenantID: tenantID, ReplayID: replayID})
	if err != nil {
		return fmt.Errorf("encode replay job: %w", err)
	}
	s := string(body)
	if _, err := q.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &q.url, MessageBody: &s}); err != nil {
		return awserr.Classify(dependency, fmt.Errorf("send replay %s: %w", replayID, err))
	}
	return nil
}
