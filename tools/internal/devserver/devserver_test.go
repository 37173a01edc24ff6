package devserver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/app"
	"github.com/datajetty/webhooks/shared/auth"
	"github.com/datajetty/webhooks/shared/portal"
)

// devServer serves Root (an API handler with the GetReplay route, the portal, a
// stand-in issuer) on a loopback port through jsonErrorListener, as the tools do.
func devServer(t *testing.T) string {
	t.Helper()
	verifier, err := auth.NewVerifier(auth.Config{JWKSURL: "http://127.0.0.1:1/jwks", Issuer: "https://issuer.test/", Audience: "a"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := api.NewHandler(api.Deps{Auth: verifier, RateLimiter: unreachable{}, Replays: &app.Replays{}}, api.RouteGetReplay)
	if err != nil {
		t.Fatal(err)
	}
	page, err := portal.NewHandler(api.BasePath, "", api.RouteKeys())
	if err != nil {
		t.Fatal(err)
	}
	issuer := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"keys":[]}`)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(Root(h, page, issuer))
	go func() { _ = srv.Serve(Listener(ln)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

type unreachable struct{}

func (unreachable) Take(context.Context, string, string, int, time.Duration, time.Time) (app.RateDecision, error) {
	return app.RateDecision{}, errors.New("not reached in these tests")
}

// rawExchange writes raw bytes (one request or several) and reads the responses.
func rawExchange(t *testing.T, addr string, raw string, responses int) []*http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	var out []*http.Response
	for range responses {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading response %d: %v", len(out)+1, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(strings.NewReader(string(body)))
		out = append(out, resp)
	}
	return out
}

// contractError checks a response is the contract's error: status, JSON body with error,
// message and request_id, and the API's headers.
func contractError(t *testing.T, resp *http.Response, status int, code string) {
	t.Helper()
	var body struct {
		Error     string `json:"error"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &body); err != nil || resp.StatusCode != status || body.Error != code || body.Message == "" || body.RequestID == "" {
		t.Fatalf("got %d %q %s; want %d with the contract's %q body", resp.StatusCode, resp.Header.Get("Content-Type"), raw, status, code)
	}
	if resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("X-Request-Id") != body.RequestID || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers %v", resp.Header)
	}
}

// TestProtocolErrorsAreJSON: requests net/http refuses before any handler (raw CR or NUL in
// a header, a bad header name, headers over the limit, an unknown transfer encoding) are
// answered with the contract's error body, also after a good request on the connection.
func TestProtocolErrorsAreJSON(t *testing.T) {
	t.Parallel()
	addr := devServer(t)
	get := "GET " + api.BasePath + "/replays/rp_x HTTP/1.1\r\nHost: local\r\n"
	for name, raw := range map[string]string{
		"NUL in a header value":       get + "X-Trace: a\x00b\r\n\r\n",
		"CR in a header value":        get + "X-Trace: a\rb\r\n\r\n",
		"NUL in the Authorization":    get + "Authorization: Bearer x\x00y\r\n\r\n",
		"invalid header name":         get + "Bad Name: x\r\n\r\n",
		"no Host":                     "GET / HTTP/1.1\r\n\r\n",
		"malformed request line":      "GET\r\n\r\n",
		"unknown transfer encoding":   "POST / HTTP/1.1\r\nHost: local\r\nTransfer-Encoding: gzip\r\n\r\n",
		"headers over the size limit": get + "X-Big: " + strings.Repeat("b", http.DefaultMaxHeaderBytes+8192) + "\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			contractError(t, rawExchange(t, addr, raw, 1)[0], http.StatusBadRequest, "invalid_request")
		})
	}
	t.Run("after a good request on the same connection", func(t *testing.T) {
		resps := rawExchange(t, addr, get+"\r\n"+get+"X-Trace: \x00\r\n\r\n", 2)
		contractError(t, resps[0], http.StatusUnauthorized, "unauthorized")
		contractError(t, resps[1], http.StatusBadRequest, "invalid_request")
	})
}

// TestUnknownRoutesAreJSON: any path or method the server does not serve gets the
// contract's 404 or 405, not net/http's text or redirects; the portal and the issuer's keys
// are still served.
func TestUnknownRoutesAreJSON(t *testing.T) {
	t.Parallel()
	addr := devServer(t)
	for _, tc := range []struct {
		raw    string
		status int
		code   string
	}{
		{"GET / HTTP/1.1\r\nHost: local\r\n\r\n", 404, "not_found"},
		{"GET /favicon.ico HTTP/1.1\r\nHost: local\r\n\r\n", 404, "not_found"},
		{"GET //api/v1/x HTTP/1.1\r\nHost: local\r\n\r\n", 404, "not_found"},
		{"GET " + api.BasePath + "/../x HTTP/1.1\r\nHost: local\r\n\r\n", 404, "not_found"},
		{"GET " + api.BasePath + "/replays/ HTTP/1.1\r\nHost: local\r\n\r\n", 404, "not_found"},
		{"POST " + IssuerJWKSPath + " HTTP/1.1\r\nHost: local\r\nContent-Length: 0\r\n\r\n", 404, "not_found"},
		{"DELETE " + api.BasePath + "/replays/rp_x HTTP/1.1\r\nHost: local\r\n\r\n", 405, "invalid_request"},
		{"OPTIONS * HTTP/1.1\r\nHost: local\r\n\r\n", 404, "not_found"},
	} {
		t.Run(strings.SplitN(tc.raw, "\r\n", 2)[0], func(t *testing.T) {
			contractError(t, rawExchange(t, addr, tc.raw, 1)[0], tc.status, tc.code)
		})
	}
	for path, contentType := range map[string]string{
		api.BasePath + portal.Prefix + "/": "text/html; charset=utf-8",
		IssuerJWKSPath:                     "application/json",
	} {
		resp := rawExchange(t, addr, "GET "+path+" HTTP/1.1\r\nHost: local\r\n\r\n", 1)[0]
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != contentType {
			t.Fatalf("GET %s: %d %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
}
