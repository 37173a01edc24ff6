// Package devserver is the local HTTP server of the development tools (make dev, make
// schemathesis): one root handler for the API, the portal and the development issuer's
// keys, and a listener that makes net/http's own protocol errors the contract's JSON error.
package devserver

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/portal"
)

// IssuerPath is the development token issuer's URL path (its iss is the server's origin
// plus this), and IssuerJWKSPath where it publishes its keys.
const (
	IssuerPath     = "/dev-issuer"
	IssuerJWKSPath = IssuerPath + "/.well-known/jwks.json"
)

// Root routes the local server's requests: the development issuer's JWKS (GET), the
// portal's paths, and everything else to the API handler, which answers any path or method
// it does not serve with the contract's 404 or 405. (http.ServeMux would answer those, and
// unclean paths, with its own text and redirects.) issuer may be nil.
func Root(apiHandler, portalHandler, issuer http.Handler) http.Handler {
	portalPath := api.BasePath + portal.Prefix
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case issuer != nil && p == IssuerJWKSPath && r.Method == http.MethodGet:
			issuer.ServeHTTP(w, r)
		case p == portalPath || strings.HasPrefix(p, portalPath+"/"):
			portalHandler.ServeHTTP(w, r)
		default:
			apiHandler.ServeHTTP(w, r)
		}
	})
}

// NewServer is the local server: the handler answers everything, "OPTIONS *" included
// (net/http's own handler for it would answer an empty 200). Serve it on Listener(ln).
func NewServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, DisableGeneralOptionsHandler: true}
}

// Listener wraps ln so that net/http's own answers to requests it cannot parse (a raw CR, LF
// or NUL in a header, a malformed request line, headers over the limit, an unknown
// transfer encoding) the contract's JSON error, like every answer of the API. net/http
// writes those answers straight to the connection, before and without any handler, in one
// write of a fixed shape (text/plain, Connection: close); the wrapped connection rewrites
// exactly that write.
func Listener(ln net.Listener) net.Listener { return jsonErrorListener{ln} }

type jsonErrorListener struct{ net.Listener }

func (l jsonErrorListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return jsonErrorConn{c}, nil
}

type jsonErrorConn struct{ net.Conn }

// protocolErrorHeaders is what net/http puts between the status line and the text of the
// answers it writes itself (net/http server.go). A handler's response never contains it:
// its headers are sorted, so Connection comes before Content-Type, and a Date follows.
const protocolErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

func (c jsonErrorConn) Write(p []byte) (int, error) {
	resp, ok := jsonProtocolError(p)
	if !ok {
		return c.Conn.Write(p)
	}
	if _, err := c.Conn.Write(resp); err != nil {
		return 0, err
	}
	return len(p), nil
}

// jsonProtocolError turns one of net/http's protocol error answers into the contract's
// error as a complete HTTP/1.1 response. Its status is 400 whatever net/http chose (431 and
// 501 are not in the contract's error model, as 413 is not: decision 4).
func jsonProtocolError(p []byte) ([]byte, bool) {
	rest, ok := bytes.CutPrefix(p, []byte("HTTP/1.1 "))
	if !ok {
		return nil, false
	}
	statusLine, text, ok := bytes.Cut(rest, []byte(protocolErrorHeaders))
	if !ok || len(statusLine) < 3 {
		return nil, false
	}
	code, err := strconv.Atoi(string(statusLine[:3]))
	if err != nil || code < 400 {
		return nil, false
	}
	reason := strings.TrimSpace(string(text))
	// The text repeats the status ("400 Bad Request: invalid header name"); keep the detail.
	if _, detail, found := strings.Cut(reason, ": "); found {
		reason = detail
	}
	msg := "the request is not valid HTTP/1.1"
	switch {
	case code == http.StatusRequestHeaderFieldsTooLarge:
		msg = "the request's headers are too large"
	case code == http.StatusNotImplemented:
		msg = "the request's Transfer-Encoding is not supported"
	case reason != "" && !strings.HasPrefix(reason, strconv.Itoa(code)):
		msg += " (" + reason + ")"
	}
	id := domain.NewID("req_")
	status, body := api.RenderError(domain.Invalid("", "%s", msg), id)
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\nCache-Control: no-store\r\nConnection: close\r\nContent-Length: %d\r\nContent-Type: application/json\r\nX-Request-Id: %s\r\n\r\n",
		status, http.StatusText(status), len(body), id)
	b.Write(body)
	return b.Bytes(), true
}
