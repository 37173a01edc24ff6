package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/datajetty/webhooks/shared/domain"
)

// Sort-key prefixes of the endpoints table: one endpoint item and one URL claim item per
// endpoint, both under the tenant's partition.
const (
	endpointPrefix = "EP#"
	urlClaimPrefix = "URL#"
)

// endpointItem is the stored shape of an endpoint. The replay lock attributes
// (active_replay_id, active_replay_until) live on the same item but belong to Replays, so
// they are deliberately absent here: writing an endpoint never touches the lock.
type endpointItem struct {
	TenantID            string   `dynamodbav:"tenant_id"`
	SK                  string   `dynamodbav:"sk"`
	EndpointID          string   `dynamodbav:"endpoint_id"`
	URL                 string   `dynamodbav:"url"`
	Events              []string `dynamodbav:"events"`
	Status              string   `dynamodbav:"status"`
	Version             int64    `dynamodbav:"version"`
	CreatedAt           string   `dynamodbav:"created_at"`
	UpdatedAt           string   `dynamodbav:"updated_at"`
	Watermark           string   `dynamodbav:"watermark,omitempty"`
	DisabledReason      string   `dynamodbav:"disabled_reason,omitempty"`
	DisabledDetail      string   `dynamodbav:"disabled_detail,omitempty"`
	FailingSince        string   `dynamodbav:"failing_since,omitempty"` // delivery-owned (endpointstate.go)
	SecretCT            []byte   `dynamodbav:"secret_ct,omitempty"`
	PrevSecretCT        []byte   `dynamodbav:"prev_secret_ct,omitempty"`
	PrevSecretExpiresAt string   `dynamodbav:"prev_secret_expires_at,omitempty"`
}

// optionalEndpointAttrs are omitted when empty, so an update must REMOVE them. The
// watermark is optional too but is not listed: UpdateEndpoint never touches it.
var optionalEndpointAttrs = []string{"disabled_reason", "disabled_detail", "secret_ct", "prev_secret_ct", "prev_secret_expires_at"}

// deliveryOwnedAttrs belong to the delivery side (endpointstate.go), which changes them
// without reading the endpoint; an update written from an earlier read would move the
// watermark backwards or drop it, so UpdateEndpoint neither writes nor removes them.
var deliveryOwnedAttrs = []string{"watermark", "dead_streak", "failing_since"}

// listedEndpointAttrs is what ListEndpoints reads: everything but the secret ciphertexts,
// which a listing never needs and which are the largest attributes.
var listedEndpointAttrs = []string{"tenant_id", "sk", "endpoint_id", "url", "events", "status", "version",
	"created_at", "updated_at", "watermark", "disabled_reason", "disabled_detail", "failing_since", "prev_secret_expires_at"}

// urlClaimItem makes (tenant, URL) unique: its key is derived from the URL, so a second
// claim fails its attribute_not_exists condition.
type urlClaimItem struct {
	TenantID   string `dynamodbav:"tenant_id"`
	SK         string `dynamodbav:"sk"`
	EndpointID string `dynamodbav:"endpoint_id"`
}

func endpointSK(id string) string { return endpointPrefix + id }

// urlClaimSK hashes the URL so the key stays short whatever the URL's length.
func urlClaimSK(url string) string {
	sum := sha256.Sum256([]byte(url))
	return urlClaimPrefix + hex.EncodeToString(sum[:])
}

func itemKey(tenantID, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"tenant_id": &types.AttributeValueMemberS{Value: tenantID},
		"sk":        &types.AttributeValueMemberS{Value: sk},
	}
}

func toEndpointItem(ep domain.Endpoint) endpointItem {
	return endpointItem{
		TenantID:            ep.TenantID,
		SK:                  endpointSK(ep.ID),
		EndpointID:          ep.ID,
		URL:                 ep.URL,
		Events:              ep.Events,
		Status:              string(ep.Status),
		Version:             ep.Version,
		CreatedAt:           formatTime(ep.CreatedAt),
		UpdatedAt:           formatTime(ep.UpdatedAt),
		Watermark:           formatWatermark(ep.Watermark),
		DisabledReason:      string(ep.DisabledReason),
		DisabledDetail:      ep.DisabledDetail,
		SecretCT:            ep.SecretCiphertext,
		PrevSecretCT:        ep.PreviousSecretCiphertext,
		PrevSecretExpiresAt: formatTime(ep.PreviousSecretExpiresAt),
	}
}

