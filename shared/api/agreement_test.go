package api_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/dev/devstack"
	"github.com/datajetty/webhooks/shared/dev/testenv"
	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/portal"
)

// TestRoutesAgreeWithTemplateAndOpenAPI keeps the router, template.yaml (API Gateway
// routes and their scopes) and docs/openapi.yaml (paths, methods, operationIds, scopes)
// describing the same API. The tenant portal's routes (shared/portal) are the only other
// routes of the template: served by PortalFunction alone, without an authorizer (the page
// holds no secret), and not part of the JSON API that docs/openapi.yaml describes.
func TestRoutesAgreeWithTemplateAndOpenAPI(t *testing.T) {
	t.Parallel()
	root := testenv.RepoRoot()
	router := map[string]string{} // "METHOD path" → scope
	names := map[string]string{}  // "METHOD path" → route name
	for _, rt := range api.Routes() {
		k := rt.Method + " " + rt.FullPath()
		router[k], names[k] = rt.Scope, rt.Name
	}

	tpl, err := devstack.LoadTemplate(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	portalRoutes := map[string]bool{}
	for _, p := range portal.Paths {
		portalRoutes["GET "+api.BasePath+p] = true
	}
	fromTemplate := map[string]string{}
	fromPortal := map[string]string{} // "METHOD path" → function
	for id, res := range tpl.Resources {
		if res.Type != "AWS::Serverless::Function" {
			continue
		}
		events, _ := res.Properties["Events"].(map[string]any)
		for _, raw := range events {
			ev, _ := raw.(map[string]any)
			if ev["Type"] != "HttpApi" {
				continue
			}
			p, _ := ev["Properties"].(map[string]any)
			k := fmt.Sprintf("%v %v", p["Method"], p["Path"])
			authz, _ := p["Auth"].(map[string]any)
			if portalRoutes[k] {
				if authz["Authorizer"] != "NONE" || authz["AuthorizationScopes"] != nil {
					t.Errorf("%s (%s): the portal's routes take no authorizer (Auth.Authorizer: NONE), got %v", k, id, authz)
				}
				fromPortal[k] = id
				continue
			}
			if authz["Authorizer"] == "NONE" {
				t.Errorf("%s (%s): only the portal's routes may go without the authorizer", k, id)
			}
			scopes, _ := authz["AuthorizationScopes"].([]any)
			if len(scopes) != 1 {
				t.Errorf("%s (%s): want exactly one authorization scope, got %v", k, id, scopes)
				continue
			}
			fromTemplate[k] = fmt.Sprint(scopes[0])
		}
	}

	for k := range portalRoutes {
		if fromPortal[k] != "PortalFunction" {
			t.Errorf("%s: served by %q in template.yaml, want PortalFunction", k, fromPortal[k])
		}
	}

	raw, err := os.ReadFile(filepath.Join(root, "docs", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string                `yaml:"operationId"`
			Security    []map[string][]string `yaml:"security"`
		} `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	fromOpenAPI := map[string]string{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			k := strings.ToUpper(method) + " " + path
			if names[k] != "" && op.OperationID != names[k] {
				t.Errorf("%s: operationId %q, router name %q", k, op.OperationID, names[k])
			}
			var scopes []string
			for _, req := range op.Security {
				for _, s := range req {
					scopes = append(scopes, s...)
				}
			}
			fromOpenAPI[k] = strings.Join(scopes, " ")
		}
	}

	for what, got := range map[string]map[string]string{"template.yaml": fromTemplate, "docs/openapi.yaml": fromOpenAPI} {
		if a, b := keys(router), keys(got); a != b {
			t.Errorf("routes differ:\n router: %s\n %s: %s", a, what, b)
		}
		for k, scope := range router {
			if got[k] != scope {
				t.Errorf("%s in %s: scope %q, router %q", k, what, got[k], scope)
			}
		}
	}

	// The portal page draws an action only when routes.json lists its route
	// (offers('METHOD', '/path') in its modules): each route it names must be one the
	// router has, or that action would silently never appear.
	page, err := portal.NewHandler(api.BasePath, "", api.RouteKeys())
	if err != nil {
		t.Fatal(err)
	}
	offers := regexp.MustCompile(`offers\('([A-Z]+)', '(/[^']*)'\)`)
	named := 0
	for _, file := range page.Files() {
		body, _ := page.Asset(file)
		for _, m := range offers.FindAllStringSubmatch(string(body), -1) {
			named++
			if k := m[1] + " " + api.BasePath + m[2]; router[k] == "" {
				t.Errorf("portal %s offers an action on %s, which the router does not have", file, k)
			}
		}
	}
	if named < 8 {
		t.Errorf("found %d offers(...) in the portal's modules; the pattern no longer matches how they ask", named)
	}
}

func keys(m map[string]string) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

// openAPIDoc is the part of docs/openapi.yaml the agreement tests below read.
type openAPIDoc struct {
	Components struct {
		Parameters map[string]struct {
			Schema struct {
				Pattern string `yaml:"pattern"`
			} `yaml:"schema"`
		} `yaml:"parameters"`
		Schemas map[string]struct {
			Properties map[string]struct {
				Enum      []string `yaml:"enum"`
				Pattern   string   `yaml:"pattern"`
				MinLength *int     `yaml:"minLength"`
			} `yaml:"properties"`
		} `yaml:"schemas"`
	} `yaml:"components"`
}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestErrorReasonsAgreeWithOpenAPI: the Error schema's reason enum is exactly the reasons
// the code can put in an error body.
func TestErrorReasonsAgreeWithOpenAPI(t *testing.T) {
	t.Parallel()
	got := loadOpenAPI(t).Components.Schemas["Error"].Properties["reason"].Enum
	want := slices.Clone(domain.Reasons)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("Error.reason enum %v, the code's reasons %v", got, want)
	}
}

