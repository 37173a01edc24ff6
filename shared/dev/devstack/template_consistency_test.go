package devstack

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/datajetty/webhooks/shared/config"
	"github.com/datajetty/webhooks/shared/delivery"
	"github.com/datajetty/webhooks/shared/metrics"
)

// The consistency of template.yaml with the repository and with itself. It only reads files,
// and checks whatever functions and queues the template has.

const functionType = "AWS::Serverless::Function"

// lambdaDefaultTimeout is Lambda's timeout for a function that sets none (seconds).
const lambdaDefaultTimeout = 3

// sqsDefaultVisibilityTimeout is SQS's VisibilityTimeout for a queue that sets none (seconds).
const sqsDefaultVisibilityTimeout = 30

// consistencyDoc is the whole parsed template (intrinsics in long form).
func consistencyDoc(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	v, err := nodeValue(&root)
	if err != nil {
		t.Fatal(err)
	}
	doc, ok := v.(map[string]any)
	if !ok {
		t.Fatal("template: top level is not a mapping")
	}
	return doc
}

// buildTargets maps each build-<LogicalId> target of the Makefile to the ./functions/<folder>
// its recipe builds ("" when the recipe names none).
func buildTargets(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	target := regexp.MustCompile(`^build-([A-Za-z0-9]+):`)
	folder := regexp.MustCompile(`\./functions/([A-Za-z0-9._-]+)`)
	out := map[string]string{}
	current := ""
	for _, line := range strings.Split(string(data), "\n") {
		if m := target.FindStringSubmatch(line); m != nil {
			current = m[1]
			out[current] = ""
			continue
		}
		if !strings.HasPrefix(line, "\t") {
			current = ""
			continue
		}
		if m := folder.FindStringSubmatch(line); m != nil && current != "" && out[current] == "" {
			out[current] = m[1]
		}
	}
	return out
}

// literalInt reads a number property: a literal, or a Ref to a parameter with a Default.
func literalInt(doc map[string]any, v any) (int, error) {
	if name, arg, ok := intrinsic(v); ok {
		p, isStr := arg.(string)
		if name != "Ref" || !isStr {
			return 0, fmt.Errorf("%v: want a number or a Ref to a parameter", v)
		}
		def, found := asMap(asMap(doc["Parameters"])[p])["Default"]
		if !found {
			return 0, fmt.Errorf("parameter %s has no Default", p)
		}
		v = def
	}
	n, err := strconv.Atoi(scalarString(v))
	if err != nil {
		return 0, fmt.Errorf("%v: not a whole number", v)
	}
	return n, nil
}

// sqsConsumer is a function reading a queue through an SQS event source.
type sqsConsumer struct {
	function string
	timeout  int // the function's, in seconds
}

func TestTemplateFunctionsHaveFolderBuildTargetAndEvent(t *testing.T) {
	doc := consistencyDoc(t)
	resources := asMap(doc["Resources"])
	targets := buildTargets(t)
	var functions []string
	for id, raw := range resources {
		if asMap(raw)["Type"] == functionType {
			functions = append(functions, id)
		}
	}
	sort.Strings(functions)
	if len(functions) == 0 {
		t.Fatal("template.yaml has no AWS::Serverless::Function")
	}
	for _, id := range functions {
		t.Run(id, func(t *testing.T) {
			res := asMap(resources[id])
			if bm := asMap(res["Metadata"])["BuildMethod"]; bm != "makefile" {
				t.Errorf("Metadata.BuildMethod = %v, want makefile (sam build runs make build-%s)", bm, id)
			}
			folder, ok := targets[id]
			if !ok {
				t.Fatalf("the Makefile has no build-%s target", id)
			}
			if folder == "" {
				t.Fatalf("the Makefile's build-%s recipe builds no ./functions/<folder>", id)
			}
			if _, err := os.Stat(filepath.Join(repoRoot(t), "functions", folder, "main.go")); err != nil {
				t.Errorf("build-%s builds ./functions/%s, which has no main.go: %v", id, folder, err)
			}
			raw, err := os.ReadFile(filepath.Join(repoRoot(t), "events", folder+".json"))
			if err != nil {
				t.Errorf("no sample event events/%s.json for %s: %v", folder, id, err)
			} else if !json.Valid(raw) {
				t.Errorf("events/%s.json is not valid JSON", folder)
			}
		})
	}
	// And no build target outlives its function (sam build would not call it, make build would).
	for target := range targets {
		if asMap(resources[target])["Type"] != functionType {
			t.Errorf("the Makefile has build-%s, but template.yaml has no such function", target)
		}
	}
}

