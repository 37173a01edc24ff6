// Package memstore holds in-memory fakes of the application's ports (shared/app), for fast
// tests of the layers that use them: Store (endpoints and replays, with the per-endpoint
// replay lock), SecretBox, Challenger and ReplayQueue.
//
// Store behaves as the DynamoDB adapters do (shared/store.Endpoints and store.Replays):
// the same errors for the same cases, the same fields kept and dropped. The behaviour suite
// in shared/dev/storetest runs against both, so the fake cannot drift from the real thing
// unnoticed.
package memstore

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/datajetty/webhooks/shared/domain"
)

// Store keeps endpoints, their URL claims and replay locks, and replays in memory. It is
// safe for concurrent use; the zero value is empty and ready.
type Store struct {
	mu        sync.Mutex
	endpoints map[key]domain.Endpoint
	claims    map[key]string // (tenant, url) → endpoint id
	locks     map[key]lock   // (tenant, endpoint id) → the endpoint's replay lock
	replays   map[key]domain.Replay
	calls     int
}

type key struct{ tenant, id string }

type lock struct {
	replayID string
	until    time.Time
}

// Calls reports how many port methods were called, so a test can show that a request
// was answered without touching the store.
func (s *Store) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// enter locks the store and counts the call; the caller must s.mu.Unlock.
func (s *Store) enter() {
	s.mu.Lock()
	s.calls++
	if s.endpoints == nil {
		s.endpoints, s.claims, s.locks, s.replays = map[key]domain.Endpoint{}, map[key]string{}, map[key]lock{}, map[key]domain.Replay{}
	}
}

// stored is how the DynamoDB adapter round-trips a time: UTC, no monotonic reading.
func stored(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Round(0)
}

func storedEndpoint(ep domain.Endpoint) domain.Endpoint {
	ep.Events = slices.Clone(ep.Events)
	ep.SecretCiphertext = slices.Clone(ep.SecretCiphertext)
	ep.PreviousSecretCiphertext = slices.Clone(ep.PreviousSecretCiphertext)
	ep.CreatedAt, ep.UpdatedAt = stored(ep.CreatedAt), stored(ep.UpdatedAt)
	ep.Watermark, ep.PreviousSecretExpiresAt = stored(ep.Watermark), stored(ep.PreviousSecretExpiresAt)
	return ep
}

func endpointNotFound(id string) error { return domain.NotFound("endpoint %s not found", id) }

func urlTaken() error {
	return domain.Conflict(domain.ReasonURLTaken, "an endpoint is already registered for this url")
}

// GetEndpoint loads one endpoint of the tenant; NotFound if absent.
func (s *Store) GetEndpoint(_ context.Context, tenantID, endpointID string) (domain.Endpoint, error) {
	s.enter()
	defer s.mu.Unlock()
	ep, ok := s.endpoints[key{tenantID, endpointID}]
	if !ok {
		return domain.Endpoint{}, endpointNotFound(endpointID)
	}
	return storedEndpoint(ep), nil
}

// FindEndpointByURL loads the tenant's endpoint that claims url; NotFound if none does.
func (s *Store) FindEndpointByURL(_ context.Context, tenantID, url string) (domain.Endpoint, error) {
	s.enter()
	defer s.mu.Unlock()
	ep, ok := s.endpoints[key{tenantID, s.claims[key{tenantID, url}]}]
	if !ok || ep.URL != url {
		return domain.Endpoint{}, domain.NotFound("no endpoint is registered for this url")
	}
	return storedEndpoint(ep), nil
}

// CreateEndpoint stores a new endpoint and claims its URL; a URL the tenant already
// registered is a Conflict with domain.ReasonURLTaken.
func (s *Store) CreateEndpoint(_ context.Context, ep domain.Endpoint) error {
	s.enter()
	defer s.mu.Unlock()
	if ep.TenantID == "" || ep.ID == "" || ep.URL == "" {
		return fmt.Errorf("create endpoint: tenant, id and url are required")
	}
	if _, taken := s.claims[key{ep.TenantID, ep.URL}]; taken {
		return urlTaken()
	}
	if _, exists := s.endpoints[key{ep.TenantID, ep.ID}]; exists {
		return fmt.Errorf("create endpoint %s: the id already exists", ep.ID)
	}
	s.endpoints[key{ep.TenantID, ep.ID}] = storedEndpoint(ep)
	s.claims[key{ep.TenantID, ep.URL}] = ep.ID
	return nil
}

