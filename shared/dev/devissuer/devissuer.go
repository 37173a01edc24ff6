// Package devissuer is a minimal token issuer for local development and
// tests. It mints RS256 tokens shaped like the production issuer's and
// serves the matching JWKS, so auth.Verifier runs the exact same code path
// locally as in AWS.
//
// It is never deployed: it has no login, signs whatever it is asked to, and
// keeps its private key in a plain file.
package devissuer

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	keyBits = 2048
	// subject is the sub claim of tokens from Mint: there are no users
	// locally, only tenants.
	subject = "dev-user"
	// tenantClaim matches auth.DefaultTenantClaim. It is repeated rather
	// than imported so this dev-only package stays a leaf.
	tenantClaim = "tenant_id"
	// defaultTTL is the lifetime MintWith gives tokens that set no exp.
	defaultTTL = time.Hour
)

// Issuer signs development tokens with one RSA key. It is safe for
// concurrent use.
type Issuer struct {
	issuer   string
	audience string
	key      *rsa.PrivateKey
	kid      string
	jwks     []byte // pre-rendered JWKS document (public key only)
}

// New returns an Issuer with a freshly generated RSA-2048 key. Tokens it
// mints stop verifying when the process exits; use LoadOrCreate for a local
// stack whose tokens should survive restarts.
func New(issuer, audience string) (*Issuer, error) {
	if err := checkNames(issuer, audience); err != nil {
		return nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return nil, fmt.Errorf("devissuer: generate key: %w", err)
	}
	return newIssuer(issuer, audience, key)
}

// LoadOrCreate returns an Issuer whose private key is stored as PEM at path,
// generating and saving it (mode 0600, parent directories 0700) if the file
// does not exist. Persisting the key keeps tokens minted earlier (pasted in
// a shell, an HTTP client, a .env file) valid across restarts of the local
// stack; the kid is derived from the key, so it is stable too.
func LoadOrCreate(path, issuer, audience string) (*Issuer, error) {
	if err := checkNames(issuer, audience); err != nil {
		return nil, err
	}
	key, err := loadKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = createKey(path)
	}
	if err != nil {
		return nil, err
	}
	return newIssuer(issuer, audience, key)
}

func checkNames(issuer, audience string) error {
	if strings.TrimSpace(issuer) == "" {
		return errors.New("devissuer: issuer is required")
	}
	if strings.TrimSpace(audience) == "" {
		return errors.New("devissuer: audience is required")
	}
	return nil
}

func newIssuer(issuer, audience string, key *rsa.PrivateKey) (*Issuer, error) {
	pub := publicJWK(&key.PublicKey)
	pub["kid"] = thumbprint(&key.PublicKey)
	pub["use"] = "sig"
	pub["alg"] = "RS256"
	doc, err := json.Marshal(map[string]any{"keys": []any{pub}})
	if err != nil {
		return nil, fmt.Errorf("devissuer: render JWKS: %w", err)
	}
	return &Issuer{
		issuer:   issuer,
		audience: audience,
		key:      key,
		kid:      pub["kid"],
		jwks:     doc,
	}, nil
}

// publicJWK returns the RFC 7517 members of an RSA public key.
func publicJWK(pub *rsa.PublicKey) map[string]string {
	b64 := base64.RawURLEncoding.EncodeToString
	return map[string]string{
		"kty": "RSA",
		"n":   b64(pub.N.Bytes()),
		"e":   b64(big.NewInt(int64(pub.E)).Bytes()),
	}
}

// thumbprint is the RFC 7638 JWK thumbprint, used as kid. Deriving the kid
// from the key (instead of picking a random one) means a reloaded key gets
// the same kid without storing it separately.
func thumbprint(pub *rsa.PublicKey) string {
	j := publicJWK(pub)
	// RFC 7638 requires the required members in lexicographic order with no
	// whitespace; encoding/json sorts map keys, which gives exactly that.
	canon, _ := json.Marshal(map[string]string{"e": j["e"], "kty": j["kty"], "n": j["n"]})
	sum := sha256.Sum256(canon)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// loadKey reads an RSA private key from a PEM file (PKCS#8 or PKCS#1).
func loadKey(path string) (*rsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("devissuer: read key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("devissuer: %s contains no PEM block", path)
	}
	var key *rsa.PrivateKey
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("devissuer: parse %s: %w", path, err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("devissuer: %s holds a %T, want an RSA key", path, k)
		}
		key = rk
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("devissuer: parse %s: %w", path, err)
		}
	default:
		return nil, fmt.Errorf("devissuer: %s holds PEM type %q, want a private key", path, block.Type)
	}
	if key.N.BitLen() < keyBits {
		return nil, fmt.Errorf("devissuer: %s holds a %d-bit key, want at least %d", path, key.N.BitLen(), keyBits)
	}
	return key, nil
}

