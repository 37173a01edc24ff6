// Package api is the tenant-facing REST API as one net/http handler. The Lambda functions
// (through aws-lambda-go-api-proxy), the local server and the tests all serve this very
// handler; each function enables only the routes API Gateway sends it.
package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/datajetty/webhooks/shared/app"
	"github.com/datajetty/webhooks/shared/auth"
	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/eventtypes"
	"github.com/datajetty/webhooks/shared/metrics"
	"github.com/datajetty/webhooks/shared/signing"
)

// BasePath prefixes every route.
const BasePath = "/api/v1/data-consumption/webhooks"

// MaxBodyBytes caps request bodies.
const MaxBodyBytes = 64 << 10

// IdempotencyTTL is how long a POST's response is kept for its X-Request-Id.
const IdempotencyTTL = 24 * time.Hour

// idempotencyLease bounds how long a crashed execution holds its key (above the Lambda
// timeout, so a slow but live execution is never run twice).
const idempotencyLease = 60 * time.Second

// Authenticator verifies a bearer token (shared/auth.Verifier).
type Authenticator interface {
	Verify(ctx context.Context, authorizationHeader string) (auth.Principal, error)
}

// Deps is what the handler needs. Routes whose dependencies are nil cannot be enabled.
type Deps struct {
	Auth       Authenticator
	Endpoints  *app.Endpoints
	Replays    *app.Replays
	Deliveries *app.Deliveries
	// Tests sends test events (POST /endpoints/{endpoint_id}/test).
	Tests *app.Tests
	// Resends queues an event again (POST …/deliveries/{event_id}/resend).
	Resends *app.Resends
	// EventTypes is the event-type catalog GET /event-types shows.
	EventTypes  *eventtypes.Catalog
	Idempotency app.IdempotencyStore
	RateLimiter app.RateLimiter
	Limits      Limits
	// CursorKey signs pagination cursors (list routes).
	CursorKey []byte
	Logger    *slog.Logger
	// Metrics receives the API's counters (nil: none); flushed after each request.
	Metrics *metrics.Emitter
	Now     func() time.Time
}

// Handler serves the enabled routes.
type Handler struct {
	deps   Deps
	routes []Route
	log    *slog.Logger
}

