package api

import (
	"net/http"
	"time"

	"github.com/datajetty/webhooks/shared/app"
	"github.com/datajetty/webhooks/shared/domain"
)

// replayBody is the POST /replay request.
type replayBody struct {
	EndpointID string `json:"endpoint_id"`
	From       string `json:"from"`
	OnlyFailed bool   `json:"only_failed"`
}

// replayView is a replay as the API shows it.
type replayView struct {
	ReplayID       string `json:"replay_id"`
	EndpointID     string `json:"endpoint_id"`
	Status         string `json:"status"`
	From           string `json:"from"`
	Until          string `json:"until"`
	OnlyFailed     bool   `json:"only_failed"`
	EventsEnqueued int64  `json:"events_enqueued"`
	Error          string `json:"error,omitempty"`
	CreatedAt      string `json:"created_at"`
	UpdatedAt      string `json:"updated_at"`
}

func viewReplay(r domain.Replay) replayView {
	return replayView{
		ReplayID: r.ID, EndpointID: r.EndpointID, Status: string(r.Status),
		From: ts(r.From), Until: ts(r.Until), OnlyFailed: r.OnlyFailed, EventsEnqueued: r.Enqueued, Error: r.Error,
		CreatedAt: ts(r.CreatedAt), UpdatedAt: ts(r.UpdatedAt),
	}
}

func (h *Handler) startReplay(req *request) (response, error) {
	var b replayBody
	if err := decodeJSON(req.body, &b); err != nil {
		return response{}, err
	}
	if b.EndpointID == "" {
		return response{}, domain.Invalid("endpoint_id", "endpoint_id is required")
	}
	in := app.ReplayInput{OnlyFailed: b.OnlyFailed}
	if b.From != "" {
		from, err := time.Parse(time.RFC3339Nano, b.From)
		if err != nil {
			return response{}, domain.Invalid("from", "from must be an RFC 3339 timestamp like 2025-10-05T06:00:00Z")
		}
		in.From = &from
	}
	r, err := h.deps.Replays.StartWith(req.Context(), req.principal.TenantID, b.EndpointID, in)
	if err != nil {
		return response{}, err
	}
	resp := jsonResponse(http.StatusAccepted, viewReplay(r))
	resp.header.Set("Location", BasePath+"/replays/"+r.ID)
	return resp, nil
}

func (h *Handler) getReplay(req *request) (response, error) {
	r, err := h.deps.Replays.Get(req.Context(), req.principal.TenantID, req.params["replay_id"])
	if err != nil {
		return response{}, err
	}
	return jsonResponse(http.StatusOK, viewReplay(r)), nil
}