func TestTemplateQueuesFitTheirConsumers(t *testing.T) {
	doc := consistencyDoc(t)
	resources := asMap(doc["Resources"])
	globalTimeout := lambdaDefaultTimeout
	if v, ok := asMap(asMap(doc["Globals"])["Function"])["Timeout"]; ok {
		n, err := literalInt(doc, v)
		if err != nil {
			t.Fatalf("Globals.Function.Timeout: %v", err)
		}
		globalTimeout = n
	}

	consumers := map[string][]sqsConsumer{} // queue logical id -> its consumers
	for id, raw := range resources {
		res := asMap(raw)
		if res["Type"] != functionType {
			continue
		}
		props := asMap(res["Properties"])
		timeout := globalTimeout
		if v, ok := props["Timeout"]; ok {
			n, err := literalInt(doc, v)
			if err != nil {
				t.Errorf("%s.Timeout: %v", id, err)
				continue
			}
			timeout = n
		}
		for name, rawEv := range asMap(props["Events"]) {
			ev := asMap(rawEv)
			if ev["Type"] != "SQS" {
				continue
			}
			evProps := asMap(ev["Properties"])
			rts := asSlice(evProps["FunctionResponseTypes"])
			if len(rts) != 1 || rts[0] != "ReportBatchItemFailures" {
				t.Errorf("%s.Events.%s: FunctionResponseTypes = %v, want [ReportBatchItemFailures] (one failed message must not redeliver its whole batch)", id, name, evProps["FunctionResponseTypes"])
			}
			queue, err := queueOf(evProps["Queue"])
			if err != nil {
				t.Errorf("%s.Events.%s.Queue: %v", id, name, err)
				continue
			}
			if asMap(resources[queue])["Type"] != TypeQueue {
				t.Errorf("%s.Events.%s reads %s, which is not an AWS::SQS::Queue of the template", id, name, queue)
				continue
			}
			consumers[queue] = append(consumers[queue], sqsConsumer{function: id, timeout: timeout})
		}
	}

	var queues []string
	for q := range consumers {
		queues = append(queues, q)
	}
	sort.Strings(queues)
	for _, q := range queues {
		props := asMap(asMap(resources[q])["Properties"])
		visibility := sqsDefaultVisibilityTimeout
		if v, ok := props["VisibilityTimeout"]; ok {
			n, err := literalInt(doc, v)
			if err != nil {
				t.Errorf("%s.VisibilityTimeout: %v", q, err)
				continue
			}
			visibility = n
		}
		for _, c := range consumers[q] {
			// AWS's advice for SQS event sources: a message must not become visible again
			// while an invocation (and Lambda's retries of a throttled one) still works on it.
			if visibility < 6*c.timeout {
				t.Errorf("%s.VisibilityTimeout = %d s, want at least 6 × %s's Timeout (%d s) = %d s",
					q, visibility, c.function, c.timeout, 6*c.timeout)
			}
		}
		rp := asMap(props["RedrivePolicy"])
		if rp == nil {
			var fns []string
			for _, c := range consumers[q] {
				fns = append(fns, c.function)
			}
			t.Errorf("%s is read by %s but has no RedrivePolicy: a message that always fails would be retried until it expires", q, strings.Join(fns, ", "))
			continue
		}
		if _, _, ok := intrinsic(rp["deadLetterTargetArn"]); !ok {
			t.Errorf("%s.RedrivePolicy.deadLetterTargetArn = %v, want !GetAtt <DLQ>.Arn", q, rp["deadLetterTargetArn"])
		}
		if n, err := literalInt(doc, rp["maxReceiveCount"]); err != nil || n < 1 {
			t.Errorf("%s.RedrivePolicy.maxReceiveCount = %v: want a positive number (%v)", q, rp["maxReceiveCount"], err)
		}
	}
}

