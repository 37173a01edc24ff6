package portal_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/datajetty/webhooks/shared/portal"
)

const base = "/api/v1/data-consumption/webhooks"

func newHandler(t *testing.T, frameAncestors string) *portal.Handler {
	t.Helper()
	h, err := portal.NewHandler(base, frameAncestors, []string{"GET /endpoints", "POST /endpoints/{endpoint_id}/disable"})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func get(h http.Handler, method, target string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestServesPageAssetsAndRedirect(t *testing.T) {
	t.Parallel()
	h := newHandler(t, "")
	cases := []struct {
		method, target string
		status         int
		contentType    string
		bodyHas        string
		location       string
	}{
		{"GET", base + "/portal/", 200, "text/html; charset=utf-8", `<script type="module" src="app.js"></script>`, ""},
		{"GET", base + "/portal/index.html", 200, "text/html; charset=utf-8", "<main", ""},
		{"GET", base + "/portal/app.js", 200, "text/javascript; charset=utf-8", "import", ""},
		{"GET", base + "/portal/portal.css", 200, "text/css; charset=utf-8", "--accent", ""},
		{"GET", base + "/portal/icon.svg", 200, "image/svg+xml", "<svg", ""},
		{"GET", base + "/portal", 301, "", "", base + "/portal/"},
		{"GET", base + "/portal?x=1", 301, "", "", base + "/portal/?x=1"},
		{"GET", base + "/portal/nope.js", 404, "text/plain; charset=utf-8", "not found", ""},
		{"GET", base + "/portal/../endpoints", 404, "text/plain; charset=utf-8", "", ""},
		{"GET", base + "/portalx", 404, "text/plain; charset=utf-8", "", ""},
		{"GET", base + "/portal/static/app.js", 404, "text/plain; charset=utf-8", "", ""},
		{"POST", base + "/portal/", 405, "text/plain; charset=utf-8", "", ""},
	}
	for _, c := range cases {
		w := get(h, c.method, c.target)
		if w.Code != c.status {
			t.Errorf("%s %s: status %d, want %d", c.method, c.target, w.Code, c.status)
			continue
		}
		if c.contentType != "" && w.Header().Get("Content-Type") != c.contentType {
			t.Errorf("%s %s: Content-Type %q, want %q", c.method, c.target, w.Header().Get("Content-Type"), c.contentType)
		}
		if !strings.Contains(w.Body.String(), c.bodyHas) {
			t.Errorf("%s %s: body lacks %q", c.method, c.target, c.bodyHas)
		}
		if w.Header().Get("Location") != c.location {
			t.Errorf("%s %s: Location %q, want %q", c.method, c.target, w.Header().Get("Location"), c.location)
		}
		// Every answer, errors included, carries the security headers.
		if csp := w.Header().Get("Content-Security-Policy"); csp != portal.ContentSecurityPolicy("'none'") {
			t.Errorf("%s %s: CSP %q", c.method, c.target, csp)
		}
		for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"} {
			if w.Header().Get(k) != v {
				t.Errorf("%s %s: %s = %q, want %q", c.method, c.target, k, w.Header().Get(k), v)
			}
		}
		if w.Header().Get("Set-Cookie") != "" {
			t.Errorf("%s %s: sets a cookie", c.method, c.target)
		}
	}
	if w := get(h, "POST", base+"/portal/"); w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("405 without Allow: %v", w.Header())
	}
}

// TestRoutesFileListsWhatTheServiceOffers: the page learns the API's routes from
// routes.json, exactly as given, sorted; a malformed route is refused at construction.
func TestRoutesFileListsWhatTheServiceOffers(t *testing.T) {
	t.Parallel()
	w := get(newHandler(t, ""), "GET", base+"/portal/"+portal.RoutesFile)
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("%s: %d %v", portal.RoutesFile, w.Code, w.Header())
	}
	if got, want := w.Body.String(), `{"routes":["GET /endpoints","POST /endpoints/{endpoint_id}/disable"]}`; got != want {
		t.Errorf("%s = %s, want %s", portal.RoutesFile, got, want)
	}
	h, err := portal.NewHandler(base, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := get(h, "GET", base+"/portal/"+portal.RoutesFile).Body.String(); got != `{"routes":[]}` {
		t.Errorf("no routes: %s", got)
	}
	for _, bad := range []string{"endpoints", "get /endpoints", "GET endpoints", "GET"} {
		if _, err := portal.NewHandler(base, "", []string{bad}); err == nil {
			t.Errorf("route %q accepted", bad)
		}
	}
}

