package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/datajetty/webhooks/shared/dev/testenv"
	"github.com/datajetty/webhooks/shared/domain"
)

func newEndpoint(tenant, url string) domain.Endpoint {
	return domain.Endpoint{
		TenantID:         tenant,
		ID:               domain.NewID(domain.EndpointIDPrefix),
		URL:              url,
		Events:           []string{"export.*", "import.done"},
		Status:           domain.StatusActive,
		Version:          1,
		CreatedAt:        t0,
		UpdatedAt:        t0,
		SecretCiphertext: []byte{1, 2, 3},
	}
}

// createEndpoint stores a new active endpoint of tenant-a (newEndpoint) and returns it.
func createEndpoint(t *testing.T, s *Endpoints) domain.Endpoint {
	t.Helper()
	ep := newEndpoint("tenant-a", "https://example.com/hook")
	if err := s.CreateEndpoint(context.Background(), ep); err != nil {
		t.Fatal(err)
	}
	return ep
}

func newEndpoints(t *testing.T) *Endpoints {
	db, env := newStack(t)
	return NewEndpoints(db, env["WEBHOOKS_ENDPOINTS_TABLE"])
}

func TestEndpointCreateGetFind(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEndpoints(t)

	ep := newEndpoint("tenant-a", "https://example.com/hook")
	ep.Watermark = t0.Add(time.Minute)
	ep.PreviousSecretCiphertext = []byte{4, 5}
	ep.PreviousSecretExpiresAt = t0.Add(24 * time.Hour)
	if err := s.CreateEndpoint(ctx, ep); err != nil {
		t.Fatal(err)
	}

	got, err := s.GetEndpoint(ctx, "tenant-a", ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, ep) {
		t.Errorf("GetEndpoint =\n%#v\nwant\n%#v", got, ep)
	}
	found, err := s.FindEndpointByURL(ctx, "tenant-a", ep.URL)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(found, ep) {
		t.Errorf("FindEndpointByURL =\n%#v\nwant\n%#v", found, ep)
	}

	_, err = s.GetEndpoint(ctx, "tenant-a", domain.NewID(domain.EndpointIDPrefix))
	wantKind(t, err, domain.ErrNotFound)
	_, err = s.FindEndpointByURL(ctx, "tenant-a", "https://example.com/other")
	wantKind(t, err, domain.ErrNotFound)
}

func TestEndpointCreateSameURLConflicts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEndpoints(t)

	first := newEndpoint("tenant-a", "https://example.com/hook")
	if err := s.CreateEndpoint(ctx, first); err != nil {
		t.Fatal(err)
	}
	second := newEndpoint("tenant-a", "https://example.com/hook")
	wantReason(t, s.CreateEndpoint(ctx, second), domain.ReasonURLTaken)
	// The failed transaction wrote nothing.
	_, err := s.GetEndpoint(ctx, "tenant-a", second.ID)
	wantKind(t, err, domain.ErrNotFound)

	// URLs are unique per tenant only.
	if err := s.CreateEndpoint(ctx, newEndpoint("tenant-b", "https://example.com/hook")); err != nil {
		t.Fatalf("another tenant registering the same url: %v", err)
	}
}