// The DeliveryQueue dead-letters a message after its last attempt: its maxReceiveCount is
// the attempts shared/delivery makes (each attempt is one receive), and it keeps messages
// longer than the whole retry schedule, or the last retries would expire instead of being
// dead-lettered.
func TestTemplateDeliveryQueueMatchesRetrySchedule(t *testing.T) {
	doc := consistencyDoc(t)
	res := asMap(asMap(doc["Resources"])["DeliveryQueue"])
	if res == nil {
		t.Skip("template.yaml has no DeliveryQueue")
	}
	props := asMap(res["Properties"])
	opts := delivery.DefaultOptions()
	retries := opts.MaxAttempts - 1

	receives, err := literalInt(doc, asMap(props["RedrivePolicy"])["maxReceiveCount"])
	if err != nil {
		t.Fatalf("DeliveryQueue.RedrivePolicy.maxReceiveCount: %v", err)
	}
	if receives != 1+retries {
		t.Errorf("DeliveryQueue maxReceiveCount = %d, want 1 + %d retries = %d (delivery.DefaultOptions().MaxAttempts)", receives, retries, 1+retries)
	}

	// The longest a message can live: every scheduled delay at its jittered maximum (the
	// last entry repeats when the schedule is shorter than the retries).
	var worst time.Duration
	for i := 0; i < retries; i++ {
		d := opts.Schedule[min(i, len(opts.Schedule)-1)]
		worst += time.Duration(float64(d) * (1 + opts.Jitter))
	}
	retention := 345600 // SQS's default, 4 days
	if v, ok := props["MessageRetentionPeriod"]; ok {
		if retention, err = literalInt(doc, v); err != nil {
			t.Fatalf("DeliveryQueue.MessageRetentionPeriod: %v", err)
		}
	}
	if time.Duration(retention)*time.Second <= worst {
		t.Errorf("DeliveryQueue MessageRetentionPeriod = %d s (%s), want more than the retry schedule at its longest (%s)",
			retention, time.Duration(retention)*time.Second, worst)
	}
}

// queueOf returns the logical id of an event source's Queue (!GetAtt <Queue>.Arn).
func queueOf(v any) (string, error) {
	name, arg, ok := intrinsic(v)
	if !ok || name != "Fn::GetAtt" {
		return "", fmt.Errorf("%v: want !GetAtt <Queue>.Arn", v)
	}
	res, attr, err := getAttArgs(arg)
	if err != nil {
		return "", err
	}
	if attr != "Arn" {
		return "", fmt.Errorf("!GetAtt %s.%s: want the queue's Arn", res, attr)
	}
	return res, nil
}

// repoRoot is RepoRoot for tests.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// templateEnvironment lists the variables template.yaml sets for its functions: in
// Globals.Function.Environment and in any function's own Environment.
func templateEnvironment(doc map[string]any) map[string]bool {
	set := map[string]bool{}
	add := func(fn map[string]any) {
		for name := range asMap(asMap(fn["Environment"])["Variables"]) {
			set[name] = true
		}
	}
	add(asMap(asMap(doc["Globals"])["Function"]))
	for _, raw := range asMap(doc["Resources"]) {
		if res := asMap(raw); res["Type"] == functionType {
			add(asMap(res["Properties"]))
		}
	}
	return set
}

// readmeTable maps each backticked name in the first column of the table in the README's
// section called heading to its row.
func readmeTable(t *testing.T, heading string, name *regexp.Regexp) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, found := strings.Cut(string(data), "\n## "+heading+"\n")
	if !found {
		t.Fatalf("README.md has no %q section", "## "+heading)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	rows := map[string]string{}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if !strings.HasPrefix(line, "|") || len(cells) < 3 {
			continue
		}
		for _, m := range name.FindAllStringSubmatch(cells[1], -1) {
			rows[m[1]] = line
		}
	}
	if len(rows) == 0 {
		t.Fatalf("README.md's %q section has no table", heading)
	}
	return rows
}