// formatWatermark writes the watermark in the fixed-width layout AdvanceWatermark compares
// against; parseTime (RFC 3339) reads it back.
func formatWatermark(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return formatSortable(t)
}

func (it endpointItem) toDomain() (domain.Endpoint, error) {
	ep := domain.Endpoint{
		TenantID:                 it.TenantID,
		ID:                       it.EndpointID,
		URL:                      it.URL,
		Events:                   it.Events,
		Status:                   domain.EndpointStatus(it.Status),
		Version:                  it.Version,
		SecretCiphertext:         it.SecretCT,
		PreviousSecretCiphertext: it.PrevSecretCT,
	}
	ep.DisabledReason, ep.DisabledDetail = disabledReason(it.DisabledReason, it.DisabledDetail)
	var errs [5]error
	ep.CreatedAt, errs[0] = parseTime(it.CreatedAt)
	ep.UpdatedAt, errs[1] = parseTime(it.UpdatedAt)
	ep.Watermark, errs[2] = parseTime(it.Watermark)
	ep.PreviousSecretExpiresAt, errs[3] = parseTime(it.PrevSecretExpiresAt)
	ep.FailingSince, errs[4] = parseTime(it.FailingSince)
	if err := errors.Join(errs[:]...); err != nil {
		return domain.Endpoint{}, fmt.Errorf("decode endpoint %s: %w", it.EndpointID, err)
	}
	return ep, nil
}

// disabledReason reads the stored reason. Items written before reasons were codes hold the
// text alone in disabled_reason ("410 Gone", "5 consecutive deliveries exhausted all
// retries", or an operator's note); they read as that code with the text as detail.
func disabledReason(reason, detail string) (domain.DisabledReason, string) {
	if reason == "" || slices.Contains(domain.DisabledReasons, domain.DisabledReason(reason)) {
		return domain.DisabledReason(reason), detail
	}
	switch {
	case reason == "410 Gone":
		return domain.DisabledGone, reason
	case strings.HasSuffix(reason, " consecutive deliveries exhausted all retries"):
		return domain.DisabledFailing, reason
	}
	return domain.DisabledByOperator, reason
}

func decodeEndpoint(av map[string]types.AttributeValue) (domain.Endpoint, error) {
	var it endpointItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return domain.Endpoint{}, fmt.Errorf("decode endpoint: %w", err)
	}
	return it.toDomain()
}

// Endpoints stores endpoints in the endpoints table. Each endpoint has two items in its
// tenant's partition: sk "EP#<endpoint id>" holds the endpoint, and sk "URL#<hex sha256 of
// the URL>" claims the URL for it, which makes a URL unique per tenant. Every write of an
// endpoint and its claims is one transaction, so they never disagree.
type Endpoints struct {
	db    *dynamodb.Client
	table string
}

// NewEndpoints returns an endpoint store on the given table.
func NewEndpoints(client *dynamodb.Client, table string) *Endpoints {
	return &Endpoints{db: client, table: table}
}

func endpointNotFound(id string) error { return domain.NotFound("endpoint %s not found", id) }

// GetEndpoint loads one endpoint with a consistent read (one GetItem), so a read-modify-write
// starts from the latest version.
func (s *Endpoints) GetEndpoint(ctx context.Context, tenantID, endpointID string) (domain.Endpoint, error) {
	av, err := s.get(ctx, tenantID, endpointSK(endpointID))
	if err != nil {
		return domain.Endpoint{}, dbErr("get endpoint "+endpointID, err)
	}
	if av == nil {
		return domain.Endpoint{}, endpointNotFound(endpointID)
	}
	return decodeEndpoint(av)
}

// FindEndpointByURL follows the URL claim to the endpoint (two consistent GetItems).
func (s *Endpoints) FindEndpointByURL(ctx context.Context, tenantID, url string) (domain.Endpoint, error) {
	claim, err := s.getClaim(ctx, tenantID, url)
	if err != nil {
		return domain.Endpoint{}, err
	}
	if claim == nil {
		return domain.Endpoint{}, domain.NotFound("no endpoint is registered for this url")
	}
	ep, err := s.GetEndpoint(ctx, tenantID, claim.EndpointID)
	if errors.Is(err, domain.ErrNotFound) || err == nil && ep.URL != url {
		// A claim whose endpoint is gone or moved on is stale: the URL is not registered.
		return domain.Endpoint{}, domain.NotFound("no endpoint is registered for this url")
	}
	return ep, err
}

