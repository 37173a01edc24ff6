// Package awsmeter counts every AWS request a piece of code makes through an aws.Config,
// and what DynamoDB bills for it, so cost can be measured from real calls against the
// local emulator (make cost, the cost budget test).
//
// Attach adds two middlewares to a configuration's APIOptions, so every client built from
// the returned configuration is counted, whatever package builds it: one in the Initialize
// step sees each logical call with its typed input and output, one in the Finalize step
// (after the SDK's retry middleware) counts each HTTP attempt.
//
// Billing units:
//
//   - SQS: one request per started 64 KiB of payload (message bodies and attributes) for
//     SendMessage, SendMessageBatch and ReceiveMessage; one for every other call.
//   - KMS: one request per call.
//   - DynamoDB: capacity units by the published item-size rules, applied to the items the
//     call actually wrote or read. The emulator (moto 5.2.5) answers ReturnConsumedCapacity
//     with a fixed 1.0 or 0.5 whatever the item size, so the meter reads the items itself,
//     with its own uncounted client: the stored item before and after each write, and the
//     items a Query evaluated (the same Query without projection or filter). The rules: a
//     write is 1 unit per started KB of the larger of the item before and after (a failed
//     condition: of the item as stored, at least 1), a transactional write twice that, a
//     BatchWriteItem entry like a PutItem/DeleteItem of its own; a write to a global
//     secondary index is billed for the index entry (table keys, index keys and projected
//     attributes): 1 write to add or remove an entry or change its projected attributes, 2
//     when its key changes; a read is 1 unit per started 4 KB (a Query sums the sizes of
//     the items it evaluated before any filter; GetItem and BatchGetItem round each item),
//     at least 1, half for an eventually consistent read, twice for a transactional one.
//
// The meter reads tables' key schemas and indexes with DescribeTable once per table.
package awsmeter

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go/middleware"
)

// Key identifies one line of the tally.
type Key struct {
	// Source is the label given to Attach: which component made the call.
	Source string
	// Service is the SDK's service id (DynamoDB, SQS, KMS, …).
	Service string
	// Operation is the API operation (PutItem, SendMessageBatch, …).
	Operation string
	// Resource is the table name, queue name or key the call addressed ("" when none).
	Resource string
}

// Tally is what the calls of one Key added up to.
type Tally struct {
	// Calls is the number of logical calls (what the code asked for).
	Calls int
	// Attempts is the number of HTTP attempts, SDK retries included.
	Attempts int
	// Errors is the number of calls that ended in an error.
	Errors int
	// Requests is the billed requests: Calls, except for SQS calls over 64 KiB.
	Requests float64
	// WriteUnits and ReadUnits are DynamoDB capacity units on the table itself.
	WriteUnits, ReadUnits float64
	// IndexWriteUnits is DynamoDB capacity for the table's global secondary indexes.
	IndexWriteUnits float64
}

func (t *Tally) add(o Tally) {
	t.Calls += o.Calls
	t.Attempts += o.Attempts
	t.Errors += o.Errors
	t.Requests += o.Requests
	t.WriteUnits += o.WriteUnits
	t.ReadUnits += o.ReadUnits
	t.IndexWriteUnits += o.IndexWriteUnits
}

// Line is one Key with its Tally.
type Line struct {
	Key
	Tally
}

// Meter counts the calls of every configuration it is attached to. It is safe for
// concurrent use.
type Meter struct {
	db *dynamodb.Client // uncounted: reads items and table descriptions

	mu     sync.Mutex
	tally  map[Key]*Tally
	tables map[string]*tableInfo
	errs   []error
}

// New returns a meter whose own reads (item sizes, table descriptions) go through base,
// which must not be a configuration the meter is attached to.
func New(base aws.Config) *Meter {
	return &Meter{db: dynamodb.NewFromConfig(base), tally: map[Key]*Tally{}, tables: map[string]*tableInfo{}}
}

