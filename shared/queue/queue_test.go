package queue

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/datajetty/webhooks/shared/dev/testenv"
	"github.com/datajetty/webhooks/shared/domain"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestSendReplay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	stack := testenv.Stack(t, nil)
	client := sqs.NewFromConfig(testenv.AWSConfig(t))
	url := stack.Env["WEBHOOKS_REPLAY_QUEUE_URL"]

	if err := NewReplayJobs(client, url).SendReplay(ctx, "tenant-a", "rp_1"); err != nil {
		t.Fatal(err)
	}
	out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 {
		t.Fatalf("received %d messages, want 1", len(out.Messages))
	}
	body := aws.ToString(out.Messages[0].Body)
	if want := `{"tenant_id":"tenant-a","replay_id":"rp_1"}`; body != want {
		t.Errorf("body = %s, want %s", body, want)
	}
	job, err := ParseReplayJob(body)
	if err != nil || job != (ReplayJob{TenantID: "tenant-a", ReplayID: "rp_1"}) {
		t.Errorf("ParseReplayJob = %+v, %v", job, err)
	}
}

func TestParseReplayJobRejects(t *testing.T) {
	t.Parallel()
	for _, body := range []string{``, `{`, `{}`, `{"tenant_id":"t"}`, `{"replay_id":"r"}`} {
		if _, err := ParseReplayJob(body); err == nil {
			t.Errorf("ParseReplayJob(%q) accepted", body)
		}
	}
}

func TestSendReplayQueueDown(t *testing.T) {
	t.Parallel()
	cfg, dead := testenv.DownAWSConfig(t)
	err := NewReplayJobs(sqs.NewFromConfig(cfg), dead+"/123456789012/replays").SendReplay(context.Background(), "tenant-a", "rp_1")
	if !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("error = %v, want domain.ErrUnavailable", err)
	}
}