// UpdateEndpoint replaces ep if its stored version is still expectedVersion, moving the URL
// claim when the URL changed (previousURL "" means it did not). As in DynamoDB, the
// delivery-owned watermark and the replay lock are kept as stored.
func (s *Store) UpdateEndpoint(_ context.Context, ep domain.Endpoint, expectedVersion int64, previousURL string) error {
	s.enter()
	defer s.mu.Unlock()
	if ep.TenantID == "" || ep.ID == "" || ep.URL == "" {
		return fmt.Errorf("update endpoint: tenant, id and url are required")
	}
	if ep.Version <= expectedVersion {
		return fmt.Errorf("update endpoint %s: new version %d must be greater than the expected version %d", ep.ID, ep.Version, expectedVersion)
	}
	k := key{ep.TenantID, ep.ID}
	cur, ok := s.endpoints[k]
	if !ok {
		return endpointNotFound(ep.ID)
	}
	if cur.Version != expectedVersion {
		return domain.Conflict(domain.ReasonVersionMismatch, "endpoint %s was changed by another request (expected version %d); reload it and try again", ep.ID, expectedVersion)
	}
	urlChanged := previousURL != "" && previousURL != ep.URL
	if urlChanged {
		if _, taken := s.claims[key{ep.TenantID, ep.URL}]; taken {
			return urlTaken()
		}
		if s.claims[key{ep.TenantID, previousURL}] == ep.ID {
			delete(s.claims, key{ep.TenantID, previousURL})
		}
		s.claims[key{ep.TenantID, ep.URL}] = ep.ID
	}
	next := storedEndpoint(ep)
	next.Watermark = cur.Watermark
	s.endpoints[k] = next
	return nil
}

