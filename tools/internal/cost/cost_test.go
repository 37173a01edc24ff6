package cost

import (
	"encoding/json"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/datajetty/webhooks/shared/dev/awsmeter"
	"github.com/datajetty/webhooks/shared/dev/testenv"
	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/producer"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestEnvelopesHaveTheScenarioSize(t *testing.T) {
	t.Parallel()
	at := time.Now().Add(-time.Hour)
	for _, incompressible := range []bool{false, true} {
		for _, size := range []int{512, 1024, 4096} {
			for i := range 20 {
				at := at.Add(time.Duration(i) * 1234567 * time.Nanosecond)
				e := domain.Event{ID: eventID(i), TenantID: tenantID(i % 10), Type: eventType, OccurredAt: at, Data: eventData(i, size, at, incompressible)}
				body, err := producer.Envelope(e, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				if len(body) != size {
					t.Fatalf("incompressible=%v, event %d: envelope of %d bytes, want %d", incompressible, i, len(body), size)
				}
				if !json.Valid(e.Data) {
					t.Fatalf("event %d: data is not JSON", i)
				}
			}
		}
	}
}

func TestPriceArithmetic(t *testing.T) {
	t.Parallel()
	res := &Result{
		Scenario: Scenario{IngestMillis: 100, DeliverMillis: 300}, Events: 10, Deliveries: 10,
		Lines: []awsmeter.Line{
			{Key: awsmeter.Key{Source: SourceIngest, Service: "DynamoDB", Operation: "PutItem", Resource: "EventsTable"}, Tally: awsmeter.Tally{Calls: 10, Requests: 10, WriteUnits: 10}},
			{Key: awsmeter.Key{Source: SourceIngest, Service: "DynamoDB", Operation: "Query", Resource: "EndpointsTable"}, Tally: awsmeter.Tally{Calls: 1, Requests: 1, ReadUnits: 0.5}},
			{Key: awsmeter.Key{Source: SourceProducer, Service: "SQS", Operation: "SendMessageBatch", Resource: "IngestQueue"}, Tally: awsmeter.Tally{Calls: 1, Requests: 2}},
			{Key: awsmeter.Key{Source: SourceDeliver, Service: "KMS", Operation: "Decrypt", Resource: "SecretsKey"}, Tally: awsmeter.Tally{Calls: 1, Requests: 1}},
		},
		Invocations: map[string]int{"ingest": 1, "deliver": 1},
		MemoryMB:    map[string]int{"ingest": 1024, "deliver": 512},
	}
	b := Price(res, Prices)
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %.6f, want %.6f", name, got, want)
		}
	}
	// 1 WRU per delivery: $0.625 on demand; provisioned 1e6 / 3600 / 0.7 WCU-hours.
	near("DynamoDB on-demand", b.ServiceOnDemand["DynamoDB"], 0.625+0.05*0.125)
	near("DynamoDB provisioned", b.ServiceProvisioned["DynamoDB"], 1e6/3600/Utilization*0.00065+0.05*1e6/3600/Utilization*0.00013)
	near("SQS", b.ServiceOnDemand["SQS"], 0.2*0.40) // 2 billed requests for 10 deliveries
	near("KMS", b.ServiceOnDemand["KMS"], 0.1*1e6*0.03/1e4)
	// 0.1 invocation each per delivery: requests $0.02 each, ingest 0.1 × 0.1 s × 1 GB, deliver 0.1 × 0.3 s × 0.5 GB.
	near("Lambda", b.ServiceOnDemand["Lambda"], 2*0.1*0.20+(0.01+0.015)*1e6*0.0000133334)
	tot := b.Totals()
	near("WRU", tot.WRU, 1)
	near("RRU", tot.RRU, 0.05)
	near("SQS requests", tot.SQS, 0.2)
	near("KMS requests", tot.KMS, 0.1)
	near("invocations", tot.Invocations, 0.2)
	near("calls", tot.Calls, 1.3)
}

// TestGeneratedSectionMatchesMeasurements: the cost section of docs/performance.md is what
// the generator renders from the committed measurements (make cost rewrites both).
func TestGeneratedSectionMatchesMeasurements(t *testing.T) {
	t.Parallel()
	root := testenv.RepoRoot()
	results, err := LoadResults(filepath.Join(root, ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	var bs []*Breakdown
	for _, r := range results {
		bs = append(bs, Price(r, Prices))
	}
	got, err := Section(filepath.Join(root, "docs", "performance.md"))
	if err != nil {
		t.Fatal(err)
	}
	if want := Markdown(bs); got != want {
		t.Errorf("docs/performance.md's cost section is not what %s renders: run make cost (or fix the section by regenerating it, never by hand)", ResultsFile)
	}
	if len(results) != len(Scenarios) {
		t.Fatalf("%s holds %d scenarios, want the %d of Scenarios: run make cost", ResultsFile, len(results), len(Scenarios))
	}
	for i, r := range results {
		if r.Scenario != Scenarios[i] {
			t.Errorf("%s: scenario %s was measured with other settings than Scenarios holds: run make cost", ResultsFile, r.Scenario.Name)
		}
	}
}