func TestContentSecurityPolicyIsStrict(t *testing.T) {
	t.Parallel()
	csp := portal.ContentSecurityPolicy("https://platform.example.com")
	for _, d := range []string{
		"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "img-src 'self'",
		"base-uri 'none'", "form-action 'none'", "frame-ancestors https://platform.example.com",
		"require-trusted-types-for 'script'", "trusted-types 'none'",
	} {
		if !strings.Contains(csp, d) {
			t.Errorf("CSP lacks %q: %s", d, csp)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "data:", "*", "http:", "https:"} {
		if strings.Contains(strings.ReplaceAll(csp, "https://platform.example.com", ""), bad) {
			t.Errorf("CSP allows %q: %s", bad, csp)
		}
	}
	w := get(newHandler(t, "https://platform.example.com  'self'"), "GET", base+"/portal/")
	if got := w.Header().Get("Content-Security-Policy"); !strings.Contains(got, "frame-ancestors https://platform.example.com 'self';") {
		t.Errorf("frame-ancestors not taken from the option: %s", got)
	}
	if w.Header().Get("X-Frame-Options") != "" {
		t.Errorf("X-Frame-Options %q would forbid the platform's frame", w.Header().Get("X-Frame-Options"))
	}
	if got := get(newHandler(t, "'self'"), "GET", base+"/portal/").Header().Get("X-Frame-Options"); got != "SAMEORIGIN" {
		t.Errorf("'self': X-Frame-Options %q", got)
	}
}

func TestRevalidationAndHead(t *testing.T) {
	t.Parallel()
	h := newHandler(t, "")
	w := get(h, "GET", base+"/portal/app.js")
	etag := w.Header().Get("ETag")
	if etag == "" || w.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("ETag %q, Cache-Control %q", etag, w.Header().Get("Cache-Control"))
	}
	if w := get(h, "GET", base+"/portal/app.js", "If-None-Match", etag); w.Code != 304 || w.Body.Len() != 0 {
		t.Errorf("If-None-Match: %d, %d bytes", w.Code, w.Body.Len())
	}
	if w := get(h, "GET", base+"/portal/app.js", "If-None-Match", `"other"`); w.Code != 200 {
		t.Errorf("stale If-None-Match: %d", w.Code)
	}
	if w := get(h, "HEAD", base+"/portal/"); w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("Content-Length") == "0" {
		t.Errorf("HEAD: %d, %d bytes, Content-Length %q", w.Code, w.Body.Len(), w.Header().Get("Content-Length"))
	}
}

func TestParseFrameAncestors(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		"'none'":                            "'none'",
		" 'self' ":                          "'self'",
		"https://platform.example.com":      "https://platform.example.com",
		"https://*.example.com:8443 'self'": "https://*.example.com:8443 'self'",
		"http://localhost:3000":             "http://localhost:3000",
		"http://127.0.0.1:8080":             "http://127.0.0.1:8080",
	}
	for in, want := range good {
		got, err := portal.ParseFrameAncestors(in)
		if err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{
		"", "*", "https:", "'none' 'self'", "'unsafe-inline'", "https://a.example.com; script-src *",
		"https://a.example.com,https://b.example.com", "http://platform.example.com", "ftp://x.example.com",
		"https://example.com/path", "https://user@example.com", "https://*", "https://a.*.example.com",
		"https://exa mple.com", "https://example.com:99999", "javascript:alert(1)", "data:",
	} {
		if got, err := portal.ParseFrameAncestors(bad); err == nil {
			t.Errorf("%q accepted as %q", bad, got)
		}
	}
	if _, err := portal.NewHandler(base, "*", nil); err == nil {
		t.Error("NewHandler accepted frame ancestors *")
	}
}

// The page's own code obeys the policy it is served with, and more: no inline script or
// style, no handler attributes, no third-party resources, and no DOM sink that parses HTML
// (every attacker-controlled string must reach the page as text).
func TestAssetsHaveNoInlineCodeNoExternalOriginsNoHTMLSinks(t *testing.T) {
	t.Parallel()
	h := newHandler(t, "")
	if len(h.Files()) < 5 {
		t.Fatalf("assets: %v", h.Files())
	}
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	sinks := regexp.MustCompile(`\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setTimeout\(\s*['"\x60]|DOMParser|createContextualFragment|srcdoc`)
	imports := regexp.MustCompile(`(?m)^\s*import\s[^'"]*['"]([^'"]+)['"]`)
	for _, name := range h.Files() {
		body, _ := h.Asset(name)
		// The SVG namespace is a name, not a resource; example.com (RFC 2606) appears in
		// placeholders only.
		text := strings.ReplaceAll(string(body), "http://www.w3.org/2000/svg", "")
		if m := external.FindString(strings.ReplaceAll(text, "https://example.com", "")); m != "" {
			t.Errorf("%s refers to another origin: %q", name, m)
		}
		switch {
		case strings.HasSuffix(name, ".html"):
			for _, m := range regexp.MustCompile(`(?is)<script([^>]*)>(.*?)</script>`).FindAllStringSubmatch(text, -1) {
				if !strings.Contains(m[1], " src=") || strings.TrimSpace(m[2]) != "" {
					t.Errorf("%s: inline script: %q", name, m[0])
				}
			}
			for _, re := range []string{`<style`, `\sstyle=`, `\son[a-z]+=`, `javascript:`} {
				if m := regexp.MustCompile(`(?i)` + re).FindString(text); m != "" {
					t.Errorf("%s: inline code or style: %q", name, m)
				}
			}
		case strings.HasSuffix(name, ".js"):
			if m := sinks.FindString(text); m != "" {
				t.Errorf("%s uses an HTML sink or eval: %q", name, m)
			}
			for _, m := range imports.FindAllStringSubmatch(text, -1) {
				dep := strings.TrimPrefix(m[1], "./")
				if _, ok := h.Asset(dep); !ok || strings.Contains(dep, "/") {
					t.Errorf("%s imports %q, which is not an asset of the portal", name, m[1])
				}
			}
		}
	}
}