func TestEndpointUpdate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEndpoints(t)

	ep := newEndpoint("tenant-a", "https://example.com/v1")
	ep.Watermark = t0
	ep.PreviousSecretCiphertext = []byte{9}
	ep.PreviousSecretExpiresAt = t0.Add(time.Hour)
	if err := s.CreateEndpoint(ctx, ep); err != nil {
		t.Fatal(err)
	}
	other := newEndpoint("tenant-a", "https://example.com/other")
	if err := s.CreateEndpoint(ctx, other); err != nil {
		t.Fatal(err)
	}

	t.Run("same url, optional attributes cleared", func(t *testing.T) {
		next := ep
		next.Version = 2
		next.Events = []string{"*"}
		next.Status = domain.StatusDisabled
		next.DisabledReason, next.DisabledDetail = domain.DisabledGone, "410 Gone"
		next.Watermark = time.Time{}
		next.PreviousSecretCiphertext = nil
		next.PreviousSecretExpiresAt = time.Time{}
		next.UpdatedAt = t0.Add(time.Second)
		if err := s.UpdateEndpoint(ctx, next, 1, ep.URL); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetEndpoint(ctx, "tenant-a", ep.ID)
		if err != nil {
			t.Fatal(err)
		}
		// The watermark belongs to the delivery side: an update leaves it as stored.
		want := next
		want.Watermark = ep.Watermark
		if !reflect.DeepEqual(got, want) {
			t.Errorf("after update =\n%#v\nwant\n%#v", got, want)
		}
		ep = want
	})

	t.Run("stale version", func(t *testing.T) {
		stale := ep
		stale.Version = 2
		wantReason(t, s.UpdateEndpoint(ctx, stale, 1, ep.URL), domain.ReasonVersionMismatch)
	})

	t.Run("unknown endpoint", func(t *testing.T) {
		ghost := newEndpoint("tenant-a", "https://example.com/ghost")
		ghost.Version = 2
		wantKind(t, s.UpdateEndpoint(ctx, ghost, 1, ghost.URL), domain.ErrNotFound)
	})

	t.Run("version must grow", func(t *testing.T) {
		if err := s.UpdateEndpoint(ctx, ep, ep.Version, ep.URL); err == nil || domain.KindOf(err) != domain.KindInternal {
			t.Fatalf("update without a new version: error = %v, want an internal error", err)
		}
	})

	t.Run("url taken by another endpoint", func(t *testing.T) {
		next := ep
		next.Version = ep.Version + 1
		next.URL = other.URL
		wantReason(t, s.UpdateEndpoint(ctx, next, ep.Version, ep.URL), domain.ReasonURLTaken)
		got, err := s.GetEndpoint(ctx, "tenant-a", ep.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.URL != ep.URL || got.Version != ep.Version {
			t.Errorf("a refused update changed the endpoint: %s v%d", got.URL, got.Version)
		}
	})

	t.Run("url change moves the claim", func(t *testing.T) {
		next := ep
		next.Version = ep.Version + 1
		next.URL = "https://example.com/v2"
		if err := s.UpdateEndpoint(ctx, next, ep.Version, ep.URL); err != nil {
			t.Fatal(err)
		}
		found, err := s.FindEndpointByURL(ctx, "tenant-a", next.URL)
		if err != nil || found.ID != ep.ID {
			t.Fatalf("FindEndpointByURL(new) = %s, %v; want %s", found.ID, err, ep.ID)
		}
		_, err = s.FindEndpointByURL(ctx, "tenant-a", ep.URL)
		wantKind(t, err, domain.ErrNotFound)
		// The old URL is free again: a new endpoint may claim it.
		if err := s.CreateEndpoint(ctx, newEndpoint("tenant-a", ep.URL)); err != nil {
			t.Fatalf("registering the released url: %v", err)
		}
		wantReason(t, s.CreateEndpoint(ctx, newEndpoint("tenant-a", next.URL)), domain.ReasonURLTaken)
		ep = next
	})
}

func TestEndpointUpdateKeepsReplayLock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, env := newStack(t)
	s := NewEndpoints(db, env["WEBHOOKS_ENDPOINTS_TABLE"])
	replays := NewReplays(db, env["WEBHOOKS_REPLAYS_TABLE"], env["WEBHOOKS_ENDPOINTS_TABLE"])

	ep := createEndpoint(t, s)
	r := newReplay(ep)
	if err := replays.StartReplay(ctx, r, t0.Add(domain.ReplayLease), t0); err != nil {
		t.Fatal(err)
	}
	next := ep
	next.Version = 2
	next.Events = []string{"*"}
	if err := s.UpdateEndpoint(ctx, next, 1, ep.URL); err != nil {
		t.Fatal(err)
	}
	second := newReplay(ep)
	wantReason(t, replays.StartReplay(ctx, second, t0.Add(domain.ReplayLease), t0.Add(time.Minute)), domain.ReasonReplayInProgress)
}