// TestCursorFormatAgreesWithOpenAPI: the cursor pattern the OpenAPI declares (for the
// parameter and for next_cursor) matches every cursor the service issues, and a cursor that
// does not match it is refused.
func TestCursorFormatAgreesWithOpenAPI(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	param := doc.Components.Parameters["Cursor"].Schema.Pattern
	re, err := regexp.Compile(param)
	if err != nil || param == "" {
		t.Fatalf("cursor pattern %q: %v", param, err)
	}
	// The parameter also takes an empty value (the first page); an issued cursor never is.
	if !re.MatchString("") {
		t.Errorf("the cursor parameter's pattern %s does not allow the empty value the code accepts", param)
	}
	var issued []*regexp.Regexp
	for _, schema := range []string{"listView", "deliveriesView"} {
		p := doc.Components.Schemas[schema].Properties["next_cursor"].Pattern
		nre, err := regexp.Compile(p)
		if err != nil || p == "" || nre.MatchString("") {
			t.Fatalf("%s.next_cursor pattern %q must be a pattern of non-empty cursors (%v)", schema, p, err)
		}
		issued = append(issued, nre)
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	for _, pos := range []string{"e", domain.NewID(domain.EndpointIDPrefix), "2026-11-27T12:00:00.000000001Z#evt_1#3", strings.Repeat("\xff", 300)} {
		c := api.SignCursor(key, "acme", pos)
		for _, r := range append(issued, re) {
			if !r.MatchString(c) {
				t.Errorf("issued cursor %q does not match the OpenAPI pattern %s", c, r)
			}
		}
		if got, err := api.OpenCursor(key, "acme", c); err != nil || got != pos {
			t.Errorf("cursor for %q reopens as %q, %v", pos, got, err)
		}
	}
	for _, bad := range []string{".", "abc", "abc.def", "a=b.cccccccccccccccccccccc"} {
		if re.MatchString(bad) {
			continue
		}
		if _, err := api.OpenCursor(key, "acme", bad); err == nil {
			t.Errorf("cursor %q does not match the pattern but is accepted", bad)
		}
	}
}

// TestReplayBodyEmptyEndpointIDAgreesWithOpenAPI: the OpenAPI says an empty endpoint_id is
// not an id (minLength 1, 400), not a malformed one (404); the code answers 400.
func TestReplayBodyEmptyEndpointIDAgreesWithOpenAPI(t *testing.T) {
	t.Parallel()
	if ml := loadOpenAPI(t).Components.Schemas["replayBody"].Properties["endpoint_id"].MinLength; ml == nil || *ml != 1 {
		t.Fatalf("replayBody.endpoint_id minLength %v, want 1", ml)
	}
	w := newWorld(t)
	c := w.server(serverOpts{})
	r := c.do("POST", "/replay", "acme", map[string]any{"endpoint_id": "", "from": nowMinus(1)}, nil)
	expectError(t, r, http.StatusBadRequest, "invalid_request", "endpoint_id is required")
}
