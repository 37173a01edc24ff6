package delivery

import (
	"context"
	"sync"
	"time"

	"github.com/datajetty/webhooks/shared/domain"
)

// endpointKey names one tenant's endpoint.
type endpointKey struct{ tenant, endpoint string }

// watermarks coalesces an instance's watermark writes: at most one per endpoint every
// `every`. The first success after a quiet period is written at once; later ones within
// the period wait, and the newest of them is written by the first batch (of any endpoint)
// after the period, or by Flush when the instance shuts down. The store's condition keeps
// any write from moving a watermark back, so instances never undo each other.
type watermarks struct {
	every time.Duration

	mu      sync.Mutex
	m       map[endpointKey]*watermark
	pending map[endpointKey]bool // keys whose watermark has a value waiting
}

type watermark struct {
	written time.Time // the newest value this instance wrote
	at      time.Time // when it wrote it
	waiting time.Time // a newer success not written yet (zero: none)
}

func newWatermarks(every time.Duration) *watermarks {
	return &watermarks{every: every, m: map[endpointKey]*watermark{}, pending: map[endpointKey]bool{}}
}

// due takes the batch's newest success per endpoint and returns the writes to make now:
// those of this batch whose endpoint has not been written within `every`, and those left
// waiting by earlier batches whose period has passed. When all is true, everything waiting
// is due.
func (w *watermarks) due(batch map[endpointKey]time.Time, now time.Time, all bool) map[endpointKey]time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, t := range batch {
		wm := w.m[k]
		if wm == nil {
			wm = &watermark{}
			w.m[k] = wm
		}
		if t.After(wm.written) && t.After(wm.waiting) {
			wm.waiting = t
			w.pending[k] = true
		}
	}
	out := map[endpointKey]time.Time{}
	for k := range w.pending {
		wm := w.m[k]
		if all || wm.at.IsZero() || now.Sub(wm.at) >= w.every {
			out[k] = wm.waiting
			wm.written, wm.at, wm.waiting = wm.waiting, now, time.Time{}
			delete(w.pending, k)
		}
	}
	if len(w.m) >= cacheSweepAt {
		for k, wm := range w.m {
			if !w.pending[k] && now.Sub(wm.at) >= w.every {
				delete(w.m, k)
			}
		}
	}
	return out
}

// retry puts back a value whose write failed, so that a later batch writes it.
func (w *watermarks) retry(k endpointKey, t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	wm := w.m[k]
	if wm == nil {
		wm = &watermark{}
		w.m[k] = wm
	}
	if t.After(wm.waiting) {
		wm.waiting = t
	}
	wm.at = time.Time{} // due at the next batch
	w.pending[k] = true
}

// advance writes the due watermarks concurrently, logging (and keeping for later) the
// ones that fail.
func (h *Handler) advance(ctx context.Context, due map[endpointKey]time.Time) {
	var wg sync.WaitGroup
	for k, to := range due {
		wg.Go(func() {
			recovered, err := h.state.AdvanceWatermark(ctx, k.tenant, k.endpoint, to)
			if err != nil {
				h.logger.ErrorContext(ctx, "advance watermark", "tenant_id", k.tenant, "endpoint_id", k.endpoint, "error", err)
				h.marks.retry(k, to)
				return
			}
			if recovered != nil {
				h.notify(ctx, domain.EndpointRecoveredEvent(*recovered, recovered.FailingSince, h.now()))
			}
		})
	}
	wg.Wait()
}

// Flush writes every watermark still waiting, at once. The deliver function calls it when
// Lambda shuts the instance down (SIGTERM), so the last successes before a quiet period
// are not left unwritten.
func (h *Handler) Flush(ctx context.Context) {
	h.advance(ctx, h.marks.due(nil, h.now(), true))
}
