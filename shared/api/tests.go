package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/datajetty/webhooks/shared/app"
)

// testBody is the optional POST /endpoints/{endpoint_id}/test request.
type testBody struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// testView is the answer to a test send: the attempt as it happened.
type testView struct {
	EventID           string `json:"event_id"`
	EventType         string `json:"event_type"`
	Status            string `json:"status"` // succeeded or failed
	HTTPStatus        int    `json:"http_status,omitempty"`
	ErrorClass        string `json:"error_class,omitempty"`
	LatencyMS         int64  `json:"latency_ms"`
	ResponseExcerpt   string `json:"response_excerpt,omitempty"`
	ResponseTruncated bool   `json:"response_truncated"`
	AttemptedAt       string `json:"attempted_at"`
}

func needTests(d Deps) error {
	if d.Tests == nil {
		return errors.New("the Tests service is required")
	}
	return nil
}

func (h *Handler) testEndpoint(req *request) (response, error) {
	var b testBody
	if len(strings.TrimSpace(string(req.body))) > 0 {
		if err := decodeJSON(req.body, &b); err != nil {
			return response{}, err
		}
	}
	out, err := h.deps.Tests.Send(req.Context(), req.principal.TenantID, req.params["endpoint_id"], app.TestInput{Type: b.Type, Data: b.Data})
	if err != nil {
		return response{}, err
	}
	if out.RecordErr != nil {
		h.log.WarnContext(req.Context(), "test send not recorded in the delivery log", "request_id", req.requestID, "error", out.RecordErr)
	}
	a := out.Attempt
	v := testView{
		EventID: a.EventID, EventType: a.EventType, Status: "succeeded", HTTPStatus: a.HTTPStatus, ErrorClass: a.ErrorClass,
		LatencyMS: a.Latency.Milliseconds(), ResponseTruncated: out.Truncated, AttemptedAt: ts(a.AttemptedAt),
		// The receiver's words, as text: invalid UTF-8 is replaced, JSON escapes the rest.
		ResponseExcerpt: strings.ToValidUTF8(string(out.Excerpt), "\uFFFD"),
	}
	if a.ErrorClass != "" {
		v.Status = "failed"
	}
	return jsonResponse(http.StatusOK, v), nil
}
