package cost

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// Row is one billed item per delivery.
type Row struct {
	Source   string // the code that made the calls (SourceIngest, …, or "Lambda")
	Call     string // "DynamoDB PutItem", "SQS SendMessageBatch", "invocations", …
	Resource string // template logical id ("" for Lambda)
	Service  string // DynamoDB, SQS, KMS, Lambda
	// Calls is calls (or invocations) per delivery.
	Calls float64
	// Units is billed units per delivery, of Unit: WRU (index writes included), RRU, SQS
	// requests (64 KiB chunks), KMS requests, Lambda GB-seconds.
	Units float64
	Unit  string
	// OnDemand and Provisioned are dollars per million deliveries, DynamoDB on-demand or
	// provisioned at Utilization (the same for the other services).
	OnDemand, Provisioned float64
}

// Breakdown is a priced Result.
type Breakdown struct {
	*Result
	Rows []Row
	// Per service and in all, dollars per million deliveries.
	ServiceOnDemand, ServiceProvisioned map[string]float64
	OnDemand, Provisioned               float64
}

// Services in table order.
var Services = []string{"DynamoDB", "SQS", "KMS", "Lambda"}

// Price turns the counts of a run into dollars per million deliveries.
func Price(res *Result, p PriceTable) *Breakdown {
	b := &Breakdown{Result: res, ServiceOnDemand: map[string]float64{}, ServiceProvisioned: map[string]float64{}}
	per := 1 / float64(res.Deliveries)
	for _, l := range res.Lines {
		base := Row{Source: l.Source, Call: l.Service + " " + l.Operation, Resource: l.Resource, Service: l.Service, Calls: float64(l.Calls) * per}
		switch l.Service {
		case "DynamoDB":
			w, r := (l.WriteUnits+l.IndexWriteUnits)*per, l.ReadUnits*per
			if w > 0 || r == 0 {
				row := base
				row.Units, row.Unit = w, "WRU"
				row.OnDemand, row.Provisioned = w*p.onDemandWrite()*perMillion, w*p.provisionedWrite()*perMillion
				b.add(row)
				base.Calls = 0 // a call is counted once even when it also reads
			}
			if r > 0 {
				row := base
				row.Units, row.Unit = r, "RRU"
				row.OnDemand, row.Provisioned = r*p.onDemandRead()*perMillion, r*p.provisionedRead()*perMillion
				b.add(row)
			}
		case "SQS":
			row := base
			row.Units, row.Unit = l.Requests*per, "requests"
			row.OnDemand = row.Units * p.sqs() * perMillion
			row.Provisioned = row.OnDemand
			b.add(row)
		case "KMS":
			row := base
			row.Units, row.Unit = l.Requests*per, "requests"
			row.OnDemand = row.Units * p.kms() * perMillion
			row.Provisioned = row.OnDemand
			b.add(row)
		default:
			row := base
			row.Units, row.Unit = l.Requests*per, "requests (unpriced)"
			b.add(row)
		}
	}
	for _, fn := range []string{"ingest", "deliver", "replay-worker"} {
		inv := float64(res.Invocations[fn]) * per
		millis := map[string]float64{"ingest": res.Scenario.IngestMillis, "deliver": res.Scenario.DeliverMillis, "replay-worker": res.Scenario.ReplayMillis}[fn]
		if inv == 0 {
			continue
		}
		gbs := inv * millis / 1000 * float64(res.MemoryMB[fn]) / 1024
		usd := (inv*p.lambdaRequest() + gbs*p.LambdaGBSecond) * perMillion
		b.add(Row{Source: fn, Call: fmt.Sprintf("Lambda invocations (%d MB, %g ms assumed)", res.MemoryMB[fn], millis), Service: "Lambda",
			Calls: inv, Units: gbs, Unit: "GB-s", OnDemand: usd, Provisioned: usd})
	}
	return b
}

func (b *Breakdown) add(r Row) {
	b.Rows = append(b.Rows, r)
	b.ServiceOnDemand[r.Service] += r.OnDemand
	b.ServiceProvisioned[r.Service] += r.Provisioned
	b.OnDemand += r.OnDemand
	b.Provisioned += r.Provisioned
}

// Totals are the counts per delivery the budget guards.
type Totals struct {
	// Calls is AWS requests our code and the event source make (not Lambda invocations).
	Calls float64
	// WRU and RRU are DynamoDB units; SQS and KMS billed requests.
	WRU, RRU, SQS, KMS float64
	// Invocations is Lambda invocations.
	Invocations float64
}

// Totals sums the rows.
func (b *Breakdown) Totals() Totals {
	var t Totals
	for _, r := range b.Rows {
		switch {
		case r.Service == "Lambda":
			t.Invocations += r.Calls
			continue
		case r.Unit == "WRU":
			t.WRU += r.Units
		case r.Unit == "RRU":
			t.RRU += r.Units
		case r.Service == "SQS":
			t.SQS += r.Units
		case r.Service == "KMS":
			t.KMS += r.Units
		}
		t.Calls += r.Calls
	}
	return t
}

// FinalLine is the last line of make cost's output.
func FinalLine(typical *Breakdown) string {
	return fmt.Sprintf("cost per million deliveries: on-demand $%.2f, provisioned $%.2f (typical scenario)", typical.OnDemand, typical.Provisioned)
}

