package cost

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/datajetty/webhooks/shared/dev/testenv"
)

// budget is the most each counted quantity may reach per delivery. Lower it when a change
// makes delivery cheaper; raising it needs a reason in the commit (a cost regression is a
// red build, not a surprise on the bill).
type budget struct {
	scenario string
	events   int // the budget run's size (smaller than make cost's, so cold starts weigh more)
	max      Totals
}

var budgets = []budget{
	{
		// 20 batches over 10 tenants' endpoints on 2 deliver instances, 2 s of traffic:
		// every instance's first load of every endpoint (GetItem, Decrypt), its first
		// watermark write and the one its shutdown flushes weigh 0.1 each here, 0.01 or
		// less in make cost's longer run. Every attempt also writes its event's entry in
		// the endpoint's event index (a resend by event id), in the same BatchWriteItem.
		scenario: Typical, events: 200,
		max: Totals{Calls: 3.2, WRU: 3.2, RRU: 1.1, SQS: 0.6, KMS: 0.1, Invocations: 0.2},
	},
	{
		// Every event alone, for a tenant never seen before: the cold path.
		scenario: "low-traffic", events: 20,
		max: Totals{Calls: 13, WRU: 4, RRU: 2, SQS: 6, KMS: 1, Invocations: 2},
	},
}

func TestCostBudget(t *testing.T) {
	base := testenv.AWSConfig(t)
	for _, b := range budgets {
		t.Run(b.scenario, func(t *testing.T) {
			sc, err := Find(b.scenario)
			if err != nil {
				t.Fatal(err)
			}
			sc.Events = b.events
			res, err := Run(context.Background(), base, testenv.RepoRoot(), sc)
			if err != nil {
				t.Fatal(err)
			}
			got := Price(res, Prices).Totals()
			t.Logf("%s, %d deliveries, per delivery: %+v", sc.Name, res.Deliveries, got)
			check := func(what string, got, max float64) {
				if got > max+1e-9 {
					t.Errorf("%s per delivery: %.4f, over the budget of %.4f", what, got, max)
				}
			}
			check("AWS requests", got.Calls, b.max.Calls)
			check("DynamoDB write units", got.WRU, b.max.WRU)
			check("DynamoDB read units", got.RRU, b.max.RRU)
			check("SQS billed requests", got.SQS, b.max.SQS)
			check("KMS requests", got.KMS, b.max.KMS)
			check("Lambda invocations", got.Invocations, b.max.Invocations)
		})
	}
}

// The typical scenario's goals are $2.00 (on demand) and $1.00 (provisioned) per million
// deliveries. They are not met (docs/performance.md says why: three written items per
// delivery since the event index of decision 101); until they are, the committed
// measurement may not grow beyond what it is.
const (
	ceilingOnDemand    = 2.41
	ceilingProvisioned = 1.22
)

// TestTypicalWithinTheCeiling: what docs/performance.md states for the typical scenario (the
// committed measurements) is within the ceiling above; lower it when the cost goes down.
func TestTypicalWithinTheCeiling(t *testing.T) {
	t.Parallel()
	results, err := LoadResults(filepath.Join(testenv.RepoRoot(), ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Scenario.Name != Typical {
			continue
		}
		b := Price(r, Prices)
		if b.OnDemand > ceilingOnDemand+0.005 || b.Provisioned > ceilingProvisioned+0.005 {
			t.Errorf("typical: on-demand $%.2f, provisioned $%.2f per million deliveries; the ceiling is $%.2f and $%.2f",
				b.OnDemand, b.Provisioned, ceilingOnDemand, ceilingProvisioned)
		}
		return
	}
	t.Fatalf("%s has no typical scenario", ResultsFile)
}