// readmeConfiguration maps each variable named in the README's configuration table to its row.
func readmeConfiguration(t *testing.T) map[string]string {
	t.Helper()
	return readmeTable(t, "Configuration", regexp.MustCompile("`([A-Z][A-Z0-9_]*)`"))
}

// TestREADMELayoutMatchesTheTree: every Go package under shared/ and tools/ has its row in
// the README's layout table, and every path the table names exists.
func TestREADMELayoutMatchesTheTree(t *testing.T) {
	root := repoRoot(t)
	rows := readmeTable(t, "Layout", regexp.MustCompile("`([^`]+)`"))
	for path := range rows {
		if strings.Contains(path, "<") {
			continue // a pattern, such as functions/<name>/main.go
		}
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(path))); err != nil {
			t.Errorf("the README's layout table names %s, which does not exist", path)
		}
	}
	for _, top := range []string{"shared", "tools"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			rel, err := filepath.Rel(root, filepath.Dir(p))
			if err != nil {
				return err
			}
			if _, ok := rows[filepath.ToSlash(rel)]; !ok {
				t.Errorf("package %s has no row in the README's layout table", filepath.ToSlash(rel))
				rows[filepath.ToSlash(rel)] = "reported"
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestConfigurationAgrees holds shared/config's declarations, template.yaml's function
// environment and the README's configuration table to one list of variables.
func TestConfigurationAgrees(t *testing.T) {
	inTemplate := templateEnvironment(consistencyDoc(t))
	inREADME := readmeConfiguration(t)
	declared := map[string]bool{}
	for _, v := range config.Vars() {
		declared[v.Name] = true
		if deployed := v.Reader == config.Deployed; inTemplate[v.Name] != deployed {
			t.Errorf("%s: set by template.yaml %v, want %v (shared/config declares it %v)", v.Name, inTemplate[v.Name], deployed, v.Reader)
		}
		row, ok := inREADME[v.Name]
		switch {
		case !ok:
			t.Errorf("%s is declared in shared/config but missing from the README's configuration table", v.Name)
		case v.Default != "" && !strings.Contains(row, "default `"+v.Default+"`"):
			t.Errorf("the README's row of %s does not give its default `%s`: %s", v.Name, v.Default, row)
		}
	}
	for name := range inTemplate {
		if !declared[name] {
			t.Errorf("template.yaml sets %s, which shared/config does not declare", name)
		}
	}
	for name := range inREADME {
		if !declared[name] {
			t.Errorf("the README's configuration table lists %s, which shared/config does not declare", name)
		}
	}
}

// cloudWatchMetric is a metric an alarm or a dashboard widget reads, and where.
type cloudWatchMetric struct {
	namespace, name, where string
	// dimension is a dashboard row's first dimension value ("" when it has none), its
	// substitution unwrapped ("${DeliverFunction}" reads DeliverFunction).
	dimension string
}

// alarmMetrics lists the metrics of every alarm: its own, or those of its metric math.
func alarmMetrics(resources map[string]any) []cloudWatchMetric {
	var out []cloudWatchMetric
	for id, raw := range resources {
		res := asMap(raw)
		if res["Type"] != "AWS::CloudWatch::Alarm" {
			continue
		}
		props := asMap(res["Properties"])
		if name := scalarString(props["MetricName"]); name != "" {
			out = append(out, cloudWatchMetric{namespace: scalarString(props["Namespace"]), name: name, where: id})
		}
		for _, q := range asSlice(props["Metrics"]) {
			if m := asMap(asMap(asMap(q)["MetricStat"])["Metric"]); m != nil {
				out = append(out, cloudWatchMetric{namespace: scalarString(m["Namespace"]), name: scalarString(m["MetricName"]), where: id})
			}
		}
	}
	return out
}

// dashboardMetrics lists the metrics of every dashboard's widgets, expanding CloudWatch's
// shorthand rows ("..." repeats the previous row, "." one of its fields).
func dashboardMetrics(t *testing.T, resources map[string]any) []cloudWatchMetric {
	t.Helper()
	var out []cloudWatchMetric
	for id, raw := range resources {
		res := asMap(raw)
		if res["Type"] != "AWS::CloudWatch::Dashboard" {
			continue
		}
		body := asMap(res["Properties"])["DashboardBody"]
		if name, arg, ok := intrinsic(body); ok && name == "Fn::Sub" {
			body = arg
			if list := asSlice(arg); list != nil {
				body = list[0]
			}
		}
		text, ok := body.(string)
		if !ok {
			t.Fatalf("%s: DashboardBody is neither a string nor a Fn::Sub of one", id)
		}
		// The substitutions only stand for values (ids, names, the region), inside strings.
		text = regexp.MustCompile(`\$\{([^}]*)\}`).ReplaceAllString(text, "$1")
		var dash struct {
			Widgets []struct {
				Properties struct {
					Title   string  `json:"title"`
					Metrics [][]any `json:"metrics"`
				} `json:"properties"`
			} `json:"widgets"`
		}
		if err := json.Unmarshal([]byte(text), &dash); err != nil {
			t.Fatalf("%s: DashboardBody is not JSON: %v", id, err)
		}
		for _, w := range dash.Widgets {
			var prev []any
			for _, row := range w.Properties.Metrics {
				var fields []any
				for i, f := range row {
					switch {
					case f == "...":
						fields = append(fields, prev...)
					case f == "." && i < len(prev):
						fields = append(fields, prev[i])
					default:
						if _, opts := f.(map[string]any); !opts {
							fields = append(fields, f)
						}
					}
				}
				prev = fields
				if len(fields) < 2 {
					t.Errorf("%s, widget %q: metric row %v has no namespace and name", id, w.Properties.Title, row)
					continue
				}
				m := cloudWatchMetric{namespace: scalarString(fields[0]), name: scalarString(fields[1]), where: fmt.Sprintf("%s widget %q", id, w.Properties.Title)}
				if len(fields) >= 4 {
					m.dimension = scalarString(fields[3])
				}
				out = append(out, m)
			}
		}
	}
	return out
}

// TestTemplateMetricsAreEmitted: every metric of the service's namespace that an alarm or
// the dashboard reads is one shared/metrics emits, and the dashboard shows every one of them.
func TestTemplateMetricsAreEmitted(t *testing.T) {
	resources := asMap(consistencyDoc(t)["Resources"])
	emitted := map[string]bool{}
	for _, n := range metrics.Names() {
		emitted[n] = true
	}
	alarms, dashboards := alarmMetrics(resources), dashboardMetrics(t, resources)
	if len(alarms) == 0 || len(dashboards) == 0 {
		t.Fatalf("found %d alarm and %d dashboard metrics in template.yaml", len(alarms), len(dashboards))
	}
	onDashboard := map[string]bool{}
	for _, m := range append(alarms, dashboards...) {
		switch {
		case m.namespace == metrics.Namespace:
			if !emitted[m.name] {
				t.Errorf("%s reads %s/%s, which shared/metrics does not emit", m.where, m.namespace, m.name)
			}
		case !strings.HasPrefix(m.namespace, "AWS/"):
			t.Errorf("%s reads %s/%s: neither AWS's namespace nor the service's %s", m.where, m.namespace, m.name, metrics.Namespace)
		}
	}
	for _, m := range dashboards {
		if m.namespace == metrics.Namespace {
			onDashboard[m.name] = true
		}
	}
	for _, n := range metrics.Names() {
		if !onDashboard[n] {
			t.Errorf("the dashboard does not show %s, which shared/metrics emits", n)
		}
	}
}

// TestDashboardShowsEveryFunction: the dashboard charts the duration, errors and throttles
// of every function the template defines, so a new function cannot be left off it.
func TestDashboardShowsEveryFunction(t *testing.T) {
	resources := asMap(consistencyDoc(t)["Resources"])
	shown := map[string]bool{}
	for _, m := range dashboardMetrics(t, resources) {
		if m.namespace == "AWS/Lambda" {
			shown[m.name+" "+m.dimension] = true
		}
	}
	functions := 0
	for id, raw := range resources {
		if asMap(raw)["Type"] != functionType {
			continue
		}
		functions++
		for _, metric := range []string{"Duration", "Errors", "Throttles"} {
			if !shown[metric+" "+id] {
				t.Errorf("the dashboard does not chart AWS/Lambda %s of %s", metric, id)
			}
		}
	}
	if functions == 0 {
		t.Fatal("no functions found in template.yaml")
	}
}

// sdkClients maps an IAM action prefix to the SDK package of its client.
var sdkClients = map[string]string{
	"dynamodb":       "github.com/aws/aws-sdk-go-v2/service/dynamodb",
	"sqs":            "github.com/aws/aws-sdk-go-v2/service/sqs",
	"kms":            "github.com/aws/aws-sdk-go-v2/service/kms",
	"secretsmanager": "github.com/aws/aws-sdk-go-v2/service/secretsmanager",
}

// TestFunctionsLinkTheClientsTheirPoliciesGrant: a function's binary links the SDK client
// of exactly the services its policies let it call, and not the SDK's full configuration
// loader (with its STS, SSO and metadata credential sources). A client linked but never
// granted is package initialisation every cold start pays for nothing (it used to be
// every client in every function); one granted but not linked is a permission to remove.
func TestFunctionsLinkTheClientsTheirPoliciesGrant(t *testing.T) {
	doc := consistencyDoc(t)
	targets := buildTargets(t)
	for id, raw := range asMap(doc["Resources"]) {
		res := asMap(raw)
		if res["Type"] != functionType || targets[id] == "" {
			continue
		}
		t.Run(id, func(t *testing.T) {
			granted := map[string]bool{}
			policies, _ := asMap(res["Properties"])["Policies"].([]any)
			for _, p := range policies {
				stmts, _ := asMap(p)["Statement"].([]any)
				for _, st := range stmts {
					if viaService(asMap(st)) {
						continue // used through another service's client (a secret's key via Secrets Manager)
					}
					actions, _ := asMap(st)["Action"].([]any)
					if a, ok := asMap(st)["Action"].(string); ok {
						actions = []any{a}
					}
					for _, a := range actions {
						prefix, _, _ := strings.Cut(fmt.Sprint(a), ":")
						if _, known := sdkClients[prefix]; !known {
							t.Errorf("action %v: no SDK client known for %q (add it to sdkClients)", a, prefix)
						}
						granted[prefix] = true
					}
				}
			}
			list := exec.Command("go", "list", "-deps", "./functions/"+targets[id])
			list.Dir = repoRoot(t)
			out, err := list.Output()
			if err != nil {
				t.Fatalf("go list -deps ./functions/%s: %v", targets[id], err)
			}
			deps := map[string]bool{}
			for _, pkg := range strings.Fields(string(out)) {
				deps[pkg] = true
			}
			for prefix, pkg := range sdkClients {
				if deps[pkg] != granted[prefix] {
					t.Errorf("links %s: %t; its policies grant %s actions: %t", pkg, deps[pkg], prefix, granted[prefix])
				}
			}
			if deps["github.com/aws/aws-sdk-go-v2/config"] {
				t.Error("links the SDK's full configuration loader; functions use coldstart.LoadAWS")
			}
		})
	}
}

// TestTemplateSecretsKeyGrants: exactly the functions docs/security.md names may use the
// key that seals webhook signing secrets, each with exactly the actions it names; and the
// service's own key (access log, cursor secret) only decrypts the cursor secret for the
// listing functions.
func TestTemplateSecretsKeyGrants(t *testing.T) {
	doc := consistencyDoc(t)
	for key, want := range map[string]map[string][]string{
		"SecretsKey": {
			"RegisterEndpointFunction": {"kms:Decrypt", "kms:Encrypt"},
			"EnableEndpointFunction":   {"kms:Decrypt"},
			"TestEndpointFunction":     {"kms:Decrypt"},
			"DeliverFunction":          {"kms:Decrypt"},
		},
		"ServiceKey": {
			"ListEndpointsFunction":  {"kms:Decrypt"},
			"ListDeliveriesFunction": {"kms:Decrypt"},
		},
	} {
		if got := keyGrants(doc, key); !reflect.DeepEqual(got, want) {
			t.Errorf("%s grants %v, docs/security.md says %v", key, got, want)
		}
	}
}

// keyGrants maps each function to the actions its policies allow on the resource key.
func keyGrants(doc map[string]any, key string) map[string][]string {
	got := map[string][]string{}
	for id, raw := range asMap(doc["Resources"]) {
		res := asMap(raw)
		if res["Type"] != functionType {
			continue
		}
		policies, _ := asMap(res["Properties"])["Policies"].([]any)
		for _, p := range policies {
			stmts, _ := asMap(p)["Statement"].([]any)
			for _, st := range stmts {
				st := asMap(st)
				if !mentionsResource(st["Resource"], key) {
					continue
				}
				actions, _ := st["Action"].([]any)
				if a, ok := st["Action"].(string); ok {
					actions = []any{a}
				}
				for _, a := range actions {
					got[id] = append(got[id], fmt.Sprint(a))
				}
			}
		}
	}
	for id := range got {
		sort.Strings(got[id])
	}
	return got
}

// TestTemplateFunctionsHaveBoundedConcurrency: every function reserves its concurrency from
// a template parameter (so an event storm in one cannot starve the others or the account),
// and an SQS event source never runs more batches at once than that reservation (a
// throttled batch counts as a receive and could dead-letter messages early).
func TestTemplateFunctionsHaveBoundedConcurrency(t *testing.T) {
	doc := consistencyDoc(t)
	params := asMap(doc["Parameters"])
	sum := 0
	for id, raw := range asMap(doc["Resources"]) {
		res := asMap(raw)
		if res["Type"] != functionType {
			continue
		}
		props := asMap(res["Properties"])
		name, arg, ok := intrinsic(props["ReservedConcurrentExecutions"])
		param := asMap(params[fmt.Sprint(arg)])
		if !ok || name != "Ref" || param["Type"] != "Number" || param["Default"] == nil || param["MinValue"] == nil {
			t.Errorf("%s: ReservedConcurrentExecutions must be a !Ref to a Number parameter with a Default and a MinValue, got %v", id, props["ReservedConcurrentExecutions"])
			continue
		}
		def, _ := literalInt(doc, param["Default"])
		sum += def
		for evName, ev := range asMap(props["Events"]) {
			if asMap(ev)["Type"] != "SQS" {
				continue
			}
			maxc := asMap(asMap(asMap(ev)["Properties"])["ScalingConfig"])["MaximumConcurrency"]
			if n, a, ok := intrinsic(maxc); !ok || n != "Ref" || a != arg {
				t.Errorf("%s event %s: ScalingConfig.MaximumConcurrency must be !Ref %v (the reservation), got %v", id, evName, arg, maxc)
			}
			if min, _ := literalInt(doc, param["MinValue"]); min < 2 {
				t.Errorf("%s: parameter %v allows %d, below SQS's minimum MaximumConcurrency of 2", id, arg, min)
			}
		}
	}
	// Lambda keeps at least 100 of an account's (default 1,000) concurrency unreserved.
	if sum > 900 {
		t.Errorf("the default reservations add up to %d; an account of 1,000 must keep 100 unreserved", sum)
	}
	// The operator's docs state the sum and the account quota it needs: they must be today's.
	for file, phrases := range map[string][]string{
		"README.md":       {fmt.Sprintf("%d in all by default", sum), fmt.Sprintf("an account below %d", sum+100)},
		"docs/runbook.md": {fmt.Sprintf("%d in all by default", sum)},
	} {
		text, err := os.ReadFile(filepath.Join(repoRoot(t), file))
		if err != nil {
			t.Fatal(err)
		}
		flat := strings.Join(strings.Fields(string(text)), " ")
		for _, p := range phrases {
			if !strings.Contains(flat, p) {
				t.Errorf("%s must say %q (the default reservations add up to %d)", file, p, sum)
			}
		}
	}
}

// TestTemplateCheckovSkipsGiveReasons: every checkov check the template does not follow is
// skipped in its resource's Metadata with the check's id and a one-line reason (make lint
// runs checkov and fails on any other finding).
func TestTemplateCheckovSkipsGiveReasons(t *testing.T) {
	doc := consistencyDoc(t)
	id := regexp.MustCompile(`^CKV2?_AWS_[0-9]+$`)
	skips := 0
	for res, raw := range asMap(doc["Resources"]) {
		for _, s := range asSlice(asMap(asMap(asMap(raw)["Metadata"])["checkov"])["skip"]) {
			skip := asMap(s)
			comment := fmt.Sprint(skip["comment"])
			if !id.MatchString(fmt.Sprint(skip["id"])) || len(comment) < 20 || strings.Contains(comment, "\n") || skip["comment"] == nil {
				t.Errorf("%s: checkov skip %v needs a check id and a one-line reason", res, skip)
			}
			skips++
		}
	}
	if skips == 0 {
		t.Error("no checkov skips found; if the template now passes every check, delete this test")
	}
}

// viaService reports whether a statement only allows its actions through another AWS
// service (a kms:ViaService condition): the function calls that service, not this one.
func viaService(st map[string]any) bool {
	for _, cond := range asMap(st["Condition"]) {
		if _, ok := asMap(cond)["kms:ViaService"]; ok {
			return true
		}
	}
	return false
}

// mentionsResource reports whether a statement's Resource refers to the logical id (by
// !GetAtt or !Ref, alone or in a list), or is a wildcard (which would grant it too).
func mentionsResource(v any, id string) bool {
	switch r := v.(type) {
	case []any:
		for _, x := range r {
			if mentionsResource(x, id) {
				return true
			}
		}
		return false
	case string:
		return r == "*"
	}
	name, arg, ok := intrinsic(v)
	if !ok {
		return false
	}
	switch name {
	case "Ref":
		return arg == id
	case "Fn::GetAtt":
		res, _, err := getAttArgs(arg)
		return err == nil && res == id
	}
	return strings.Contains(fmt.Sprint(arg), id)
}

// maxAlarmMetrics is CloudWatch's hard limit of metrics (MetricStat entries) in one
// metric-math alarm.
const maxAlarmMetrics = 10

// TestTemplateAlarmsCoverEveryFunction: every function's Lambda Errors and Throttles are
// watched by exactly one alarm each, and no alarm exceeds CloudWatch's metric limit (so a
// new function goes into an alarm with room, or a new alarm).
func TestTemplateAlarmsCoverEveryFunction(t *testing.T) {
	doc := consistencyDoc(t)
	resources := asMap(doc["Resources"])
	watched := map[string]map[string][]string{"Errors": {}, "Throttles": {}} // metric -> function -> alarms
	for id, raw := range resources {
		res := asMap(raw)
		if res["Type"] != "AWS::CloudWatch::Alarm" {
			continue
		}
		stats := 0
		for _, m := range asSlice(asMap(res["Properties"])["Metrics"]) {
			ms := asMap(asMap(m)["MetricStat"])
			if ms == nil {
				continue
			}
			stats++
			metric := asMap(ms["Metric"])
			if metric["Namespace"] != "AWS/Lambda" || watched[scalarString(metric["MetricName"])] == nil {
				continue
			}
			for _, d := range asSlice(metric["Dimensions"]) {
				if asMap(d)["Name"] != "FunctionName" {
					continue
				}
				if name, fn, ok := intrinsic(asMap(d)["Value"]); ok && name == "Ref" {
					mn := scalarString(metric["MetricName"])
					watched[mn][scalarString(fn)] = append(watched[mn][scalarString(fn)], id)
				}
			}
		}
		if stats > maxAlarmMetrics {
			t.Errorf("%s reads %d metrics; CloudWatch allows at most %d in one alarm", id, stats, maxAlarmMetrics)
		}
	}
	for id, raw := range resources {
		if asMap(raw)["Type"] != functionType {
			continue
		}
		for metric, byFn := range watched {
			if got := byFn[id]; len(got) != 1 {
				t.Errorf("%s: Lambda %s is watched by %d alarms %v, want exactly one", id, metric, len(got), got)
			}
		}
	}
}
