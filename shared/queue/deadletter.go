package queue

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/datajetty/webhooks/shared/awserr"
)

// Message attributes of a dead-lettered message.
const (
	// AttrReason says why the message was dead-lettered (at most maxReasonBytes).
	AttrReason = "reason"
	// AttrSourceMessageID is the SQS message id of the original message.
	AttrSourceMessageID = "source_message_id"
	// AttrBodyEncoding is present when the body is not the original as is: "base64" (the
	// original was not valid SQS text), "truncated" (it was too large), or both,
	// comma-separated. AttrOriginalBytes then gives the original body's length.
	AttrBodyEncoding  = "body_encoding"
	AttrOriginalBytes = "original_bytes"
)

const (
	// maxReasonBytes caps the reason attribute.
	maxReasonBytes = 1 << 10
	// maxMessageBytes is the classic SQS message size limit (body plus attributes), below
	// any queue's configured maximum.
	maxMessageBytes = 256 << 10
)

// DeadLetters sends messages that can never succeed to a dead-letter queue, with the reason
// as a message attribute, so an operator can see why and redrive them once fixed.
type DeadLetters struct {
	sqs *sqs.Client
	url string
}

// NewDeadLetters returns a sender to the dead-letter queue at dlqURL.
func NewDeadLetters(client *sqs.Client, dlqURL string) *DeadLetters {
	return &DeadLetters{sqs: client, url: dlqURL}
}

// Send puts body on the dead-letter queue with the reason and the source message id as
// attributes. The body is kept as is when SQS can carry it; otherwise it is base64-encoded
// and/or truncated to fit, and AttrBodyEncoding says so.
func (q *DeadLetters) Send(ctx context.Context, body, reason, sourceMessageID string) error {
	attrs := map[string]types.MessageAttributeValue{
		AttrReason: stringAttr(truncateUTF8(sqsText(reason), maxReasonBytes)),
	}
	if sourceMessageID != "" {
		attrs[AttrSourceMessageID] = stringAttr(truncateUTF8(sqsText(sourceMessageID), maxReasonBytes))
	}
	var encoding []string
	original := len(body)
	if !validSQSText(body) {
		encoding = append(encoding, "base64")
	}
	// Room for the body: the limit less the attributes, with slack for the encoding ones.
	room := maxMessageBytes - attrsSize(attrs) - 64
	if encoding != nil {
		if base64.StdEncoding.EncodedLen(len(body)) > room {
			body = body[:base64.StdEncoding.DecodedLen(room)]
			encoding = append(encoding, "truncated")
		}
		body = base64.StdEncoding.EncodeToString([]byte(body))
	} else if len(body) > room {
		body = truncateUTF8(body, room)
		encoding = append(encoding, "truncated")
	}
	if encoding != nil {
		attrs[AttrBodyEncoding] = stringAttr(strings.Join(encoding, ","))
		attrs[AttrOriginalBytes] = types.MessageAttributeValue{DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(original))}
	}
	if body == "" {
		// SQS refuses an empty body; the attributes say what happened.
		body = " "
	}
	_, err := q.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &q.url, MessageBody: &body, MessageAttributes: attrs})
	if err != nil {
		return awserr.Classify(dependency, fmt.Errorf("dead-letter message %s: %w", sourceMessageID, err))
	}
	return nil
}

func stringAttr(s string) types.MessageAttributeValue {
	if s == "" {
		s = "-" // SQS refuses empty attribute values
	}
	return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(s)}
}

// attrsSize is what the attributes count toward the message size: names, types, values.
func attrsSize(attrs map[string]types.MessageAttributeValue) int {
	n := 0
	for k, v := range attrs {
		n += len(k) + len(aws.ToString(v.DataType)) + len(aws.ToString(v.StringValue))
	}
	return n
}

// sqsAllowed reports whether SQS accepts r in a message: #x9 | #xA | #xD | #x20 to
// #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.
func sqsAllowed(r rune) bool {
	return r == 0x9 || r == 0xA || r == 0xD || (r >= 0x20 && r <= 0xD7FF) ||
		(r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
}

func validSQSText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !sqsAllowed(r) {
			return false
		}
	}
	return true
}

// sqsText replaces what SQS cannot carry with U+FFFD.
func sqsText(s string) string {
	if validSQSText(s) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if sqsAllowed(r) {
			return r
		}
		return utf8.RuneError
	}, strings.ToValidUTF8(s, string(utf8.RuneError)))
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
