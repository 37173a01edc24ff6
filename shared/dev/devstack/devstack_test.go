package devstack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"gopkg.in/yaml.v3"

	"github.com/datajetty/webhooks/shared/dev/devstack"
	"github.com/datajetty/webhooks/shared/dev/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// templateFacts reads, independently of devstack, the resource types and the
// global environment variable names of the real template.yaml.
func templateFacts(t *testing.T) (types map[string]string, envNames []string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	get := func(n *yaml.Node, key string) *yaml.Node {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i+1]
			}
		}
		return nil
	}
	root := doc.Content[0]
	types = map[string]string{}
	res := get(root, "Resources")
	for i := 0; i+1 < len(res.Content); i += 2 {
		types[res.Content[i].Value] = get(res.Content[i+1], "Type").Value
	}
	vars := get(get(get(get(root, "Globals"), "Function"), "Environment"), "Variables")
	for i := 0; i+1 < len(vars.Content); i += 2 {
		envNames = append(envNames, vars.Content[i].Value)
	}
	sort.Strings(envNames)
	return types, envNames
}

func TestProvisionTemplate(t *testing.T) {
	cfg := testenv.AWSConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	params := map[string]string{"JwtIssuer": "https://issuer.test/"}
	st := testenv.Stack(t, params)
	types, envNames := templateFacts(t)

	// Every stateful resource of the Template exists, nothing else was made.
	for id, typ := range types {
		_, got := st.Resources[id]
		switch typ {
		case devstack.TypeTable, devstack.TypeQueue, devstack.TypeKey, devstack.TypeSecret:
			if !got {
				t.Errorf("%s (%s) not provisioned", id, typ)
			}
		default:
			if got {
				t.Errorf("%s (%s) should have been ignored", id, typ)
			}
		}
	}
	for _, id := range []string{"EndpointsTable", "IdempotencyTable", "RateLimitTable", "ReplaysTable",
		"ReplayQueue", "ReplayDLQ", "SecretsKey", "CursorSigningSecret"} {
		if _, ok := st.Resources[id]; !ok {
			t.Errorf("%s missing from Resources", id)
		}
	}

	// Tables: key schema, billing mode, TTL.
	ddb := dynamodb.NewFromConfig(cfg)
	tables := map[string]struct {
		hash, rng, ttl string
	}{
		"EndpointsTable":   {"tenant_id", "sk", ""},
		"IdempotencyTable": {"pk", "", "expires_at"},
		"RateLimitTable":   {"pk", "", "expires_at"},
		"ReplaysTable":     {"tenant_id", "replay_id", "expires_at"},
	}
	for id, want := range tables {
		name := st.Resources[id]
		if name != st.Prefix+id {
			t.Errorf("%s: table name %q, want %q", id, name, st.Prefix+id)
		}
		d, err := ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		var hash, rng string
		for _, k := range d.Table.KeySchema {
			switch k.KeyType {
			case ddbtypes.KeyTypeHash:
				hash = aws.ToString(k.AttributeName)
			case ddbtypes.KeyTypeRange:
				rng = aws.ToString(k.AttributeName)
			}
		}
		if hash != want.hash || rng != want.rng {
			t.Errorf("%s: key (%q, %q), want (%q, %q)", id, hash, rng, want.hash, want.rng)
		}
		if bm := d.Table.BillingModeSummary; bm == nil || bm.BillingMode != ddbtypes.BillingModePayPerRequest {
			t.Errorf("%s: billing mode %+v, want PAY_PER_REQUEST", id, bm)
		}
		if arn, _ := st.Attr(id, "Arn"); arn != aws.ToString(d.Table.TableArn) {
			t.Errorf("%s: Arn attr %q, want %q", id, arn, aws.ToString(d.Table.TableArn))
		}
		ttl, err := ddb.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		enabled := ttl.TimeToLiveDescription != nil && ttl.TimeToLiveDescription.TimeToLiveStatus == ddbtypes.TimeToLiveStatusEnabled
		switch {
		case want.ttl == "" && enabled:
			t.Errorf("%s: TTL enabled, want none", id)
		case want.ttl != "" && (!enabled || aws.ToString(ttl.TimeToLiveDescription.AttributeName) != want.ttl):
			t.Errorf("%s: TTL %+v, want enabled on %s", id, ttl.TimeToLiveDescription, want.ttl)
		}
	}

	// Queues: visibility, retention, redrive to the DLQ.
	q := sqs.NewFromConfig(cfg)
	attrs := func(id string) map[string]string {
		out, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
			QueueUrl:       aws.String(st.Resources[id]),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll},
		})
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		return out.Attributes
	}
	rq, dlq := attrs("ReplayQueue"), attrs("ReplayDLQ")
	tpl, err := devstack.LoadTemplate(filepath.Join(testenv.RepoRoot(), "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprint(tpl.Resources["ReplayQueue"].Properties["VisibilityTimeout"]); rq["VisibilityTimeout"] != want {
		t.Errorf("ReplayQueue VisibilityTimeout = %s, template says %s", rq["VisibilityTimeout"], want)
	}
	if dlq["MessageRetentionPeriod"] != "1209600" {
		t.Errorf("ReplayDLQ MessageRetentionPeriod = %s", dlq["MessageRetentionPeriod"])
	}
	var redrive struct {
		DeadLetterTargetArn string `json:"deadLetterTargetArn"`
		MaxReceiveCount     any    `json:"maxReceiveCount"`
	}
	if err := json.Unmarshal([]byte(rq["RedrivePolicy"]), &redrive); err != nil {
		t.Fatalf("RedrivePolicy %q: %v", rq["RedrivePolicy"], err)
	}
	if redrive.DeadLetterTargetArn != dlq["QueueArn"] || redrive.DeadLetterTargetArn == "" {
		t.Errorf("redrive target %q, want DLQ %q", redrive.DeadLetterTargetArn, dlq["QueueArn"])
	}
	if n := strings.Trim(jsonString(redrive.MaxReceiveCount), `"`); n != "5" {
		t.Errorf("maxReceiveCount = %v, want 5", redrive.MaxReceiveCount)
	}

	// Env: every WEBHOOKS_* variable of the Template, resolved.
	var gotNames []string
	for k := range st.Env {
		gotNames = append(gotNames, k)
	}
	sort.Strings(gotNames)
	if !reflect.DeepEqual(gotNames, envNames) {
		t.Errorf("Env names = %v, want %v", gotNames, envNames)
	}
	for k, v := range st.Env {
		if v == "" {
			t.Errorf("Env %s is empty", k)
		}
	}
	if _, ok := st.Env["WEBHOOKS_ALLOW_PRIVATE_TARGETS"]; ok {
		t.Error("Template must not set WEBHOOKS_ALLOW_PRIVATE_TARGETS")
	}
	wantEnv := map[string]string{
		"WEBHOOKS_ENDPOINTS_TABLE":    st.Prefix + "EndpointsTable",
		"WEBHOOKS_IDEMPOTENCY_TABLE":  st.Prefix + "IdempotencyTable",
		"WEBHOOKS_RATE_LIMIT_TABLE":   st.Prefix + "RateLimitTable",
		"WEBHOOKS_REPLAYS_TABLE":      st.Prefix + "ReplaysTable",
		"WEBHOOKS_REPLAY_QUEUE_URL":   st.Resources["ReplayQueue"],
		"WEBHOOKS_SECRETS_KEY_ID":     st.Resources["SecretsKey"],
		"WEBHOOKS_CURSOR_SECRET_ARN":  st.Resources["CursorSigningSecret"],
		"WEBHOOKS_JWT_ISSUER":         "https://issuer.test/", // overridden
		"WEBHOOKS_TENANT_CLAIM":       "tenant_id",            // Template default
		"WEBHOOKS_EVENTS_TABLE":       st.Prefix + "EventsTable",
		"WEBHOOKS_DELIVERY_QUEUE_URL": st.Resources["DeliveryQueue"],
	}
	for k, w := range wantEnv {
		if st.Env[k] != w {
			t.Errorf("Env %s = %q, want %q", k, st.Env[k], w)
		}
	}
	if !strings.HasSuffix(st.Env["WEBHOOKS_REPLAY_QUEUE_URL"], "/"+st.Prefix+"ReplayQueue") {
		t.Errorf("queue URL %q", st.Env["WEBHOOKS_REPLAY_QUEUE_URL"])
	}

	// The key works for what RegisterEndpoint does with it.
	k := kms.NewFromConfig(cfg)
	enc, err := k.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(st.Env["WEBHOOKS_SECRETS_KEY_ID"]), Plaintext: []byte("whsec_x")})
	if err != nil {
		t.Fatalf("kms encrypt: %v", err)
	}
	dec, err := k.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	if err != nil || string(dec.Plaintext) != "whsec_x" {
		t.Fatalf("kms decrypt: %q, %v", dec.Plaintext, err)
	}

	// The cursor secret honours GenerateSecretString (64, no punctuation).
	sm := secretsmanager.NewFromConfig(cfg)
	sec, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(st.Env["WEBHOOKS_CURSOR_SECRET_ARN"])})
	if err != nil {
		t.Fatalf("secret: %v", err)
	}
	if v := aws.ToString(sec.SecretString); !regexp.MustCompile(`^[A-Za-z0-9]{64}$`).MatchString(v) {
		t.Errorf("secret value %q: want 64 alphanumerics", v)
	}
}

