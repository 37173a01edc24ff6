package devenv

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/config"
	"github.com/datajetty/webhooks/shared/dev/devissuer"
)

// The development issuer of `make dev`. These repeat tools/dev's constants (a command's
// constants cannot be imported); TestIssuerMatchesToolsDev keeps them equal.
const (
	// Audience is the aud of development tokens.
	Audience = "datajetty-webhooks-local"
	// Tenant is the demo tenant tokens are minted for.
	Tenant = "demo-tenant"
	// KeyFile is the issuer's private key, relative to the repository root.
	KeyFile = ".local/dev-issuer.pem"
	// TokenTTL is the lifetime of minted tokens, as in the token make dev prints.
	TokenTTL = 24 * time.Hour
)

// Scopes are the scopes of a development token: all of them.
var Scopes = []string{api.ScopeRead, api.ScopeWrite, api.ScopeReplay}

// IssuerURL returns the iss of development tokens. It is the issuer recorded in env (the
// dev.env of the running stack) when that is the development issuer, else the one tools/dev
// derives: http://<WEBHOOKS_ADDR or 127.0.0.1:8080>/dev-issuer. When env shows that
// `make dev` verifies tokens of another issuer (it was started with WEBHOOKS_JWKS_URL),
// development tokens would be rejected, and IssuerURL says so.
func IssuerURL(env map[string]string) (string, error) {
	if iss := env[config.JWTIssuer.Name]; iss != "" {
		if !strings.HasSuffix(iss, "/dev-issuer") {
			return "", fmt.Errorf("`make dev` verifies tokens from %s (it was started with WEBHOOKS_JWKS_URL), not from its development issuer: use a token from that issuer", iss)
		}
		return iss, nil
	}
	return "http://" + config.Addr.Get() + "/dev-issuer", nil
}

// Issuer returns the development issuer of the repository at root, with its persisted key
// (created if missing, as tools/dev does). env may be nil (no running stack).
func Issuer(root string, env map[string]string) (*devissuer.Issuer, error) {
	iss, err := IssuerURL(env)
	if err != nil {
		return nil, err
	}
	return devissuer.LoadOrCreate(filepath.Join(root, KeyFile), iss, Audience)
}

// Token mints a development token for the demo tenant with every scope.
func Token(root string, env map[string]string) (string, error) {
	iss, err := Issuer(root, env)
	if err != nil {
		return "", err
	}
	return iss.Mint(Tenant, Scopes, TokenTTL)
}
