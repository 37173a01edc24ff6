package main

import (
	"bytes"
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/datajetty/webhooks/shared/dev/testenv"
	"github.com/datajetty/webhooks/shared/domain"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestPublishesValidatedEvents(t *testing.T) {
	cfg := testenv.AWSConfig(t)
	client := sqs.NewFromConfig(cfg)
	q, err := client.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(testenv.Prefix(t) + "ingest")})
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	o := options{tenant: "acme", typ: "export.done", data: `{"rows":3}`, id: "evt_x", n: 12, queue: aws.ToString(q.QueueUrl)}
	if err := run(context.Background(), o, &out, &errOut); err != nil {
		t.Fatalf("run: %v (%s)", err, errOut.String())
	}
	printed := strings.Fields(out.String())
	sort.Strings(printed)
	if len(printed) != 12 || printed[0] != "evt_x-1" {
		t.Fatalf("printed ids %v, want evt_x-1 … evt_x-12", printed)
	}
	var got []string
	for empty := 0; empty < 2; {
		r, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Messages) == 0 {
			empty++
		}
		for _, m := range r.Messages {
			e, err := domain.ParseEvent([]byte(aws.ToString(m.Body)))
			if err != nil || e.TenantID != "acme" || e.Type != "export.done" || string(e.Data) != `{"rows":3}` {
				t.Fatalf("message %q: %v", aws.ToString(m.Body), err)
			}
			got = append(got, e.ID)
			_, _ = client.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: q.QueueUrl, ReceiptHandle: m.ReceiptHandle})
		}
	}
	sort.Strings(got)
	if strings.Join(got, " ") != strings.Join(printed, " ") {
		t.Errorf("queue holds %v, want %v", got, printed)
	}
}

func TestRefusesAnEventIngestWouldRefuse(t *testing.T) {
	t.Parallel()
	for name, o := range map[string]options{
		"bad type":    {tenant: "acme", typ: "Export Done", data: `{}`, n: 1},
		"bad JSON":    {tenant: "acme", typ: "export.done", data: `{`, n: 1},
		"no tenant":   {tenant: "", typ: "export.done", data: `{}`, n: 1},
		"zero events": {tenant: "acme", typ: "export.done", data: `{}`, n: 0},
	} {
		if _, err := events(o, time.Now()); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
