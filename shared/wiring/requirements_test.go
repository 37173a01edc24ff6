package wiring

import (
	"testing"

	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/config"
	"github.com/datajetty/webhooks/shared/wiring/apifn"
	"github.com/datajetty/webhooks/shared/wiring/workerfn"
)

// TestRequirementsAreDeployedSettings: whatever a route or a consumer requires,
// template.yaml sets for every function (its declaration says Deployed), so a deployed
// function never fails its cold start for a variable only local development sets.
func TestRequirementsAreDeployedSettings(t *testing.T) {
	lists := map[string][]config.Var{"every API route": apifn.Common}
	for _, rt := range api.Routes() {
		need, ok := apifn.Requirements[rt.Name]
		if !ok {
			t.Errorf("route %s has no requirements", rt.Name)
		}
		lists["route "+rt.Name] = need
	}
	lists["ingest"], lists["replay worker"], lists["deliver"] = workerfn.IngestNeeds, workerfn.ReplayWorkerNeeds, workerfn.DeliverNeeds
	for list, need := range lists {
		for _, v := range need {
			if v.Reader != config.Deployed {
				t.Errorf("%s requires %s, which template.yaml does not set (%v)", list, v.Name, v.Reader)
			}
		}
	}
}
