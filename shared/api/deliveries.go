package api

import (
	"net/http"

	"github.com/datajetty/webhooks/shared/domain"
)

// attemptView is one delivery attempt as the API shows it.
type attemptView struct {
	EventID       string `json:"event_id"`
	EventType     string `json:"event_type"`
	OccurredAt    string `json:"occurred_at"`
	Attempt       int    `json:"attempt"`
	Status        string `json:"status"`
	HTTPStatus    int    `json:"http_status,omitempty"`
	ErrorClass    string `json:"error_class,omitempty"`
	LatencyMS     int64  `json:"latency_ms"`
	AttemptedAt   string `json:"attempted_at"`
	NextAttemptAt string `json:"next_attempt_at,omitempty"`
	ReplayID      string `json:"replay_id,omitempty"`
	Test          bool   `json:"test,omitempty"`
	Resend        bool   `json:"resend,omitempty"`
}

// deliveriesView is the GET /endpoints/{endpoint_id}/deliveries response.
type deliveriesView struct {
	Items      []attemptView `json:"items"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

var deliveryFilters = map[string]domain.DeliveryStatus{
	"":          "",
	"succeeded": domain.DeliverySucceeded,
	"failed":    domain.DeliveryFailed,
	"pending":   domain.DeliveryPending,
	"dead":      domain.DeliveryDead,
	"skipped":   domain.DeliverySkipped,
}

func (h *Handler) listDeliveries(req *request) (response, error) {
	q, err := parseQuery(req.Request)
	if err != nil {
		return response{}, err
	}
	limit, err := limitParam(q, 1, 100, 50)
	if err != nil {
		return response{}, err
	}
	filter, _, err := queryParam(q, "status", false)
	if err != nil {
		return response{}, err
	}
	status, ok := deliveryFilters[filter]
	if !ok {
		return response{}, domain.Invalid("status", "status must be one of succeeded, failed, pending, dead, skipped")
	}
	tenant, endpointID := req.principal.TenantID, req.params["endpoint_id"]
	after := ""
	c, err := cursorParam(q)
	if err != nil {
		return response{}, err
	}
	if c != "" {
		// The cursor is bound to the tenant and to this endpoint's listing.
		if after, err = openCursor(h.deps.CursorKey, tenant+"\x00deliveries\x00"+endpointID, c); err != nil {
			return response{}, err
		}
	}
	items, next, err := h.deps.Deliveries.List(req.Context(), tenant, endpointID, status, limit, after)
	if err != nil {
		return response{}, err
	}
	out := deliveriesView{Items: make([]attemptView, 0, len(items))}
	for _, a := range items {
		v := attemptView{
			EventID: a.EventID, EventType: a.EventType, OccurredAt: ts(a.OccurredAt), Attempt: a.Number,
			Status: string(a.Status), HTTPStatus: a.HTTPStatus, ErrorClass: a.ErrorClass,
			LatencyMS: a.Latency.Milliseconds(), AttemptedAt: ts(a.AttemptedAt), ReplayID: a.ReplayID, Test: a.Test, Resend: a.Resend,
		}
		if !a.NextAt.IsZero() {
			v.NextAttemptAt = ts(a.NextAt)
		}
		out.Items = append(out.Items, v)
	}
	if next != "" {
		out.NextCursor = signCursor(h.deps.CursorKey, tenant+"\x00deliveries\x00"+endpointID, next)
	}
	return jsonResponse(http.StatusOK, out), nil
}