func TestEndpointConcurrentUpdatesOneWins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client, env := newStack(t)
	s := NewEndpoints(client, env["WEBHOOKS_ENDPOINTS_TABLE"])

	ep := createEndpoint(t, s)
	const writers = 10
	errs := make([]error, writers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := ep
			next.Version = 2
			next.Events = []string{fmt.Sprintf("writer.n%d", i)}
			<-start
			errs[i] = s.UpdateEndpoint(ctx, next, 1, ep.URL)
		}()
	}
	close(start)
	wg.Wait()

	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Errorf("writers %d and %d both succeeded", winner, i)
			}
			winner = i
		default:
			wantReason(t, err, domain.ReasonVersionMismatch)
		}
	}
	if winner < 0 {
		t.Fatal("no writer succeeded")
	}
	got, err := s.GetEndpoint(ctx, "tenant-a", ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("writer.n%d", winner); got.Version != 2 || len(got.Events) != 1 || got.Events[0] != want {
		t.Errorf("stored v%d %v, want v2 [%s]", got.Version, got.Events, want)
	}
}

func TestEndpointListPagination(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEndpoints(t)

	const total = 160
	want := make([]string, 0, total)
	for i := range total {
		ep := newEndpoint("tenant-a", fmt.Sprintf("https://example.com/hook/%d", i))
		if err := s.CreateEndpoint(ctx, ep); err != nil {
			t.Fatal(err)
		}
		want = append(want, ep.ID)
	}
	// Another tenant's endpoints must not show up.
	if err := s.CreateEndpoint(ctx, newEndpoint("tenant-b", "https://example.com/b")); err != nil {
		t.Fatal(err)
	}
	sort.Strings(want)

	for _, limit := range []int{50, 80, 160, 500} {
		t.Run(fmt.Sprint("limit=", limit), func(t *testing.T) {
			var got []string
			after := ""
			for page := 0; ; page++ {
				eps, more, err := s.ListEndpoints(ctx, "tenant-a", limit, after)
				if err != nil {
					t.Fatal(err)
				}
				if len(eps) == 0 {
					t.Fatalf("page %d is empty", page)
				}
				if len(eps) > limit {
					t.Fatalf("page %d has %d endpoints, limit %d", page, len(eps), limit)
				}
				for _, ep := range eps {
					if ep.TenantID != "tenant-a" || ep.URL == "" || ep.Version != 1 || len(ep.Events) != 2 {
						t.Fatalf("listed endpoint is incomplete: %#v", ep)
					}
					if ep.SecretCiphertext != nil {
						t.Fatalf("listing read the secret ciphertext of %s", ep.ID)
					}
					got = append(got, ep.ID)
				}
				lastPage := len(got) == total
				if more == lastPage {
					t.Fatalf("page %d: more = %v after %d of %d endpoints", page, more, len(got), total)
				}
				if !more {
					break
				}
				after = eps[len(eps)-1].ID
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("listed %d ids (with duplicates or gaps); want the %d created, in id order", len(got), len(want))
			}
		})
	}

	t.Run("bad limit", func(t *testing.T) {
		if _, _, err := s.ListEndpoints(ctx, "tenant-a", 0, ""); err == nil {
			t.Error("limit 0 accepted")
		}
	})
	t.Run("empty tenant", func(t *testing.T) {
		eps, more, err := s.ListEndpoints(ctx, "tenant-c", 10, "")
		if err != nil || len(eps) != 0 || more {
			t.Errorf("ListEndpoints(tenant-c) = %d endpoints, more %v, %v; want none", len(eps), more, err)
		}
	})
}

func TestEndpointTenantIsolation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEndpoints(t)

	ep := createEndpoint(t, s)
	_, err := s.GetEndpoint(ctx, "tenant-b", ep.ID)
	wantKind(t, err, domain.ErrNotFound)
	_, err = s.FindEndpointByURL(ctx, "tenant-b", ep.URL)
	wantKind(t, err, domain.ErrNotFound)
	eps, more, err := s.ListEndpoints(ctx, "tenant-b", 10, "")
	if err != nil || len(eps) != 0 || more {
		t.Errorf("tenant-b lists %d endpoints (more %v, %v); want none", len(eps), more, err)
	}
	// Tenant B cannot overwrite A's endpoint by naming its id.
	hijack := ep
	hijack.TenantID = "tenant-b"
	hijack.Version = 2
	wantKind(t, s.UpdateEndpoint(ctx, hijack, 1, ep.URL), domain.ErrNotFound)
}

