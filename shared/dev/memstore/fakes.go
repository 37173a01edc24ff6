package memstore

import (
	"bytes"
	"context"
	"errors"
	"sync"

	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/signing"
)

// SecretBox "encrypts" secrets by binding them to their tenant and endpoint, as the KMS
// adapter does with its encryption context: a ciphertext opened for another endpoint is an
// error. The ciphertext is not secret; it is for tests only.
type SecretBox struct {
	// Fail, when set, is returned by every Seal and Open.
	Fail error
}

// errWrongEndpoint is what Open returns for a ciphertext sealed for another endpoint.
var errWrongEndpoint = errors.New("memstore: ciphertext was sealed for another endpoint")

func boxContext(tenantID, endpointID string) []byte {
	return []byte(tenantID + "\x00" + endpointID + "\x00")
}

// Seal binds s to the tenant and endpoint.
func (b *SecretBox) Seal(_ context.Context, tenantID, endpointID string, s signing.Secret) ([]byte, error) {
	if b.Fail != nil {
		return nil, b.Fail
	}
	return append(boxContext(tenantID, endpointID), s.Encode()...), nil
}

// Open returns the secret sealed for the tenant and endpoint.
func (b *SecretBox) Open(_ context.Context, tenantID, endpointID string, ciphertext []byte) (signing.Secret, error) {
	if b.Fail != nil {
		return signing.Secret{}, b.Fail
	}
	encoded, ok := bytes.CutPrefix(ciphertext, boxContext(tenantID, endpointID))
	if !ok {
		return signing.Secret{}, errWrongEndpoint
	}
	return signing.ParseSecret(string(encoded))
}

// Challenge is one ownership challenge a Challenger was asked to make.
type Challenge struct {
	URL    string
	Secret signing.Secret
}

// Challenger records the challenges it is asked to make and answers each with Err (nil:
// the URL proved ownership).
type Challenger struct {
	mu    sync.Mutex
	Err   error
	asked []Challenge
}

// Verify records the challenge and returns c.Err.
func (c *Challenger) Verify(_ context.Context, url string, secret signing.Secret) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked = append(c.asked, Challenge{URL: url, Secret: secret})
	return c.Err
}

// Asked returns the challenges made so far, oldest first.
func (c *Challenger) Asked() []Challenge {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Challenge(nil), c.asked...)
}

// ReplayJob is one replay handed to a ReplayQueue.
type ReplayJob struct{ TenantID, ReplayID string }

// ReplayQueue records the replays handed to it, or refuses them with Err.
type ReplayQueue struct {
	mu   sync.Mutex
	Err  error
	sent []ReplayJob
}

// SendReplay records the job, or returns q.Err.
func (q *ReplayQueue) SendReplay(_ context.Context, tenantID, replayID string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.Err != nil {
		return q.Err
	}
	q.sent = append(q.sent, ReplayJob{TenantID: tenantID, ReplayID: replayID})
	return nil
}

// Sent returns the jobs accepted so far, oldest first.
func (q *ReplayQueue) Sent() []ReplayJob {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]ReplayJob(nil), q.sent...)
}

// Notifier records the notifications published to it, or refuses them with Err.
type Notifier struct {
	mu        sync.Mutex
	Err       error
	published []domain.Event
}

// Publish records e, or returns n.Err.
func (n *Notifier) Publish(_ context.Context, e domain.Event) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.Err != nil {
		return n.Err
	}
	n.published = append(n.published, e)
	return nil
}

// Published returns the notifications accepted so far, oldest first.
func (n *Notifier) Published() []domain.Event {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]domain.Event(nil), n.published...)
}
