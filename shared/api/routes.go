package api

import (
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/datajetty/webhooks/shared/domain"
)

// Route names, used by the functions to enable their route.
const (
	RouteRegisterEndpoint = "RegisterEndpoint"
	RouteListEndpoints    = "ListEndpoints"
	RouteStartReplay      = "StartReplay"
	RouteGetReplay        = "GetReplay"
	RouteListDeliveries   = "ListDeliveries"
	RouteListEventTypes   = "ListEventTypes"
	RouteGetEndpoint      = "GetEndpoint"
	RouteDeleteEndpoint   = "DeleteEndpoint"
	RouteDisableEndpoint  = "DisableEndpoint"
	RouteEnableEndpoint   = "EnableEndpoint"
	RouteTestEndpoint     = "TestEndpoint"
	RouteResendDelivery   = "ResendDelivery"
)

// Scopes of the bearer token.
const (
	ScopeRead   = "webhooks:read"
	ScopeWrite  = "webhooks:write"
	ScopeReplay = "webhooks:replay"
)

// Route is one API operation. Routes() is the single list the router, the template check
// and the OpenAPI check read.
type Route struct {
	Name   string
	Method string
	// Path is relative to BasePath, with {param} segments.
	Path  string
	Scope string
	Limit string // rate-limit rule name, see Limits
	// OptionalBody: a POST whose body may be empty (then no Content-Type is needed).
	OptionalBody bool
	handle       func(*Handler, *request) (response, error)
	needs        func(Deps) error
}

// FullPath is the route's path including BasePath.
func (rt Route) FullPath() string { return BasePath + rt.Path }

func (rt Route) ready(d Deps) error {
	if rt.needs == nil {
		return nil
	}
	return rt.needs(d)
}

// Routes lists every API operation.
func Routes() []Route {
	return []Route{
		{Name: RouteRegisterEndpoint, Method: http.MethodPost, Path: "/endpoints", Scope: ScopeWrite, Limit: RuleDefault, handle: (*Handler).registerEndpoint, needs: needEndpoints},
		{Name: RouteListEndpoints, Method: http.MethodGet, Path: "/endpoints", Scope: ScopeRead, Limit: RuleDefault, handle: (*Handler).listEndpoints, needs: needList},
		{Name: RouteStartReplay, Method: http.MethodPost, Path: "/replay", Scope: ScopeReplay, Limit: RuleReplay, handle: (*Handler).startReplay, needs: needReplays},
		{Name: RouteGetReplay, Method: http.MethodGet, Path: "/replays/{replay_id}", Scope: ScopeRead, Limit: RuleDefault, handle: (*Handler).getReplay, needs: needReplays},
		{Name: RouteListDeliveries, Method: http.MethodGet, Path: "/endpoints/{endpoint_id}/deliveries", Scope: ScopeRead, Limit: RuleDefault, handle: (*Handler).listDeliveries, needs: needDeliveries},
		{Name: RouteGetEndpoint, Method: http.MethodGet, Path: "/endpoints/{endpoint_id}", Scope: ScopeRead, Limit: RuleDefault, handle: (*Handler).getEndpoint, needs: needEndpoints},
		{Name: RouteDeleteEndpoint, Method: http.MethodDelete, Path: "/endpoints/{endpoint_id}", Scope: ScopeWrite, Limit: RuleDefault, handle: (*Handler).deleteEndpoint, needs: needEndpoints},
		{Name: RouteDisableEndpoint, Method: http.MethodPost, Path: "/endpoints/{endpoint_id}/disable", Scope: ScopeWrite, Limit: RuleDefault, OptionalBody: true, handle: (*Handler).disableEndpoint, needs: needEndpoints},
		{Name: RouteEnableEndpoint, Method: http.MethodPost, Path: "/endpoints/{endpoint_id}/enable", Scope: ScopeWrite, Limit: RuleDefault, OptionalBody: true, handle: (*Handler).enableEndpoint, needs: needEndpoints},
		{Name: RouteTestEndpoint, Method: http.MethodPost, Path: "/endpoints/{endpoint_id}/test", Scope: ScopeReplay, Limit: RuleReplay, OptionalBody: true, handle: (*Handler).testEndpoint, needs: needTests},
		{Name: RouteResendDelivery, Method: http.MethodPost, Path: "/endpoints/{endpoint_id}/deliveries/{event_id}/resend", Scope: ScopeReplay, Limit: RuleReplay, OptionalBody: true, handle: (*Handler).resendDelivery, needs: needResends},
		{Name: RouteListEventTypes, Method: http.MethodGet, Path: "/event-types", Scope: ScopeRead, Limit: RuleDefault, handle: (*Handler).listEventTypes, needs: needEventTypes},
	}
}

func needEndpoints(d Deps) error {
	if d.Endpoints == nil {
		return errors.New("the Endpoints service is required")
	}
	return nil
}

func needList(d Deps) error {
	if err := needEndpoints(d); err != nil {
		return err
	}
	if len(d.CursorKey) < 16 {
		return errors.New("a CursorKey of at least 16 bytes is required")
	}
	return nil
}

func needDeliveries(d Deps) error {
	if d.Deliveries == nil {
		return errors.New("the Deliveries service is required")
	}
	if len(d.CursorKey) < 16 {
		return errors.New("a CursorKey of at least 16 bytes is required")
	}
	return nil
}

func needReplays(d Deps) error {
	if d.Replays == nil {
		return errors.New("the Replays service is required")
	}
	return nil
}

// methodNotAllowed renders as invalid_request with status 405 and an Allow header.
type methodNotAllowed struct {
	allow string
	err   error
}

func (m *methodNotAllowed) Error() string { return m.err.Error() }
func (m *methodNotAllowed) Unwrap() error { return m.err }

// match finds the enabled route for the request. A path that exists with another method is
// 405 with Allow; anything else is 404.
func (h *Handler) match(r *http.Request) (Route, map[string]string, error) {
	// The escaped path, so that a parameter holding an escaped "/" (an event id may) stays
	// one segment; matchPath unescapes each parameter.
	path := r.URL.EscapedPath()
	var allowed []string
	for _, rt := range h.routes {
		params, ok := matchPath(rt.FullPath(), path)
		if !ok {
			continue
		}
		if rt.Method == r.Method {
			return rt, params, nil
		}
		allowed = append(allowed, rt.Method)
	}
	if len(allowed) > 0 {
		sort.Strings(allowed)
		allow := strings.Join(allowed, ", ")
		return Route{}, nil, &methodNotAllowed{allow: allow, err: domain.Invalid("", "method %s is not allowed here; allowed: %s", r.Method, allow)}
	}
	return Route{}, nil, domain.NotFound("no route for %s %s", r.Method, r.URL.Path)
}

// matchPath matches a pattern like /a/{id} against an escaped path, returning the
// parameters unescaped.
func matchPath(pattern, path string) (map[string]string, bool) {
	ps := strings.Split(strings.Trim(pattern, "/"), "/")
	xs := strings.Split(strings.Trim(path, "/"), "/")
	if len(ps) != len(xs) || strings.HasSuffix(path, "/") {
		return nil, false
	}
	var params map[string]string
	for i, p := range ps {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			if xs[i] == "" {
				return nil, false
			}
			v, err := url.PathUnescape(xs[i])
			if err != nil || v == "" {
				return nil, false
			}
			if params == nil {
				params = map[string]string{}
			}
			params[p[1:len(p)-1]] = v
			continue
		}
		if p != xs[i] {
			return nil, false
		}
	}
	return params, true
}
