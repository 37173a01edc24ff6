// Package auth verifies the bearer tokens that tenants send to the REST API.
//
// In AWS, API Gateway's JWT authorizer already checks the token before the
// Lambda function runs. The functions verify it again themselves for two
// reasons: the local stack has no API Gateway, and the function must not
// trust an unverified header if it is ever invoked some other way (a
// misconfigured route, a direct invoke, a function URL). Both paths use the
// same issuer and JWKS, so local and AWS behave alike.
//
// A Verifier is safe for concurrent use and is meant to be created once per
// process (during Lambda init) and shared by all invocations, so that the
// JWKS cache survives between warm invocations.
package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/datajetty/webhooks/shared/domain"
)

// Defaults applied by NewVerifier to zero-valued Config fields.
const (
	// DefaultTenantClaim is the claim that carries the tenant ID.
	DefaultTenantClaim = "tenant_id"
	// DefaultCacheTTL is how long fetched JWKS keys are trusted before a
	// refetch. Issuers announce new keys well ahead of using them, so ten
	// minutes keeps rotation fast without fetching on every cold start burst.
	DefaultCacheTTL = 10 * time.Minute
	// DefaultLeeway is the clock skew tolerated on exp, nbf and iat.
	DefaultLeeway = 30 * time.Second
)

const (
	// maxTokenBytes bounds the work done on attacker-controlled input before
	// any signature has been checked. API Gateway caps headers at 10 KiB,
	// so a larger token could only reach us locally or by direct invoke.
	maxTokenBytes = 16 << 10

	// defaultHTTPTimeout bounds a JWKS fetch when the caller supplies no
	// client: a hanging issuer must not hold every request for the whole
	// Lambda timeout.
	defaultHTTPTimeout = 10 * time.Second
)

// Algorithms we accept. Only asymmetric ones: the verification key is public,
// so accepting HS* would let anyone who read the JWKS mint tokens, and "none"
// would need no key at all.
const (
	algRS256 = "RS256"
	algES256 = "ES256"
)

var (
	// ErrUnauthorized is wrapped by every error that means "this request's
	// credentials are not acceptable" (HTTP 401). The wrapping error's
	// message is safe to return to the client: it names the reason and
	// never contains the token.
	ErrUnauthorized = errors.New("unauthorized")

	// ErrKeysUnavailable is wrapped when the token could not be checked
	// because the JWKS could not be fetched (network error, non-200 reply,
	// unusable key set) and no cached key could decide. It is our fault or
	// the issuer's, not the client's, so callers should answer 503 and log
	// the error; its message may contain the JWKS URL and transport details
	// and is not meant for clients.
	ErrKeysUnavailable = errors.New("signing keys unavailable")
)

// Client-safe rejection reasons. They are fixed strings, so the errors can be
// allocated once and never risk echoing attacker-supplied text.
var (
	errMissingToken    = unauthorized("missing bearer token")
	errMalformed       = unauthorized("malformed token")
	errExpired         = unauthorized("token expired")
	errNoExpiry        = unauthorized("token has no expiry")
	errNotYetValid     = unauthorized("token not yet valid")
	errIssuedInFuture  = unauthorized("token issued in the future")
	errBadSignature    = unauthorized("invalid token signature")
	errUnsupportedAlg  = unauthorized("unsupported signing algorithm")
	errUnknownKey      = unauthorized("unknown signing key")
	errWrongIssuer     = unauthorized("wrong issuer")
	errWrongAudience   = unauthorized("wrong audience")
	errAlgKeyMismatch  = unauthorized("invalid token signature: algorithm does not match key")
	errMalformedScopes = unauthorized("malformed token: invalid scope claim")
)

func unauthorized(reason string) error {
	return fmt.Errorf("%w: %s", ErrUnauthorized, reason)
}

// Config configures a Verifier. JWKSURL, Issuer and Audience are required.
type Config struct {
	// JWKSURL is the absolute http(s) URL of the issuer's JSON Web Key Set.
	JWKSURL string
	// Issuer must equal the token's iss claim exactly.
	Issuer string
	// Audience must be one of the values of the token's aud claim.
	Audience string
	// TenantClaim names the claim holding the tenant ID; default "tenant_id".
	TenantClaim string
	// HTTPClient fetches the JWKS; default is a client with a 10s timeout.
	HTTPClient *http.Client
	// CacheTTL is how long fetched keys are used before refetching;
	// default 10m.
	CacheTTL time.Duration
	// Leeway is the clock skew tolerated on exp, nbf and iat; default 30s.
	Leeway time.Duration
}