// TestTransactionCancellationReasons pins down what the main tests rely on: a cancelled
// transaction reports one reason per item, so the store classifies failures without reads.
func TestTransactionCancellationReasons(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEndpoints(t)

	ep := createEndpoint(t, s)
	_, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{ConditionCheck: &types.ConditionCheck{TableName: &s.table, Key: itemKey("tenant-a", endpointSK(ep.ID)), ConditionExpression: aws.String("attribute_not_exists(sk)"),
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld}},
		{ConditionCheck: &types.ConditionCheck{TableName: &s.table, Key: itemKey("tenant-a", "nothing"), ConditionExpression: aws.String("attribute_not_exists(sk)")}},
	}})
	c, ok := cancelled(err)
	if !ok || !c.complete(2) || !c.conditionFailed(0) || c.code(1) != codeNone {
		t.Fatalf("cancellation = %+v (%v), want [ConditionalCheckFailed None]", c.reasons, err)
	}
	if got, err := decodeEndpoint(c.item(0)); err != nil || got.ID != ep.ID {
		t.Fatalf("the failed item did not come back with its reason (ALL_OLD): %v, %v", got.ID, err)
	}
}

// TestEndpointCancellationWithoutReasons covers the fallback for a cancellation that comes
// without per-item reasons: the store reads the items to classify the failure.
func TestEndpointCancellationWithoutReasons(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, env := newStack(t)
	table := env["WEBHOOKS_ENDPOINTS_TABLE"]
	seed := NewEndpoints(db, table)
	s := NewEndpoints(bareErrors(t), table)

	ep := newEndpoint("tenant-a", "https://example.com/hook")
	other := newEndpoint("tenant-a", "https://example.com/other")
	for _, e := range []domain.Endpoint{ep, other} {
		if err := seed.CreateEndpoint(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	wantReason(t, s.CreateEndpoint(ctx, newEndpoint("tenant-a", ep.URL)), domain.ReasonURLTaken)

	stale := ep
	stale.Version = 3
	wantReason(t, s.UpdateEndpoint(ctx, stale, 2, ep.URL), domain.ReasonVersionMismatch)

	ghost := newEndpoint("tenant-a", "https://example.com/ghost")
	ghost.Version = 2
	wantKind(t, s.UpdateEndpoint(ctx, ghost, 1, ghost.URL), domain.ErrNotFound)

	moved := ep
	moved.Version = 2
	moved.URL = other.URL
	wantReason(t, s.UpdateEndpoint(ctx, moved, 1, ep.URL), domain.ReasonURLTaken)

	wantReason(t, s.DeleteEndpoint(ctx, ep, 7), domain.ReasonVersionMismatch)
	wantKind(t, s.DeleteEndpoint(ctx, ghost, 1), domain.ErrNotFound)
}

// TestEndpointDelete: the endpoint and its URL claim go in one transaction, under the
// version check; the URL is free at once; another tenant's endpoint of the same id and URL
// is untouched.
func TestEndpointDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEndpoints(t)
	ep := newEndpoint("tenant-a", "https://example.com/hook")
	twin := ep
	twin.TenantID = "tenant-b"
	for _, e := range []domain.Endpoint{ep, twin} {
		if err := s.CreateEndpoint(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	wantReason(t, s.DeleteEndpoint(ctx, ep, 2), domain.ReasonVersionMismatch)
	if err := s.DeleteEndpoint(ctx, ep, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetEndpoint(ctx, "tenant-a", ep.ID); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("GetEndpoint after delete: %v", err)
	}
	if claim, err := s.getClaim(ctx, "tenant-a", ep.URL); err != nil || claim != nil {
		t.Fatalf("the URL claim survived the delete: %+v, %v", claim, err)
	}
	wantKind(t, s.DeleteEndpoint(ctx, ep, 1), domain.ErrNotFound)
	if _, err := s.GetEndpoint(ctx, "tenant-b", ep.ID); err != nil {
		t.Fatalf("another tenant's endpoint was touched: %v", err)
	}
	// The freed URL takes a new endpoint.
	if err := s.CreateEndpoint(ctx, newEndpoint("tenant-a", ep.URL)); err != nil {
		t.Fatalf("create on the freed url: %v", err)
	}
	// Delivery-side writes never bring a deleted endpoint back.
	if _, err := s.AdvanceWatermark(ctx, "tenant-a", ep.ID, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetEndpoint(ctx, "tenant-a", ep.ID); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("a watermark write resurrected the endpoint: %v", err)
	}
}

func TestEndpointsDatabaseDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := NewEndpoints(downClient(t), "endpoints")
	ep := newEndpoint("tenant-a", "https://example.com/hook")
	checks := map[string]error{
		"create": s.CreateEndpoint(ctx, ep),
		"update": func() error {
			next := ep
			next.Version = 2
			return s.UpdateEndpoint(ctx, next, 1, "https://example.com/old")
		}(),
	}
	_, checks["get"] = s.GetEndpoint(ctx, "tenant-a", ep.ID)
	_, checks["find"] = s.FindEndpointByURL(ctx, "tenant-a", ep.URL)
	_, _, checks["list"] = s.ListEndpoints(ctx, "tenant-a", 10, "")
	checks["delete"] = s.DeleteEndpoint(ctx, ep, 1)
	for name, err := range checks {
		if !errors.Is(err, domain.ErrUnavailable) {
			t.Errorf("%s: error = %v, want domain.ErrUnavailable", name, err)
		}
	}
}

// TestEndpointCreateSurvivesALostResponse: the SDK retries a transaction whose response was
// lost with the same ClientRequestToken, and DynamoDB (as the emulator) answers the retry
// with the first call's success instead of running the transaction again, whose conditions
// (the URL is free, the id is new) would now fail. Registering must not answer "already
// registered" for an endpoint it has just created.
func TestEndpointCreateSurvivesALostResponse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, env := newStack(t)
	lost := &testenv.LoseFirstResponse{Operation: ".TransactWriteItems"}
	cfg := testenv.AWSConfig(t)
	cfg.HTTPClient = lost
	s := NewEndpoints(dynamodb.NewFromConfig(cfg), env["WEBHOOKS_ENDPOINTS_TABLE"])

	ep := newEndpoint("tenant-a", "https://example.com/lost")
	if err := s.CreateEndpoint(ctx, ep); err != nil {
		t.Fatalf("create with its first response lost: %v", err)
	}
	if lost.Calls() != 2 {
		t.Fatalf("TransactWriteItems sent %d times, want 2 (the SDK's retry)", lost.Calls())
	}
	got, err := s.GetEndpoint(ctx, "tenant-a", ep.ID)
	if err != nil || got.URL != ep.URL {
		t.Fatalf("GetEndpoint = %+v, %v", got, err)
	}
	// A new request (a new token) for the same URL is refused as before.
	again := newEndpoint("tenant-a", "https://example.com/lost")
	wantReason(t, s.CreateEndpoint(ctx, again), domain.ReasonURLTaken)
}

// TestEmulatorTransactionTokenMismatch: a token reused with a different transaction is
// refused, as DynamoDB does.
func TestEmulatorTransactionTokenMismatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, env := newStack(t)
	table := env["WEBHOOKS_ENDPOINTS_TABLE"]
	put := func(pk string) error {
		_, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
			ClientRequestToken: aws.String("token-1"),
			TransactItems: []types.TransactWriteItem{{Put: &types.Put{
				TableName: &table,
				Item:      map[string]types.AttributeValue{"tenant_id": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: "x"}},
			}}},
		})
		return err
	}
	if err := put("a"); err != nil {
		t.Fatal(err)
	}
	if err := put("a"); err != nil {
		t.Fatalf("the same transaction with the same token: %v", err)
	}
	var mismatch *types.IdempotentParameterMismatchException
	if err := put("b"); !errors.As(err, &mismatch) {
		t.Fatalf("another transaction with the same token: %v, want IdempotentParameterMismatchException", err)
	}
}
