package auth

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"
)

const (
	// minRefetchInterval limits fetches that the cache TTL did not ask for:
	// refetches for an unknown kid, and retries after a failed refresh while
	// stale keys still work. Without it, a client sending tokens with random
	// kids (or an issuer outage) would turn every request into a JWKS fetch,
	// hammering the issuer and slowing every request of this instance.
	minRefetchInterval = 30 * time.Second

	// fetchTimeout bounds a fetch even if the caller's HTTP client has no
	// timeout, because the fetch is detached from request contexts.
	fetchTimeout = 10 * time.Second

	// maxJWKSBytes caps the JWKS body we read; real sets are a few KiB.
	maxJWKSBytes = 1 << 20

	// minRSABits rejects weak RSA keys published in the JWKS.
	minRSABits = 2048
)

// verificationKey is one usable key from the JWKS.
type verificationKey struct {
	kid string
	alg string // the only JWS alg this key may verify: RS256 or ES256
	key any    // *rsa.PublicKey or *ecdsa.PublicKey
}

// keyCache holds the JWKS keys and coordinates fetching them.
//
// Concurrency: mu guards all mutable fields. At most one fetch runs at a
// time (inflight); callers that need keys while it runs wait for it instead
// of starting their own, which is singleflight without the extra module.
type keyCache struct {
	url    string
	client *http.Client
	ttl    time.Duration
	// now is the clock for cache ages and claim times. Tests replace it
	// before first use so that expiry and throttling are tested without
	// sleeping.
	now func() time.Time

	mu          sync.Mutex
	keys        []verificationKey // nil until the first successful fetch
	fetchedAt   time.Time         // completion time of the last successful fetch
	lastAttempt time.Time         // start time of the last fetch, successful or not
	lastErr     error             // error of the last fetch; nil if it succeeded
	inflight    *fetchCall        // fetch in progress, if any
}

// fetchCall is one in-flight JWKS fetch shared by all callers waiting on it.
type fetchCall struct {
	done chan struct{} // closed when the fetch has finished and the cache is updated
	err  error         // written before done is closed
}

func newKeyCache(url string, client *http.Client, ttl time.Duration) *keyCache {
	return &keyCache{url: url, client: client, ttl: ttl, now: time.Now}
}

// get returns the key for kid, fetching the JWKS when there are no keys yet,
// when the cached ones are older than the TTL, or (throttled) when kid is
// not among them, which is how a key rotation is picked up.
func (c *keyCache) get(ctx context.Context, kid string) (verificationKey, error) {
	c.mu.Lock()
	now := c.now()
	if c.keys != nil && !c.refreshDueLocked(now) {
		if k, ok := c.findLocked(kid); ok {
			c.mu.Unlock()
			return k, nil
		}
		if now.Sub(c.lastAttempt) < minRefetchInterval {
			err := c.unknownKeyErrLocked()
			c.mu.Unlock()
			return verificationKey{}, err
		}
	}
	call := c.startFetchLocked(ctx, now)
	c.mu.Unlock()

	select {
	case <-call.done:
	case <-ctx.Done():
		return verificationKey{}, fmt.Errorf("%w: waiting for JWKS: %w", ErrKeysUnavailable, ctx.Err())
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	// Even if the fetch failed, stale keys may still hold this kid.
	if k, ok := c.findLocked(kid); ok {
		return k, nil
	}
	return verificationKey{}, c.unknownKeyErrLocked()
}

// refreshDueLocked reports whether the cached keys should be refetched
// before use.
func (c *keyCache) refreshDueLocked(now time.Time) bool {
	if now.Before(c.fetchedAt.Add(c.ttl)) {
		return false
	}
	// After a failed refresh, keep serving the stale keys for a while
	// rather than retrying (and waiting on a broken issuer) per request.
	if c.lastErr != nil && now.Sub(c.lastAttempt) < minRefetchInterval {
		return false
	}
	return true
}

// unknownKeyErrLocked is the error for a kid the cache cannot resolve. If
// the last fetch failed we cannot know whether the kid is new and genuine,
// so that is reported as unavailable keys (503, retryable) rather than as
// the client's fault.
func (c *keyCache) unknownKeyErrLocked() error {
	if c.lastErr != nil {
		return fmt.Errorf("%w: %w", ErrKeysUnavailable, c.lastErr)
	}
	return errUnknownKey
}

// findLocked looks kid up. A token without kid is accepted only when the set
// has exactly one key, because otherwise which key to use would be a guess.
func (c *keyCache) findLocked(kid string) (verificationKey, bool) {
	if kid == "" {
		if len(c.keys) == 1 {
			return c.keys[0], true
		}
		return verificationKey{}, false
	}
	for _, k := range c.keys {
		if k.kid == kid {
			return k, true
		}
	}
	return verificationKey{}, false
}

// startFetchLocked joins the in-flight fetch or starts a new one.
func (c *keyCache) startFetchLocked(ctx context.Context, now time.Time) *fetchCall {
	if c.inflight != nil {
		return c.inflight
	}
	call := &fetchCall{done: make(chan struct{})}
	c.inflight = call
	c.lastAttempt = now

	// The fetch runs detached from the caller's cancellation: other callers
	// share it, and one caller giving up must not fail it for all of them.
	// Context values (trace IDs) are kept.
	fctx := context.WithoutCancel(ctx)
	go func() {
		ctx, cancel := context.WithTimeout(fctx, fetchTimeout)
		defer cancel()
		keys, err := c.fetch(ctx)

		c.mu.Lock()
		if err == nil {
			c.keys = keys
			c.fetchedAt = c.now()
		}
		c.lastErr = err
		c.inflight = nil
		call.err = err
		c.mu.Unlock()
		close(call.done)
	}()
	return call
}

// fetch downloads and parses the JWKS.
func (c *keyCache) fetch(ctx context.Context) ([]verificationKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, fmt.Errorf("build JWKS request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("fetch JWKS from %s: unexpected status %s", c.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read JWKS from %s: %w", c.url, err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("JWKS from %s exceeds %d bytes", c.url, maxJWKSBytes)
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return nil, fmt.Errorf("JWKS from %s: %w", c.url, err)
	}
	return keys, nil
}

// jwk is the subset of RFC 7517/7518 key fields we use.
type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS returns the usable signing keys of a JWKS document. Keys we
// cannot use (encryption keys, other key types or curves, malformed ones)
// are skipped rather than failing the set: an issuer adding, say, an Ed25519
// key must not break verification with its RSA key. A set with no usable key
// is an error, so that a bad document never replaces good cached keys.
func parseJWKS(data []byte) ([]verificationKey, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("decode JWKS: %w", err)
	}
	var (
		keys    []verificationKey
		skipped []error
	)
	for i, k := range set.Keys {
		vk, err := k.verificationKey()
		if err != nil {
			skipped = append(skipped, fmt.Errorf("key %d (kid %q): %w", i, k.Kid, err))
			continue
		}
		keys = append(keys, vk)
	}
	if len(keys) == 0 {
		return nil, errors.Join(append([]error{errors.New("no usable RS256/ES256 signing key")}, skipped...)...)
	}
	return keys, nil
}

