package delivery

import (
	"context"
	"sync"
	"time"

	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/signing"
)

// cacheSweepAt is the number of entries above which an insert first drops expired ones, so
// an instance that serves many endpoints over its life does not grow without bound.
const cacheSweepAt = 1024

// target is what a delivery needs to know about its endpoint, decrypted once per cache
// period instead of once per message.
type target struct {
	found bool // false: the endpoint does not exist (cached too, so a burst for a deleted endpoint reads once)
	ep    domain.Endpoint
	// secrets are the opened SigningCiphertexts at load time: the current secret first,
	// then the previous one while its rotation grace lasted.
	secrets []signing.Secret
}

// active reports whether deliveries should be made to the endpoint.
func (t *target) active() bool { return t.found && t.ep.Status == domain.StatusActive }

// signers returns the secrets that sign a delivery made at now. The previous secret stops
// signing at its expiry even if the cached entry is older.
func (t *target) signers(now time.Time) []signing.Secret {
	if len(t.secrets) > 1 && !now.Before(t.ep.PreviousSecretExpiresAt) {
		return t.secrets[:1]
	}
	return t.secrets
}

// cacheEntry is one endpoint's cached target, or its load in progress.
type cacheEntry struct {
	done    chan struct{} // closed when val/err/expires are set
	val     *target
	err     error
	expires time.Time
}

// targetCache keeps targets per instance for a short TTL. Concurrent lookups of one key
// share a single load (many messages of a batch usually go to one endpoint); a failed load
// is not cached, so the next message tries again.
type targetCache struct {
	ttl time.Duration

	mu sync.Mutex
	m  map[string]*cacheEntry
}

func newTargetCache(ttl time.Duration) *targetCache {
	return &targetCache{ttl: ttl, m: map[string]*cacheEntry{}}
}

// get returns the cached target for key, loading it with load when absent or expired.
func (c *targetCache) get(ctx context.Context, key string, now time.Time, load func(context.Context) (*target, error)) (*target, error) {
	c.mu.Lock()
	e := c.m[key]
	if e != nil {
		select {
		case <-e.done:
			if e.err == nil && now.Before(e.expires) {
				c.mu.Unlock()
				return e.val, nil
			}
			e = nil // expired: load again below
		default:
			c.mu.Unlock()
			select {
			case <-e.done:
				return e.val, e.err
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	if len(c.m) >= cacheSweepAt {
		c.sweep(now)
	}
	e = &cacheEntry{done: make(chan struct{})}
	c.m[key] = e
	c.mu.Unlock()

	e.val, e.err = load(ctx)
	e.expires = now.Add(c.ttl)
	if e.err != nil {
		c.mu.Lock()
		if c.m[key] == e {
			delete(c.m, key)
		}
		c.mu.Unlock()
	}
	close(e.done)
	return e.val, e.err
}

// invalidate forgets key, so the next lookup reads the endpoint again (after this instance
// disabled it, for instance).
func (c *targetCache) invalidate(key string) {
	c.mu.Lock()
	delete(c.m, key)
	c.mu.Unlock()
}

// sweep drops expired entries; c.mu is held.
func (c *targetCache) sweep(now time.Time) {
	for k, e := range c.m {
		select {
		case <-e.done:
			if !now.Before(e.expires) {
				delete(c.m, k)
			}
		default:
		}
	}
}

// secretCache keeps opened signing secrets per instance, keyed by the endpoint and the
// ciphertext they were opened from, for longer than the endpoint cache: an endpoint's
// configuration is re-read every CacheTTL, but a ciphertext always opens to the same
// secret, so reopening it would be a KMS call for nothing. A rotation stores a new
// ciphertext (a miss: one Decrypt), a secret past its grace is no longer among the
// endpoint's ciphertexts, and a deleted or disabled endpoint is seen at the next endpoint
// read; none of them waits for this cache.
type secretCache struct {
	ttl time.Duration

	mu sync.Mutex
	m  map[string]secretEntry
}

type secretEntry struct {
	secret  signing.Secret
	expires time.Time
}

func newSecretCache(ttl time.Duration) *secretCache {
	return &secretCache{ttl: ttl, m: map[string]secretEntry{}}
}

func secretKey(tenantID, endpointID string, ciphertext []byte) string {
	return tenantID + "\x00" + endpointID + "\x00" + string(ciphertext)
}

// open returns the secret sealed in ciphertext, from the cache or by open.
func (c *secretCache) open(key string, now time.Time, open func() (signing.Secret, error)) (signing.Secret, error) {
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.secret, nil
	}
	s, err := open()
	if err != nil || c.ttl <= 0 {
		return s, err
	}
	c.mu.Lock()
	if len(c.m) >= cacheSweepAt {
		for k, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k)
			}
		}
	}
	c.m[key] = secretEntry{secret: s, expires: now.Add(c.ttl)}
	c.mu.Unlock()
	return s, nil
}
