package queue

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/datajetty/webhooks/shared/dev/testenv"
)

func TestDeadLetters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testenv.Stack(t, nil).Env["WEBHOOKS_INGEST_DLQ_URL"]
	client := sqs.NewFromConfig(testenv.AWSConfig(t))
	dl := NewDeadLetters(client, url)

	longReason := strings.Repeat("é", 1000) // 2000 bytes
	bigBody := strings.Repeat("b", 300<<10)
	cases := []struct {
		name, body, reason, source string
		wantBody, wantReason       string
		wantEncoding               string
	}{
		{name: "as is", body: `{"id":`, reason: "event is not valid JSON (at byte 6)", source: "m-1",
			wantBody: `{"id":`, wantReason: "event is not valid JSON (at byte 6)"},
		{name: "long reason", body: `{}`, reason: longReason, source: "m-2",
			wantBody: `{}`, wantReason: strings.Repeat("é", 512)},
		{name: "not UTF-8", body: "a\xffb\x00", reason: "bad", source: "m-3",
			wantBody: base64.StdEncoding.EncodeToString([]byte("a\xffb\x00")), wantReason: "bad", wantEncoding: "base64"},
		{name: "too large", body: bigBody, reason: "event is too large", source: "m-4",
			wantReason: "event is too large", wantEncoding: "truncated"},
		{name: "empty", body: "", reason: "", source: "m-5", wantBody: " ", wantReason: "-"},
	}
	for _, tc := range cases {
		if err := dl.Send(ctx, tc.body, tc.reason, tc.source); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
	got := map[string]types.Message{}
	for len(got) < len(cases) {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: 10,
			WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			got[aws.ToString(m.MessageAttributes[AttrSourceMessageID].StringValue)] = m
		}
	}
	for _, tc := range cases {
		m, ok := got[tc.source]
		if !ok {
			t.Errorf("%s: not in the DLQ", tc.name)
			continue
		}
		attr := func(name string) string { return aws.ToString(m.MessageAttributes[name].StringValue) }
		body := aws.ToString(m.Body)
		if tc.wantBody != "" && body != tc.wantBody {
			t.Errorf("%s: body = %.60q, want %.60q", tc.name, body, tc.wantBody)
		}
		if attr(AttrReason) != tc.wantReason {
			t.Errorf("%s: reason = %.60q (%d bytes), want %.60q", tc.name, attr(AttrReason), len(attr(AttrReason)), tc.wantReason)
		}
		if attr(AttrBodyEncoding) != tc.wantEncoding {
			t.Errorf("%s: body_encoding = %q, want %q", tc.name, attr(AttrBodyEncoding), tc.wantEncoding)
		}
		if tc.wantEncoding == "truncated" {
			if !strings.HasPrefix(tc.body, body) || len(body) < 250<<10 {
				t.Errorf("%s: body is not a long prefix of the original (%d bytes)", tc.name, len(body))
			}
			if attr(AttrOriginalBytes) != "307200" {
				t.Errorf("%s: original_bytes = %q", tc.name, attr(AttrOriginalBytes))
			}
		}
	}
}

func TestDeadLetterBase64Truncated(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("\x00", 250<<10)
	ctx := context.Background()
	url := testenv.Stack(t, nil).Env["WEBHOOKS_INGEST_DLQ_URL"]
	client := sqs.NewFromConfig(testenv.AWSConfig(t))
	if err := NewDeadLetters(client, url).Send(ctx, body, "binary", "m-1"); err != nil {
		t.Fatal(err)
	}
	out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &url, WaitTimeSeconds: 2, MessageAttributeNames: []string{"All"}})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("receive: %v, %d messages", err, len(out.Messages))
	}
	m := out.Messages[0]
	if enc := aws.ToString(m.MessageAttributes[AttrBodyEncoding].StringValue); enc != "base64,truncated" {
		t.Errorf("body_encoding = %q", enc)
	}
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(m.Body))
	if err != nil || !strings.HasPrefix(body, string(raw)) || len(raw) < 180<<10 {
		t.Errorf("body does not decode to a long prefix of the original: %d bytes, %v", len(raw), err)
	}
}
