package auth

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestNewVerifierConfig(t *testing.T) {
	t.Parallel()
	valid := Config{JWKSURL: "https://issuer.test/jwks.json", Issuer: testIssuer, Audience: testAudience}
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{name: "valid https", mod: func(*Config) {}},
		{name: "valid http", mod: func(c *Config) { c.JWKSURL = "http://localhost:8080/.well-known/jwks.json" }},
		{name: "empty URL", mod: func(c *Config) { c.JWKSURL = "" }, wantErr: "JWKS URL"},
		{name: "relative URL", mod: func(c *Config) { c.JWKSURL = "/.well-known/jwks.json" }, wantErr: "JWKS URL"},
		{name: "other scheme", mod: func(c *Config) { c.JWKSURL = "file:///etc/jwks.json" }, wantErr: "JWKS URL"},
		{name: "no host", mod: func(c *Config) { c.JWKSURL = "https:///jwks.json" }, wantErr: "JWKS URL"},
		{name: "unparsable URL", mod: func(c *Config) { c.JWKSURL = "https://[::1" }, wantErr: "JWKS URL"},
		{name: "no issuer", mod: func(c *Config) { c.Issuer = " " }, wantErr: "issuer"},
		{name: "no audience", mod: func(c *Config) { c.Audience = "" }, wantErr: "audience"},
		{name: "negative TTL", mod: func(c *Config) { c.CacheTTL = -time.Second }, wantErr: "cache TTL"},
		{name: "negative leeway", mod: func(c *Config) { c.Leeway = -time.Second }, wantErr: "leeway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := valid
			tt.mod(&cfg)
			v, err := NewVerifier(cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewVerifier() error = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewVerifier() error = %v", err)
			}
			if v.cfg.TenantClaim != DefaultTenantClaim || v.cfg.CacheTTL != DefaultCacheTTL ||
				v.cfg.Leeway != DefaultLeeway || v.cfg.HTTPClient == nil {
				t.Errorf("defaults not applied: %+v", v.cfg)
			}
		})
	}
}

func TestNewVerifierDoesNotFetch(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, testKey{kid: "rsa-1", priv: rsaKeyA()})
	newTestVerifier(t, srv, newFakeClock())
	if n := srv.hits.Load(); n != 0 {
		t.Fatalf("JWKS hits after NewVerifier = %d, want 0", n)
	}
}

// TestPrefetch: after a prefetch the first request finds the keys cached; a failed one
// leaves the first request to fetch at once; one that runs out of patience leaves its fetch
// running for the first request to join.
func TestPrefetch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newFakeClock()
	tok := "Bearer " + sign(t, jwt.SigningMethodRS256, rsaKeyA(), "rsa-1", baseClaims(clock))

	srv := newJWKSServer(t, testKey{kid: "rsa-1", priv: rsaKeyA()})
	v := newTestVerifier(t, srv, clock)
	if err := v.Prefetch(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if n := srv.hits.Load(); n != 1 {
		t.Errorf("JWKS hits after a prefetch and a request = %d, want 1 (the prefetch's)", n)
	}

	failing := newJWKSServer(t, testKey{kid: "rsa-1", priv: rsaKeyA()})
	failing.setStatus(http.StatusServiceUnavailable)
	v = newTestVerifier(t, failing, clock)
	if err := v.Prefetch(ctx); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("failed prefetch: %v, want ErrKeysUnavailable", err)
	}
	failing.setStatus(http.StatusOK)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("the request after a failed prefetch: %v", err)
	}
	if n := failing.hits.Load(); n != 2 {
		t.Errorf("JWKS hits = %d, want 2 (the request fetched again at once)", n)
	}

	slow := newJWKSServer(t, testKey{kid: "rsa-1", priv: rsaKeyA()})
	gate := make(chan struct{})
	slow.setGate(gate)
	v = newTestVerifier(t, slow, clock)
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := v.Prefetch(short); !errors.Is(err, ErrKeysUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("prefetch past its wait: %v", err)
	}
	close(gate)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("the request joining the prefetch: %v", err)
	}
	if n := slow.hits.Load(); n != 1 {
		t.Errorf("JWKS hits = %d, want 1 (the request joined the prefetch's fetch)", n)
	}
}

