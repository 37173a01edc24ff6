// Package cost measures what the delivery pipeline costs per delivery: it runs scenarios
// through the real queue consumers (built by shared/wiring) against the local emulator,
// counts every AWS request they make and the DynamoDB capacity each consumes
// (shared/dev/awsmeter), and prices the counts from the one price table below. make cost
// prints the result and regenerates the cost section of docs/performance.md; the budget
// test in this package keeps the counts from growing.
package cost

// Source is where a price was read.
type Source struct {
	What, URL string
}

// PriceTable is every price the repository's cost figures use: AWS us-east-1 list prices,
// without free tiers, savings plans or reserved capacity.
type PriceTable struct {
	// Checked is when the prices were last compared with their sources.
	Checked string
	Region  string

	// DynamoDB on-demand (Standard table class): $ per million request units.
	WriteRequestUnit, ReadRequestUnit float64
	// DynamoDB provisioned capacity (Standard table class): $ per capacity-unit hour.
	WriteCapacityUnitHour, ReadCapacityUnitHour float64
	// SQS standard queues: $ per million requests (each started 64 KiB of a request's
	// payload is one request), first 100 billion requests a month.
	SQSRequest float64
	// KMS: $ per 10,000 symmetric-key requests.
	KMSRequests10k float64
	// Lambda (arm64): $ per million invocations and per GB-second, first tier.
	LambdaRequest, LambdaGBSecond float64

	Sources []Source
}

// Prices is the one price table.
var Prices = PriceTable{
	Checked: "2026-11-30",
	Region:  "us-east-1",

	WriteRequestUnit:      0.625,
	ReadRequestUnit:       0.125,
	WriteCapacityUnitHour: 0.00065,
	ReadCapacityUnitHour:  0.00013,
	SQSRequest:            0.40,
	KMSRequests10k:        0.03,
	LambdaRequest:         0.20,
	LambdaGBSecond:        0.0000133334,

	Sources: []Source{
		{"DynamoDB on-demand ($0.625 per million WRU, $0.125 per million RRU since the 1 Nov 2024 reduction)", "https://aws.amazon.com/dynamodb/pricing/on-demand/"},
		{"DynamoDB provisioned ($0.00065 per WCU-hour, $0.00013 per RCU-hour)", "https://aws.amazon.com/dynamodb/pricing/provisioned/"},
		{"SQS ($0.40 per million standard requests; a 64 KiB chunk of payload is one request)", "https://aws.amazon.com/sqs/pricing/"},
		{"KMS ($0.03 per 10,000 requests)", "https://aws.amazon.com/kms/pricing/"},
		{"Lambda arm64 ($0.20 per million requests, $0.0000133334 per GB-second)", "https://aws.amazon.com/lambda/pricing/"},
	},
}

// Utilization is the share of provisioned capacity that traffic uses on average, the
// target of the tables' auto scaling (template parameter DynamoDBCapacityMode =
// PROVISIONED): a provisioned unit costs its hourly price for 3,600 × Utilization units of
// traffic.
const Utilization = 0.70

// perMillion converts an amount per delivery into dollars per million deliveries.
const perMillion = 1e6

// onDemandWrite, onDemandRead … are dollars per unit of what the meter counts.
func (p PriceTable) onDemandWrite() float64 { return p.WriteRequestUnit / 1e6 }
func (p PriceTable) onDemandRead() float64  { return p.ReadRequestUnit / 1e6 }

// provisionedWrite is the provisioned cost of one write unit of traffic at Utilization.
func (p PriceTable) provisionedWrite() float64 { return p.WriteCapacityUnitHour / 3600 / Utilization }
func (p PriceTable) provisionedRead() float64  { return p.ReadCapacityUnitHour / 3600 / Utilization }
func (p PriceTable) sqs() float64              { return p.SQSRequest / 1e6 }
func (p PriceTable) kms() float64              { return p.KMSRequests10k / 1e4 }
func (p PriceTable) lambdaRequest() float64    { return p.LambdaRequest / 1e6 }
