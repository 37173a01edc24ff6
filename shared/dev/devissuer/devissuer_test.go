package devissuer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/datajetty/webhooks/shared/auth"
	"github.com/datajetty/webhooks/shared/dev/devissuer"
)

const (
	testIssuer   = "http://localhost:9000"
	testAudience = "webhooks-api"
)

// sharedIssuer avoids generating an RSA key in every test.
var sharedIssuer = sync.OnceValues(func() (*devissuer.Issuer, error) {
	return devissuer.New(testIssuer, testAudience)
})

func issuer(t *testing.T) *devissuer.Issuer {
	t.Helper()
	iss, err := sharedIssuer()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return iss
}

// verifierFor serves iss's JWKS from an httptest server and returns an
// auth.Verifier using it, exactly as the local stack wires them.
func verifierFor(t *testing.T, iss *devissuer.Issuer, tenantClaim string) *auth.Verifier {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/.well-known/jwks.json", iss.JWKSHandler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	v, err := auth.NewVerifier(auth.Config{
		JWKSURL:     srv.URL + "/.well-known/jwks.json",
		Issuer:      testIssuer,
		Audience:    testAudience,
		TenantClaim: tenantClaim,
		HTTPClient:  srv.Client(),
	})
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

func TestNewValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, issuer, audience string
	}{
		{"no issuer", "", testAudience},
		{"no audience", testIssuer, " "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := devissuer.New(tt.issuer, tt.audience); err == nil {
				t.Error("New() succeeded, want error")
			}
			if _, err := devissuer.LoadOrCreate(filepath.Join(t.TempDir(), "k.pem"), tt.issuer, tt.audience); err == nil {
				t.Error("LoadOrCreate() succeeded, want error")
			}
		})
	}
}

func TestMintVerifies(t *testing.T) {
	t.Parallel()
	iss := issuer(t)
	v := verifierFor(t, iss, "")
	tests := []struct {
		name   string
		tenant string
		scopes []string
	}{
		{name: "with scopes", tenant: "tenant-1", scopes: []string{"webhooks:read", "webhooks:write"}},
		{name: "no scopes", tenant: "tenant-2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok, err := iss.Mint(tt.tenant, tt.scopes, time.Hour)
			if err != nil {
				t.Fatalf("Mint() error = %v", err)
			}
			p, err := v.Verify(context.Background(), "Bearer "+tok)
			if err != nil {
				t.Fatalf("Verify() error = %v", err)
			}
			if p.TenantID != tt.tenant || p.Subject != "dev-user" || !slices.Equal(p.Scopes, tt.scopes) {
				t.Errorf("Verify() = %+v, want tenant %q, subject dev-user, scopes %q", p, tt.tenant, tt.scopes)
			}
		})
	}
}

func TestMintValidation(t *testing.T) {
	t.Parallel()
	iss := issuer(t)
	tests := []struct {
		name   string
		tenant string
		ttl    time.Duration
	}{
		{"empty tenant", "", time.Hour},
		{"zero ttl", "t", 0},
		{"negative ttl", "t", -time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := iss.Mint(tt.tenant, nil, tt.ttl); err == nil {
				t.Error("Mint() succeeded, want error")
			}
		})
	}
}

func TestMintWith(t *testing.T) {
	t.Parallel()
	iss := issuer(t)
	tests := []struct {
		name        string
		tenantClaim string
		claims      map[string]any
		wantTenant  string
		wantErr     string
	}{
		{name: "other tenant claim name", tenantClaim: "org_id", claims: map[string]any{"org_id": "org-1"}, wantTenant: "org-1"},
		{name: "expired via time.Time", claims: map[string]any{"tenant_id": "t", "exp": time.Now().Add(-time.Hour)}, wantErr: "token expired"},
		{name: "expired via unix seconds", claims: map[string]any{"tenant_id": "t", "exp": time.Now().Add(-time.Hour).Unix()}, wantErr: "token expired"},
		{name: "nil removes exp", claims: map[string]any{"tenant_id": "t", "exp": nil}, wantErr: "token has no expiry"},
		{name: "no tenant claim", claims: map[string]any{}, wantErr: `token has no tenant claim "tenant_id"`},
		{name: "overridden audience", claims: map[string]any{"tenant_id": "t", "aud": "other"}, wantErr: "wrong audience"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := verifierFor(t, iss, tt.tenantClaim)
			before := len(tt.claims)
			tok, err := iss.MintWith(tt.claims)
			if err != nil {
				t.Fatalf("MintWith() error = %v", err)
			}
			if len(tt.claims) != before {
				t.Errorf("MintWith modified its argument")
			}
			p, err := v.Verify(context.Background(), "Bearer "+tok)
			if tt.wantErr != "" {
				if !errors.Is(err, auth.ErrUnauthorized) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Verify() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify() error = %v", err)
			}
			if p.TenantID != tt.wantTenant {
				t.Errorf("TenantID = %q, want %q", p.TenantID, tt.wantTenant)
			}
		})
	}
}