// Principal is the authenticated caller described by a verified token.
type Principal struct {
	// TenantID is the tenant the token was issued for. Every data access
	// must be scoped to it.
	TenantID string
	// Subject is the token's sub claim (the user or client), possibly empty.
	Subject string
	// Scopes are the OAuth scopes granted to the token.
	Scopes []string
}

// HasScope reports whether the principal was granted scope s (exact match).
func (p Principal) HasScope(s string) bool {
	return slices.Contains(p.Scopes, s)
}

// Verifier checks bearer tokens against an issuer's JWKS. Create it with
// NewVerifier; the zero value is not usable.
type Verifier struct {
	cfg    Config
	parser *jwt.Parser
	keys   *keyCache
}

// NewVerifier validates cfg, applies defaults and returns a Verifier. It does
// not contact the issuer; Prefetch does, so that a cold start can fetch the
// keys alongside its other work instead of the first request waiting for them.
func NewVerifier(cfg Config) (*Verifier, error) {
	u, err := url.Parse(cfg.JWKSURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("auth: JWKS URL %q must be an absolute http(s) URL", cfg.JWKSURL)
	}
	if strings.TrimSpace(cfg.Issuer) == "" {
		return nil, errors.New("auth: issuer is required")
	}
	if strings.TrimSpace(cfg.Audience) == "" {
		return nil, errors.New("auth: audience is required")
	}
	if cfg.CacheTTL < 0 {
		return nil, errors.New("auth: cache TTL must not be negative")
	}
	if cfg.Leeway < 0 {
		return nil, errors.New("auth: leeway must not be negative")
	}
	if cfg.TenantClaim == "" {
		cfg.TenantClaim = DefaultTenantClaim
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: defaultHTTPTimeout}
	}

	v := &Verifier{
		cfg:  cfg,
		keys: newKeyCache(cfg.JWKSURL, cfg.HTTPClient, cfg.CacheTTL),
	}
	// The parser only decodes and checks the signature; claims are checked
	// by checkClaims so that each failure maps to a precise, client-safe
	// reason. WithValidMethods is kept as a second line of defence behind
	// the algorithm check in keyFor.
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{algRS256, algES256}),
		jwt.WithoutClaimsValidation(),
	)
	return v, nil
}

// Prefetch fetches the issuer's signing keys now, so that the first request
// finds them cached rather than waiting for the issuer. It waits until the
// fetch ends or ctx does; in the second case the fetch goes on (it has its
// own timeout) and the first request that needs keys joins it. A failed
// prefetch costs nothing later: with no keys cached, the first request
// fetches again at once. The error wraps ErrKeysUnavailable.
func (v *Verifier) Prefetch(ctx context.Context) error {
	c := v.keys
	c.mu.Lock()
	call := c.startFetchLocked(ctx, c.now())
	c.mu.Unlock()
	select {
	case <-call.done:
		if call.err != nil {
			return fmt.Errorf("%w: %w", ErrKeysUnavailable, call.err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: waiting for JWKS: %w", ErrKeysUnavailable, ctx.Err())
	}
}

// Verify checks the Authorization header value ("Bearer <jwt>", scheme
// case-insensitive) and returns the principal it describes.
//
// A rejected token yields an error wrapping ErrUnauthorized whose message is
// safe to show the client. If the signing keys could not be obtained the
// error wraps ErrKeysUnavailable instead, and the request should be answered
// with 503: the token may well be valid.
func (v *Verifier) Verify(ctx context.Context, authorizationHeader string) (Principal, error) {
	raw, ok := bearerToken(authorizationHeader)
	if !ok {
		return Principal{}, errMissingToken
	}
	if len(raw) > maxTokenBytes || !compactJWS(raw) {
		return Principal{}, errMalformed
	}

	claims := jwt.MapClaims{}
	tok, err := v.parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		return v.keyFor(ctx, t)
	})
	if err != nil {
		return Principal{}, classifyParseError(tok, err)
	}
	if err := v.checkClaims(claims); err != nil {
		return Principal{}, err
	}
	return v.principal(claims)
}

