package awsmeter

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// sqsChunk is SQS's billing chunk: every started 64 KiB of a request's payload is billed
// as one request.
const sqsChunk = 64 << 10

// sqsMeasure bills an SQS call: payload-carrying calls by 64 KiB chunk, others as one.
func sqsMeasure(op string, params any) func(any, error) []measured {
	var queue string
	var size int
	switch in := params.(type) {
	case *sqs.SendMessageInput:
		queue = aws.ToString(in.QueueUrl)
		size = len(aws.ToString(in.MessageBody)) + attrsSize(in.MessageAttributes)
	case *sqs.SendMessageBatchInput:
		queue = aws.ToString(in.QueueUrl)
		for _, e := range in.Entries {
			size += len(aws.ToString(e.MessageBody)) + attrsSize(e.MessageAttributes)
		}
	case *sqs.ReceiveMessageInput:
		queue = aws.ToString(in.QueueUrl)
	case *sqs.DeleteMessageInput:
		queue = aws.ToString(in.QueueUrl)
	case *sqs.DeleteMessageBatchInput:
		queue = aws.ToString(in.QueueUrl)
	case *sqs.ChangeMessageVisibilityInput:
		queue = aws.ToString(in.QueueUrl)
	case *sqs.ChangeMessageVisibilityBatchInput:
		queue = aws.ToString(in.QueueUrl)
	case *sqs.GetQueueAttributesInput:
		queue = aws.ToString(in.QueueUrl)
	case *sqs.GetQueueUrlInput:
		queue = aws.ToString(in.QueueName)
	}
	return func(result any, _ error) []measured {
		if out, ok := result.(*sqs.ReceiveMessageOutput); ok {
			for _, msg := range out.Messages {
				size += len(aws.ToString(msg.Body)) + attrsSize(msg.MessageAttributes)
			}
		}
		return []measured{{resource: queueName(queue), t: Tally{Requests: chunks(size)}}}
	}
}

func chunks(size int) float64 {
	if size <= sqsChunk {
		return 1
	}
	return float64((size + sqsChunk - 1) / sqsChunk)
}

// attrsSize is what message attributes add to a message's size: each name, data type and
// value.
func attrsSize(attrs map[string]types.MessageAttributeValue) int {
	n := 0
	for name, a := range attrs {
		n += len(name) + len(aws.ToString(a.DataType)) + len(aws.ToString(a.StringValue)) + len(a.BinaryValue)
	}
	return n
}
