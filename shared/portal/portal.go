// Package portal serves the tenant portal: a static web page (HTML, CSS and JavaScript
// modules, no build step) embedded in the binary, that manages a tenant's webhooks through
// the JSON API on the same origin. The page holds no secret and needs no authentication to
// be fetched: the tenant's token reaches it in the URL fragment, which browsers never send
// to a server, and the page sends it as the bearer of its API calls. What this handler adds
// is the security policy every response carries (a strict Content-Security-Policy with
// Trusted Types, nosniff, no referrer) and revalidation by ETag.
package portal

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"
)

// Prefix is the portal's path relative to the API's base path: the page is
// {base}/portal/, its assets {base}/portal/{file}.
const Prefix = "/portal"

// Paths are the portal's routes relative to the API's base path, in API Gateway's syntax:
// the bare prefix (redirected to the page) and one asset segment. The template's
// PortalFunction serves exactly these (shared/api's agreement test checks it).
var Paths = []string{Prefix, Prefix + "/{file}"}

// DefaultFrameAncestors forbids embedding in a frame: a platform that embeds the portal
// names its own origin (template parameter PortalFrameAncestors).
const DefaultFrameAncestors = "'none'"

//go:embed static
var static embed.FS

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the portal under basePath + Prefix.
type Handler struct {
	prefix string // basePath + Prefix
	assets map[string]asset
	header http.Header // security headers of every response
}

// RoutesFile is the asset that lists the API operations this service offers, as
// {"routes": ["METHOD /path", ...]} with paths relative to the base path in the router's
// syntax ("POST /endpoints/{endpoint_id}/disable"). The page reads it before drawing and
// offers only the actions whose route is listed, so no button leads to a route the
// service lacks.
const RoutesFile = "routes.json"

// NewHandler returns the portal handler for the API served at basePath, framable only by
// frameAncestors (a CSP source list; "" means DefaultFrameAncestors), for a service that
// offers the API operations routes ("METHOD /path", relative to basePath; shared/api's
// RouteKeys).
func NewHandler(basePath, frameAncestors string, routes []string) (*Handler, error) {
	if frameAncestors == "" {
		frameAncestors = DefaultFrameAncestors
	}
	fa, err := ParseFrameAncestors(frameAncestors)
	if err != nil {
		return nil, err
	}
	h := &Handler{prefix: strings.TrimSuffix(basePath, "/") + Prefix, assets: map[string]asset{}, header: securityHeaders(fa)}
	files, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	err = fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.Contains(name, "/") {
			return fmt.Errorf("portal: %s: assets must sit directly in static/ (one path segment)", name)
		}
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			return fmt.Errorf("portal: %s: no content type for %q", name, path.Ext(name))
		}
		body, err := fs.ReadFile(files, name)
		if err != nil {
			return err
		}
		h.assets[name] = newAsset(body, ct)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, ok := h.assets[indexFile]; !ok {
		return nil, errors.New("portal: no " + indexFile)
	}
	if _, ok := h.assets[RoutesFile]; ok {
		return nil, errors.New("portal: " + RoutesFile + " is generated, not a static file")
	}
	list, err := routesJSON(routes)
	if err != nil {
		return nil, err
	}
	h.assets[RoutesFile] = newAsset(list, contentTypes[".json"])
	return h, nil
}

const indexFile = "index.html"

func newAsset(body []byte, contentType string) asset {
	sum := sha256.Sum256(body)
	return asset{body: body, contentType: contentType, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
}

// routesJSON is the body of RoutesFile: the routes, checked and sorted.
func routesJSON(routes []string) ([]byte, error) {
	list := make([]string, 0, len(routes))
	for _, r := range routes {
		method, p, ok := strings.Cut(r, " ")
		if !ok || method == "" || method != strings.ToUpper(method) || !strings.HasPrefix(p, "/") || strings.ContainsAny(p, " \t") {
			return nil, fmt.Errorf("portal: route %q is not \"METHOD /path\"", r)
		}
		list = append(list, r)
	}
	sort.Strings(list)
	return json.Marshal(struct {
		Routes []string `json:"routes"`
	}{list})
}

// contentTypes are the only kinds of file the portal ships; each is served with its exact
// type (and nosniff), so a browser never guesses.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".json": "application/json",
}

// Files lists the embedded assets by name (tests and docs).
func (h *Handler) Files() []string {
	names := make([]string, 0, len(h.assets))
	for n := range h.assets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Asset returns an embedded file's content (tests).
func (h *Handler) Asset(name string) ([]byte, bool) {
	a, ok := h.assets[name]
	return a.body, ok
}

// ContentSecurityPolicy is the policy of every portal response for the given frame
// ancestors: nothing but this origin's own scripts, styles, images and API; no inline code,
// no plugins, no <base>, no form submissions; DOM sinks that parse HTML (innerHTML and the
// like) refuse strings (Trusted Types with no policy), so even a mistaken innerHTML
// assignment cannot turn attacker-controlled text into markup.
func ContentSecurityPolicy(frameAncestors string) string {
	return strings.Join([]string{
		"default-src 'none'",
		"script-src 'self'",
		"style-src 'self'",
		"connect-src 'self'",
		"img-src 'self'",
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors " + frameAncestors,
		"require-trusted-types-for 'script'",
		"trusted-types 'none'",
	}, "; ")
}

func securityHeaders(frameAncestors string) http.Header {
	h := http.Header{}
	h.Set("Content-Security-Policy", ContentSecurityPolicy(frameAncestors))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
	// For browsers that predate frame-ancestors; it can only say "nobody" or "this origin".
	switch frameAncestors {
	case "'none'":
		h.Set("X-Frame-Options", "DENY")
	case "'self'":
		h.Set("X-Frame-Options", "SAMEORIGIN")
	}
	return h
}

// ServeHTTP serves {prefix} (a redirect to {prefix}/), {prefix}/ (the page) and
// {prefix}/{file} (an asset). GET and HEAD only.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for k, v := range h.header {
		w.Header()[k] = v
	}
	rest, ok := strings.CutPrefix(r.URL.Path, h.prefix)
	if !ok || (rest != "" && !strings.HasPrefix(rest, "/")) {
		plain(w, http.StatusNotFound, "not found")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		plain(w, http.StatusMethodNotAllowed, "the portal is read with GET")
		return
	}
	if rest == "" {
		// Relative links need the trailing slash; the fragment (#token=…) survives the
		// redirect because browsers carry it over when Location has none.
		target := h.prefix + "/"
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		w.Header().Set("Location", target)
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusMovedPermanently)
		return
	}
	name := strings.TrimPrefix(rest, "/")
	if name == "" {
		name = indexFile
	}
	a, found := h.assets[name]
	if !found {
		plain(w, http.StatusNotFound, "not found")
		return
	}
	w.Header().Set("Content-Type", a.contentType)
	// Revalidate every time (a deploy changes the files at once), but a 304 costs no body.
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("ETag", a.etag)
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(a.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(a.body)
	}
}

func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

func plain(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = fmt.Fprintln(w, msg)
}
