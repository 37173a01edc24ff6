// Package metrics writes CloudWatch metrics in Embedded Metric Format (EMF): JSON lines on
// stdout that CloudWatch Logs turns into metrics, with no API call and no extra latency.
// Every metric has one bounded dimension, the function name; tenants and endpoints are
// never dimensions (their cardinality would be the bill), they are in the log lines.
package metrics

import (
	"encoding/json"
	"io"
	"sort"
	"sync"
	"time"
)

// Namespace is the CloudWatch namespace of every metric of the service.
const Namespace = "DataJetty/Webhooks"

// Metric names, one vocabulary for the code, the alarms and the dashboard.
const (
	DeliveriesSucceeded   = "DeliveriesSucceeded"
	DeliveriesFailed      = "DeliveriesFailed"
	DeliveriesDeadLetter  = "DeliveriesDeadLettered"
	DeliveriesSkipped     = "DeliveriesSkipped"
	DeliveryLatency       = "DeliveryLatency"
	RetriesScheduled      = "RetriesScheduled"
	EndpointsAutoDisabled = "EndpointsAutoDisabled"
	HandshakesFailed      = "HandshakesFailed"
	RequestsRateLimited   = "RequestsRateLimited"
	EventsIngested        = "EventsIngested"
	EventsRejected        = "EventsRejected"
	ReplayEventsEnqueued  = "ReplayEventsEnqueued"
)

// Names returns every metric name above. The alarms and the dashboard in template.yaml
// use only these, and the dashboard shows each of them (TestTemplateMetricsAreEmitted in
// shared/dev/devstack).
func Names() []string {
	return []string{
		DeliveriesSucceeded, DeliveriesFailed, DeliveriesDeadLetter, DeliveriesSkipped, DeliveryLatency,
		RetriesScheduled, EndpointsAutoDisabled, HandshakesFailed, RequestsRateLimited,
		EventsIngested, EventsRejected, ReplayEventsEnqueued,
	}
}

// Unit is a CloudWatch unit.
type Unit string

// Units used by the service.
const (
	Count        Unit = "Count"
	Milliseconds Unit = "Milliseconds"
)

// maxValues is EMF's limit of values per metric in one document.
const maxValues = 100

// Emitter buffers metrics and writes them as one EMF document per Flush. It is safe for
// concurrent use; a function keeps one per instance and flushes after each invocation.
type Emitter struct {
	w        io.Writer
	function string
	now      func() time.Time

	mu     sync.Mutex
	counts map[string]float64
	values map[string][]float64
	units  map[string]Unit
}

// New returns an emitter writing to w (os.Stdout in Lambda) for the named function.
func New(w io.Writer, function string) *Emitter {
	return &Emitter{w: w, function: function, now: time.Now, counts: map[string]float64{}, values: map[string][]float64{}, units: map[string]Unit{}}
}

// Add counts n occurrences of name.
func (e *Emitter) Add(name string, n float64) {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.counts[name] += n
	e.units[name] = Count
}

// Observe records one value of a distribution (latency); CloudWatch computes percentiles.
func (e *Emitter) Observe(name string, unit Unit, v float64) {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.values[name] = append(e.values[name], v)
	e.units[name] = unit
}

// Flush writes what was recorded since the last Flush as EMF documents (one per 100
// values of the busiest distribution) and resets the buffer. Nothing recorded, nothing
// written.
func (e *Emitter) Flush() error {
	if e == nil {
		return nil
	}
	e.mu.Lock()
	counts, values, units := e.counts, e.values, e.units
	e.counts, e.values, e.units = map[string]float64{}, map[string][]float64{}, map[string]Unit{}
	e.mu.Unlock()
	if len(counts) == 0 && len(values) == 0 {
		return nil
	}
	for first := true; first || len(values) > 0; first = false {
		doc := map[string]any{"Function": e.function}
		var defs []map[string]string
		names := make([]string, 0, len(counts)+len(values))
		for n := range counts {
			names = append(names, n)
		}
		for n := range values {
			if _, dup := counts[n]; !dup {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		for _, n := range names {
			if c, ok := counts[n]; ok {
				doc[n] = c
				defs = append(defs, map[string]string{"Name": n, "Unit": string(units[n])})
				continue
			}
			vs := values[n]
			if len(vs) > maxValues {
				doc[n], values[n] = vs[:maxValues], vs[maxValues:]
			} else {
				doc[n] = vs
				delete(values, n)
			}
			defs = append(defs, map[string]string{"Name": n, "Unit": string(units[n])})
		}
		counts = nil // counts go in the first document only
		doc["_aws"] = map[string]any{
			"Timestamp": e.now().UnixMilli(),
			"CloudWatchMetrics": []map[string]any{{
				"Namespace":  Namespace,
				"Dimensions": [][]string{{"Function"}},
				"Metrics":    defs,
			}},
		}
		b, err := json.Marshal(doc)
		if err != nil {
			return err
		}
		e.mu.Lock()
		_, err = e.w.Write(append(b, '\n'))
		e.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}
