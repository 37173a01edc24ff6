package wiring

import (
	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/app"
	"github.com/datajetty/webhooks/shared/auth"
	"github.com/datajetty/webhooks/shared/delivery"
	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/handshake"
	"github.com/datajetty/webhooks/shared/ingest"
	"github.com/datajetty/webhooks/shared/kmssecrets"
	"github.com/datajetty/webhooks/shared/queue"
	"github.com/datajetty/webhooks/shared/replayworker"
	"github.com/datajetty/webhooks/shared/sender"
	"github.com/datajetty/webhooks/shared/ssrf"
	"github.com/datajetty/webhooks/shared/store"
)

// The adapters implement the ports their users declare. The checks live here, where the
// pieces are wired, so that no adapter imports the layer that uses it.
var (
	_ api.Authenticator = (*auth.Verifier)(nil)

	_ domain.DestinationChecker = ssrf.Policy{}

	_ app.EndpointStore    = (*store.Endpoints)(nil)
	_ app.ReplayStore      = (*store.Replays)(nil)
	_ app.IdempotencyStore = (*store.Idempotency)(nil)
	_ app.RateLimiter      = (*store.RateLimits)(nil)
	_ app.AttemptLog       = (*store.Deliveries)(nil)
	_ app.SecretBox        = (*kmssecrets.Box)(nil)
	_ app.Challenger       = (*handshake.Challenger)(nil)
	_ app.ReplayQueue      = (*queue.ReplayJobs)(nil)
	_ app.TestSender       = sender.Sender{}
	_ app.AttemptRecorder  = (*store.Deliveries)(nil)
	_ app.EventIndex       = (*store.Deliveries)(nil)
	_ app.EventReader      = (*store.Events)(nil)
	_ app.JobQueue         = (*queue.DeliveryJobs)(nil)
	_ app.Notifier         = (*queue.ServiceEvents)(nil)

	_ ingest.EventStore       = (*store.Events)(nil)
	_ ingest.EndpointLister   = (*store.Endpoints)(nil)
	_ ingest.JobSender        = (*queue.DeliveryJobs)(nil)
	_ ingest.DeadLetterSender = (*queue.DeadLetters)(nil)

	_ delivery.EndpointSource = (*store.Endpoints)(nil)
	_ delivery.EndpointState  = (*store.Endpoints)(nil)
	_ delivery.SecretOpener   = (*kmssecrets.Box)(nil)
	_ delivery.AttemptLog     = (*store.Deliveries)(nil)
	_ delivery.Visibility     = (*queue.Visibility)(nil)
	_ delivery.Notifier       = (*queue.ServiceEvents)(nil)

	_ replayworker.ReplayStore    = (*store.Replays)(nil)
	_ replayworker.EndpointGetter = (*store.Endpoints)(nil)
	_ replayworker.EventPager     = (*store.Events)(nil)
	_ replayworker.FailedPager    = (*store.Recovery)(nil)
	_ replayworker.JobSender      = (*queue.DeliveryJobs)(nil)
	_ replayworker.Continuer      = (*queue.ReplayJobs)(nil)
)