// CreateEndpoint writes the endpoint and its URL claim in one transaction.
func (s *Endpoints) CreateEndpoint(ctx context.Context, ep domain.Endpoint) error {
	if ep.TenantID == "" || ep.ID == "" || ep.URL == "" {
		return fmt.Errorf("create endpoint: tenant, id and url are required")
	}
	item, err := attributevalue.MarshalMap(toEndpointItem(ep))
	if err != nil {
		return fmt.Errorf("create endpoint %s: encode: %w", ep.ID, err)
	}
	claim, err := attributevalue.MarshalMap(urlClaimItem{TenantID: ep.TenantID, SK: urlClaimSK(ep.URL), EndpointID: ep.ID})
	if err != nil {
		return fmt.Errorf("create endpoint %s: encode claim: %w", ep.ID, err)
	}
	_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: []types.TransactWriteItem{
			{Put: &types.Put{TableName: &s.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(sk)")}},
			{Put: &types.Put{TableName: &s.table, Item: claim, ConditionExpression: aws.String("attribute_not_exists(sk)")}},
		},
	})
	if err == nil {
		return nil
	}
	c, ok := cancelled(err)
	switch {
	case !ok || c.transient():
	case c.complete(2) && c.conditionFailed(1):
		return urlTaken()
	case c.complete(2) && c.conditionFailed(0):
		// 128-bit random ids do not collide; this is a caller retrying with the same id.
		return fmt.Errorf("create endpoint %s: the id already exists", ep.ID)
	case !c.complete(2):
		// No per-item reasons: look at the claim to tell a taken URL from anything else.
		if owner, rerr := s.getClaim(ctx, ep.TenantID, ep.URL); rerr == nil && owner != nil && owner.EndpointID != ep.ID {
			return urlTaken()
		}
	}
	return dbErr("create endpoint "+ep.ID, err)
}

func urlTaken() error {
	return domain.Conflict(domain.ReasonURLTaken, "an endpoint is already registered for this url")
}

func versionMismatch(id string, expected int64) error {
	return domain.Conflict(domain.ReasonVersionMismatch, "endpoint %s was changed by another request (expected version %d); reload it and try again", id, expected)
}

// UpdateEndpoint rewrites the endpoint's attributes if its stored version is still
// expectedVersion, and moves the URL claim when the URL changed, in one transaction.
// ep.Version is stored as given and must be greater than expectedVersion. previousURL ""
// means the URL did not change. The endpoint is updated attribute by attribute (not
// replaced) so that a concurrent replay lock on the same item survives, and the
// delivery-owned watermark and dead streak are left as stored (ep.Watermark is ignored):
// deliveries advance them without bumping the version, so ep's copy may be stale.
func (s *Endpoints) UpdateEndpoint(ctx context.Context, ep domain.Endpoint, expectedVersion int64, previousURL string) error {
	if ep.TenantID == "" || ep.ID == "" || ep.URL == "" {
		return fmt.Errorf("update endpoint: tenant, id and url are required")
	}
	if ep.Version <= expectedVersion {
		return fmt.Errorf("update endpoint %s: new version %d must be greater than the expected version %d", ep.ID, ep.Version, expectedVersion)
	}
	av, err := attributevalue.MarshalMap(toEndpointItem(ep))
	if err != nil {
		return fmt.Errorf("update endpoint %s: encode: %w", ep.ID, err)
	}
	update, names, values := setAttributes(av, optionalEndpointAttrs, append([]string{"tenant_id", "sk"}, deliveryOwnedAttrs...)...)
	names["#version"] = "version"
	values[":expected"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(expectedVersion, 10)}
	items := []types.TransactWriteItem{{Update: &types.Update{
		TableName:                           &s.table,
		Key:                                 itemKey(ep.TenantID, endpointSK(ep.ID)),
		UpdateExpression:                    &update,
		ConditionExpression:                 aws.String("attribute_exists(sk) AND #version = :expected"),
		ExpressionAttributeNames:            names,
		ExpressionAttributeValues:           values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}}}
	urlChanged := previousURL != "" && previousURL != ep.URL
	if urlChanged {
		claim, err := attributevalue.MarshalMap(urlClaimItem{TenantID: ep.TenantID, SK: urlClaimSK(ep.URL), EndpointID: ep.ID})
		if err != nil {
			return fmt.Errorf("update endpoint %s: encode claim: %w", ep.ID, err)
		}
		items = append(items,
			// Release the old claim only if it is ours; a claim already gone is fine.
			types.TransactWriteItem{Delete: &types.Delete{
				TableName:                 &s.table,
				Key:                       itemKey(ep.TenantID, urlClaimSK(previousURL)),
				ConditionExpression:       aws.String("attribute_not_exists(sk) OR endpoint_id = :id"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":id": &types.AttributeValueMemberS{Value: ep.ID}},
			}},
			types.TransactWriteItem{Put: &types.Put{
				TableName:           &s.table,
				Item:                claim,
				ConditionExpression: aws.String("attribute_not_exists(sk)"),
			}},
		)
	}
	_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if err == nil {
		return nil
	}
	c, ok := cancelled(err)
	switch {
	case !ok || c.transient():
	case c.complete(len(items)):
		if c.conditionFailed(0) {
			if c.item(0) == nil {
				return endpointNotFound(ep.ID)
			}
			return versionMismatch(ep.ID, expectedVersion)
		}
		if urlChanged && c.conditionFailed(2) {
			return urlTaken()
		}
	default:
		// No per-item reasons: read the items to find out which condition failed.
		cur, rerr := s.get(ctx, ep.TenantID, endpointSK(ep.ID))
		if rerr != nil {
			return dbErr("update endpoint "+ep.ID, rerr)
		}
		if cur == nil {
			return endpointNotFound(ep.ID)
		}
		var v struct {
			Version int64 `dynamodbav:"version"`
		}
		if attributevalue.UnmarshalMap(cur, &v) == nil && v.Version != expectedVersion {
			return versionMismatch(ep.ID, expectedVersion)
		}
		if urlChanged {
			if owner, rerr := s.getClaim(ctx, ep.TenantID, ep.URL); rerr == nil && owner != nil && owner.EndpointID != ep.ID {
				return urlTaken()
			}
		}
	}
	return dbErr("update endpoint "+ep.ID, err)
}

