package api_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/dev/testenv"
	"github.com/datajetty/webhooks/shared/eventtypes"
)

func TestListEventTypesShowsTheCatalog(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.server(serverOpts{})
	r := c.do("GET", "/event-types", "acme", nil, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /event-types: %d %s", r.Status, r.Raw)
	}
	var got struct {
		Items []struct {
			Type        string          `json:"type"`
			Description string          `json:"description"`
			Example     json.RawMessage `json:"example"`
			Deprecated  *bool           `json:"deprecated"`
		} `json:"items"`
	}
	if err := json.Unmarshal(r.Raw, &got); err != nil {
		t.Fatal(err)
	}
	want := eventtypes.Builtin().Types()
	if len(got.Items) != len(want) {
		t.Fatalf("%d items, the catalog has %d: %s", len(got.Items), len(want), r.Raw)
	}
	for i, it := range got.Items {
		if it.Type != want[i].Name || it.Description != want[i].Description || string(it.Example) != string(want[i].Example) ||
			it.Deprecated == nil || *it.Deprecated != want[i].Deprecated {
			t.Errorf("item %d = %+v, want %+v (deprecated always present)", i, it, want[i])
		}
	}
	var raw map[string][]map[string]any
	_ = json.Unmarshal(r.Raw, &raw)
	for _, it := range raw["items"] {
		if _, leak := it["source"]; leak || len(it) != 4 {
			t.Fatalf("an item has other fields than type, description, example, deprecated: %v", it)
		}
	}
}

func TestRegisterRefusesPatternsMatchingNoDeclaredType(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.server(serverOpts{})
	rc := newReceiver(t)
	for _, bad := range [][]string{{"export.dnoe"}, {"export.done", "nothing.*"}, {"export"}} {
		r := c.register("acme", rc.url("/typo"), bad...)
		expectError(t, r, http.StatusBadRequest, "invalid_request", "matches no declared event type")
		if r.str("field") != "events" {
			t.Fatalf("%v: field %q, want events", bad, r.str("field"))
		}
	}
	if rc.challenges.Load() != 0 {
		t.Fatalf("a refused subscription must not reach the handshake")
	}
	// Wildcards match declared types.
	for _, ok := range [][]string{{"export.*"}, {"*"}, {"import.done", "export.failed"}} {
		if r := c.register("acme", rc.url("/ok-"+ok[0]), ok...); r.Status != http.StatusCreated {
			t.Fatalf("%v: %d %s", ok, r.Status, r.Raw)
		}
	}
}

// TestOpenAPIEventTypesExampleIsTheCatalog keeps the documented 200 example of
// GET /event-types equal to what the route answers.
func TestOpenAPIEventTypesExampleIsTheCatalog(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]struct {
				Content map[string]struct {
					Example any `yaml:"example"`
				} `yaml:"content"`
			} `yaml:"responses"`
		} `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	example := doc.Paths[api.BasePath+"/event-types"]["get"].Responses["200"].Content["application/json"].Example
	documented, err := json.Marshal(example)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t)
	r := w.server(serverOpts{}).do("GET", "/event-types", "acme", nil, nil)
	var got, want any
	_ = json.Unmarshal(r.Raw, &got)
	_ = json.Unmarshal(documented, &want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("docs/openapi.yaml's example of GET /event-types differs from the response:\n doc:  %s\n real: %s", documented, r.Raw)
	}
}
