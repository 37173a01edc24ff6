package workerfn

import (
	"strings"
	"testing"

	"github.com/datajetty/webhooks/shared/config"
	"github.com/datajetty/webhooks/shared/dev/testenv"
	"github.com/datajetty/webhooks/shared/wiring/coldstart"
)

func TestDeliverNamesItsMissingService(t *testing.T) {
	cfg, err := config.FromMap(map[string]string{"WEBHOOKS_ENDPOINTS_TABLE": "e", "WEBHOOKS_DELIVERIES_TABLE": "d",
		"WEBHOOKS_DELIVERY_QUEUE_URL": "http://q", "WEBHOOKS_INGEST_QUEUE_URL": "http://i", "WEBHOOKS_SECRETS_KEY_ID": "k"})
	if err != nil {
		t.Fatal(err)
	}
	down, _ := testenv.DownAWSConfig(t)
	if _, err := Deliver(cfg, down, Options{}, coldstart.Services{}); err == nil || !strings.Contains(err.Error(), "withkms.Services") {
		t.Errorf("deliver without KMS: %v, want an error naming withkms.Services", err)
	}
}
