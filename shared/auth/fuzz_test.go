package auth

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/datajetty/webhooks/shared/domain"
)

// FuzzVerify: bearer tokens (the Authorization header), against a live JWKS with an RSA and
// an EC key. Invariants: no panic; a rejection is ErrUnauthorized (the keys are available,
// so never ErrKeysUnavailable) with a message that does not repeat the input; anything
// accepted is one of the tokens this test signed, unchanged (whitespace and the scheme's
// case aside), and names a valid tenant. Seeds are in testdata/fuzz/FuzzVerify/ and f.Add.
func FuzzVerify(f *testing.F) {
	clock := newFakeClock()
	srv := newJWKSServer(f, testKey{kid: "rsa-1", priv: rsaKeyA()}, testKey{kid: "ec-1", priv: ecKeyA()})
	v := newTestVerifier(f, srv, clock)
	base := baseClaims(clock)
	signed := map[string]bool{}
	add := func(tok string) {
		signed[tok] = true
		f.Add("Bearer " + tok)
	}
	add(sign(f, jwt.SigningMethodRS256, rsaKeyA(), "rsa-1", base))
	add(sign(f, jwt.SigningMethodES256, ecKeyA(), "ec-1", with(base, "tenant_id", "t")))
	add(sign(f, jwt.SigningMethodRS256, rsaKeyA(), "rsa-1", with(base, "scope", []string{"webhooks:read"})))
	for _, s := range []string{"", "Bearer", "Basic dXNlcjpwYXNz", "Bearer a.b.c", "Bearer eyJhbGciOiJub25lIn0.e30.", "bearer  x"} {
		f.Add(s)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, header string) {
		p, err := v.Verify(ctx, header)
		if err != nil {
			if !errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrKeysUnavailable) {
				t.Fatalf("rejection %v is not a plain 401", err)
			}
			if tok, _ := bearerToken(header); len(tok) > 12 && strings.Contains(err.Error(), tok) {
				t.Fatalf("rejection %q repeats the token", err)
			}
			return
		}
		tok, _ := bearerToken(header)
		if !signed[tok] {
			t.Fatalf("accepted a token this test did not sign: %q", header)
		}
		if !domain.ValidTenantID(p.TenantID) {
			t.Fatalf("accepted tenant %q", p.TenantID)
		}
	})
}
