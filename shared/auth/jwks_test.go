package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func TestParseJWKS(t *testing.T) {
	t.Parallel()
	b64 := base64.RawURLEncoding.EncodeToString
	rsaJWK := testKey{kid: "rsa-1", priv: rsaKeyA()}.jwkJSON(t)
	ecJWK := testKey{kid: "ec-1", priv: ecKeyA()}.jwkJSON(t)

	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384Raw, err := p384.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}

	// patch returns a copy of a JWK with fields overridden (nil deletes).
	patch := func(base map[string]any, kv ...any) map[string]any {
		out := map[string]any{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(out, kv[i].(string))
			} else {
				out[kv[i].(string)] = kv[i+1]
			}
		}
		return out
	}

	tests := []struct {
		name     string
		keys     []map[string]any
		wantKids []string
		wantAlgs []string
		wantErr  string
	}{
		{name: "RSA and EC", keys: []map[string]any{rsaJWK, ecJWK}, wantKids: []string{"rsa-1", "ec-1"}, wantAlgs: []string{"RS256", "ES256"}},
		{name: "use absent", keys: []map[string]any{patch(rsaJWK, "use", nil)}, wantKids: []string{"rsa-1"}, wantAlgs: []string{"RS256"}},
		{name: "padded base64", keys: []map[string]any{patch(rsaJWK, "e", "AQAB==")}, wantKids: []string{"rsa-1"}, wantAlgs: []string{"RS256"}},
		{name: "declared alg kept", keys: []map[string]any{patch(rsaJWK, "alg", "RS512")}, wantKids: []string{"rsa-1"}, wantAlgs: []string{"RS512"}},
		{name: "encryption key skipped", keys: []map[string]any{patch(rsaJWK, "use", "enc"), ecJWK}, wantKids: []string{"ec-1"}, wantAlgs: []string{"ES256"}},
		{name: "unknown kty skipped", keys: []map[string]any{{"kty": "OKP", "crv": "Ed25519", "x": "AA"}, ecJWK}, wantKids: []string{"ec-1"}, wantAlgs: []string{"ES256"}},
		{name: "only unusable keys", keys: []map[string]any{patch(rsaJWK, "use", "enc")}, wantErr: "no usable"},
		{name: "empty set", keys: []map[string]any{}, wantErr: "no usable"},
		{name: "weak RSA", keys: []map[string]any{{"kty": "RSA", "kid": "w", "n": b64(weak.N.Bytes()), "e": "AQAB"}}, wantErr: "1024 bits"},
		{name: "RSA even exponent", keys: []map[string]any{patch(rsaJWK, "e", b64([]byte{2}))}, wantErr: "exponent"},
		{name: "RSA huge exponent", keys: []map[string]any{patch(rsaJWK, "e", b64([]byte{1, 0, 0, 0, 1}))}, wantErr: "exponent"},
		{name: "RSA bad modulus", keys: []map[string]any{patch(rsaJWK, "n", "***")}, wantErr: "modulus"},
		{name: "EC P-384", keys: []map[string]any{{"kty": "EC", "crv": "P-384", "x": b64(p384Raw[1:49]), "y": b64(p384Raw[49:])}}, wantErr: "curve"},
		{name: "EC short coordinate", keys: []map[string]any{patch(ecJWK, "x", b64(make([]byte, 31)))}, wantErr: "coordinates"},
		{name: "EC point off curve", keys: []map[string]any{patch(ecJWK, "y", b64(append(make([]byte, 31), 1)))}, wantErr: "invalid EC point"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			doc, err := json.Marshal(map[string]any{"keys": tt.keys})
			if err != nil {
				t.Fatal(err)
			}
			keys, err := parseJWKS(doc)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseJWKS() error = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseJWKS() error = %v", err)
			}
			if len(keys) != len(tt.wantKids) {
				t.Fatalf("parseJWKS() returned %d keys, want %d", len(keys), len(tt.wantKids))
			}
			for i, k := range keys {
				if k.kid != tt.wantKids[i] || k.alg != tt.wantAlgs[i] {
					t.Errorf("key %d = {kid %q, alg %q}, want {%q, %q}", i, k.kid, k.alg, tt.wantKids[i], tt.wantAlgs[i])
				}
				switch k.key.(type) {
				case *rsa.PublicKey, *ecdsa.PublicKey:
				default:
					t.Errorf("key %d has type %T", i, k.key)
				}
			}
		})
	}
}

func TestParseJWKSRejectsNonJSON(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{"", "null", "[]", "<html>"} {
		t.Run(doc, func(t *testing.T) {
			t.Parallel()
			if _, err := parseJWKS([]byte(doc)); err == nil {
				t.Fatalf("parseJWKS(%q) succeeded, want error", doc)
			}
		})
	}
}
