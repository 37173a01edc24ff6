package queue

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/datajetty/webhooks/shared/dev/testenv"
)

func TestVisibilitySeconds(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   time.Duration
		want int32
	}{
		{-time.Second, 0}, {0, 0}, {400 * time.Millisecond, 0}, {600 * time.Millisecond, 1},
		{5 * time.Second, 5}, {5*time.Minute + 200*time.Millisecond, 300},
		{10 * time.Hour, 36000}, {12 * time.Hour, 43200}, {13 * time.Hour, 43200},
	} {
		if got := VisibilitySeconds(c.in); got != c.want {
			t.Errorf("VisibilitySeconds(%s) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestChangeVisibility(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	stack := testenv.Stack(t, nil)
	client := sqs.NewFromConfig(testenv.AWSConfig(t))
	url := stack.Env["WEBHOOKS_DELIVERY_QUEUE_URL"]
	v := NewVisibility(client, url)

	if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String("{}")}); err != nil {
		t.Fatal(err)
	}
	receive := func() []string {
		t.Helper()
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		var handles []string
		for _, m := range out.Messages {
			handles = append(handles, aws.ToString(m.ReceiptHandle))
		}
		return handles
	}
	handles := receive()
	if len(handles) != 1 {
		t.Fatalf("received %d messages, want 1", len(handles))
	}
	// A long delay hides the message (the queue's own timeout is 180 s anyway, so make it
	// visible first to see the change take effect both ways).
	if err := v.ChangeVisibility(ctx, handles[0], 0); err != nil {
		t.Fatal(err)
	}
	if handles = receive(); len(handles) != 1 {
		t.Fatalf("after visibility 0: received %d messages, want 1", len(handles))
	}
	if err := v.ChangeVisibility(ctx, handles[0], 5*time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := receive(); len(got) != 0 {
		t.Fatalf("after visibility 5h: received %d messages, want 0", len(got))
	}
	if err := v.ChangeVisibility(ctx, handles[0], time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if got := receive(); len(got) != 1 {
		t.Fatalf("after visibility 1s: received %d messages, want 1", len(got))
	}
	if err := v.ChangeVisibility(ctx, "not-a-handle", time.Second); err == nil {
		t.Error("ChangeVisibility with a bogus receipt handle succeeded")
	}
}