// Attach returns a copy of cfg whose clients are counted under source.
func (m *Meter) Attach(cfg aws.Config, source string) aws.Config {
	c := cfg.Copy()
	c.APIOptions = append(append([]func(*middleware.Stack) error(nil), cfg.APIOptions...), func(st *middleware.Stack) error {
		if err := st.Initialize.Add(middleware.InitializeMiddlewareFunc("awsmeter.call", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			return m.call(ctx, source, in, next)
		}), middleware.After); err != nil {
			return err
		}
		return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("awsmeter.attempt", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			m.attempt(ctx, source)
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
	})
	return c
}

// Reset forgets every call counted so far (not the table descriptions).
func (m *Meter) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tally = map[Key]*Tally{}
	m.errs = nil
}

// Lines returns the tally, sorted by key.
func (m *Meter) Lines() []Line {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Line, 0, len(m.tally))
	for k, t := range m.tally {
		out = append(out, Line{Key: k, Tally: *t})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Key, out[j].Key
		if a.Source != b.Source {
			return a.Source < b.Source
		}
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		if a.Operation != b.Operation {
			return a.Operation < b.Operation
		}
		return a.Resource < b.Resource
	})
	return out
}

// Err reports what the meter could not measure (an item it could not read, a table it
// could not describe): a measurement with an error is incomplete.
func (m *Meter) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return errors.Join(m.errs...)
}

// attemptKey carries, from the call middleware to the attempt middleware, where to count.
type attemptKey struct{}

type attemptCounter struct{ n int }

func (m *Meter) call(ctx context.Context, source string, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
	service, op := middleware.GetServiceID(ctx), middleware.GetOperationName(ctx)
	ac := &attemptCounter{}
	ctx = context.WithValue(ctx, attemptKey{}, ac)

	var measure func(result any, err error) []measured
	switch service {
	case "DynamoDB":
		measure = m.dynamoDB(ctx, op, in.Parameters)
	case "SQS":
		measure = sqsMeasure(op, in.Parameters)
	default:
		measure = func(any, error) []measured {
			return []measured{{resource: resourceOf(in.Parameters), t: Tally{Requests: 1}}}
		}
	}
	out, md, err := next.HandleInitialize(ctx, in)
	ms := measure(out.Result, err)

	m.mu.Lock()
	defer m.mu.Unlock()
	for i, x := range ms {
		t := x.t
		if service != "SQS" {
			t.Requests = 0
		}
		if i == 0 {
			t.Calls, t.Attempts = 1, ac.n
			if service != "SQS" {
				t.Requests = 1
			}
			if err != nil {
				t.Errors = 1
			}
		}
		if x.err != nil {
			m.errs = append(m.errs, fmt.Errorf("%s %s: %w", service, op, x.err))
		}
		k := Key{Source: source, Service: service, Operation: op, Resource: x.resource}
		if m.tally[k] == nil {
			m.tally[k] = &Tally{}
		}
		m.tally[k].add(t)
	}
	return out, md, err
}

func (m *Meter) attempt(ctx context.Context, _ string) {
	if ac, ok := ctx.Value(attemptKey{}).(*attemptCounter); ok {
		m.mu.Lock()
		ac.n++
		m.mu.Unlock()
	}
}

// measured is one call's contribution to one resource (a BatchWriteItem or a transaction
// may touch several tables; the first entry carries the call itself).
type measured struct {
	resource string
	t        Tally
	err      error
}

// resourceOf names the key a KMS call addressed ("" for other services).
func resourceOf(params any) string {
	switch in := params.(type) {
	case *kms.DecryptInput:
		return aws.ToString(in.KeyId)
	case *kms.EncryptInput:
		return aws.ToString(in.KeyId)
	case *kms.GenerateDataKeyInput:
		return aws.ToString(in.KeyId)
	}
	return ""
}

// queueName is the last path element of a queue URL.
func queueName(url string) string {
	if i := strings.LastIndexByte(url, '/'); i >= 0 {
		return url[i+1:]
	}
	return url
}
