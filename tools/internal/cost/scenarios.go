package cost

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Scenario is one traffic shape pushed through the pipeline.
type Scenario struct {
	// Name identifies the scenario (make cost SCENARIO=…); Title describes it in the tables.
	Name, Title string
	// Tenants receive the events in turn (event i belongs to tenant i mod Tenants); each has
	// Endpoints endpoints subscribed to the events' type, and one that is not.
	Tenants, Endpoints int
	// Events is how many events are published; Envelope is each one's size in bytes.
	Events, Envelope int
	// Incompressible fills the events' data with random base64 text instead of the
	// realistic, repetitive JSON of an export.done event.
	Incompressible bool
	// Batch is how many events a producer sends per call (and the ingest function gets per
	// invocation): 10 through shared/producer, 1 as separate SendMessage calls.
	Batch int
	// DeliverBatch is the deliver function's batch size (the event source's BatchSize, or
	// less when traffic is too thin to fill batches).
	DeliverBatch int
	// Rate is the traffic in events per second. It sets the simulated clock of the deliver
	// function (its endpoint cache and what else depends on time): it moves on Batch/Rate
	// seconds per producer batch.
	Rate float64
	// Instances is how many deliver function instances share the traffic, each with its
	// own caches; deliver batches go to them in turn.
	Instances int
	// IngestMillis and DeliverMillis are the assumed billed duration of one invocation
	// (Lambda time is not measured here: the emulator's latency is not AWS's);
	// ReplayMillis is the replay worker's per invocation.
	IngestMillis, DeliverMillis, ReplayMillis float64
	// Replay measures, instead of the events' first delivery, a replay of every matching
	// endpoint from before the first event (POST /replay, then the replay worker and the
	// deliver function): the cost per replayed delivery.
	Replay bool
}

// Typical is the scenario the goals are set for.
const Typical = "typical"

// Scenarios are the scenarios make cost runs, the typical one first.
var Scenarios = []Scenario{
	{
		Name: Typical, Title: "typical: 1 KiB envelope, 1 matching endpoint, first try succeeds, 100 events/s over 10 tenants, producers batch 10",
		Tenants: 10, Endpoints: 1, Events: 2000, Envelope: 1024, Batch: 10, DeliverBatch: 10, Rate: 100, Instances: 2,
		IngestMillis: 100, DeliverMillis: 300,
	},
	{
		Name: "one-endpoint", Title: "busy endpoint: as typical, but every event for one tenant's endpoint",
		Tenants: 1, Endpoints: 1, Events: 1000, Envelope: 1024, Batch: 10, DeliverBatch: 10, Rate: 100, Instances: 1,
		IngestMillis: 100, DeliverMillis: 300,
	},
	{
		Name: "fan-out-3", Title: "3 matching endpoints per event (a third of the events for as many deliveries)",
		Tenants: 10, Endpoints: 3, Events: 600, Envelope: 1024, Batch: 10, DeliverBatch: 10, Rate: 100, Instances: 2,
		IngestMillis: 100, DeliverMillis: 300,
	},
	{
		Name: "random-data", Title: "as typical, but the data is random base64 text (compresses only about 25 %)",
		Tenants: 10, Endpoints: 1, Events: 500, Envelope: 1024, Incompressible: true, Batch: 10, DeliverBatch: 10, Rate: 100, Instances: 2,
		IngestMillis: 100, DeliverMillis: 300,
	},
	{
		Name: "4-kib", Title: "as typical, but 4 KiB envelopes",
		Tenants: 10, Endpoints: 1, Events: 300, Envelope: 4096, Batch: 10, DeliverBatch: 10, Rate: 100, Instances: 2,
		IngestMillis: 100, DeliverMillis: 300,
	},
	{
		Name: "replay", Title: "replay: the stored events of 10 endpoints sent again (per replayed delivery)",
		Tenants: 10, Endpoints: 1, Events: 1000, Envelope: 1024, Batch: 10, DeliverBatch: 10, Rate: 100, Instances: 2,
		IngestMillis: 100, DeliverMillis: 300, ReplayMillis: 1000, Replay: true,
	},
	{
		Name: "low-traffic", Title: "low traffic: one event a minute, each for another tenant, sent alone; batches of 1",
		Tenants: 60, Endpoints: 1, Events: 60, Envelope: 1024, Batch: 1, DeliverBatch: 1, Rate: 1.0 / 60, Instances: 1,
		IngestMillis: 50, DeliverMillis: 250,
	},
}

