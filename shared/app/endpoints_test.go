package app_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/datajetty/webhooks/shared/app"
	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/signing"
)

const (
	hookURL  = "https://example.com/hook"
	newURL   = "https://example.com/new"
	otherURL = "https://example.com/other"
)

// scene is what a Register case starts from: the tenant's endpoint at hookURL (unless the
// case registers a new one), signed by old; another endpoint of the tenant at otherURL;
// another tenant's endpoint; and a fresh secret the request may bring.
type scene struct {
	ep, other, foreign domain.Endpoint
	old, fresh         signing.Secret
}

func TestRegister(t *testing.T) {
	t.Parallel()
	handshakeDown := errors.New("endpoint answered 500")
	for _, tc := range []struct {
		name string
		// existing is the status of the endpoint at hookURL; "" = there is none.
		existing   domain.EndpointStatus
		input      func(s scene) app.RegisterInput
		handshake  error // the challenger's answer
		noStoreUse bool  // answered without touching the store

		// On failure: the error's kind, reason and field; nothing is stored or changed.
		fails               bool
		kind                domain.Kind
		reason, field       string
		challengeSecret     string // "old", "fresh" or "generated": the secret the challenge was signed with; "" = no challenge
		challengeURL        string
		created, rotated    bool
		version             int64
		generated, prevKept bool
	}{
		{
			name: "create with the tenant's secret",
			input: func(s scene) app.RegisterInput {
				return app.RegisterInput{URL: hookURL, Events: []string{"export.*"}, Secret: s.fresh.Encode()}
			},
			challengeSecret: "fresh", challengeURL: hookURL, created: true, version: 1,
		},
		{
			name:            "create generates a secret when none is given",
			input:           func(scene) app.RegisterInput { return app.RegisterInput{URL: hookURL, Events: []string{"*"}} },
			challengeSecret: "generated", challengeURL: hookURL, created: true, version: 1, generated: true,
		},
		{
			name: "create normalises the URL",
			input: func(scene) app.RegisterInput {
				return app.RegisterInput{URL: "HTTPS://Example.COM:443/hook", Events: []string{"*"}}
			},
			challengeSecret: "generated", challengeURL: hookURL, created: true, version: 1, generated: true,
		},
		{
			name:     "events-only update by URL: no handshake, same secret",
			existing: domain.StatusActive,
			input:    func(scene) app.RegisterInput { return app.RegisterInput{URL: hookURL, Events: []string{"import.done"}} },
			version:  2,
		},
		{
			name:     "update by id with the same secret is not a rotation",
			existing: domain.StatusActive,
			input: func(s scene) app.RegisterInput {
				return app.RegisterInput{EndpointID: s.ep.ID, URL: hookURL, Events: []string{"export.*"}, Secret: s.old.Encode()}
			},
			version: 2,
		},
		{
			name:     "URL change: the new URL proves ownership with the current secret",
			existing: domain.StatusActive,
			input: func(s scene) app.RegisterInput {
				return app.RegisterInput{EndpointID: s.ep.ID, URL: newURL, Events: []string{"export.*"}}
			},
			challengeSecret: "old", challengeURL: newURL, version: 2,
		},
		{
			name:     "secret rotation: the new secret is proven, the old one kept for the grace period",
			existing: domain.StatusActive,
			input: func(s scene) app.RegisterInput {
				return app.RegisterInput{URL: hookURL, Events: []string{"export.*"}, Secret: s.fresh.Encode()}
			},
			challengeSecret: "fresh", challengeURL: hookURL, rotated: true, version: 2, prevKept: true,
		},
		{
			name:            "re-enabling a disabled endpoint runs the handshake",
			existing:        domain.StatusDisabled,
			input:           func(scene) app.RegisterInput { return app.RegisterInput{URL: hookURL, Events: []string{"export.*"}} },
			challengeSecret: "old", challengeURL: hookURL, version: 2,
		},
		{
			name:     "the version the client read matches",
			existing: domain.StatusActive,
			input: func(scene) app.RegisterInput {
				return app.RegisterInput{URL: hookURL, Events: []string{"*"}, Version: ptr(int64(1))}
			},
			version: 2,
		},
		{
			name:     "version conflict",
			existing: domain.StatusActive,
			input: func(scene) app.RegisterInput {
				return app.RegisterInput{URL: hookURL, Events: []string{"*"}, Version: ptr(int64(5))}
			},
			fails: true, kind: domain.KindConflict, reason: domain.ReasonVersionMismatch,
		},
		{
			name: "a version for a URL that is not registered",
			input: func(scene) app.RegisterInput {
				return app.RegisterInput{URL: hookURL, Events: []string{"*"}, Version: ptr(int64(1))}
			},
			fails: true, kind: domain.KindConflict, reason: domain.ReasonVersionMismatch,
		},
		{
			name: "a version below 1",
			input: func(scene) app.RegisterInput {
				return app.RegisterInput{URL: hookURL, Events: []string{"*"}, Version: ptr(int64(0))}
			},
			fails: true, kind: domain.KindInvalid, field: "version", noStoreUse: true,
		},
		{
			name:     "a malformed endpoint id is not found, without a store call",
			existing: domain.StatusActive,
			input: func(scene) app.RegisterInput {
				return app.RegisterInput{EndpointID: "ep_../../x", URL: hookURL, Events: []string{"*"}}
			},
			fails: true, kind: domain.KindNotFound, noStoreUse: true,
		},
		{
			name: "an unknown endpoint id",
			input: func(scene) app.RegisterInput {
				return app.RegisterInput{EndpointID: domain.NewID(domain.EndpointIDPrefix), URL: hookURL, Events: []string{"*"}}
			},
			fails: true, kind: domain.KindNotFound,
		},
		{
			name: "another tenant's endpoint id",
			input: func(s scene) app.RegisterInput {
				return app.RegisterInput{EndpointID: s.foreign.ID, URL: hookURL, Events: []string{"*"}}
			},
			fails: true, kind: domain.KindNotFound,
		},
		{
			name:      "handshake failure on create stores nothing",
			input:     func(scene) app.RegisterInput { return app.RegisterInput{URL: hookURL, Events: []string{"*"}} },
			handshake: handshakeDown,
			fails:     true, kind: domain.KindInvalid, reason: domain.ReasonHandshakeFailed, field: "url",
			challengeSecret: "generated", challengeURL: hookURL,
		},
		{
			name:     "handshake failure on a URL change changes nothing",
			existing: domain.StatusActive,
			input: func(s scene) app.RegisterInput {
				return app.RegisterInput{EndpointID: s.ep.ID, URL: newURL, Events: []string{"*"}}
			},
			handshake: handshakeDown,
			fails:     true, kind: domain.KindInvalid, reason: domain.ReasonHandshakeFailed, field: "url",
			challengeSecret: "old", challengeURL: newURL,
		},
		{
			name:      "a cancelled handshake is not the endpoint's fault",
			input:     func(scene) app.RegisterInput { return app.RegisterInput{URL: hookURL, Events: []string{"*"}} },
			handshake: fmt.Errorf("challenge: %w", context.Canceled),
			fails:     true, kind: domain.KindInternal,
			challengeSecret: "generated", challengeURL: hookURL,
		},
		{
			name:     "moving onto another endpoint's URL",
			existing: domain.StatusActive,
			input: func(s scene) app.RegisterInput {
				return app.RegisterInput{EndpointID: s.ep.ID, URL: otherURL, Events: []string{"*"}}
			},
			fails: true, kind: domain.KindConflict, reason: domain.ReasonURLTaken,
			challengeSecret: "old", challengeURL: otherURL,
		},
		{
			name: "an http URL",
			input: func(scene) app.RegisterInput {
				return app.RegisterInput{URL: "http://example.com/hook", Events: []string{"*"}}
			},
			fails: true, kind: domain.KindInvalid, field: "url", noStoreUse: true,
		},
		{
			name:  "no event patterns",
			input: func(scene) app.RegisterInput { return app.RegisterInput{URL: hookURL} },
			fails: true, kind: domain.KindInvalid, field: "events", noStoreUse: true,
		},
		{
			name: "a malformed secret",
			input: func(scene) app.RegisterInput {
				return app.RegisterInput{URL: hookURL, Events: []string{"*"}, Secret: "whsec_c2hvcnQ="}
			},
			fails: true, kind: domain.KindInvalid, field: "secret", noStoreUse: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := newFixture()
			s := scene{old: secret(t), fresh: secret(t)}
			s.other = f.endpoint(t, tenant, otherURL, secret(t), domain.StatusActive)
			s.foreign = f.endpoint(t, "tenant-b", hookURL, secret(t), domain.StatusActive)
			if tc.existing != "" {
				s.ep = f.endpoint(t, tenant, hookURL, s.old, tc.existing)
			}
			f.challenger.Err = tc.handshake
			calls := f.store.Calls()
			before, _, _ := f.store.ListEndpoints(ctx, tenant, 100, "")

			res, err := f.endpoints.Register(ctx, tenant, tc.input(s))

			if tc.noStoreUse && f.store.Calls() != calls+1 { // +1: the listing above
				t.Errorf("the store was called %d times", f.store.Calls()-calls-1)
			}
			asked := f.challenger.Asked()
			switch {
			case tc.challengeSecret == "" && len(asked) > 0:
				t.Errorf("challenged %s, want no handshake", asked[0].URL)
			case tc.challengeSecret != "" && len(asked) != 1:
				t.Fatalf("%d challenges, want 1", len(asked))
			case tc.challengeSecret != "":
				want, known := map[string]signing.Secret{"old": s.old, "fresh": s.fresh}[tc.challengeSecret]
				if res.GeneratedSecret != nil {
					want, known = *res.GeneratedSecret, true
				}
				if asked[0].URL != tc.challengeURL || known && !asked[0].Secret.Equal(want) {
					t.Errorf("challenged %s, want %s signed with the %s secret", asked[0].URL, tc.challengeURL, tc.challengeSecret)
				}
			}

			if tc.fails {
				wantErr(t, err, tc.kind, tc.reason, tc.field)
				after, _, _ := f.store.ListEndpoints(ctx, tenant, 100, "")
				if !reflect.DeepEqual(after, before) {
					t.Errorf("a failed request changed the tenant's endpoints:\n%v\nwas\n%v", after, before)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := res.Endpoint
			if res.Created != tc.created || res.SecretRotated != tc.rotated || (res.GeneratedSecret != nil) != tc.generated {
				t.Errorf("created %v, rotated %v, generated %v; want %v, %v, %v", res.Created, res.SecretRotated, res.GeneratedSecret != nil, tc.created, tc.rotated, tc.generated)
			}
			if got.Version != tc.version || got.Status != domain.StatusActive || got.DisabledReason != "" || !got.UpdatedAt.Equal(now) {
				t.Errorf("endpoint version %d, status %s %q, updated %v; want version %d, active, updated now", got.Version, got.Status, got.DisabledReason, got.UpdatedAt, tc.version)
			}
			if stored := f.stored(t, got.ID); !reflect.DeepEqual(stored, got) {
				t.Errorf("stored\n%#v\nreturned\n%#v", stored, got)
			}
			if found, err := f.store.FindEndpointByURL(ctx, tenant, got.URL); err != nil || found.ID != got.ID {
				t.Errorf("the endpoint's URL %s does not lead to it: %v", got.URL, err)
			}
			signsWith := map[bool]signing.Secret{false: s.old, true: s.fresh}[tc.rotated || tc.created]
			if res.GeneratedSecret != nil {
				signsWith = *res.GeneratedSecret
			}
			if !f.opened(t, got, got.SecretCiphertext).Equal(signsWith) {
				t.Error("the endpoint does not sign with the expected secret")
			}
			if tc.prevKept != (got.PreviousSecretCiphertext != nil) {
				t.Errorf("previous secret kept: %v, want %v", got.PreviousSecretCiphertext != nil, tc.prevKept)
			}
			if tc.prevKept && (!f.opened(t, got, got.PreviousSecretCiphertext).Equal(s.old) || !got.PreviousSecretExpiresAt.Equal(now.Add(domain.SecretRotationGrace))) {
				t.Errorf("the previous secret is not the old one kept until now + %v (until %v)", domain.SecretRotationGrace, got.PreviousSecretExpiresAt)
			}
			if !tc.created && got.ID != s.ep.ID {
				t.Errorf("updated %s, want %s", got.ID, s.ep.ID)
			}
			if tc.challengeURL == newURL {
				if _, err := f.store.FindEndpointByURL(ctx, tenant, hookURL); !errors.Is(err, domain.ErrNotFound) {
					t.Errorf("the old URL still leads somewhere: %v", err)
				}
			}
		})
	}
}

func TestListEndpoints(t *testing.T) {
	t.Parallel()
	f := newFixture()
	a := f.endpoint(t, tenant, "https://example.com/a", secret(t), domain.StatusActive)
	f.endpoint(t, "tenant-b", "https://example.com/b", secret(t), domain.StatusActive)
	items, more, err := f.endpoints.List(context.Background(), tenant, 10, "")
	if err != nil || more || len(items) != 1 || items[0].ID != a.ID {
		t.Errorf("List = %v, %v, %v; want the tenant's one endpoint", items, more, err)
	}
}