func TestProvisionTwiceReusesAndTeardownRemoves(t *testing.T) {
	cfg := testenv.AWSConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tpl := filepath.Join(testenv.RepoRoot(), "template.yaml")
	opts := devstack.Options{Prefix: testenv.Prefix(t)}

	first, err := devstack.Provision(ctx, cfg, tpl, opts)
	if err != nil {
		_ = first.Teardown(ctx)
		t.Fatal(err)
	}
	second, err := devstack.Provision(ctx, cfg, tpl, opts)
	if err != nil {
		_ = first.Teardown(ctx)
		t.Fatalf("second provision: %v", err)
	}
	if !reflect.DeepEqual(first.Resources, second.Resources) {
		t.Errorf("second provision made new resources:\n%v\n%v", first.Resources, second.Resources)
	}
	if !reflect.DeepEqual(first.Env, second.Env) {
		t.Errorf("Env differs:\n%v\n%v", first.Env, second.Env)
	}

	if err := second.Teardown(ctx); err != nil {
		t.Fatalf("teardown: %v", err)
	}
	if err := first.Teardown(ctx); err != nil {
		t.Fatalf("second teardown must tolerate what is gone: %v", err)
	}

	ddb := dynamodb.NewFromConfig(cfg)
	if _, err := ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(first.Resources["EndpointsTable"])}); err == nil {
		t.Error("table still exists after teardown")
	}
	q := sqs.NewFromConfig(cfg)
	if _, err := q.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(opts.Prefix + "ReplayQueue")}); err == nil {
		t.Error("queue still exists after teardown")
	}
	sm := secretsmanager.NewFromConfig(cfg)
	if _, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(first.Resources["CursorSigningSecret"])}); err == nil {
		t.Error("secret still exists after teardown")
	}
	k := kms.NewFromConfig(cfg)
	d, err := k.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(first.Resources["SecretsKey"])})
	if err != nil {
		t.Fatal(err)
	}
	if d.KeyMetadata.KeyState != kmstypes.KeyStatePendingDeletion {
		t.Errorf("key state %s, want PendingDeletion", d.KeyMetadata.KeyState)
	}
}

func TestProvisionErrors(t *testing.T) {
	cfg := testenv.AWSConfig(t)
	ctx := context.Background()
	if _, err := devstack.Provision(ctx, cfg, filepath.Join(t.TempDir(), "missing.yaml"), devstack.Options{}); err == nil {
		t.Error("missing template: want error")
	}
	bad := filepath.Join(t.TempDir(), "t.yaml")
	body := "Parameters:\n  P: {Type: String}\nGlobals:\n  Function:\n    Environment:\n      Variables:\n        X: !Ref P\nResources: {}\n"
	if err := os.WriteFile(bad, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := devstack.Provision(ctx, cfg, bad, devstack.Options{Prefix: testenv.Prefix(t)})
	if err == nil || !strings.Contains(err.Error(), "P has no value") {
		t.Errorf("parameter without value: got %v", err)
	}
	_ = st.Teardown(ctx)
	st, err = devstack.Provision(ctx, cfg, bad, devstack.Options{Prefix: testenv.Prefix(t), Parameters: map[string]string{"P": "v"}})
	if err != nil || st.Env["X"] != "v" {
		t.Errorf("with parameter: %v, %v", err, st.Env)
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
