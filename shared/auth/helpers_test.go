package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testIssuer   = "https://issuer.test/"
	testAudience = "webhooks-api"
)

// Keys are generated once per test binary: RSA generation is slow enough to
// matter when every subtest would do it.
var (
	rsaKeyA = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	rsaKeyB = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	ecKeyA  = sync.OnceValue(func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
)

func mustRSA() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

// testKey is a private key published in the test JWKS under kid.
type testKey struct {
	kid  string
	priv crypto.Signer
}

// jwkJSON renders the public half of k as a JWK.
func (k testKey) jwkJSON(t testing.TB) map[string]any {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	switch pub := k.priv.Public().(type) {
	case *rsa.PublicKey:
		return map[string]any{
			"kty": "RSA", "use": "sig", "kid": k.kid,
			"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
		}
	case *ecdsa.PublicKey:
		raw, err := pub.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return map[string]any{
			"kty": "EC", "kid": k.kid, "crv": "P-256",
			"x": b64(raw[1:33]), "y": b64(raw[33:65]),
		}
	default:
		t.Fatalf("unsupported key type %T", pub)
		return nil
	}
}

// jwksServer is an httptest JWKS endpoint whose keys, status and hit count
// the test controls.
type jwksServer struct {
	*httptest.Server
	hits atomic.Int64

	mu     sync.Mutex
	body   []byte
	status int
	gate   chan struct{} // if non-nil, requests wait until it is closed
}

func newJWKSServer(t testing.TB, keys ...testKey) *jwksServer {
	t.Helper()
	s := &jwksServer{status: http.StatusOK}
	s.setKeys(t, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		body, status, gate := s.body, s.status, s.gate
		s.mu.Unlock()
		if gate != nil {
			<-gate
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) setKeys(t testing.TB, keys ...testKey) {
	t.Helper()
	set := map[string]any{"keys": []any{}}
	var list []any
	for _, k := range keys {
		list = append(list, k.jwkJSON(t))
	}
	if list != nil {
		set["keys"] = list
	}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	s.setBody(body)
}

func (s *jwksServer) setBody(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body = b
}

func (s *jwksServer) setStatus(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = code
}

func (s *jwksServer) setGate(g chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = g
}

// fakeClock lets tests move time for cache expiry, throttling and claim
// checks without sleeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newTestVerifier returns a Verifier for srv driven by clock.
func newTestVerifier(t testing.TB, srv *jwksServer, clock *fakeClock, mods ...func(*Config)) *Verifier {
	t.Helper()
	cfg := Config{
		JWKSURL:    srv.URL + "/.well-known/jwks.json",
		Issuer:     testIssuer,
		Audience:   testAudience,
		HTTPClient: srv.Client(),
	}
	for _, m := range mods {
		m(&cfg)
	}
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	v.keys.now = clock.Now
	return v
}

// baseClaims are the claims of a valid token at clock's current time.
func baseClaims(clock *fakeClock) jwt.MapClaims {
	now := clock.Now()
	return jwt.MapClaims{
		"iss":       testIssuer,
		"aud":       testAudience,
		"sub":       "user-1",
		"tenant_id": "tenant-1",
		"scope":     "webhooks:read webhooks:write",
		"iat":       now.Unix(),
		"exp":       now.Add(time.Hour).Unix(),
	}
}

// with returns a copy of c with key set to val, or removed if val is nil.
func with(c jwt.MapClaims, key string, val any) jwt.MapClaims {
	out := maps.Clone(c)
	if val == nil {
		delete(out, key)
	} else {
		out[key] = val
	}
	return out
}

// sign returns a compact JWS of claims. kid "" means no kid header.
func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}
