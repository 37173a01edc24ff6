package api

import (
	"errors"
	"net/http"
)

// resendView is the answer to a resend: the job is queued.
type resendView struct {
	EndpointID string `json:"endpoint_id"`
	EventID    string `json:"event_id"`
	Status     string `json:"status"`
}

func needResends(d Deps) error {
	if d.Resends == nil {
		return errors.New("the Resends service is required")
	}
	return nil
}

func (h *Handler) resendDelivery(req *request) (response, error) {
	if err := decodeNoBody(req.body); err != nil {
		return response{}, err
	}
	endpointID, eventID := req.params["endpoint_id"], req.params["event_id"]
	if err := h.deps.Resends.Resend(req.Context(), req.principal.TenantID, endpointID, eventID); err != nil {
		return response{}, err
	}
	return jsonResponse(http.StatusAccepted, resendView{EndpointID: endpointID, EventID: eventID, Status: "queued"}), nil
}
