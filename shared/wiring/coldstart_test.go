package wiring

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/datajetty/webhooks/shared/config"
)

// TestColdStartNamesTheFailedStep: the log message of a failed cold start says which step
// failed, as docs/runbook.md lists them, and a good one hands build the configuration.
func TestColdStartNamesTheFailedStep(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
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
			h, stage, err := coldStart(context.Background(), slog.Default(), tc.read, tc.build)
			if stage != tc.wantStage || (err != nil) != (tc.wantStage != "") || h != tc.want {
				t.Errorf("coldStart = %q, %q, %v; want %q at stage %q", h, stage, err, tc.want, tc.wantStage)
			}
		})
	}
}