// bearerToken extracts the token from an Authorization header value.
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// compactJWS reports whether s is made only of the characters of a JWS in compact
// serialization (base64url segments separated by dots). Anything else around a token (a
// second credential joined by a comma, trailing text) makes the whole value malformed,
// rather than leaving it to a lenient decoder.
func compactJWS(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// keyFor is the jwt.Keyfunc: it picks the JWKS key for the token's kid and
// makes sure the token's alg is one we accept and matches that key's type.
// Checking the pair here (not only in the parser) is what stops
// algorithm-confusion attacks such as an HS256 token "signed" with the RSA
// public key.
func (v *Verifier) keyFor(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if alg != algRS256 && alg != algES256 {
		return nil, errUnsupportedAlg
	}
	kid := ""
	if raw, present := t.Header["kid"]; present {
		s, ok := raw.(string)
		if !ok {
			return nil, errMalformed
		}
		kid = s
	}
	k, err := v.keys.get(ctx, kid)
	if err != nil {
		return nil, err
	}
	if k.alg != alg {
		return nil, errAlgKeyMismatch
	}
	return k.key, nil
}

// classifyParseError maps errors from the jwt parser (including those our
// keyFor returned) to our client-safe errors. The library's own messages are
// deliberately dropped: they are not part of our API contract.
func classifyParseError(tok *jwt.Token, err error) error {
	// Errors produced by keyFor are already ours; pass them through.
	if errors.Is(err, ErrKeysUnavailable) {
		return err
	}
	for _, ours := range []error{errUnsupportedAlg, errUnknownKey, errAlgKeyMismatch, errMalformed} {
		if errors.Is(err, ours) {
			return ours
		}
	}
	// The parser rejects a disallowed alg before calling keyFor, so "none"
	// and HS* surface here as a signature error; tell them apart by alg.
	if tok != nil && tok.Method != nil {
		if alg := tok.Method.Alg(); alg != algRS256 && alg != algES256 {
			return errUnsupportedAlg
		}
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return errMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return errBadSignature
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// Missing or unknown alg header.
		return errUnsupportedAlg
	default:
		return errMalformed
	}
}

// checkClaims validates the registered claims. It runs only after the
// signature has been verified, so the claims are the issuer's, not an
// attacker's.
func (v *Verifier) checkClaims(c jwt.MapClaims) error {
	// Identity checks come first: telling a client "token expired" for a
	// token from the wrong issuer would send it down the wrong path.
	iss, err := c.GetIssuer()
	if err != nil || iss != v.cfg.Issuer {
		return errWrongIssuer
	}
	aud, err := c.GetAudience()
	if err != nil || !slices.Contains(aud, v.cfg.Audience) {
		return errWrongAudience
	}

	now := v.keys.now()
	leeway := v.cfg.Leeway
	exp, err := c.GetExpirationTime()
	if err != nil {
		return errMalformed
	}
	if exp == nil {
		// A token without exp would be valid forever if leaked.
		return errNoExpiry
	}
	if !now.Before(exp.Add(leeway)) {
		return errExpired
	}
	nbf, err := c.GetNotBefore()
	if err != nil {
		return errMalformed
	}
	if nbf != nil && now.Before(nbf.Add(-leeway)) {
		return errNotYetValid
	}
	iat, err := c.GetIssuedAt()
	if err != nil {
		return errMalformed
	}
	if iat != nil && now.Before(iat.Add(-leeway)) {
		return errIssuedInFuture
	}
	return nil
}

// principal builds the Principal from verified claims.
func (v *Verifier) principal(c jwt.MapClaims) (Principal, error) {
	tenant, _ := c[v.cfg.TenantClaim].(string)
	if tenant == "" {
		// Without a tenant we cannot scope data access, so the token is
		// useless to this API even though it is otherwise valid.
		return Principal{}, unauthorized(fmt.Sprintf("token has no tenant claim %q", v.cfg.TenantClaim))
	}
	if !domain.ValidTenantID(tenant) {
		// The tenant becomes part of every storage key (DynamoDB caps a key at
		// 2 KiB) and must be one that events can name. The value itself is
		// never repeated: it is the issuer's data and may be huge.
		return Principal{}, unauthorized(fmt.Sprintf("token's tenant claim %q is not a valid tenant id (1-%d visible ASCII characters, no '#')", v.cfg.TenantClaim, domain.MaxTenantIDLength))
	}
	sub, err := c.GetSubject()
	if err != nil {
		return Principal{}, errMalformed
	}
	scopes, err := scopesFrom(c)
	if err != nil {
		return Principal{}, err
	}
	return Principal{TenantID: tenant, Subject: sub, Scopes: scopes}, nil
}

// scopesFrom reads granted scopes. RFC 8693/9068 use a space-separated
// "scope" string; some issuers (Okta, Azure AD) emit "scp", and some emit a
// JSON array, so all of those forms are accepted. "scope" wins if both exist.
func scopesFrom(c jwt.MapClaims) ([]string, error) {
	raw, ok := c["scope"]
	if !ok {
		raw, ok = c["scp"]
	}
	if !ok || raw == nil {
		return nil, nil
	}
	switch s := raw.(type) {
	case string:
		return strings.Fields(s), nil
	case []any:
		out := make([]string, 0, len(s))
		for _, e := range s {
			str, ok := e.(string)
			if !ok {
				return nil, errMalformedScopes
			}
			if str != "" {
				out = append(out, str)
			}
		}
		return out, nil
	default:
		return nil, errMalformedScopes
	}
}
