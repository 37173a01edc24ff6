package eventtypes_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/datajetty/webhooks/shared/dev/testenv"
	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/eventtypes"
)

func TestBuiltinCatalogIsValidAndSorted(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), eventtypes.File))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eventtypes.Parse(raw); err != nil {
		t.Fatalf("%s: %v", eventtypes.File, err)
	}
	// The file itself is kept sorted, so that a reviewer sees a new type in its place.
	var doc struct {
		EventTypes []struct {
			Type string `json:"type"`
		} `json:"event_types"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range doc.EventTypes {
		names = append(names, e.Type)
	}
	if !sort.StringsAreSorted(names) {
		t.Errorf("%s is not sorted by type: %v", eventtypes.File, names)
	}
	c := eventtypes.Builtin()
	if len(c.Types()) != len(names) {
		t.Fatalf("Builtin has %d types, the file %d", len(c.Types()), len(names))
	}
}

func TestParseRefusesBadCatalogs(t *testing.T) {
	t.Parallel()
	ok := `{"type":"export.done","source":"platform","description":"d","example":{"a":1}}`
	for name, doc := range map[string]string{
		"empty":           `{"event_types":[]}`,
		"not json":        `{`,
		"unknown field":   `{"event_types":[` + ok + `],"extra":1}`,
		"trailing data":   `{"event_types":[` + ok + `]} {}`,
		"bad name":        `{"event_types":[{"type":"Export.Done","source":"platform","description":"d","example":{}}]}`,
		"wildcard name":   `{"event_types":[{"type":"export.*","source":"platform","description":"d","example":{}}]}`,
		"duplicate":       `{"event_types":[` + ok + `,` + ok + `]}`,
		"no source":       `{"event_types":[{"type":"export.done","description":"d","example":{}}]}`,
		"no description":  `{"event_types":[{"type":"export.done","source":"platform","description":" ","example":{}}]}`,
		"example array":   `{"event_types":[{"type":"export.done","source":"platform","description":"d","example":[1]}]}`,
		"example missing": `{"event_types":[{"type":"export.done","source":"platform","description":"d"}]}`,
	} {
		if _, err := eventtypes.Parse([]byte(doc)); err == nil {
			t.Errorf("%s: Parse accepted %s", name, doc)
		}
	}
	c, err := eventtypes.Parse([]byte(`{"event_types":[{"type":"b.x","source":"platform","description":"d","example":{ "k" : 1 }},{"type":"a.x","source":"service","description":"d","example":{},"deprecated":true}]}`))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Types()
	if len(got) != 2 || got[0].Name != "a.x" || got[1].Name != "b.x" || !got[0].Deprecated || string(got[1].Example) != `{"k":1}` {
		t.Fatalf("want the types sorted, deprecated kept and examples compacted, got %+v", got)
	}
	if typ, ok := c.Lookup("b.x"); !ok || typ.Source != eventtypes.SourcePlatform {
		t.Fatalf("Lookup(b.x) = %+v, %v", typ, ok)
	}
}

func TestPatternsMustMatchADeclaredType(t *testing.T) {
	t.Parallel()
	c := eventtypes.Builtin()
	for _, tc := range []struct {
		pattern string
		ok      bool
	}{
		{"*", true},
		{"export.done", true},
		{"export.*", true},
		{"export.dnoe", false}, // the typo the catalog exists to catch
		{"export", false},
		{"exports.*", false},
		{"nothing.*", false},
	} {
		if got := c.Matches(tc.pattern); got != tc.ok {
			t.Errorf("Matches(%q) = %v, want %v", tc.pattern, got, tc.ok)
		}
	}
	err := c.CheckPatterns([]string{"export.*", "export.dnoe"})
	var de *domain.Error
	if !errors.As(err, &de) || de.Kind != domain.KindInvalid || de.Field != "events" || !strings.Contains(de.Msg, `"export.dnoe"`) {
		t.Fatalf("CheckPatterns with a typo: %v", err)
	}
	if err := c.CheckPatterns([]string{"*", "import.done"}); err != nil {
		t.Fatalf("CheckPatterns of declared patterns: %v", err)
	}
}

func TestCheckEventNamesTheProblem(t *testing.T) {
	t.Parallel()
	c := eventtypes.Builtin()
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	ev := func(typ string) domain.Event {
		return domain.Event{ID: "evt_1", TenantID: "acme", Type: typ, OccurredAt: at, Data: json.RawMessage(`{}`)}
	}
	if err := c.CheckEvent(ev("export.done"), false); err != nil {
		t.Fatalf("declared platform type: %v", err)
	}
	err := c.CheckEvent(ev("export.dnoe"), false)
	if err == nil || !strings.Contains(err.Error(), `"export.dnoe" is not declared`) || !strings.Contains(err.Error(), eventtypes.File) {
		t.Fatalf("undeclared type: %v", err)
	}
	svc, err := eventtypes.Parse([]byte(`{"event_types":[{"type":"svc.note","source":"service","description":"d","example":{}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	err = svc.CheckEvent(ev("svc.note"), false)
	if err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Fatalf("a service type from a producer: %v", err)
	}
	if err := svc.CheckEvent(ev("svc.note"), true); err != nil {
		t.Fatalf("a service type from the service: %v", err)
	}
}

// TestDocsListTheCatalog keeps docs/events.md's catalog table and the catalog file saying
// the same: every declared type is in the table with its source, and the table names no
// other type.
func TestDocsListTheCatalog(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "events.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z0-9_.-]+)` \\| (platform|service) \\|")
	documented := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(raw), -1) {
		documented[m[1]] = m[2]
	}
	for _, typ := range eventtypes.Builtin().Types() {
		if documented[typ.Name] != string(typ.Source) {
			t.Errorf("docs/events.md: no catalog row \"| `%s` | %s |\"", typ.Name, typ.Source)
		}
		delete(documented, typ.Name)
	}
	for name := range documented {
		t.Errorf("docs/events.md lists %s, which the catalog does not declare", name)
	}
}
