package redrive

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Naming says how a template logical id (DeliveryDLQ, IngestDLQ, ReplayDLQ, ...) maps to a
// queue.
type Naming struct {
	// Prefix: the local stack, where devstack names each queue Prefix + logical id
	// (tools/dev uses "dev-").
	Prefix string
	// Stack: a CloudFormation stack, which names a queue without a QueueName
	// <stack name>-<logical id>-<random suffix>.
	Stack string
}

// ResolveQueue returns the URL of the queue ref names: a queue URL (returned as is), a
// logical id of template.yaml (see Naming), or a queue name.
func ResolveQueue(ctx context.Context, c Client, ref string, n Naming) (string, error) {
	if ref == "" {
		return "", errors.New("no queue given")
	}
	if strings.HasPrefix(ref, "https://") || strings.HasPrefix(ref, "http://") {
		return ref, nil
	}
	if n.Stack != "" {
		prefix := n.Stack + "-" + ref + "-"
		var urls []string
		p := sqs.NewListQueuesPaginator(c, &sqs.ListQueuesInput{QueueNamePrefix: aws.String(prefix)})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				return "", fmt.Errorf("list queues named %s*: %w", prefix, err)
			}
			urls = append(urls, out.QueueUrls...)
		}
		switch len(urls) {
		case 1:
			return urls[0], nil
		case 0:
			// Not a logical id of that stack: try it as a queue name below.
		default:
			return "", fmt.Errorf("%d queues are named %s*: %s; pass the queue URL", len(urls), prefix, strings.Join(urls, ", "))
		}
	}
	names := []string{ref}
	if n.Prefix != "" && !strings.HasPrefix(ref, n.Prefix) {
		names = []string{n.Prefix + ref, ref}
	}
	var errs []error
	for _, name := range names {
		out, err := c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
		if err == nil {
			return aws.ToString(out.QueueUrl), nil
		}
		var missing *types.QueueDoesNotExist
		if !errors.As(err, &missing) && !isCode(err, "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist") {
			return "", fmt.Errorf("look up queue %s: %w", name, err)
		}
		errs = append(errs, err)
	}
	where := "as a queue name"
	switch {
	case n.Stack != "":
		where = fmt.Sprintf("in stack %s or as a queue name", n.Stack)
	case n.Prefix != "":
		where = fmt.Sprintf("in the local stack (as %s%s) or as a queue name", n.Prefix, ref)
	}
	return "", fmt.Errorf("no queue %s found %s: %w", ref, where, errors.Join(errs...))
}

// FindSource returns the one queue whose RedrivePolicy names dlqURL as its dead-letter
// queue (ListDeadLetterSourceQueues).
func FindSource(ctx context.Context, c Client, dlqURL string) (string, error) {
	var urls []string
	p := sqs.NewListDeadLetterSourceQueuesPaginator(c, &sqs.ListDeadLetterSourceQueuesInput{QueueUrl: aws.String(dlqURL)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("list the source queues of %s: %w", dlqURL, err)
		}
		urls = append(urls, out.QueueUrls...)
	}
	switch len(urls) {
	case 1:
		return urls[0], nil
	case 0:
		return "", fmt.Errorf("no queue has %s as its dead-letter queue (is it a DLQ?); name the destination with SOURCE= / -source", dlqURL)
	default:
		return "", fmt.Errorf("%s is the dead-letter queue of %d queues (%s); name one with SOURCE= / -source", dlqURL, len(urls), strings.Join(urls, ", "))
	}
}

// QueueARN returns a queue's ARN.
func QueueARN(ctx context.Context, c Client, url string) (string, error) {
	out, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", fmt.Errorf("queue %s: %w", url, err)
	}
	return out.Attributes[string(types.QueueAttributeNameQueueArn)], nil
}

// Counts are a queue's approximate message counts.
type Counts struct {
	// Visible messages can be received now (ApproximateNumberOfMessages).
	Visible int64
	// InFlight messages were received and are hidden (ApproximateNumberOfMessagesNotVisible).
	InFlight int64
	// Delayed messages are not visible yet (ApproximateNumberOfMessagesDelayed).
	Delayed int64
}

// Count reads a queue's approximate counts.
func Count(ctx context.Context, c Client, url string) (Counts, error) {
	out, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			types.QueueAttributeNameApproximateNumberOfMessagesDelayed,
		},
	})
	if err != nil {
		return Counts{}, fmt.Errorf("queue %s: %w", url, err)
	}
	num := func(k types.QueueAttributeName) int64 {
		n, _ := strconv.ParseInt(out.Attributes[string(k)], 10, 64)
		return n
	}
	return Counts{
		Visible:  num(types.QueueAttributeNameApproximateNumberOfMessages),
		InFlight: num(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible),
		Delayed:  num(types.QueueAttributeNameApproximateNumberOfMessagesDelayed),
	}, nil
}
