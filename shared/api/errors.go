package api

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/datajetty/webhooks/shared/auth"
	"github.com/datajetty/webhooks/shared/domain"
)

// Error codes of the contract's error model.
const (
	CodeInvalidRequest  = "invalid_request"
	CodeUnauthorized    = "unauthorized"
	CodeForbidden       = "forbidden"
	CodeNotFound        = "not_found"
	CodeVersionConflict = "version_conflict"
	CodeRateLimited     = "rate_limited"
	CodeInternal        = "internal_error"
	CodeDependencyDown  = "dependency_down"
)

// errorBody is the JSON shape of every error response.
type errorBody struct {
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
	Field     string `json:"field,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// kindStatus maps the domain's error kinds to the contract's status and code.
var kindStatus = map[domain.Kind]struct {
	status int
	code   string
}{
	domain.KindInvalid:      {http.StatusBadRequest, CodeInvalidRequest},
	domain.KindUnauthorized: {http.StatusUnauthorized, CodeUnauthorized},
	domain.KindForbidden:    {http.StatusForbidden, CodeForbidden},
	domain.KindNotFound:     {http.StatusNotFound, CodeNotFound},
	domain.KindConflict:     {http.StatusConflict, CodeVersionConflict},
	domain.KindRateLimited:  {http.StatusTooManyRequests, CodeRateLimited},
	domain.KindUnavailable:  {http.StatusServiceUnavailable, CodeDependencyDown},
}

// retryAfterUnavailable is what a 503 asks the client to wait, in seconds.
const retryAfterUnavailable = "2"

// classify is the one place where an error becomes an HTTP status and contract code. The
// message of anything unexpected is replaced: clients never see internal error text.
func classify(err error) (int, errorBody) {
	if errors.Is(err, auth.ErrKeysUnavailable) {
		return http.StatusServiceUnavailable, errorBody{Error: CodeDependencyDown, Message: "token verification keys are temporarily unavailable"}
	}
	if errors.Is(err, auth.ErrUnauthorized) {
		return http.StatusUnauthorized, errorBody{Error: CodeUnauthorized, Message: err.Error()}
	}
	var de *domain.Error
	if !errors.As(err, &de) {
		return http.StatusInternalServerError, errorBody{Error: CodeInternal, Message: "internal error; quote the request_id when reporting it"}
	}
	m, ok := kindStatus[de.Kind]
	if !ok {
		return http.StatusInternalServerError, errorBody{Error: CodeInternal, Message: "internal error; quote the request_id when reporting it"}
	}
	return m.status, errorBody{Error: m.code, Message: de.Msg, Field: de.Field, Reason: de.Reason}
}

// errorResponse renders err, logging what the client does not see.
func (h *Handler) errorResponse(r *http.Request, reqID string, err error) response {
	status, body := classify(err)
	body.RequestID = reqID
	if status >= 500 {
		h.log.ErrorContext(r.Context(), "request failed", "request_id", reqID, "status", status, "error", err)
	}
	resp := jsonResponse(status, body)
	resp.reason = body.Reason
	switch status {
	case http.StatusUnauthorized:
		resp.header.Set("WWW-Authenticate", `Bearer realm="webhooks", error="invalid_token"`)
	case http.StatusServiceUnavailable:
		resp.header.Set("Retry-After", retryAfterUnavailable)
	}
	return resp
}

// RenderError renders err as the contract's error response: the status, and the JSON body
// (with request_id) every error of the API has. It is for code that answers outside the
// handler's pipeline (the Lambda adapter when an event cannot become a request, the local
// server's protocol errors), so those answers use the one error vocabulary too.
func RenderError(err error, requestID string) (int, []byte) {
	status, body := classify(err)
	body.RequestID = requestID
	resp := jsonResponse(status, body)
	return resp.status, resp.body
}

// logAttrs keeps per-request log lines uniform.
func logAttrs(reqID, route, tenant string, status int) []any {
	return []any{slog.String("request_id", reqID), slog.String("route", route), slog.String("tenant_id", tenant), slog.Int("status", status)}
}