// WriteText prints every breakdown, the summary and, when the typical scenario is among
// them, the final line.
func WriteText(w io.Writer, bs []*Breakdown) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	var typical *Breakdown
	for _, b := range bs {
		if b.Scenario.Name == Typical {
			typical = b
		}
		fmt.Fprintf(w, "\n%s (%d events, %d deliveries)\n", b.Scenario.Title, b.Events, b.Deliveries)
		fmt.Fprintln(tw, "source\tcall\tresource\tcalls/delivery\tunits/delivery\tunit\ton-demand $/M\tprovisioned $/M\t")
		for _, r := range b.Rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.4f\t%.4f\t%s\t%.3f\t%.3f\t\n", r.Source, r.Call, r.Resource, r.Calls, r.Units, r.Unit, r.OnDemand, r.Provisioned)
		}
		fmt.Fprintf(tw, "\t\ttotal\t\t\t\t%.2f\t%.2f\t\n", b.OnDemand, b.Provisioned)
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\nper million deliveries (on-demand / provisioned at %.0f %% utilization), prices of %s, %s\n", Utilization*100, Prices.Checked, Prices.Region)
	fmt.Fprintln(tw, "scenario\tDynamoDB\tSQS\tKMS\tLambda\ton-demand\tprovisioned\t")
	for _, b := range bs {
		fmt.Fprintf(tw, "%s\t%.2f / %.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", b.Scenario.Name,
			b.ServiceOnDemand["DynamoDB"], b.ServiceProvisioned["DynamoDB"], b.ServiceOnDemand["SQS"], b.ServiceOnDemand["KMS"],
			b.ServiceOnDemand["Lambda"], b.OnDemand, b.Provisioned)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if typical == nil {
		return nil
	}
	_, err := fmt.Fprintln(w, FinalLine(typical))
	return err
}

// Markdown renders the generated cost section of docs/performance.md.
func Markdown(bs []*Breakdown) string {
	var s strings.Builder
	p := Prices
	fmt.Fprintf(&s, "Prices (%s, list prices without free tiers, checked %s; `tools/internal/cost/prices.go` is the one price table):\n\n", p.Region, p.Checked)
	s.WriteString("| service | price | source |\n|---|---|---|\n")
	fmt.Fprintf(&s, "| DynamoDB on-demand | $%g per million write request units, $%g per million read request units | <%s> |\n", p.WriteRequestUnit, p.ReadRequestUnit, p.Sources[0].URL)
	fmt.Fprintf(&s, "| DynamoDB provisioned | $%g per WCU-hour, $%g per RCU-hour; at %.0f %% average utilization that is $%.3f per million writes and $%.4f per million reads | <%s> |\n",
		p.WriteCapacityUnitHour, p.ReadCapacityUnitHour, Utilization*100, p.provisionedWrite()*1e6, p.provisionedRead()*1e6, p.Sources[1].URL)
	fmt.Fprintf(&s, "| SQS standard | $%.2f per million requests; each started 64 KiB of a request's payload is a request | <%s> |\n", p.SQSRequest, p.Sources[2].URL)
	fmt.Fprintf(&s, "| KMS | $%.2f per 10,000 requests | <%s> |\n", p.KMSRequests10k, p.Sources[3].URL)
	fmt.Fprintf(&s, "| Lambda arm64 | $%.2f per million invocations, $%.10f per GB-second | <%s> |\n\n", p.LambdaRequest, p.LambdaGBSecond, p.Sources[4].URL)

	s.WriteString("Scenarios, per million deliveries (DynamoDB on-demand / provisioned):\n\n")
	s.WriteString("| scenario | events | deliveries | DynamoDB | SQS | KMS | Lambda | **on-demand** | **provisioned** |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, b := range bs {
		fmt.Fprintf(&s, "| %s | %d | %d | $%.2f / $%.2f | $%.2f | $%.2f | $%.2f | **$%.2f** | **$%.2f** |\n", b.Scenario.Title, b.Events, b.Deliveries,
			b.ServiceOnDemand["DynamoDB"], b.ServiceProvisioned["DynamoDB"], b.ServiceOnDemand["SQS"], b.ServiceOnDemand["KMS"],
			b.ServiceOnDemand["Lambda"], b.OnDemand, b.Provisioned)
	}
	s.WriteString("\nCounts per delivery, scenario by scenario (calls are logical calls; units are what is billed: DynamoDB write and read units, SQS and KMS requests, Lambda GB-seconds):\n")
	for _, b := range bs {
		t := b.Totals()
		fmt.Fprintf(&s, "\n**%s** — %d events, %d deliveries; per delivery: %.3f AWS requests, %.3f WRU, %.3f RRU, %.3f SQS requests, %.4f KMS requests, %.3f Lambda invocations.\n\n",
			b.Scenario.Title, b.Events, b.Deliveries, t.Calls, t.WRU, t.RRU, t.SQS, t.KMS, t.Invocations)
		s.WriteString("| source | call | resource | calls / delivery | units / delivery | on-demand $/M | provisioned $/M |\n|---|---|---|---|---|---|---|\n")
		rows := append([]Row(nil), b.Rows...)
		sort.SliceStable(rows, func(i, j int) bool { return sourceOrder(rows[i].Source) < sourceOrder(rows[j].Source) })
		for _, r := range rows {
			fmt.Fprintf(&s, "| %s | %s | %s | %.4f | %.4f %s | %.3f | %.3f |\n", r.Source, r.Call, r.Resource, r.Calls, r.Units, r.Unit, r.OnDemand, r.Provisioned)
		}
	}
	for _, b := range bs {
		if b.Scenario.Name == Typical {
			fmt.Fprintf(&s, "\n```\n%s\n```\n", FinalLine(b))
		}
	}
	return s.String()
}

// sourceOrder sorts rows along the pipeline.
func sourceOrder(s string) int {
	for i, x := range []string{SourceProducer, SourceIngestESM, SourceIngest, "ingest", SourceReplayESM, SourceReplayWorker, "replay-worker", SourceDeliverESM, SourceDeliver, "deliver"} {
		if s == x {
			return i
		}
	}
	return 99
}
