package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/eventtypes"
	"github.com/datajetty/webhooks/shared/signing"
)

// Endpoints registers and lists tenants' webhook endpoints.
type Endpoints struct {
	Store      EndpointStore
	Secrets    SecretBox
	Challenger Challenger
	URLPolicy  domain.URLPolicy
	// EventTypes is the catalog subscription patterns must match (nil: the built-in one).
	EventTypes *eventtypes.Catalog
	// Notifier publishes webhooks.endpoint.disabled when the tenant pauses an endpoint (nil:
	// none; the disable function always has one).
	Notifier Notifier
	// Logger logs a notification that could not be published (nil: slog.Default()).
	Logger *slog.Logger
	Now    func() time.Time
}

func (s *Endpoints) catalog() *eventtypes.Catalog {
	if s.EventTypes == nil {
		return eventtypes.Builtin()
	}
	return s.EventTypes
}

// RegisterInput is a validated-as-JSON POST /endpoints body; the fields are checked here.
type RegisterInput struct {
	URL        string
	Events     []string
	Secret     string // "" = keep (update) or generate (create)
	EndpointID string // "" = find by URL or create
	Version    *int64 // nil = no optimistic check requested by the client
}

// RegisterResult is the outcome of a create or update.
type RegisterResult struct {
	Endpoint domain.Endpoint
	Created  bool
	// GeneratedSecret is set only when the service made up the secret on create: the one
	// and only time a secret is shown.
	GeneratedSecret *signing.Secret
	// SecretRotated: this update replaced the secret (the previous one signs during its
	// grace period).
	SecretRotated bool
}

// Register creates or updates an endpoint. The challenge handshake runs before anything is
// stored whenever the destination or the secret changes (or a disabled endpoint is
// re-enabled), so an unproven URL never receives deliveries.
func (s *Endpoints) Register(ctx context.Context, tenantID string, in RegisterInput) (RegisterResult, error) {
	url, err := domain.ValidateURL(in.URL, s.URLPolicy)
	if err != nil {
		return RegisterResult{}, err
	}
	events, err := domain.ValidateEvents(in.Events)
	if err != nil {
		return RegisterResult{}, err
	}
	if err := s.catalog().CheckPatterns(events); err != nil {
		return RegisterResult{}, err
	}
	var newSecret *signing.Secret
	if in.Secret != "" {
		sec, err := signing.ParseSecret(in.Secret)
		if err != nil {
			return RegisterResult{}, domain.Invalid("secret", "secret is invalid: %v", err)
		}
		newSecret = &sec
	}
	if in.EndpointID != "" && !domain.ValidID(domain.EndpointIDPrefix, in.EndpointID) {
		return RegisterResult{}, domain.NotFound("endpoint %s not found", in.EndpointID)
	}
	if in.Version != nil && *in.Version < 1 {
		return RegisterResult{}, domain.Invalid("version", "version must be a positive integer")
	}

	existing, err := s.find(ctx, tenantID, in.EndpointID, url)
	switch {
	case errors.Is(err, domain.ErrNotFound) && in.EndpointID == "":
		if in.Version != nil {
			return RegisterResult{}, domain.Conflict(domain.ReasonVersionMismatch, "version %d given, but no endpoint is registered for this url", *in.Version)
		}
		return s.create(ctx, tenantID, url, events, newSecret)
	case err != nil:
		return RegisterResult{}, err
	}
	return s.update(ctx, existing, in.Version, url, events, newSecret)
}

func (s *Endpoints) find(ctx context.Context, tenantID, endpointID, url string) (domain.Endpoint, error) {
	if endpointID != "" {
		ep, err := s.Store.GetEndpoint(ctx, tenantID, endpointID)
		if err != nil {
			return ep, fmt.Errorf("load endpoint %s: %w", endpointID, err)
		}
		return ep, nil
	}
	ep, err := s.Store.FindEndpointByURL(ctx, tenantID, url)
	if err != nil {
		return ep, fmt.Errorf("find endpoint by url: %w", err)
	}
	return ep, nil
}

