package api

import (
	"bytes"
	"net/http"
	"strconv"
	"time"

	"github.com/datajetty/webhooks/shared/app"
	"github.com/datajetty/webhooks/shared/domain"
)

// registerBody is the POST /endpoints request.
type registerBody struct {
	URL        string   `json:"url"`
	Events     []string `json:"events"`
	Secret     string   `json:"secret"`
	EndpointID string   `json:"endpoint_id"`
	Version    *int64   `json:"version"`
}

// endpointView is an endpoint as the API shows it: never the secret, except the one the
// service generated, once, in the create response.
type endpointView struct {
	EndpointID              string   `json:"endpoint_id"`
	URL                     string   `json:"url"`
	Events                  []string `json:"events"`
	Status                  string   `json:"status"`
	DisabledReason          string   `json:"disabled_reason,omitempty"`
	DisabledDetail          string   `json:"disabled_detail,omitempty"`
	Failing                 bool     `json:"failing"`
	FailingSince            string   `json:"failing_since,omitempty"`
	Version                 int64    `json:"version"`
	CreatedAt               string   `json:"created_at"`
	UpdatedAt               string   `json:"updated_at"`
	Watermark               *string  `json:"watermark"`
	PreviousSecretExpiresAt string   `json:"previous_secret_expires_at,omitempty"`
	// SecretEffectiveAt is only in the answer to the request that rotated the secret: by
	// then every delivery carries a signature made with the new secret (deliver instances
	// cache an endpoint for domain.ConfigPropagation).
	SecretEffectiveAt string `json:"secret_effective_at,omitempty"`
	Secret            string `json:"secret,omitempty"`
}

func viewEndpoint(ep domain.Endpoint, now time.Time) endpointView {
	v := endpointView{
		EndpointID:     ep.ID,
		URL:            ep.URL,
		Events:         ep.Events,
		Status:         string(ep.Status),
		DisabledReason: string(ep.DisabledReason),
		DisabledDetail: ep.DisabledDetail,
		Version:        ep.Version,
		CreatedAt:      ts(ep.CreatedAt),
		UpdatedAt:      ts(ep.UpdatedAt),
	}
	if !ep.FailingSince.IsZero() {
		v.Failing, v.FailingSince = true, ts(ep.FailingSince)
	}
	if !ep.Watermark.IsZero() {
		w := ts(ep.Watermark)
		v.Watermark = &w
	}
	if !ep.PreviousSecretExpiresAt.IsZero() && now.Before(ep.PreviousSecretExpiresAt) {
		v.PreviousSecretExpiresAt = ts(ep.PreviousSecretExpiresAt)
	}
	return v
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func (h *Handler) registerEndpoint(req *request) (response, error) {
	var b registerBody
	if err := decodeJSON(req.body, &b); err != nil {
		return response{}, err
	}
	res, err := h.deps.Endpoints.Register(req.Context(), req.principal.TenantID, app.RegisterInput{
		URL: b.URL, Events: b.Events, Secret: b.Secret, EndpointID: b.EndpointID, Version: b.Version,
	})
	if err != nil {
		return response{}, err
	}
	v := viewEndpoint(res.Endpoint, h.deps.Now())
	if res.SecretRotated {
		v.SecretEffectiveAt = ts(res.Endpoint.UpdatedAt.Add(domain.ConfigPropagation))
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
		if res.GeneratedSecret != nil {
			v.Secret = res.GeneratedSecret.Encode()
		}
	}
	resp := jsonResponse(status, v)
	if v.Secret != "" {
		resp.secret, resp.secretEndpoint = res.GeneratedSecret, res.Endpoint.ID
	}
	if res.Created {
		resp.header.Set("Location", BasePath+"/endpoints/"+res.Endpoint.ID)
	}
	return resp, nil
}

// listView is the GET /endpoints response.
type listView struct {
	Items      []endpointView `json:"items"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

func (h *Handler) listEndpoints(req *request) (response, error) {
	q, err := parseQuery(req.Request)
	if err != nil {
		return response{}, err
	}
	limit, err := limitParam(q, 1, 100, 50)
	if err != nil {
		return response{}, err
	}
	tenant := req.principal.TenantID
	after := ""
	c, err := cursorParam(q)
	if err != nil {
		return response{}, err
	}
	if c != "" {
		if after, err = openCursor(h.deps.CursorKey, tenant, c); err != nil {
			return response{}, err
		}
	}
	items, more, err := h.deps.Endpoints.List(req.Context(), tenant, limit, after)
	if err != nil {
		return response{}, err
	}
	now := h.deps.Now()
	out := listView{Items: make([]endpointView, 0, len(items))}
	for _, ep := range items {
		out.Items = append(out.Items, viewEndpoint(ep, now))
	}
	if more && len(items) > 0 {
		out.NextCursor = signCursor(h.deps.CursorKey, tenant, items[len(items)-1].ID)
	}
	return jsonResponse(http.StatusOK, out), nil
}

func (h *Handler) getEndpoint(req *request) (response, error) {
	ep, err := h.deps.Endpoints.Get(req.Context(), req.principal.TenantID, req.params["endpoint_id"])
	if err != nil {
		return response{}, err
	}
	return jsonResponse(http.StatusOK, viewEndpoint(ep, h.deps.Now())), nil
}

func (h *Handler) deleteEndpoint(req *request) (response, error) {
	q, err := parseQuery(req.Request)
	if err != nil {
		return response{}, err
	}
	// Parsed as strictly as every query: an empty or repeated version is refused, never
	// read as "no version check".
	v, present, err := queryParam(q, "version", false)
	if err != nil {
		return response{}, err
	}
	var version *int64
	if present {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return response{}, domain.Invalid("version", "version must be a positive integer")
		}
		version = &n
	}
	if err := h.deps.Endpoints.Delete(req.Context(), req.principal.TenantID, req.params["endpoint_id"], version); err != nil {
		return response{}, err
	}
	return noContent(), nil
}

// decodeNoBody accepts an empty body or an empty JSON object, the body of routes that take
// no fields; anything else is refused like any unknown field.
func decodeNoBody(body []byte) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	return decodeJSON(body, &struct{}{})
}

func (h *Handler) disableEndpoint(req *request) (response, error) {
	if err := decodeNoBody(req.body); err != nil {
		return response{}, err
	}
	ep, _, err := h.deps.Endpoints.Disable(req.Context(), req.principal.TenantID, req.params["endpoint_id"])
	if err != nil {
		return response{}, err
	}
	return jsonResponse(http.StatusOK, viewEndpoint(ep, h.deps.Now())), nil
}

func (h *Handler) enableEndpoint(req *request) (response, error) {
	if err := decodeNoBody(req.body); err != nil {
		return response{}, err
	}
	ep, err := h.deps.Endpoints.Enable(req.Context(), req.principal.TenantID, req.params["endpoint_id"])
	if err != nil {
		return response{}, err
	}
	return jsonResponse(http.StatusOK, viewEndpoint(ep, h.deps.Now())), nil
}