// setAttributes builds "SET #a = :a, … REMOVE #b, …" writing every attribute of av except
// those named in skip (the key, and attributes another writer owns), and removing each
// optional attribute av lacks. Names and values get positional
// placeholders so reserved words (status, url) need no special care.
func setAttributes(av map[string]types.AttributeValue, optional []string, skip ...string) (string, map[string]string, map[string]types.AttributeValue) {
	attrs := make([]string, 0, len(av))
	for name := range av {
		if !slices.Contains(skip, name) {
			attrs = append(attrs, name)
		}
	}
	slices.Sort(attrs)
	names := make(map[string]string, len(attrs)+len(optional))
	values := make(map[string]types.AttributeValue, len(attrs))
	sets := make([]string, 0, len(attrs))
	for i, name := range attrs {
		n, v := "#s"+strconv.Itoa(i), ":s"+strconv.Itoa(i)
		names[n], values[v] = name, av[name]
		sets = append(sets, n+" = "+v)
	}
	expr := "SET " + strings.Join(sets, ", ")
	var removes []string
	for i, name := range optional {
		if _, ok := av[name]; !ok {
			n := "#r" + strconv.Itoa(i)
			names[n] = name
			removes = append(removes, n)
		}
	}
	if len(removes) > 0 {
		expr += " REMOVE " + strings.Join(removes, ", ")
	}
	return expr, names, values
}

// ListEndpoints queries the tenant's endpoint items in id order. It asks for limit+1 items
// so that "more" is known without the caller fetching an empty last page; the query repeats
// only if DynamoDB stopped early at its 1 MB page size. Secret ciphertexts are not read.
func (s *Endpoints) ListEndpoints(ctx context.Context, tenantID string, limit int, afterID string) ([]domain.Endpoint, bool, error) {
	if limit <= 0 {
		return nil, false, fmt.Errorf("list endpoints: limit %d must be positive", limit)
	}
	names := map[string]string{"#pk": "tenant_id", "#sk": "sk"}
	proj := make([]string, 0, len(listedEndpointAttrs))
	for i, a := range listedEndpointAttrs {
		n := "#p" + strconv.Itoa(i)
		names[n] = a
		proj = append(proj, n)
	}
	in := &dynamodb.QueryInput{
		TableName:                &s.table,
		KeyConditionExpression:   aws.String("#pk = :t AND begins_with(#sk, :prefix)"),
		ProjectionExpression:     aws.String(strings.Join(proj, ", ")),
		ExpressionAttributeNames: names,
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":t":      &types.AttributeValueMemberS{Value: tenantID},
			":prefix": &types.AttributeValueMemberS{Value: endpointPrefix},
		},
	}
	if afterID != "" {
		in.ExclusiveStartKey = itemKey(tenantID, endpointSK(afterID))
	}
	var raw []map[string]types.AttributeValue
	for {
		in.Limit = aws.Int32(int32(limit + 1 - len(raw)))
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return nil, false, dbErr("list endpoints", err)
		}
		raw = append(raw, out.Items...)
		if len(raw) > limit || len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	more := len(raw) > limit
	if more {
		raw = raw[:limit]
	}
	eps := make([]domain.Endpoint, 0, len(raw))
	for _, av := range raw {
		ep, err := decodeEndpoint(av)
		if err != nil {
			return nil, false, err
		}
		eps = append(eps, ep)
	}
	return eps, more, nil
}

