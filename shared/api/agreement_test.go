package api_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/dev/devstack"
	"github.com/datajetty/webhooks/shared/dev/testenv"
)

// TestRoutesAgreeWithTemplateAndOpenAPI keeps the router, template.yaml (API Gateway
// routes and their scopes) and docs/openapi.yaml (paths, methods, operationIds, scopes)
// describing the same API.
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
	fromTemplate := map[string]string{}
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
			scopes, _ := authz["AuthorizationScopes"].([]any)
			if len(scopes) != 1 {
				t.Errorf("%s (%s): want exactly one authorization scope, got %v", k, id, scopes)
				continue
			}
			fromTemplate[k] = fmt.Sprint(scopes[0])
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
}

func keys(m map[string]string) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}