// createKey generates a key and stores it at path without ever exposing a
// partially written file: it is written to a temporary file and hard-linked
// into place, which (unlike rename) fails if path already exists. If another
// process won that race, its key is loaded instead, so two services of the
// local stack starting together agree on one key.
func createKey(path string) (*rsa.PrivateKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return nil, fmt.Errorf("devissuer: generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("devissuer: encode key: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("devissuer: create key directory: %w", err)
	}
	// CreateTemp creates the file with mode 0600, so the key is never
	// readable by others, not even briefly.
	tmp, err := os.CreateTemp(dir, ".devissuer-*.pem")
	if err != nil {
		return nil, fmt.Errorf("devissuer: create key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := pem.Encode(tmp, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("devissuer: write key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("devissuer: write key file: %w", err)
	}
	switch err := os.Link(tmp.Name(), path); {
	case err == nil:
		return key, nil
	case errors.Is(err, fs.ErrExist):
		return loadKey(path)
	default:
		// Some file systems (certain container mounts) lack hard links;
		// fall back to rename, which is atomic but may overwrite a key
		// written concurrently. Acceptable for a dev tool.
		if err := os.Rename(tmp.Name(), path); err != nil {
			return nil, fmt.Errorf("devissuer: save key: %w", err)
		}
		return key, nil
	}
}

// JWKSHandler serves the issuer's public key as a JWKS document. Mount it at
// /.well-known/jwks.json and point auth.Config.JWKSURL at it.
func (i *Issuer) JWKSHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(i.jwks)
	})
}

// Mint returns an RS256 token for tenantID carrying iss, aud, sub
// ("dev-user"), tenant_id, scope (space-separated, omitted when scopes is
// empty), iat and exp (now + ttl), with the kid header set.
func (i *Issuer) Mint(tenantID string, scopes []string, ttl time.Duration) (string, error) {
	if tenantID == "" {
		return "", errors.New("devissuer: tenant ID is required (use MintWith for tokens without one)")
	}
	if ttl <= 0 {
		return "", errors.New("devissuer: ttl must be positive (use MintWith for expired tokens)")
	}
	now := time.Now()
	claims := map[string]any{
		tenantClaim: tenantID,
		"iat":       now.Unix(),
		"exp":       now.Add(ttl).Unix(),
	}
	if len(scopes) > 0 {
		claims["scope"] = strings.Join(scopes, " ")
	}
	return i.MintWith(claims)
}

// MintWith returns an RS256 token for tests that need unusual claims.
//
// The given claims are laid over defaults (iss, aud, sub "dev-user", iat =
// now, exp = now + 1h), so a test states only what it cares about; a claim
// set to nil is removed instead, e.g. {"exp": nil} mints a token without
// expiry. time.Time values are converted to Unix seconds (NumericDate).
// No tenant claim is added: tests name it themselves, possibly under another
// claim name. The claims map is not modified.
func (i *Issuer) MintWith(claims map[string]any) (string, error) {
	now := time.Now()
	all := jwt.MapClaims{
		"iss": i.issuer,
		"aud": i.audience,
		"sub": subject,
		"iat": now.Unix(),
		"exp": now.Add(defaultTTL).Unix(),
	}
	for k, v := range claims {
		switch v := v.(type) {
		case nil:
			delete(all, k)
		case time.Time:
			all[k] = v.Unix()
		default:
			all[k] = v
		}
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, all)
	tok.Header["kid"] = i.kid
	s, err := tok.SignedString(i.key)
	if err != nil {
		return "", fmt.Errorf("devissuer: sign token: %w", err)
	}
	return s, nil
}