func (s *Endpoints) create(ctx context.Context, tenantID, url string, events []string, secret *signing.Secret) (RegisterResult, error) {
	var generated *signing.Secret
	if secret == nil {
		g, err := signing.GenerateSecret()
		if err != nil {
			return RegisterResult{}, fmt.Errorf("generate secret: %w", err)
		}
		secret, generated = &g, &g
	}
	if err := s.Challenger.Verify(ctx, url, *secret); err != nil {
		return RegisterResult{}, handshakeError(err)
	}
	now := s.Now().UTC()
	ep := domain.Endpoint{
		TenantID:  tenantID,
		ID:        domain.NewID(domain.EndpointIDPrefix),
		URL:       url,
		Events:    events,
		Status:    domain.StatusActive,
		Version:   1,
		CreatedAt: now,
		UpdatedAt: now,
	}
	ct, err := s.Secrets.Seal(ctx, tenantID, ep.ID, *secret)
	if err != nil {
		return RegisterResult{}, fmt.Errorf("seal secret: %w", err)
	}
	ep.SecretCiphertext = ct
	if err := s.Store.CreateEndpoint(ctx, ep); err != nil {
		return RegisterResult{}, fmt.Errorf("create endpoint: %w", err)
	}
	return RegisterResult{Endpoint: ep, Created: true, GeneratedSecret: generated}, nil
}

func (s *Endpoints) update(ctx context.Context, ep domain.Endpoint, version *int64, url string, events []string, secret *signing.Secret) (RegisterResult, error) {
	if version != nil && *version != ep.Version {
		return RegisterResult{}, domain.Conflict(domain.ReasonVersionMismatch, "endpoint %s is at version %d, not %d; reload it and retry", ep.ID, ep.Version, *version)
	}
	now := s.Now().UTC()
	urlChanged := url != ep.URL
	secretChanged := false
	var current *signing.Secret // the secret the endpoint will sign with, once known in clear
	if secret != nil {
		old, err := s.Secrets.Open(ctx, ep.TenantID, ep.ID, ep.SecretCiphertext)
		if err != nil {
			return RegisterResult{}, fmt.Errorf("open secret of %s: %w", ep.ID, err)
		}
		secretChanged = !old.Equal(*secret)
		current = secret
		if secretChanged {
			// The replaced secret keeps signing through the grace period so receivers
			// can switch their verifier without rejecting deliveries.
			ep.PreviousSecretCiphertext = ep.SecretCiphertext
			ep.PreviousSecretExpiresAt = now.Add(domain.SecretRotationGrace)
			ct, err := s.Secrets.Seal(ctx, ep.TenantID, ep.ID, *secret)
			if err != nil {
				return RegisterResult{}, fmt.Errorf("seal secret: %w", err)
			}
			ep.SecretCiphertext = ct
		}
	}
	reenable := ep.Status != domain.StatusActive
	if urlChanged || secretChanged || reenable {
		if current == nil {
			old, err := s.Secrets.Open(ctx, ep.TenantID, ep.ID, ep.SecretCiphertext)
			if err != nil {
				return RegisterResult{}, fmt.Errorf("open secret of %s: %w", ep.ID, err)
			}
			current = &old
		}
		if err := s.Challenger.Verify(ctx, url, *current); err != nil {
			return RegisterResult{}, handshakeError(err)
		}
	}
	previousURL := ep.URL
	expected := ep.Version
	ep.URL = url
	ep.Events = events
	ep.Status = domain.StatusActive
	ep.DisabledReason, ep.DisabledDetail = "", ""
	ep.Version++
	ep.UpdatedAt = now
	if err := s.Store.UpdateEndpoint(ctx, ep, expected, previousURL); err != nil {
		return RegisterResult{}, fmt.Errorf("update endpoint %s: %w", ep.ID, err)
	}
	return RegisterResult{Endpoint: ep, SecretRotated: secretChanged}, nil
}

// handshakeError turns a failed challenge into the client's 400, keeping the handshake's
// own client-safe message (it names the failure kind and never echoes secrets or bodies).
// A cancelled request is not the endpoint's fault and stays an internal error.
func handshakeError(err error) error {
	if domain.KindOf(err) != domain.KindInternal || errors.Is(err, context.Canceled) {
		return err
	}
	return &domain.Error{Kind: domain.KindInvalid, Field: "url", Reason: domain.ReasonHandshakeFailed, Msg: err.Error(), Err: err}
}

// List returns a page of the tenant's endpoints after afterID and whether more follow.
func (s *Endpoints) List(ctx context.Context, tenantID string, limit int, afterID string) ([]domain.Endpoint, bool, error) {
	items, more, err := s.Store.ListEndpoints(ctx, tenantID, limit, afterID)
	if err != nil {
		return nil, false, fmt.Errorf("list endpoints: %w", err)
	}
	return items, more, nil
}

// Get returns one of the tenant's endpoints; another tenant's, or a malformed id, is not
// found.
func (s *Endpoints) Get(ctx context.Context, tenantID, endpointID string) (domain.Endpoint, error) {
	if !domain.ValidID(domain.EndpointIDPrefix, endpointID) {
		return domain.Endpoint{}, domain.NotFound("endpoint %s not found", endpointID)
	}
	ep, err := s.Store.GetEndpoint(ctx, tenantID, endpointID)
	if err != nil {
		return domain.Endpoint{}, fmt.Errorf("load endpoint %s: %w", endpointID, err)
	}
	return ep, nil
}

