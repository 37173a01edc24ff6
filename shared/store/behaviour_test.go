package store

import (
	"testing"

	"github.com/datajetty/webhooks/shared/dev/storetest"
)

// TestStoreBehaviour runs the behaviour suite that the in-memory fake (shared/dev/memstore)
// also runs, against the DynamoDB adapters on the emulator.
func TestStoreBehaviour(t *testing.T) {
	t.Parallel()
	db, env := newStack(t)
	storetest.Run(t, storetest.Stores{
		Endpoints: NewEndpoints(db, env["WEBHOOKS_ENDPOINTS_TABLE"]),
		Replays:   NewReplays(db, env["WEBHOOKS_REPLAYS_TABLE"], env["WEBHOOKS_ENDPOINTS_TABLE"]),
	})
}