// NewHandler builds the handler for the named routes (all routes when none are named).
func NewHandler(d Deps, names ...string) (*Handler, error) {
	if d.Auth == nil || d.RateLimiter == nil {
		return nil, fmt.Errorf("api: Auth and RateLimiter are required")
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Limits == (Limits{}) {
		d.Limits = DefaultLimits()
	}
	h := &Handler{deps: d, log: d.Logger}
	for _, rt := range Routes() {
		if len(names) > 0 && !contains(names, rt.Name) {
			continue
		}
		if err := rt.ready(d); err != nil {
			return nil, fmt.Errorf("api: route %s: %w", rt.Name, err)
		}
		h.routes = append(h.routes, rt)
	}
	for _, n := range names {
		if !h.has(n) {
			return nil, fmt.Errorf("api: unknown route %q", n)
		}
	}
	return h, nil
}

func (h *Handler) has(name string) bool {
	for _, rt := range h.routes {
		if rt.Name == name {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// request is what a route handler sees.
type request struct {
	*http.Request
	principal auth.Principal
	params    map[string]string
	body      []byte
	requestID string
	// clientID: requestID is the client's X-Request-Id (on POST, the idempotency key).
	clientID bool
}

// response is a fully rendered response, so it can be stored for idempotent replays.
type response struct {
	status int
	header http.Header
	body   []byte
	// secret is a generated secret inside body, which must not be stored in clear.
	secret         *signing.Secret
	secretEndpoint string
	// reason is the error's domain reason, for metrics (empty on success and on replays).
	reason string
}

// noContent is a response without a body (204).
func noContent() response { return response{status: http.StatusNoContent, header: http.Header{}} }

func jsonResponse(status int, v any) response {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{"error":"internal_error","message":"could not render the response"}`)
		status = http.StatusInternalServerError
	}
	hdr := http.Header{}
	hdr.Set("Content-Type", "application/json")
	return response{status: status, header: hdr, body: append(b, '\n')}
}

// ServeHTTP runs the pipeline: request id, route match, auth, scope, rate limit, body
// checks, idempotency, handler; every outcome is one JSON response.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.deps.Now()
	reqID, clientID, idErr := requestID(r.Header)
	var (
		resp   response
		tenant string
		route  = "unmatched"
	)
	defer func() {
		if p := recover(); p != nil {
			h.log.ErrorContext(r.Context(), "panic serving request", "request_id", reqID, "panic", fmt.Sprint(p))
			resp = h.errorResponse(r, reqID, fmt.Errorf("panic: %v", p))
		}
		resp.write(w, reqID)
		h.countOutcome(resp)
		h.log.InfoContext(r.Context(), "request", append(logAttrs(reqID, route, tenant, resp.status),
			slog.String("method", r.Method), slog.Duration("duration", h.deps.Now().Sub(start)))...)
	}()
	if idErr != nil {
		resp = h.errorResponse(r, reqID, idErr)
		return
	}
	rt, params, err := h.match(r)
	if err != nil {
		resp = h.errorResponse(r, reqID, err)
		if allow, ok := err.(*methodNotAllowed); ok {
			resp.status = http.StatusMethodNotAllowed
			resp.header.Set("Allow", allow.allow)
		}
		return
	}
	route = rt.Name
	resp, tenant = h.serveRoute(r, rt, params, reqID, clientID)
}

// countOutcome records the outcomes operators alarm on, then flushes (a no-op when
// nothing was recorded, which is almost always).
func (h *Handler) countOutcome(resp response) {
	switch {
	case resp.status == http.StatusTooManyRequests:
		h.deps.Metrics.Add(metrics.RequestsRateLimited, 1)
	case resp.reason == domain.ReasonHandshakeFailed:
		h.deps.Metrics.Add(metrics.HandshakesFailed, 1)
	}
	if err := h.deps.Metrics.Flush(); err != nil {
		h.log.Warn("writing metrics failed", "error", err)
	}
}

func (h *Handler) serveRoute(r *http.Request, rt Route, params map[string]string, reqID string, clientID bool) (response, string) {
	ctx := r.Context()
	authz, err := authorization(r.Header)
	if err != nil {
		return h.errorResponse(r, reqID, err), ""
	}
	p, err := h.deps.Auth.Verify(ctx, authz)
	if err != nil {
		return h.errorResponse(r, reqID, err), ""
	}
	if !p.HasScope(rt.Scope) {
		return h.errorResponse(r, reqID, &domain.Error{Kind: domain.KindForbidden, Msg: fmt.Sprintf("token lacks the %s scope", rt.Scope)}), p.TenantID
	}
	req := &request{Request: r, principal: p, params: params, requestID: reqID, clientID: clientID}
	if r.Method == http.MethodGet {
		return h.serveRead(req, rt), p.TenantID
	}
	limitHeaders, err := h.rateLimit(ctx, p.TenantID, rt)
	if err != nil {
		resp := h.errorResponse(r, reqID, err)
		mergeHeader(resp.header, limitHeaders)
		return resp, p.TenantID
	}
	resp := h.serveChange(req, rt)
	mergeHeader(resp.header, limitHeaders)
	return resp, p.TenantID
}

// serveRead serves a route that changes nothing (GET) in one round trip of latency: the
// rate-limit write and the route's reads go out together. When the limit refuses the
// request (429) or cannot be checked (503), that answer wins, exactly as if it had been
// asked first, and the reads are cancelled and their result discarded. (A POST or a DELETE
// changes state, so it is rate-limited before it runs.)
func (h *Handler) serveRead(req *request, rt Route) response {
	ctx, cancel := context.WithCancel(req.Context())
	defer cancel()
	read := *req
	read.Request = req.WithContext(ctx)
	type outcome struct {
		resp  response
		err   error
		panic any
	}
	done := make(chan outcome, 1)
	go func() {
		var o outcome
		defer func() {
			// A panic is handed to the request's goroutine, whose recovery answers 500.
			o.panic = recover()
			done <- o
		}()
		o.resp, o.err = rt.handle(h, &read)
	}()
	limitHeaders, limitErr := h.rateLimit(req.Context(), req.principal.TenantID, rt)
	if limitErr != nil {
		cancel()
	}
	o := <-done // also when refused: nothing the request started outlives it
	var resp response
	switch {
	case limitErr != nil:
		// The reads' outcome, a cancellation most likely, is not the answer: not logged.
		resp = h.errorResponse(req.Request, req.requestID, limitErr)
	case o.panic != nil:
		panic(o.panic)
	case o.err != nil:
		resp = h.errorResponse(req.Request, req.requestID, o.err)
	default:
		resp = o.resp
	}
	mergeHeader(resp.header, limitHeaders)
	return resp
}

// serveChange serves a POST or DELETE: it checks a POST's body and applies idempotency
// when the client sent X-Request-Id. A DELETE's body is not read.
func (h *Handler) serveChange(req *request, rt Route) response {
	var body []byte
	if req.Method == http.MethodPost {
		// A route whose body is optional accepts an empty body without Content-Type.
		if !rt.OptionalBody {
			if err := checkJSONContentType(req.Header.Get("Content-Type")); err != nil {
				return h.errorResponse(req.Request, req.requestID, err)
			}
		}
		var err error
		body, err = io.ReadAll(http.MaxBytesReader(nil, req.Body, MaxBodyBytes))
		if err != nil {
			return h.errorResponse(req.Request, req.requestID, domain.Invalid("", "request body is larger than %d KiB or unreadable", MaxBodyBytes>>10))
		}
		if rt.OptionalBody && len(bytes.TrimSpace(body)) > 0 {
			if err := checkJSONContentType(req.Header.Get("Content-Type")); err != nil {
				return h.errorResponse(req.Request, req.requestID, err)
			}
		}
	}
	req.body = body
	if !req.clientID || h.deps.Idempotency == nil {
		return h.invoke(req, rt)
	}
	clientKey := req.requestID
	ctx := req.Context()
	now := h.deps.Now()
	tenant := req.principal.TenantID
	stored, err := h.deps.Idempotency.Reserve(ctx, tenant, clientKey, fingerprint(req.Method, fingerprintPath(req.URL), body), now.Add(idempotencyLease), now)
	if err != nil {
		return h.errorResponse(req.Request, req.requestID, err)
	}
	if stored != nil {
		resp, err := h.replayStored(ctx, tenant, *stored)
		if err != nil {
			return h.errorResponse(req.Request, req.requestID, err)
		}
		return resp
	}
	resp := h.invoke(req, rt)
	bg := context.WithoutCancel(ctx)
	// Transient failures are forgotten so the client's retry runs; everything else is
	// the answer for this key.
	if resp.status >= 500 || resp.status == http.StatusTooManyRequests {
		if err := h.deps.Idempotency.Release(bg, tenant, clientKey); err != nil {
			h.log.WarnContext(ctx, "releasing idempotency key failed", "request_id", req.requestID, "error", err)
		}
		return resp
	}
	rec, err := h.storable(bg, tenant, resp)
	if err == nil {
		err = h.deps.Idempotency.Complete(bg, tenant, clientKey, rec, now.Add(IdempotencyTTL))
	}
	if err != nil {
		// The work is done; answering with it beats failing. A repeat within the lease
		// gets 409 in progress, after it a re-execution, which the upsert semantics of
		// the routes make harmless.
		h.log.WarnContext(ctx, "storing idempotent response failed", "request_id", req.requestID, "error", err)
	}
	return resp
}

// secretPlaceholder stands for a generated secret in a stored response body.
const secretPlaceholder = "whsec_SEALED"

// storable turns a response into what the idempotency table keeps: a generated secret is
// taken out of the body and sealed with KMS, so the table never holds one in clear.
func (h *Handler) storable(ctx context.Context, tenant string, resp response) (app.StoredResponse, error) {
	rec := app.StoredResponse{Status: resp.status, ContentType: resp.header.Get("Content-Type"), Location: resp.header.Get("Location"), Body: resp.body}
	if resp.secret == nil {
		return rec, nil
	}
	sealed, err := h.deps.Endpoints.Secrets.Seal(ctx, tenant, resp.secretEndpoint, *resp.secret)
	if err != nil {
		return rec, fmt.Errorf("seal secret for the idempotency record: %w", err)
	}
	rec.Body = bytes.Replace(resp.body, []byte(resp.secret.Encode()), []byte(secretPlaceholder), 1)
	rec.SealedSecret, rec.SecretEndpointID = sealed, resp.secretEndpoint
	return rec, nil
}

// replayStored rebuilds a stored response, byte for byte as first sent.
func (h *Handler) replayStored(ctx context.Context, tenant string, stored app.StoredResponse) (response, error) {
	hdr := http.Header{}
	if stored.ContentType != "" {
		hdr.Set("Content-Type", stored.ContentType)
	}
	hdr.Set("Idempotent-Replayed", "true")
	if stored.Location != "" {
		hdr.Set("Location", stored.Location)
	}
	body := stored.Body
	if len(stored.SealedSecret) > 0 {
		if h.deps.Endpoints == nil || h.deps.Endpoints.Secrets == nil {
			return response{}, fmt.Errorf("stored response has a sealed secret but no secret box is configured")
		}
		sec, err := h.deps.Endpoints.Secrets.Open(ctx, tenant, stored.SecretEndpointID, stored.SealedSecret)
		if err != nil {
			return response{}, fmt.Errorf("open sealed secret of stored response: %w", err)
		}
		body = bytes.Replace(body, []byte(secretPlaceholder), []byte(sec.Encode()), 1)
	}
	return response{status: stored.Status, header: hdr, body: body}, nil
}

func (h *Handler) invoke(req *request, rt Route) response {
	resp, err := rt.handle(h, req)
	if err != nil {
		return h.errorResponse(req.Request, req.requestID, err)
	}
	return resp
}

func (resp response) write(w http.ResponseWriter, reqID string) {
	for k, v := range resp.header {
		w.Header()[k] = v
	}
	w.Header().Set("X-Request-Id", reqID)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}

func mergeHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = v
	}
}

// requestID returns the client's X-Request-Id, or a new id when the header is absent.
// A header that is present must hold exactly one usable value: an empty value is not
// "absent" (it would silently turn idempotency off), and a second value (or a comma,
// which is how API Gateway joins repeated headers) is ambiguous.
func requestID(h http.Header) (id string, fromClient bool, err error) {
	vals, present := h["X-Request-Id"]
	if !present {
		return domain.NewID("req_"), false, nil
	}
	if err := checkRequestID(vals); err != nil {
		return domain.NewID("req_"), false, err
	}
	return vals[0], true, nil
}

func checkRequestID(vals []string) error {
	if len(vals) != 1 {
		return domain.Invalid("X-Request-Id", "X-Request-Id must be sent once, not %d times", len(vals))
	}
	v := vals[0]
	switch {
	case v == "":
		return domain.Invalid("X-Request-Id", "X-Request-Id is empty; send 1-%d visible ASCII characters or leave the header out", MaxRequestIDLength)
	case len(v) > MaxRequestIDLength:
		return domain.Invalid("X-Request-Id", "X-Request-Id is longer than %d characters", MaxRequestIDLength)
	}
	for _, c := range []byte(v) {
		if c < 0x21 || c > 0x7e || c == ',' {
			return domain.Invalid("X-Request-Id", "X-Request-Id must be visible ASCII characters other than a comma")
		}
	}
	return nil
}

// MaxRequestIDLength bounds X-Request-Id (it becomes part of the idempotency key).
const MaxRequestIDLength = 128

// authorization returns the Authorization header's value. More than one is refused: which
// one a component reads first is not a contract, so a request must not carry two
// credentials (tenant B's token then tenant A's, or a valid token then garbage).
func authorization(h http.Header) (string, error) {
	vals := h.Values("Authorization")
	switch len(vals) {
	case 0:
		return "", nil
	case 1:
		return vals[0], nil
	}
	return "", &domain.Error{Kind: domain.KindUnauthorized, Msg: fmt.Sprintf("exactly one Authorization header is required, not %d", len(vals))}
}

func checkJSONContentType(v string) error {
	mt, _, err := mime.ParseMediaType(v)
	if err != nil || mt != "application/json" {
		return domain.Invalid("Content-Type", "Content-Type must be application/json")
	}
	return nil
}

// fingerprintPath is the path a request's fingerprint covers: the path, and the query when
// there is one (DELETE ?version=N is a different request from DELETE ?version=M).
func fingerprintPath(u *url.URL) string {
	if u.RawQuery == "" {
		return u.Path
	}
	return u.Path + "?" + u.RawQuery
}

// fingerprint identifies a request for idempotency: same key, different fingerprint is a
// reused key.
func fingerprint(method, path string, body []byte) string {
	s := sha256.New()
	fmt.Fprintf(s, "%s\n%s\n", method, path)
	s.Write(bytes.TrimSpace(body))
	return hex.EncodeToString(s.Sum(nil))
}

// decodeJSON strictly decodes a request body: unknown fields, trailing data and wrong types
// are refused with a message that names the problem.
func decodeJSON(body []byte, v any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return domain.Invalid("", "request body is empty; a JSON object is required")
	}
	if bytes.Equal(trimmed, []byte("null")) { // decodes into any struct as "nothing given"
		return domain.Invalid("", "request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return domain.Invalid("", "request body has data after the JSON object")
	}
	return nil
}

func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		if te.Field == "" {
			return domain.Invalid("", "request body must be a JSON object")
		}
		return domain.Invalid(te.Field, "field %s must be %s", te.Field, jsonKind(te.Type.Kind().String()))
	case errors.As(err, &se):
		return domain.Invalid("", "request body is not valid JSON (at byte %d)", se.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return domain.Invalid(f, "unknown field %q", f)
	case err == io.ErrUnexpectedEOF:
		return domain.Invalid("", "request body is truncated JSON")
	}
	return domain.Invalid("", "request body is not valid JSON")
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "slice":
		return "an array of strings"
	case "int64", "int":
		return "an integer"
	case "bool":
		return "true or false"
	}
	return "of another type"
}

// parseQuery decodes the query string strictly: a malformed one (a bad %-escape, a raw ';')
// is refused rather than partly ignored.
func parseQuery(r *http.Request) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, domain.Invalid("", "the query string is malformed")
	}
	return q, nil
}

// queryParam returns a query parameter given at most once; more than once is refused. An
// empty value is refused too (it is not "absent": it would silently mean the default),
// unless allowEmpty.
func queryParam(q url.Values, name string, allowEmpty bool) (v string, present bool, err error) {
	vals, present := q[name]
	switch {
	case !present:
		return "", false, nil
	case len(vals) > 1:
		return "", true, domain.Invalid(name, "%s must be given once, not %d times", name, len(vals))
	case vals[0] == "" && !allowEmpty:
		return "", true, domain.Invalid(name, "%s is empty; leave it out or give a value", name)
	}
	return vals[0], true, nil
}

// cursorParam reads the cursor: absent or empty is the first page (a paging loop sends the
// previous page's next_cursor, which the first page does not have).
func cursorParam(q url.Values) (string, error) {
	c, _, err := queryParam(q, "cursor", true)
	return c, err
}

// limitParam reads the page size: lo to hi, def when the parameter is absent.
func limitParam(q url.Values, lo, hi, def int) (int, error) {
	v, present, err := queryParam(q, "limit", false)
	if err != nil || !present {
		return def, err
	}
	return atoiRange("limit", v, lo, hi)
}

func atoiRange(name, v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, domain.Invalid(name, "%s must be an integer from %d to %d", name, lo, hi)
	}
	return n, nil
}