func TestPrincipalHasScope(t *testing.T) {
	t.Parallel()
	p := Principal{Scopes: []string{"webhooks:read", "webhooks:write"}}
	tests := []struct {
		scope string
		want  bool
	}{
		{"webhooks:read", true},
		{"webhooks:write", true},
		{"webhooks", false},
		{"WEBHOOKS:READ", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.scope, func(t *testing.T) {
			t.Parallel()
			if got := p.HasScope(tt.scope); got != tt.want {
				t.Errorf("HasScope(%q) = %v, want %v", tt.scope, got, tt.want)
			}
		})
	}
}

func TestVerifyAccepts(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	srv := newJWKSServer(t,
		testKey{kid: "rsa-1", priv: rsaKeyA()},
		testKey{kid: "ec-1", priv: ecKeyA()},
	)
	v := newTestVerifier(t, srv, clock)
	base := baseClaims(clock)
	now := clock.Now()
	rs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodRS256, rsaKeyA(), "rsa-1", c) }

	tests := []struct {
		name   string
		header string
		want   Principal
	}{
		{
			name:   "RS256",
			header: "Bearer " + rs(base),
			want:   Principal{TenantID: "tenant-1", Subject: "user-1", Scopes: []string{"webhooks:read", "webhooks:write"}},
		},
		{
			name:   "ES256",
			header: "Bearer " + sign(t, jwt.SigningMethodES256, ecKeyA(), "ec-1", base),
			want:   Principal{TenantID: "tenant-1", Subject: "user-1", Scopes: []string{"webhooks:read", "webhooks:write"}},
		},
		{
			name:   "lower-case scheme and extra spaces",
			header: "  bearer   " + rs(base) + " ",
			want:   Principal{TenantID: "tenant-1", Subject: "user-1", Scopes: []string{"webhooks:read", "webhooks:write"}},
		},
		{
			name:   "audience array",
			header: "Bearer " + rs(with(base, "aud", []string{"other", testAudience})),
			want:   Principal{TenantID: "tenant-1", Subject: "user-1", Scopes: []string{"webhooks:read", "webhooks:write"}},
		},
		{
			name:   "scope as array",
			header: "Bearer " + rs(with(base, "scope", []string{"a", "b"})),
			want:   Principal{TenantID: "tenant-1", Subject: "user-1", Scopes: []string{"a", "b"}},
		},
		{
			name:   "scp as array",
			header: "Bearer " + rs(with(with(base, "scope", nil), "scp", []string{"a"})),
			want:   Principal{TenantID: "tenant-1", Subject: "user-1", Scopes: []string{"a"}},
		},
		{
			name:   "scp as string",
			header: "Bearer " + rs(with(with(base, "scope", nil), "scp", "a b")),
			want:   Principal{TenantID: "tenant-1", Subject: "user-1", Scopes: []string{"a", "b"}},
		},
		{
			name:   "no scopes, no subject",
			header: "Bearer " + rs(with(with(base, "scope", nil), "sub", nil)),
			want:   Principal{TenantID: "tenant-1"},
		},
		{
			name:   "expired within leeway",
			header: "Bearer " + rs(with(base, "exp", now.Add(-20*time.Second).Unix())),
			want:   Principal{TenantID: "tenant-1", Subject: "user-1", Scopes: []string{"webhooks:read", "webhooks:write"}},
		},
		{
			name:   "tenant of the longest allowed length",
			header: "Bearer " + rs(with(base, "tenant_id", strings.Repeat("t", 128))),
			want:   Principal{TenantID: strings.Repeat("t", 128), Subject: "user-1", Scopes: []string{"webhooks:read", "webhooks:write"}},
		},
		{
			name:   "nbf and iat within leeway",
			header: "Bearer " + rs(with(with(base, "nbf", now.Add(20*time.Second).Unix()), "iat", now.Add(20*time.Second).Unix())),
			want:   Principal{TenantID: "tenant-1", Subject: "user-1", Scopes: []string{"webhooks:read", "webhooks:write"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := v.Verify(context.Background(), tt.header)
			if err != nil {
				t.Fatalf("Verify() error = %v", err)
			}
			if got.TenantID != tt.want.TenantID || got.Subject != tt.want.Subject || !slices.Equal(got.Scopes, tt.want.Scopes) {
				t.Errorf("Verify() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestVerifyCustomTenantClaim(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	srv := newJWKSServer(t, testKey{kid: "rsa-1", priv: rsaKeyA()})
	v := newTestVerifier(t, srv, clock, func(c *Config) { c.TenantClaim = "org_id" })
	claims := with(baseClaims(clock), "org_id", "org-9")

	p, err := v.Verify(context.Background(), "Bearer "+sign(t, jwt.SigningMethodRS256, rsaKeyA(), "rsa-1", claims))
	if err != nil || p.TenantID != "org-9" {
		t.Fatalf("Verify() = %+v, %v; want tenant org-9", p, err)
	}
	_, err = v.Verify(context.Background(), "Bearer "+sign(t, jwt.SigningMethodRS256, rsaKeyA(), "rsa-1", with(claims, "org_id", nil)))
	if want := `token has no tenant claim "org_id"`; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Verify() error = %v, want %q", err, want)
	}
}

func TestVerifySingleKeyWithoutKid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		keys    []testKey
		wantErr string
	}{
		{name: "single key is used", keys: []testKey{{kid: "rsa-1", priv: rsaKeyA()}}},
		{name: "several keys are ambiguous", keys: []testKey{{kid: "rsa-1", priv: rsaKeyA()}, {kid: "rsa-2", priv: rsaKeyB()}}, wantErr: "unknown signing key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			v := newTestVerifier(t, newJWKSServer(t, tt.keys...), clock)
			_, err := v.Verify(context.Background(), "Bearer "+sign(t, jwt.SigningMethodRS256, rsaKeyA(), "", baseClaims(clock)))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Verify() error = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Verify() error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	srv := newJWKSServer(t,
		testKey{kid: "rsa-1", priv: rsaKeyA()},
		testKey{kid: "ec-1", priv: ecKeyA()},
	)
	v := newTestVerifier(t, srv, clock)
	base := baseClaims(clock)
	now := clock.Now()
	rs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodRS256, rsaKeyA(), "rsa-1", c) }

	pubDER, err := x509.MarshalPKIXPublicKey(rsaKeyA().Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	noneTok := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "rsa-1", base)
	valid := rs(base)
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + strings.Split(rs(with(base, "tenant_id", "tenant-2")), ".")[1] + "." + parts[2]

	badKidHeader := jwt.NewWithClaims(jwt.SigningMethodRS256, base)
	badKidHeader.Header["kid"] = 42
	badKidTok, err := badKidHeader.SignedString(rsaKeyA())
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		header string
		reason string
	}{
		{name: "empty header", header: "", reason: "missing bearer token"},
		{name: "other scheme", header: "Basic dXNlcjpwYXNz", reason: "missing bearer token"},
		{name: "scheme only", header: "Bearer", reason: "missing bearer token"},
		{name: "scheme and spaces", header: "Bearer   ", reason: "missing bearer token"},
		{name: "raw token without scheme", header: valid, reason: "missing bearer token"},
		{name: "garbage", header: "Bearer not-a-jwt", reason: "malformed token"},
		{name: "bad base64", header: "Bearer !!!.???.***", reason: "malformed token"},
		{name: "two segments", header: "Bearer " + parts[0] + "." + parts[1], reason: "malformed token"},
		{name: "oversized", header: "Bearer " + strings.Repeat("a", maxTokenBytes+1), reason: "malformed token"},
		{name: "non-string kid", header: "Bearer " + badKidTok, reason: "malformed token"},
		{name: "exp wrong type", header: "Bearer " + rs(with(base, "exp", "tomorrow")), reason: "malformed token"},
		{name: "scope wrong type", header: "Bearer " + rs(with(base, "scope", 7)), reason: "malformed token"},
		{name: "scope array with non-string", header: "Bearer " + rs(with(base, "scope", []any{"a", 1})), reason: "malformed token"},
		{name: "expired", header: "Bearer " + rs(with(base, "exp", now.Add(-31*time.Second).Unix())), reason: "token expired"},
		{name: "no exp", header: "Bearer " + rs(with(base, "exp", nil)), reason: "token has no expiry"},
		{name: "not yet valid", header: "Bearer " + rs(with(base, "nbf", now.Add(time.Minute).Unix())), reason: "token not yet valid"},
		{name: "issued in the future", header: "Bearer " + rs(with(base, "iat", now.Add(time.Minute).Unix())), reason: "token issued in the future"},
		{name: "signed by another key", header: "Bearer " + sign(t, jwt.SigningMethodRS256, rsaKeyB(), "rsa-1", base), reason: "invalid token signature"},
		{name: "tampered payload", header: "Bearer " + tampered, reason: "invalid token signature"},
		{name: "unknown kid", header: "Bearer " + sign(t, jwt.SigningMethodRS256, rsaKeyB(), "rsa-2", base), reason: "unknown signing key"},
		{name: "alg none", header: "Bearer " + noneTok, reason: "unsupported signing algorithm"},
		{name: "alg none unsigned, no kid", header: "Bearer " + strings.TrimSuffix(sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", base), "."), reason: "malformed token"},
		{name: "HS256 with public key as secret", header: "Bearer " + sign(t, jwt.SigningMethodHS256, pubPEM, "rsa-1", base), reason: "unsupported signing algorithm"},
		{name: "RS384", header: "Bearer " + sign(t, jwt.SigningMethodRS384, rsaKeyA(), "rsa-1", base), reason: "unsupported signing algorithm"},
		{name: "ES256 token naming RSA key", header: "Bearer " + sign(t, jwt.SigningMethodES256, ecKeyA(), "rsa-1", base), reason: "invalid token signature"},
		{name: "RS256 token naming EC key", header: "Bearer " + sign(t, jwt.SigningMethodRS256, rsaKeyA(), "ec-1", base), reason: "invalid token signature"},
		{name: "wrong issuer", header: "Bearer " + rs(with(base, "iss", "https://evil.test/")), reason: "wrong issuer"},
		{name: "issuer differs by trailing slash", header: "Bearer " + rs(with(base, "iss", strings.TrimSuffix(testIssuer, "/"))), reason: "wrong issuer"},
		{name: "no issuer", header: "Bearer " + rs(with(base, "iss", nil)), reason: "wrong issuer"},
		{name: "wrong issuer wins over expiry", header: "Bearer " + rs(with(with(base, "iss", "x"), "exp", now.Add(-time.Hour).Unix())), reason: "wrong issuer"},
		{name: "wrong audience", header: "Bearer " + rs(with(base, "aud", "other-api")), reason: "wrong audience"},
		{name: "audience array without ours", header: "Bearer " + rs(with(base, "aud", []string{"a", "b"})), reason: "wrong audience"},
		{name: "no audience", header: "Bearer " + rs(with(base, "aud", nil)), reason: "wrong audience"},
		{name: "no tenant", header: "Bearer " + rs(with(base, "tenant_id", nil)), reason: `token has no tenant claim "tenant_id"`},
		{name: "empty tenant", header: "Bearer " + rs(with(base, "tenant_id", "")), reason: `token has no tenant claim "tenant_id"`},
		{name: "numeric tenant", header: "Bearer " + rs(with(base, "tenant_id", 12)), reason: `token has no tenant claim "tenant_id"`},
		// A tenant claim becomes part of every storage key: bounded here, at the edge.
		{name: "tenant over 128 characters", header: "Bearer " + rs(with(base, "tenant_id", strings.Repeat("T", 129))), reason: `tenant claim "tenant_id" is not a valid tenant id`},
		{name: "tenant of 2100 bytes", header: "Bearer " + rs(with(base, "tenant_id", strings.Repeat("T", 2100))), reason: `tenant claim "tenant_id" is not a valid tenant id`},
		{name: "tenant with a space", header: "Bearer " + rs(with(base, "tenant_id", "acme corp")), reason: `tenant claim "tenant_id" is not a valid tenant id`},
		{name: "tenant with a NUL", header: "Bearer " + rs(with(base, "tenant_id", "acme\x00")), reason: `tenant claim "tenant_id" is not a valid tenant id`},
		{name: "tenant with #", header: "Bearer " + rs(with(base, "tenant_id", "acme#2")), reason: `tenant claim "tenant_id" is not a valid tenant id`},
		{name: "non-ASCII tenant", header: "Bearer " + rs(with(base, "tenant_id", "acmé")), reason: `tenant claim "tenant_id" is not a valid tenant id`},
		// Anything beside the token makes the value malformed: a valid token followed by
		// another credential (API Gateway joins repeated headers with commas) or by text.
		{name: "valid token, comma, another token", header: "Bearer " + valid + ",Bearer " + rs(with(base, "tenant_id", "tenant-2")), reason: "malformed token"},
		{name: "valid token, comma and space, garbage", header: "Bearer " + valid + ", garbage", reason: "malformed token"},
		{name: "valid token then text", header: "Bearer " + valid + " trailing", reason: "malformed token"},
		{name: "valid token with a NUL", header: "Bearer " + valid + "\x00", reason: "malformed token"},
	}

	// Warm the cache so that the unknown-kid case does not depend on which
	// parallel subtest happens to fetch first.
	if _, err := v.Verify(context.Background(), "Bearer "+valid); err != nil {
		t.Fatalf("warm-up Verify() error = %v", err)
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := v.Verify(context.Background(), tt.header)
			if err == nil {
				t.Fatalf("Verify() = %+v, want error %q", p, tt.reason)
			}
			if !errors.Is(err, ErrUnauthorized) {
				t.Errorf("Verify() error = %v, want it to wrap ErrUnauthorized", err)
			}
			if errors.Is(err, ErrKeysUnavailable) {
				t.Errorf("Verify() error = %v, must not wrap ErrKeysUnavailable", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("Verify() error = %q, want reason %q", err, tt.reason)
			}
			// The message goes to clients and logs: it must never echo the
			// token (or any segment of it).
			for seg := range strings.SplitSeq(strings.TrimSpace(strings.TrimPrefix(tt.header, "Bearer")), ".") {
				if len(seg) > 8 && strings.Contains(err.Error(), seg) {
					t.Errorf("Verify() error %q contains token text", err)
				}
			}
			if p.TenantID != "" {
				t.Errorf("Verify() returned principal %+v with error", p)
			}
			if strings.Contains(err.Error(), "TTTTTTTT") {
				t.Errorf("Verify() error %q repeats the tenant claim", err)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	srv := newJWKSServer(t, testKey{kid: "old", priv: rsaKeyA()})
	v := newTestVerifier(t, srv, clock)
	ctx := context.Background()
	oldTok := "Bearer " + sign(t, jwt.SigningMethodRS256, rsaKeyA(), "old", baseClaims(clock))

	if _, err := v.Verify(ctx, oldTok); err != nil {
		t.Fatalf("Verify(old) error = %v", err)
	}
	// The issuer publishes a new key and starts signing with it.
	srv.setKeys(t, testKey{kid: "old", priv: rsaKeyA()}, testKey{kid: "new", priv: rsaKeyB()})
	clock.Advance(minRefetchInterval)
	newTok := "Bearer " + sign(t, jwt.SigningMethodRS256, rsaKeyB(), "new", baseClaims(clock))

	if _, err := v.Verify(ctx, newTok); err != nil {
		t.Fatalf("Verify(new) after rotation error = %v", err)
	}
	if _, err := v.Verify(ctx, oldTok); err != nil {
		t.Fatalf("Verify(old) after rotation error = %v", err)
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("JWKS hits = %d, want 2 (initial + one refetch for the new kid)", n)
	}
}

func TestUnknownKidRefetchThrottled(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	srv := newJWKSServer(t, testKey{kid: "rsa-1", priv: rsaKeyA()})
	v := newTestVerifier(t, srv, clock)
	ctx := context.Background()

	forged := func(i int) string {
		return "Bearer " + sign(t, jwt.SigningMethodRS256, rsaKeyB(), fmt.Sprintf("forged-%d", i), baseClaims(clock))
	}
	steps := []struct {
		advance   time.Duration
		forgeries int
		wantHits  int64
	}{
		{advance: 0, forgeries: 20, wantHits: 1},                                // first fetch only; kids fetched just now
		{advance: minRefetchInterval - time.Second, forgeries: 20, wantHits: 1}, // still inside the window
		{advance: time.Second, forgeries: 20, wantHits: 2},                      // window over: exactly one refetch
		{advance: 10 * time.Second, forgeries: 20, wantHits: 2},
		{advance: minRefetchInterval, forgeries: 1, wantHits: 3},
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		for j := range s.forgeries {
			_, err := v.Verify(ctx, forged(i*100+j))
			if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "unknown signing key") {
				t.Fatalf("step %d: Verify(forged) error = %v, want unknown signing key", i, err)
			}
		}
		if n := srv.hits.Load(); n != s.wantHits {
			t.Fatalf("step %d: JWKS hits = %d, want %d", i, n, s.wantHits)
		}
	}
}

func TestCacheTTL(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	srv := newJWKSServer(t, testKey{kid: "rsa-1", priv: rsaKeyA()})
	v := newTestVerifier(t, srv, clock, func(c *Config) { c.CacheTTL = 5 * time.Minute })

	steps := []struct {
		advance  time.Duration
		wantHits int64
	}{
		{0, 1},
		{4 * time.Minute, 1},
		{59 * time.Second, 1},
		{time.Second, 2}, // TTL reached
		{time.Minute, 2},
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		tok := "Bearer " + sign(t, jwt.SigningMethodRS256, rsaKeyA(), "rsa-1", baseClaims(clock))
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatalf("step %d: Verify() error = %v", i, err)
		}
		if n := srv.hits.Load(); n != s.wantHits {
			t.Fatalf("step %d: JWKS hits = %d, want %d", i, n, s.wantHits)
		}
	}
}

func TestKeysUnavailable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(*jwksServer)
	}{
		{name: "503", setup: func(s *jwksServer) { s.setStatus(http.StatusServiceUnavailable) }},
		{name: "500", setup: func(s *jwksServer) { s.setStatus(http.StatusInternalServerError) }},
		{name: "404", setup: func(s *jwksServer) { s.setStatus(http.StatusNotFound) }},
		{name: "connection refused", setup: func(s *jwksServer) { s.Close() }},
		{name: "not JSON", setup: func(s *jwksServer) { s.setBody([]byte("<html>oops</html>")) }},
		{name: "no usable keys", setup: func(s *jwksServer) { s.setBody([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`)) }},
		{name: "oversized", setup: func(s *jwksServer) { s.setBody(make([]byte, maxJWKSBytes+1)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			srv := newJWKSServer(t, testKey{kid: "rsa-1", priv: rsaKeyA()})
			v := newTestVerifier(t, srv, clock)
			tt.setup(srv)
			tok := "Bearer " + sign(t, jwt.SigningMethodRS256, rsaKeyA(), "rsa-1", baseClaims(clock))

			_, err := v.Verify(context.Background(), tok)
			if !errors.Is(err, ErrKeysUnavailable) {
				t.Fatalf("Verify() error = %v, want ErrKeysUnavailable", err)
			}
			if errors.Is(err, ErrUnauthorized) {
				t.Fatalf("Verify() error = %v must not wrap ErrUnauthorized", err)
			}
			// With nothing cached there is nothing to fall back on, so the
			// next request tries again rather than failing for 30s.
			_, _ = v.Verify(context.Background(), tok)
			if tt.name != "connection refused" {
				if n := srv.hits.Load(); n != 2 {
					t.Fatalf("JWKS hits = %d, want 2", n)
				}
			}
		})
	}
}

func TestStaleKeysUsedWhenRefreshFails(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	srv := newJWKSServer(t, testKey{kid: "rsa-1", priv: rsaKeyA()})
	v := newTestVerifier(t, srv, clock)
	ctx := context.Background()
	tok := func() string {
		return "Bearer " + sign(t, jwt.SigningMethodRS256, rsaKeyA(), "rsa-1", baseClaims(clock))
	}

	if _, err := v.Verify(ctx, tok()); err != nil {
		t.Fatalf("initial Verify() error = %v", err)
	}
	srv.setStatus(http.StatusBadGateway)
	clock.Advance(DefaultCacheTTL)

	// Refresh fails, stale key still verifies.
	if _, err := v.Verify(ctx, tok()); err != nil {
		t.Fatalf("Verify() with stale keys error = %v", err)
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("JWKS hits = %d, want 2", n)
	}
	// Within the back-off no further fetch is attempted.
	clock.Advance(minRefetchInterval - time.Second)
	if _, err := v.Verify(ctx, tok()); err != nil {
		t.Fatalf("Verify() during back-off error = %v", err)
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("JWKS hits during back-off = %d, want 2", n)
	}
	// An unknown kid cannot be judged while the issuer is down: 503, not 401.
	_, err := v.Verify(ctx, "Bearer "+sign(t, jwt.SigningMethodRS256, rsaKeyB(), "rsa-2", baseClaims(clock)))
	if !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("Verify(unknown kid) while JWKS down error = %v, want ErrKeysUnavailable", err)
	}
	// After the back-off the refresh is retried and succeeds.
	srv.setStatus(http.StatusOK)
	clock.Advance(time.Second)
	if _, err := v.Verify(ctx, tok()); err != nil {
		t.Fatalf("Verify() after recovery error = %v", err)
	}
	if n := srv.hits.Load(); n != 3 {
		t.Fatalf("JWKS hits after recovery = %d, want 3", n)
	}
}

func TestCanceledWaiterDoesNotFailSharedFetch(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	srv := newJWKSServer(t, testKey{kid: "rsa-1", priv: rsaKeyA()})
	gate := make(chan struct{})
	srv.setGate(gate)
	v := newTestVerifier(t, srv, clock)
	tok := "Bearer " + sign(t, jwt.SigningMethodRS256, rsaKeyA(), "rsa-1", baseClaims(clock))

	// The fetch is held at the server, so the canceled context is the only
	// way out for this caller: deterministic, no timing involved.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := v.Verify(ctx, tok)
	if !errors.Is(err, ErrKeysUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify(canceled) error = %v, want ErrKeysUnavailable wrapping context.Canceled", err)
	}

	srv.setGate(nil)
	close(gate)
	// The same fetch completes for the next caller.
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("Verify() error = %v", err)
	}
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("JWKS hits = %d, want 1 (the canceled caller's fetch was reused)", n)
	}
}

func TestConcurrentVerify(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	srv := newJWKSServer(t,
		testKey{kid: "rsa-1", priv: rsaKeyA()},
		testKey{kid: "ec-1", priv: ecKeyA()},
	)
	v := newTestVerifier(t, srv, clock)
	tokens := []struct {
		header  string
		wantErr bool
	}{
		{header: "Bearer " + sign(t, jwt.SigningMethodRS256, rsaKeyA(), "rsa-1", baseClaims(clock))},
		{header: "Bearer " + sign(t, jwt.SigningMethodES256, ecKeyA(), "ec-1", baseClaims(clock))},
		{header: "Bearer " + sign(t, jwt.SigningMethodRS256, rsaKeyB(), "forged", baseClaims(clock)), wantErr: true},
	}

	const workers = 64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	start := make(chan struct{})
	for i := range workers {
		tc := tokens[i%len(tokens)]
		wg.Go(func() {
			<-start
			_, err := v.Verify(context.Background(), tc.header)
			switch {
			case tc.wantErr && !errors.Is(err, ErrUnauthorized):
				errs <- fmt.Errorf("worker %d: error = %v, want ErrUnauthorized", i, err)
			case !tc.wantErr && err != nil:
				errs <- fmt.Errorf("worker %d: error = %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The clock does not move, so however the goroutines interleave they
	// must all have been served by a single fetch.
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("JWKS hits = %d, want 1", n)
	}
}

func BenchmarkVerify(b *testing.B) {
	clock := newFakeClock()
	srv := newJWKSServer(b, testKey{kid: "rsa-1", priv: rsaKeyA()})
	v := newTestVerifier(b, srv, clock)
	tok := "Bearer " + sign(b, jwt.SigningMethodRS256, rsaKeyA(), "rsa-1", baseClaims(clock))
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