// get reads one item with a consistent read; nil when absent.
func (s *Endpoints) get(ctx context.Context, tenantID, sk string) (map[string]types.AttributeValue, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            itemKey(tenantID, sk),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, err
	}
	return out.Item, nil
}

// getClaim reads the URL claim; nil when the URL is unclaimed.
func (s *Endpoints) getClaim(ctx context.Context, tenantID, url string) (*urlClaimItem, error) {
	av, err := s.get(ctx, tenantID, urlClaimSK(url))
	if err != nil {
		return nil, dbErr("get url claim", err)
	}
	if av == nil {
		return nil, nil
	}
	var c urlClaimItem
	if err := attributevalue.UnmarshalMap(av, &c); err != nil {
		return nil, fmt.Errorf("decode url claim: %w", err)
	}
	return &c, nil
}

// DeleteEndpoint deletes the endpoint and releases its URL claim in one transaction (one
// TransactWriteItems), if its stored version is still expectedVersion: a concurrent change
// is a Conflict with domain.ReasonVersionMismatch, an endpoint already gone NotFound. The
// claim is deleted only if it is the endpoint's own (a claim already gone is fine), so the
// URL is free for a new endpoint at once. Everything on the item goes with it: the
// delivery-side state and a replay lock (the replay notices at its next checkpoint).
func (s *Endpoints) DeleteEndpoint(ctx context.Context, ep domain.Endpoint, expectedVersion int64) error {
	if ep.TenantID == "" || ep.ID == "" || ep.URL == "" {
		return fmt.Errorf("delete endpoint: tenant, id and url are required")
	}
	items := []types.TransactWriteItem{
		{Delete: &types.Delete{
			TableName:                           &s.table,
			Key:                                 itemKey(ep.TenantID, endpointSK(ep.ID)),
			ConditionExpression:                 aws.String("attribute_exists(sk) AND #version = :expected"),
			ExpressionAttributeNames:            map[string]string{"#version": "version"},
			ExpressionAttributeValues:           map[string]types.AttributeValue{":expected": &types.AttributeValueMemberN{Value: strconv.FormatInt(expectedVersion, 10)}},
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}},
		{Delete: &types.Delete{
			TableName:                 &s.table,
			Key:                       itemKey(ep.TenantID, urlClaimSK(ep.URL)),
			ConditionExpression:       aws.String("attribute_not_exists(sk) OR endpoint_id = :id"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":id": &types.AttributeValueMemberS{Value: ep.ID}},
		}},
	}
	_, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if err == nil {
		return nil
	}
	c, ok := cancelled(err)
	switch {
	case !ok || c.transient():
	case c.complete(2) && c.conditionFailed(0):
		if c.item(0) == nil {
			return endpointNotFound(ep.ID)
		}
		return versionMismatch(ep.ID, expectedVersion)
	case c.complete(2) && c.conditionFailed(1):
		// Claims move with their endpoint in one transaction, so another endpoint's claim
		// on this URL means the table was edited by hand: refuse rather than take it.
		return fmt.Errorf("delete endpoint %s: the claim of its url belongs to another endpoint", ep.ID)
	case !c.complete(2):
		cur, rerr := s.get(ctx, ep.TenantID, endpointSK(ep.ID))
		if rerr != nil {
			return dbErr("delete endpoint "+ep.ID, rerr)
		}
		if cur == nil {
			return endpointNotFound(ep.ID)
		}
		var v struct {
			Version int64 `dynamodbav:"version"`
		}
		if attributevalue.UnmarshalMap(cur, &v) == nil && v.Version != expectedVersion {
			return versionMismatch(ep.ID, expectedVersion)
		}
	}
	return dbErr("delete endpoint "+ep.ID, err)
}