// ListEndpoints returns up to limit of the tenant's endpoints in id order after afterID,
// and whether more follow. Like the DynamoDB adapter it leaves out the secret ciphertexts.
func (s *Store) ListEndpoints(_ context.Context, tenantID string, limit int, afterID string) ([]domain.Endpoint, bool, error) {
	s.enter()
	defer s.mu.Unlock()
	if limit <= 0 {
		return nil, false, fmt.Errorf("list endpoints: limit %d must be positive", limit)
	}
	var all []domain.Endpoint
	for k, ep := range s.endpoints {
		if k.tenant == tenantID && ep.ID > afterID {
			ep = storedEndpoint(ep)
			ep.SecretCiphertext, ep.PreviousSecretCiphertext = nil, nil
			all = append(all, ep)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	if len(all) > limit {
		return all[:limit], true, nil
	}
	return all, false, nil
}

// DeleteEndpoint deletes ep and frees its URL claim if its stored version is still
// expectedVersion (else a Conflict with ReasonVersionMismatch; NotFound if gone). Its
// replay lock goes with it, as it lives on the endpoint item.
func (s *Store) DeleteEndpoint(_ context.Context, ep domain.Endpoint, expectedVersion int64) error {
	s.enter()
	defer s.mu.Unlock()
	if ep.TenantID == "" || ep.ID == "" || ep.URL == "" {
		return fmt.Errorf("delete endpoint: tenant, id and url are required")
	}
	k := key{ep.TenantID, ep.ID}
	cur, ok := s.endpoints[k]
	if !ok {
		return endpointNotFound(ep.ID)
	}
	if cur.Version != expectedVersion {
		return domain.Conflict(domain.ReasonVersionMismatch, "endpoint %s was changed by another request (expected version %d); reload it and try again", ep.ID, expectedVersion)
	}
	if owner, claimed := s.claims[key{ep.TenantID, ep.URL}]; claimed && owner != ep.ID {
		return fmt.Errorf("delete endpoint %s: the claim of its url belongs to another endpoint", ep.ID)
	}
	delete(s.claims, key{ep.TenantID, ep.URL})
	delete(s.endpoints, k)
	delete(s.locks, k)
	return nil
}

// Disable marks the endpoint disabled with reason and detail, bumping its version and
// setting updated_at, unless it already is disabled (then it is returned unchanged and
// changed is false). NotFound if absent.
func (s *Store) Disable(_ context.Context, tenantID, endpointID string, reason domain.DisabledReason, detail string, now time.Time) (domain.Endpoint, bool, error) {
	s.enter()
	defer s.mu.Unlock()
	k := key{tenantID, endpointID}
	ep, ok := s.endpoints[k]
	if !ok {
		return domain.Endpoint{}, false, endpointNotFound(endpointID)
	}
	if ep.Status == domain.StatusDisabled {
		return storedEndpoint(ep), false, nil
	}
	ep.Status, ep.DisabledReason, ep.DisabledDetail = domain.StatusDisabled, reason, detail
	ep.Version++
	ep.UpdatedAt = stored(now)
	s.endpoints[k] = ep
	return storedEndpoint(ep), true, nil
}

func replayNotFound(id string) error { return domain.NotFound("replay %s not found", id) }

// StartReplay takes the endpoint's replay lock until leaseUntil and stores r. The endpoint
// must exist (else NotFound), be active (else a Conflict with ReasonEndpointDisabled) and
// hold no lock that lasts past now (else a Conflict with ReasonReplayInProgress). Lock
// times compare in whole seconds, as DynamoDB stores them.
func (s *Store) StartReplay(_ context.Context, r domain.Replay, leaseUntil, now time.Time) error {
	s.enter()
	defer s.mu.Unlock()
	if r.TenantID == "" || r.ID == "" || r.EndpointID == "" {
		return fmt.Errorf("start replay: tenant, id and endpoint id are required")
	}
	ek := key{r.TenantID, r.EndpointID}
	ep, ok := s.endpoints[ek]
	switch l, locked := s.locks[ek]; {
	case !ok:
		return endpointNotFound(r.EndpointID)
	case ep.Status != domain.StatusActive:
		return domain.Conflict(domain.ReasonEndpointDisabled, "endpoint %s is disabled; re-enable it before replaying", r.EndpointID)
	case locked && l.until.Unix() >= now.Unix():
		return domain.Conflict(domain.ReasonReplayInProgress, "a replay of endpoint %s is already in progress", r.EndpointID)
	}
	if _, exists := s.replays[key{r.TenantID, r.ID}]; exists {
		return fmt.Errorf("start replay %s: the replay id already exists", r.ID)
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = now
	}
	if r.Status == "" {
		r.Status = domain.ReplayStarted
	}
	r.UpdatedAt = now
	s.locks[ek] = lock{replayID: r.ID, until: leaseUntil}
	s.replays[key{r.TenantID, r.ID}] = storedReplay(r)
	return nil
}

func storedReplay(r domain.Replay) domain.Replay {
	r.From, r.Until = stored(r.From), stored(r.Until)
	r.CreatedAt, r.UpdatedAt = stored(r.CreatedAt), stored(r.UpdatedAt)
	return r
}

// GetReplay loads one replay of the tenant; NotFound if absent.
func (s *Store) GetReplay(_ context.Context, tenantID, replayID string) (domain.Replay, error) {
	s.enter()
	defer s.mu.Unlock()
	r, ok := s.replays[key{tenantID, replayID}]
	if !ok {
		return domain.Replay{}, replayNotFound(replayID)
	}
	return r, nil
}

// AbortReplay marks r failed with reason and releases the endpoint's lock if r holds it.
func (s *Store) AbortReplay(ctx context.Context, r domain.Replay, reason string, now time.Time) error {
	r.Status = domain.ReplayFailed
	r.Error = reason
	return s.FinishReplay(ctx, r, now)
}

// UpdateProgress saves r's status, enqueued count, cursor and error and renews the
// endpoint's lock until leaseUntil, both or neither: NotFound for an unknown replay, an
// error wrapping domain.ErrEndpointDeleted when the endpoint is gone, a Conflict with
// ReasonReplayInProgress when r no longer holds the lock.
func (s *Store) UpdateProgress(_ context.Context, r domain.Replay, leaseUntil, now time.Time) error {
	s.enter()
	defer s.mu.Unlock()
	rk, ek := key{r.TenantID, r.ID}, key{r.TenantID, r.EndpointID}
	cur, ok := s.replays[rk]
	if !ok {
		return replayNotFound(r.ID)
	}
	if _, exists := s.endpoints[ek]; !exists {
		return fmt.Errorf("update replay %s: endpoint %s: %w", r.ID, r.EndpointID, domain.ErrEndpointDeleted)
	}
	if l, locked := s.locks[ek]; !locked || l.replayID != r.ID {
		return domain.Conflict(domain.ReasonReplayInProgress, "replay %s no longer holds the replay lock of endpoint %s", r.ID, r.EndpointID)
	}
	s.replays[rk] = progressed(cur, r, now)
	s.locks[ek] = lock{replayID: r.ID, until: leaseUntil}
	return nil
}

// FinishReplay saves r's final state (completed or failed; NotFound for an unknown replay)
// and releases the endpoint's lock if r still holds it.
func (s *Store) FinishReplay(_ context.Context, r domain.Replay, now time.Time) error {
	s.enter()
	defer s.mu.Unlock()
	if r.Status != domain.ReplayCompleted && r.Status != domain.ReplayFailed {
		return fmt.Errorf("finish replay %s: status %q is not final", r.ID, r.Status)
	}
	rk, ek := key{r.TenantID, r.ID}, key{r.TenantID, r.EndpointID}
	cur, ok := s.replays[rk]
	if !ok {
		return replayNotFound(r.ID)
	}
	s.replays[rk] = progressed(cur, r, now)
	if l, locked := s.locks[ek]; locked && l.replayID == r.ID {
		delete(s.locks, ek)
	}
	return nil
}

// progressed is cur with r's mutable fields, as the adapter's update writes them.
func progressed(cur, r domain.Replay, now time.Time) domain.Replay {
	cur.Status, cur.Enqueued, cur.Cursor, cur.Error = r.Status, r.Enqueued, r.Cursor, r.Error
	cur.UpdatedAt = stored(now)
	return cur
}
