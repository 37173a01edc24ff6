package coldstart

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/datajetty/webhooks/shared/app"
	"github.com/datajetty/webhooks/shared/config"
)

// TestColdStartNamesTheFailedStep: the log message of a failed cold start says which step
// failed, as docs/runbook.md lists them, and a good one hands build the configuration.
func TestColdStartNamesTheFailedStep(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "id")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	good := func() (config.Config, error) {
		return config.FromMap(map[string]string{"WEBHOOKS_EVENTS_TABLE": "events"})
	}
	bad := func() (config.Config, error) {
		return config.FromMap(map[string]string{"WEBHOOKS_ALLOW_PRIVATE_TARGETS": "maybe"})
	}
	built := func(_ context.Context, b Boot) (string, error) { return b.Config.EventsTable, nil }
	failing := func(context.Context, Boot) (string, error) { return "", errors.New("config: missing WEBHOOKS_X") }
	for _, tc := range []struct {
		name      string
		read      func() (config.Config, error)
		build     func(context.Context, Boot) (string, error)
		want      string
		wantStage string
	}{
		{"ok", good, built, "events", ""},
		{"bad configuration", bad, built, "", "invalid configuration"},
		{"build fails", good, failing, "", "cold start failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, stage, err := run(context.Background(), slog.Default(), tc.read, tc.build)
			if stage != tc.wantStage || (err != nil) != (tc.wantStage != "") || h != tc.want {
				t.Errorf("coldStart = %q, %q, %v; want %q at stage %q", h, stage, err, tc.want, tc.wantStage)
			}
		})
	}
}

// TestLoadAWSFromTheEnvironment: the configuration is what Lambda's environment says, and a
// missing region or credentials fail the cold start naming the variables.
func TestLoadAWSFromTheEnvironment(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "eu-west-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_SESSION_TOKEN", "token")
	t.Setenv("AWS_ACCOUNT_ID", "123456789012")
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
	cfg, err := LoadAWS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != "eu-west-1" || cfg.BaseEndpoint == nil || *cfg.BaseEndpoint != "http://127.0.0.1:5000" || cfg.RetryMaxAttempts != 3 ||
		creds.AccessKeyID != "AKIDEXAMPLE" || creds.SecretAccessKey != "secret" || creds.SessionToken != "token" || creds.AccountID != "123456789012" {
		t.Errorf("config = region %q endpoint %v attempts %d credentials %+v", cfg.Region, cfg.BaseEndpoint, cfg.RetryMaxAttempts, creds)
	}
	t.Setenv("AWS_REGION", "us-east-2")
	t.Setenv("AWS_ENDPOINT_URL", "")
	if cfg, err := LoadAWS(context.Background()); err != nil || cfg.Region != "us-east-2" || cfg.BaseEndpoint != nil {
		t.Errorf("AWS_REGION first, no endpoint override: %q %v %v", cfg.Region, cfg.BaseEndpoint, err)
	}

	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	_, err = LoadAWS(context.Background())
	for _, name := range []string{"AWS_REGION", "AWS_SECRET_ACCESS_KEY"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
}

func TestMergeServices(t *testing.T) {
	kms := Services{SecretBox: func(aws.Config, string) app.SecretBox { return nil }}
	sm := Services{ReadSecret: func(context.Context, aws.Config, string) (string, error) { return "", nil }}
	m := Merge(kms, Services{}, sm)
	if m.SecretBox == nil || m.ReadSecret == nil || m.ReplayQueue != nil {
		t.Errorf("Merge kept SecretBox %t, ReadSecret %t, ReplayQueue %t; want true, true, false", m.SecretBox != nil, m.ReadSecret != nil, m.ReplayQueue != nil)
	}
	jobs := Services{DeliveryQueue: func(aws.Config, string) app.JobQueue { return nil }}
	if m := Merge(sm, jobs); m.DeliveryQueue == nil || m.ReadSecret == nil {
		t.Errorf("Merge dropped DeliveryQueue (%t) or ReadSecret (%t)", m.DeliveryQueue != nil, m.ReadSecret != nil)
	}
}