// deleteAttempts bounds the retries of a delete that lost a race with a concurrent change
// when the client asked for no version check (the delivery side bumps the version when it
// disables an endpoint, for instance).
const deleteAttempts = 3

// Delete deletes one of the tenant's endpoints and frees its URL. With version, the stored
// version must equal it (else a Conflict with domain.ReasonVersionMismatch); without, a
// concurrent change is read again and the delete retried.
func (s *Endpoints) Delete(ctx context.Context, tenantID, endpointID string, version *int64) error {
	if version != nil && *version < 1 {
		return domain.Invalid("version", "version must be a positive integer")
	}
	for attempt := 1; ; attempt++ {
		ep, err := s.Get(ctx, tenantID, endpointID)
		if err != nil {
			return err
		}
		if version != nil && *version != ep.Version {
			return domain.Conflict(domain.ReasonVersionMismatch, "endpoint %s is at version %d, not %d; reload it and retry", ep.ID, ep.Version, *version)
		}
		err = s.Store.DeleteEndpoint(ctx, ep, ep.Version)
		if err == nil {
			return nil
		}
		if version == nil && attempt < deleteAttempts && errors.Is(err, domain.ErrConflict) {
			continue
		}
		return fmt.Errorf("delete endpoint %s: %w", endpointID, err)
	}
}

// tenantDisabledDetail is the disabled_detail of an endpoint the tenant paused.
const tenantDisabledDetail = "paused by the tenant"

// Disable pauses one of the tenant's endpoints: deliveries are skipped (and recorded as
// such) until it is enabled again; stored events stay for the retention and the watermark
// stays where it is. An endpoint already disabled, for whatever reason, is returned as it
// is. changed reports whether this call disabled it.
func (s *Endpoints) Disable(ctx context.Context, tenantID, endpointID string) (ep domain.Endpoint, changed bool, err error) {
	if !domain.ValidID(domain.EndpointIDPrefix, endpointID) {
		return domain.Endpoint{}, false, domain.NotFound("endpoint %s not found", endpointID)
	}
	now := s.Now().UTC()
	ep, changed, err = s.Store.Disable(ctx, tenantID, endpointID, domain.DisabledByTenant, tenantDisabledDetail, now)
	if err != nil {
		return domain.Endpoint{}, false, fmt.Errorf("disable endpoint %s: %w", endpointID, err)
	}
	if changed && s.Notifier != nil {
		// Once, by the call that disabled it. The endpoint is disabled whatever happens
		// here, so a failed publish is logged rather than failing the request (a retry
		// would find it already disabled and publish nothing either).
		if err := s.Notifier.Publish(ctx, domain.EndpointDisabledEvent(ep, domain.DisabledByTenant, tenantDisabledDetail, nil, now)); err != nil {
			logger := s.Logger
			if logger == nil {
				logger = slog.Default()
			}
			logger.ErrorContext(ctx, "publish notification", "type", domain.TypeEndpointDisabled, "tenant_id", tenantID, "endpoint_id", endpointID, "error", err)
		}
	}
	return ep, changed, nil
}

// Enable makes a disabled endpoint of the tenant active again, whatever disabled it, after
// the challenge handshake proves the URL answers (a failed handshake changes nothing and is
// the client's 400, field url). An active endpoint is returned as it is, without a
// handshake.
func (s *Endpoints) Enable(ctx context.Context, tenantID, endpointID string) (domain.Endpoint, error) {
	ep, err := s.Get(ctx, tenantID, endpointID)
	if err != nil || ep.Status == domain.StatusActive {
		return ep, err
	}
	secret, err := s.Secrets.Open(ctx, ep.TenantID, ep.ID, ep.SecretCiphertext)
	if err != nil {
		return domain.Endpoint{}, fmt.Errorf("open secret of %s: %w", ep.ID, err)
	}
	if err := s.Challenger.Verify(ctx, ep.URL, secret); err != nil {
		return domain.Endpoint{}, handshakeError(err)
	}
	expected := ep.Version
	ep.Status, ep.DisabledReason, ep.DisabledDetail = domain.StatusActive, "", ""
	ep.Version++
	ep.UpdatedAt = s.Now().UTC()
	if err := s.Store.UpdateEndpoint(ctx, ep, expected, ""); err != nil {
		return domain.Endpoint{}, fmt.Errorf("enable endpoint %s: %w", ep.ID, err)
	}
	return ep, nil
}