// verificationKey converts one JWK into a usable key.
func (k jwk) verificationKey() (verificationKey, error) {
	if k.Use != "" && k.Use != "sig" {
		return verificationKey{}, fmt.Errorf("use %q is not \"sig\"", k.Use)
	}
	switch k.Kty {
	case "RSA":
		pub, err := k.rsaPublicKey()
		if err != nil {
			return verificationKey{}, err
		}
		// A declared alg other than RS256 is kept as declared, so a token
		// claiming RS256 for it fails the alg/key match in keyFor.
		return verificationKey{kid: k.Kid, alg: cmp.Or(k.Alg, algRS256), key: pub}, nil
	case "EC":
		pub, err := k.ecPublicKey()
		if err != nil {
			return verificationKey{}, err
		}
		return verificationKey{kid: k.Kid, alg: cmp.Or(k.Alg, algES256), key: pub}, nil
	default:
		return verificationKey{}, fmt.Errorf("unsupported kty %q", k.Kty)
	}
}

func (k jwk) rsaPublicKey() (*rsa.PublicKey, error) {
	n, err := decodeB64URL(k.N)
	if err != nil || len(n) == 0 {
		return nil, errors.New("invalid RSA modulus")
	}
	e, err := decodeB64URL(k.E)
	// Exponents above 2^31-1 do not fit an int on 32-bit platforms and are
	// never used in practice.
	if err != nil || len(e) == 0 || len(e) > 4 {
		return nil, errors.New("invalid RSA exponent")
	}
	exp := new(big.Int).SetBytes(e)
	if !exp.IsInt64() || exp.Int64() < 3 || exp.Int64() > 1<<31-1 || exp.Bit(0) == 0 {
		return nil, errors.New("invalid RSA exponent")
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp.Int64())}
	if bits := pub.N.BitLen(); bits < minRSABits {
		return nil, fmt.Errorf("RSA key has %d bits, need at least %d", bits, minRSABits)
	}
	return pub, nil
}

func (k jwk) ecPublicKey() (*ecdsa.PublicKey, error) {
	if k.Crv != "P-256" {
		return nil, fmt.Errorf("unsupported curve %q", k.Crv)
	}
	x, errX := decodeB64URL(k.X)
	y, errY := decodeB64URL(k.Y)
	// RFC 7518 §6.2.1.2: coordinates are exactly the field size, 32 bytes.
	if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
		return nil, errors.New("invalid EC coordinates")
	}
	point := make([]byte, 0, 65)
	point = append(point, 4) // uncompressed point marker
	point = append(point, x...)
	point = append(point, y...)
	// ParseUncompressedPublicKey rejects points not on the curve, which
	// matters: invalid-curve points can leak information in some protocols
	// and are never legitimate here.
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		return nil, fmt.Errorf("invalid EC point: %w", err)
	}
	return pub, nil
}

// decodeB64URL decodes base64url, tolerating the padding that RFC 7515
// forbids but some issuers emit anyway.
func decodeB64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