func TestJWKSHandler(t *testing.T) {
	t.Parallel()
	h := issuer(t).JWKSHandler()
	tests := []struct {
		method     string
		wantStatus int
	}{
		{http.MethodGet, http.StatusOK},
		{http.MethodHead, http.StatusOK},
		{http.MethodPost, http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, "/.well-known/jwks.json", nil))
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if tt.method != http.MethodGet {
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			var doc struct {
				Keys []map[string]any `json:"keys"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
				t.Fatalf("decode JWKS: %v", err)
			}
			if len(doc.Keys) != 1 {
				t.Fatalf("JWKS has %d keys, want 1", len(doc.Keys))
			}
			k := doc.Keys[0]
			if k["kty"] != "RSA" || k["use"] != "sig" || k["alg"] != "RS256" || k["kid"] == "" || k["n"] == nil || k["e"] == nil {
				t.Errorf("unexpected JWK %v", k)
			}
			// Only the public key may be published.
			for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
				if _, ok := k[private]; ok {
					t.Errorf("JWKS exposes private member %q", private)
				}
			}
		})
	}
}

func TestLoadOrCreate(t *testing.T) {
	t.Parallel()
	// A missing parent directory is created too.
	path := filepath.Join(t.TempDir(), "local", "devissuer.pem")

	first, err := devissuer.LoadOrCreate(path, testIssuer, testAudience)
	if err != nil {
		t.Fatalf("first LoadOrCreate() error = %v", err)
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("key file mode = %v, want 0600", mode)
		}
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("key directory holds %d entries, want only the key (temp file left behind?)", len(entries))
	}

	second, err := devissuer.LoadOrCreate(path, testIssuer, testAudience)
	if err != nil {
		t.Fatalf("second LoadOrCreate() error = %v", err)
	}
	if a, b := jwksOf(first), jwksOf(second); !bytes.Equal(a, b) {
		t.Fatalf("JWKS differs after reload:\n%s\n%s", a, b)
	}

	// A token minted before the "restart" verifies against the reloaded key.
	tok, err := first.Mint("tenant-1", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifierFor(t, second, "").Verify(context.Background(), "Bearer "+tok); err != nil {
		t.Fatalf("Verify() with reloaded key error = %v", err)
	}
}

func TestLoadOrCreateConcurrent(t *testing.T) {
	t.Parallel()
	// Services of the local stack may start together and race to create the
	// key; however they interleave, they must end up with the same key.
	path := filepath.Join(t.TempDir(), "devissuer.pem")
	const n = 4
	docs := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var iss *devissuer.Issuer
			iss, errs[i] = devissuer.LoadOrCreate(path, testIssuer, testAudience)
			if errs[i] == nil {
				docs[i] = jwksOf(iss)
			}
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("LoadOrCreate #%d error = %v", i, errs[i])
		}
		if !bytes.Equal(docs[i], docs[0]) {
			t.Fatalf("LoadOrCreate #%d returned a different key", i)
		}
	}
}

func TestLoadOrCreateRejectsBadFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		contents string
	}{
		{"not PEM", "hello"},
		{"wrong PEM type", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
		{"corrupt key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "k.pem")
			if err := os.WriteFile(path, []byte(tt.contents), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := devissuer.LoadOrCreate(path, testIssuer, testAudience); err == nil {
				t.Fatal("LoadOrCreate() succeeded, want error")
			}
			// The bad file must be left alone, not silently replaced.
			got, err := os.ReadFile(path)
			if err != nil || string(got) != tt.contents {
				t.Fatalf("key file changed: %q, %v", got, err)
			}
		})
	}
}

// jwksOf returns the JWKS document iss serves. It takes no *testing.T so it
// can be called from goroutines.
func jwksOf(iss *devissuer.Issuer) []byte {
	rec := httptest.NewRecorder()
	iss.JWKSHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil))
	return rec.Body.Bytes()
}
