package devstack

import (
	"fmt"
	"reflect"
	"sort"
	"testing"
)

// TestTemplateProvisionedTablesScale: every table billed by DynamoDBCapacityMode, and each
// of its global secondary indexes, declares provisioned throughput for PROVISIONED (and
// none for on-demand), and has a scalable target with a 70 % target-tracking policy for its
// reads and its writes. A table or an index added without them would fail to deploy in
// PROVISIONED mode, or never scale.
func TestTemplateProvisionedTablesScale(t *testing.T) {
	doc := consistencyDoc(t)
	resources, _ := doc["Resources"].(map[string]any)
	byMode := map[string]bool{}
	for id, raw := range resources {
		res, _ := raw.(map[string]any)
		if res["Type"] != TypeTable {
			continue
		}
		props, _ := res["Properties"].(map[string]any)
		if !reflect.DeepEqual(props["BillingMode"], map[string]any{"Ref": "DynamoDBCapacityMode"}) {
			if props["BillingMode"] != "PAY_PER_REQUEST" {
				t.Errorf("%s: BillingMode %v, want PAY_PER_REQUEST or !Ref DynamoDBCapacityMode", id, props["BillingMode"])
			}
			continue
		}
		byMode[id] = true
		if !provisionedIf(props["ProvisionedThroughput"]) {
			t.Errorf("%s: ProvisionedThroughput must be !If [Provisioned, {…}, !Ref AWS::NoValue], not %v", id, props["ProvisionedThroughput"])
		}
		targets := []string{"table/${" + id + "}"}
		for _, g := range asSlice(props["GlobalSecondaryIndexes"]) {
			gsi := asMap(g)
			if !provisionedIf(gsi["ProvisionedThroughput"]) {
				t.Errorf("%s index %v: ProvisionedThroughput must be !If [Provisioned, {…}, !Ref AWS::NoValue]", id, gsi["IndexName"])
			}
			targets = append(targets, fmt.Sprintf("table/${%s}/index/%v", id, gsi["IndexName"]))
		}
		for _, target := range targets {
			dimension := "table"
			if target != targets[0] {
				dimension = "index"
			}
			for _, unit := range []string{"Read", "Write"} {
				want := "dynamodb:" + dimension + ":" + unit + "CapacityUnits"
				if !scaled(resources, target, want, unit) {
					t.Errorf("%s: no scalable target for %s %s with a 70 %% %s-utilization policy", id, target, want, unit)
				}
			}
		}
	}
	if len(byMode) == 0 {
		t.Fatal("no table follows DynamoDBCapacityMode")
	}
	var names []string
	for id := range byMode {
		names = append(names, id)
	}
	sort.Strings(names)
	if want := []string{"DeliveriesTable", "EndpointsTable", "EventsTable"}; !reflect.DeepEqual(names, want) {
		t.Errorf("tables following DynamoDBCapacityMode: %v, want the pipeline's %v", names, want)
	}
}

// provisionedIf reports whether v is !If [Provisioned, {ReadCapacityUnits, WriteCapacityUnits}, !Ref AWS::NoValue].
func provisionedIf(v any) bool {
	args := asSlice(asMap(v)["Fn::If"])
	if len(args) != 3 || args[0] != "Provisioned" {
		return false
	}
	units := asMap(args[1])
	return units["ReadCapacityUnits"] != nil && units["WriteCapacityUnits"] != nil &&
		reflect.DeepEqual(args[2], map[string]any{"Ref": "AWS::NoValue"})
}

// scaled reports whether a ScalableTarget of resource (a Sub string) and dimension exists,
// conditioned on Provisioned, with a target-tracking policy at 70 % of the unit's
// utilization.
func scaled(resources map[string]any, resource, dimension, unit string) bool {
	for id, raw := range resources {
		res := asMap(raw)
		props := asMap(res["Properties"])
		if res["Type"] != "AWS::ApplicationAutoScaling::ScalableTarget" || res["Condition"] != "Provisioned" ||
			!reflect.DeepEqual(props["ResourceId"], map[string]any{"Fn::Sub": resource}) || props["ScalableDimension"] != dimension {
			continue
		}
		for _, praw := range resources {
			p := asMap(praw)
			pp := asMap(p["Properties"])
			tt := asMap(pp["TargetTrackingScalingPolicyConfiguration"])
			metric := asMap(tt["PredefinedMetricSpecification"])["PredefinedMetricType"]
			if p["Type"] == "AWS::ApplicationAutoScaling::ScalingPolicy" && reflect.DeepEqual(pp["ScalingTargetId"], map[string]any{"Ref": id}) &&
				fmt.Sprint(tt["TargetValue"]) == "70" && metric == "DynamoDB"+unit+"CapacityUtilization" {
				return true
			}
		}
	}
	return false
}
