package metrics

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFlushWritesEMF(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	e := New(&buf, "deliver")
	e.now = func() time.Time { return time.UnixMilli(1700000000000) }
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.Add(DeliveriesSucceeded, 1)
			e.Observe(DeliveryLatency, Milliseconds, 12)
		}()
	}
	wg.Wait()
	e.Add(RetriesScheduled, 2)
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one EMF document, got %d", len(lines))
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["Function"] != "deliver" || doc[DeliveriesSucceeded] != 10.0 || doc[RetriesScheduled] != 2.0 {
		t.Fatalf("values: %v", doc)
	}
	if lat := doc[DeliveryLatency].([]any); len(lat) != 10 {
		t.Fatalf("latency values: %v", lat)
	}
	aws := doc["_aws"].(map[string]any)
	cwm := aws["CloudWatchMetrics"].([]any)[0].(map[string]any)
	if aws["Timestamp"] != 1700000000000.0 || cwm["Namespace"] != Namespace {
		t.Fatalf("metadata: %v", aws)
	}
	dims := cwm["Dimensions"].([]any)
	if len(dims) != 1 || len(dims[0].([]any)) != 1 || dims[0].([]any)[0] != "Function" {
		t.Fatalf("dimensions must be [[Function]] only (bounded cardinality): %v", dims)
	}
	if len(cwm["Metrics"].([]any)) != 3 {
		t.Fatalf("metric definitions: %v", cwm["Metrics"])
	}
	buf.Reset()
	if err := e.Flush(); err != nil || buf.Len() != 0 {
		t.Fatalf("a second flush with nothing recorded wrote %q", buf.String())
	}
}

func TestFlushSplitsLongDistributions(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	e := New(&buf, "deliver")
	for i := 0; i < 250; i++ {
		e.Observe(DeliveryLatency, Milliseconds, float64(i))
	}
	e.Add(DeliveriesSucceeded, 250)
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("250 values must take 3 documents of at most 100, got %d", len(lines))
	}
	total, counted := 0, 0.0
	for _, l := range lines {
		var doc map[string]any
		_ = json.Unmarshal([]byte(l), &doc)
		total += len(doc[DeliveryLatency].([]any))
		if c, ok := doc[DeliveriesSucceeded].(float64); ok {
			counted += c
		}
	}
	if total != 250 || counted != 250 {
		t.Fatalf("values %d, count %v: each must appear exactly once", total, counted)
	}
}

func TestNilEmitterIsANoop(t *testing.T) {
	t.Parallel()
	var e *Emitter
	e.Add(EventsIngested, 1)
	e.Observe(DeliveryLatency, Milliseconds, 1)
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestNamesListsEveryMetric: Names (which the template's alarms and dashboard are checked
// against) holds exactly the constants of the metric-name block.
func TestNamesListsEveryMetric(t *testing.T) {
	t.Parallel()
	file, err := parser.ParseFile(token.NewFileSet(), "metrics.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	declared := map[string]bool{}
	for _, d := range file.Decls {
		gen, ok := d.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST || !strings.Contains(gen.Doc.Text(), "Metric names") {
			continue
		}
		for _, spec := range gen.Specs {
			for _, v := range spec.(*ast.ValueSpec).Values {
				if lit, ok := v.(*ast.BasicLit); ok {
					name, _ := strconv.Unquote(lit.Value)
					declared[name] = true
				}
			}
		}
	}
	listed := map[string]bool{}
	for _, n := range Names() {
		listed[n] = true
	}
	if len(declared) == 0 || !maps.Equal(declared, listed) {
		t.Errorf("Names() = %v, the metric-name constants are %v", listed, declared)
	}
}