// Find returns the named scenario.
func Find(name string) (Scenario, error) {
	for _, s := range Scenarios {
		if s.Name == name {
			return s, nil
		}
	}
	names := make([]string, len(Scenarios))
	for i, s := range Scenarios {
		names[i] = s.Name
	}
	return Scenario{}, fmt.Errorf("no scenario %q (have %s)", name, strings.Join(names, ", "))
}

// tenantID names tenant i.
func tenantID(i int) string { return fmt.Sprintf("tenant-%03d", i) }

// eventID names event i of a run.
func eventID(i int) string { return fmt.Sprintf("evt_%08d", i) }

// eventType is the type every event has and every measured endpoint subscribes to.
const eventType = "export.done"

// envelopeOverhead is what an envelope holds besides data, for an event id, tenant id and
// occurred_at of the fixed widths above.
func envelopeOverhead(i int, at time.Time) int {
	b, _ := json.Marshal(struct {
		ID         string          `json:"id"`
		TenantID   string          `json:"tenant_id"`
		Type       string          `json:"type"`
		OccurredAt string          `json:"occurred_at"`
		Data       json.RawMessage `json:"data"`
	}{eventID(i), tenantID(0), eventType, at.UTC().Format(time.RFC3339Nano), json.RawMessage(`""`)})
	return len(b) - 2
}

// eventData returns data for event i that makes its envelope exactly size bytes: an
// export.done report (export id, dataset, format, counts and the files written, the
// repetitive JSON platform events are made of), or random characters.
func eventData(i, size int, at time.Time, incompressible bool) json.RawMessage {
	want := size - envelopeOverhead(i, at)
	rng := rand.New(rand.NewPCG(uint64(i), 42))
	if incompressible {
		b := make([]byte, want)
		for j := range b {
			b[j] = byte(rng.UintN(256))
		}
		s := base64.RawStdEncoding.EncodeToString(b)
		return json.RawMessage(`"` + s[:want-2] + `"`)
	}
	type file struct {
		Path  string `json:"path"`
		Rows  int    `json:"rows"`
		Bytes int    `json:"bytes"`
	}
	d := struct {
		ExportID    string `json:"export_id"`
		Dataset     string `json:"dataset"`
		Format      string `json:"format"`
		Compression string `json:"compression"`
		Rows        int    `json:"rows"`
		Bytes       int    `json:"bytes"`
		Location    string `json:"location"`
		Files       []file `json:"files"`
		Note        string `json:"note"`
	}{
		ExportID: fmt.Sprintf("exp_%012d", i), Dataset: "orders", Format: "parquet", Compression: "zstd",
		Location: fmt.Sprintf("s3://datajetty-exports/%s/orders/exp_%012d/", tenantID(i%7), i),
	}
	for j := 0; ; j++ {
		f := file{Path: fmt.Sprintf("%spart-%05d.parquet", d.Location, j), Rows: 1000 + rng.IntN(100000), Bytes: 100000 + rng.IntN(10000000)}
		next := d
		next.Files = append(append([]file(nil), d.Files...), f)
		next.Rows += f.Rows
		next.Bytes += f.Bytes
		if b, _ := json.Marshal(next); len(b) > want {
			break
		}
		d = next
	}
	b, _ := json.Marshal(d)
	d.Note = strings.Repeat("-", max(0, want-len(b)))
	b, _ = json.Marshal(d)
	return b
}
