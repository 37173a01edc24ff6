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
	body := errorBody{Message: de.Msg, Field: de.Field, Reason: de.Reason}
	switch de.Kind {
	case domain.KindInvalid:
		body.Error = CodeInvalidRequest
		return http.StatusBadRequest, body
	case domain.KindUnauthorized:
		body.Error = CodeUnauthorized
		return http.StatusUnauthorized, body
	case domain.KindForbidden:
		body.Error = CodeForbidden
		return http.StatusForbidden, body
	case domain.KindNotFound:
		body.Error = CodeNotFound
		return http.StatusNotFound, body
	case domain.KindConflict:
		body.Error = CodeVersionConflict
		return http.StatusConflict, body
	case domain.KindRateLimited:
		body.Error = CodeRateLimited
		return http.StatusTooManyRequests, body
	case domain.KindUnavailable:
		body.Error = CodeDependencyDown
		return http.StatusServiceUnavailable, body
	}
	return http.StatusInternalServerError, errorBody{Error: CodeInternal, Message: "internal error; quote the request_id when reporting it"}
}

// errorResponse renders err, logging what the client does not see.
func (h *Handler) errorResponse(r *http.Request, reqID string, err error) response {
	status, body := classify(err)
	body.RequestID = reqID
	if status >= 500 {
		h.log.ErrorContext(r.Context(), "request failed", "request_id", reqID, "status", status, "error", err)
	}
	resp := jsonResponse(status, body)
	switch status {
	case http.StatusUnauthorized:
		resp.header.Set("WWW-Authenticate", `Bearer realm="webhooks", error="invalid_token"`)
	case http.StatusServiceUnavailable:
		resp.header.Set("Retry-After", retryAfterUnavailable)
	}
	return resp
}

// logAttrs keeps per-request log lines uniform.
func logAttrs(reqID, route, tenant string, status int) []any {
	return []any{slog.String("request_id", reqID), slog.String("route", route), slog.String("tenant_id", tenant), slog.Int("status", status)}
}
