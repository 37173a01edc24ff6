package wiring

import (
	"testing"

	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/config"
)

// TestRequirementsAreDeployedSettings: whatever a route or a consumer requires,
// template.yaml sets for every function (its declaration says Deployed), so a deployed
// function never fails its cold start for a variable only local development sets.
func TestRequirementsAreDeployedSettings(t *testing.T) {
	lists := map[string][]config.Var{"every API route": apiCommon}
	for _, rt := range api.Routes() {
		need, ok := requirements[rt.Name]
		if !ok {
			t.Errorf("route %s has no requirements", rt.Name)
		}
		lists["route "+rt.Name] = need
	}
	lists["ingest"], lists["replay worker"], lists["deliver"] = ingestNeeds, replayWorkerNeeds, deliverNeeds
	for list, need := range lists {
		for _, v := range need {
			if v.Reader != config.Deployed {
				t.Errorf("%s requires %s, which template.yaml does not set (%v)", list, v.Name, v.Reader)
			}
		}
	}
}
