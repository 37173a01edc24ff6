package kmssecrets

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/datajetty/webhooks/shared/dev/testenv"
	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/signing"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func newBox(t *testing.T) *Box {
	t.Helper()
	stack := testenv.Stack(t, nil)
	return New(kms.NewFromConfig(testenv.AWSConfig(t)), stack.Env["WEBHOOKS_SECRETS_KEY_ID"])
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	box := newBox(t)
	secret, err := signing.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}

	ct, err := box.Seal(ctx, "tenant-a", "ep_1", secret)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, []byte(secret.Encode())) {
		t.Fatal("the ciphertext contains the secret")
	}
	got, err := box.Open(ctx, "tenant-a", "ep_1", ct)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(secret) {
		t.Fatal("Open returned a different secret")
	}

	// The ciphertext is bound to its tenant and endpoint.
	for _, c := range []struct{ tenant, endpoint string }{{"tenant-a", "ep_2"}, {"tenant-b", "ep_1"}} {
		_, err := box.Open(ctx, c.tenant, c.endpoint, ct)
		if err == nil {
			t.Fatalf("Open(%s, %s) of ep_1's ciphertext succeeded", c.tenant, c.endpoint)
		}
		if errors.Is(err, domain.ErrUnavailable) {
			t.Errorf("a wrong context is not an outage: %v", err)
		}
		if strings.Contains(err.Error(), secret.Encode()) {
			t.Error("the error contains the secret")
		}
	}
	if _, err := box.Open(ctx, "tenant-a", "ep_1", []byte("garbage")); err == nil {
		t.Error("Open of garbage succeeded")
	}
	if _, err := box.Seal(ctx, "tenant-a", "ep_1", signing.Secret{}); err == nil {
		t.Error("sealing the zero secret succeeded")
	}
}

func TestKeyServiceDown(t *testing.T) {
	t.Parallel()
	cfg, _ := testenv.DownAWSConfig(t)
	box := New(kms.NewFromConfig(cfg), "alias/secrets")
	secret, err := signing.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, sealErr := box.Seal(ctx, "tenant-a", "ep_1", secret)
	_, openErr := box.Open(ctx, "tenant-a", "ep_1", []byte("ct"))
	for name, err := range map[string]error{"seal": sealErr, "open": openErr} {
		if !errors.Is(err, domain.ErrUnavailable) {
			t.Errorf("%s: error = %v, want domain.ErrUnavailable", name, err)
		}
		if err != nil && strings.Contains(err.Error(), secret.Encode()) {
			t.Errorf("%s: the error contains the secret", name)
		}
	}
}
