package memstore_test

import (
	"testing"

	"github.com/datajetty/webhooks/shared/app"
	"github.com/datajetty/webhooks/shared/dev/memstore"
	"github.com/datajetty/webhooks/shared/dev/storetest"
)

// The fakes implement the application's ports.
var (
	_ app.EndpointStore = (*memstore.Store)(nil)
	_ app.ReplayStore   = (*memstore.Store)(nil)
	_ app.SecretBox     = (*memstore.SecretBox)(nil)
	_ app.Challenger    = (*memstore.Challenger)(nil)
	_ app.ReplayQueue   = (*memstore.ReplayQueue)(nil)
)

// TestStoreBehaviour runs the behaviour suite that the DynamoDB adapters (shared/store)
// also run, against the fake.
func TestStoreBehaviour(t *testing.T) {
	t.Parallel()
	s := &memstore.Store{}
	storetest.Run(t, storetest.Stores{Endpoints: s, Replays: s})
}
