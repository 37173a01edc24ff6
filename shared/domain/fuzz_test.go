package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/datajetty/webhooks/shared/ssrf"
)

// The fuzz targets of the domain's parsers of outside input. Their invariants: no panic;
// anything accepted round-trips (parsing what was accepted, or its normal form, gives it
// back); a rejection is a domain error of kind Invalid naming the field, never anything a
// handler would turn into a 500. Seeds are in testdata/fuzz/<target>/ and in f.Add; `make
// fuzz` runs each target for FUZZTIME.

// invalidOn fails unless err is a *Error of kind Invalid for field (any field when "*").
func invalidOn(t *testing.T, err error, field string) {
	t.Helper()
	var de *Error
	if !errors.As(err, &de) || de.Kind != KindInvalid {
		t.Fatalf("rejection %v (%T) is not a domain Invalid error", err, err)
	}
	if field != "*" && de.Field != field {
		t.Fatalf("rejection %q names field %q, want %q", de.Msg, de.Field, field)
	}
	if de.Msg == "" {
		t.Fatal("rejection without a message")
	}
}

// FuzzParseEvent: the ingest envelope (producers' SQS message bodies).
func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(`{"id":"evt_1","tenant_id":"acme","type":"export.done","occurred_at":"2026-11-27T10:00:00.5+02:00","data":{"rows":3}}`))
	f.Add([]byte(`{"id":"e","tenant_id":"a","type":"a.b","occurred_at":"2026-11-27T10:00:00Z","data":"<&>\u2028"}`))
	f.Add([]byte(`{"id":5}`))
	f.Add([]byte(`[]`))
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := ParseEvent(body)
		if err != nil {
			invalidOn(t, err, "*")
			return
		}
		if !validEventID(e.ID) || !ValidTenantID(e.TenantID) || !ValidEventType(e.Type) || e.OccurredAt.Location() != time.UTC || !json.Valid(e.Data) {
			t.Fatalf("accepted an event that breaks the envelope's rules: %+v", e)
		}
		// Round trip: the event, written back as an envelope, parses to itself.
		var again bytes.Buffer
		enc := json.NewEncoder(&again)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(map[string]any{"id": e.ID, "tenant_id": e.TenantID, "type": e.Type,
			"occurred_at": e.OccurredAt.Format(time.RFC3339Nano), "data": e.Data}); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		e2, err := ParseEvent(again.Bytes())
		if err != nil {
			t.Fatalf("the accepted event, re-encoded, is refused: %v\n%s", err, again.Bytes())
		}
		if e2.ID != e.ID || e2.TenantID != e.TenantID || e2.Type != e.Type || !e2.OccurredAt.Equal(e.OccurredAt) || !sameJSON(e2.Data, e.Data) {
			t.Fatalf("round trip changed the event:\n %+v\n %+v", e, e2)
		}
		// The payload carries data as sent, only compacted, and is valid JSON.
		p, err := e.Payload()
		if err != nil {
			t.Fatalf("payload of an accepted event: %v", err)
		}
		var got struct{ Data json.RawMessage }
		if err := json.Unmarshal(p, &got); err != nil {
			t.Fatalf("payload is not JSON: %v", err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, e.Data); err != nil || !bytes.Equal(got.Data, compact.Bytes()) {
			t.Fatalf("payload data %s is not the data compacted %s", got.Data, compact.Bytes())
		}
		if err := CheckEventTime(e, now); err != nil {
			invalidOn(t, err, "occurred_at")
		}
	})
}

func sameJSON(a, b []byte) bool {
	var ca, cb bytes.Buffer
	return json.Compact(&ca, a) == nil && json.Compact(&cb, b) == nil && bytes.Equal(ca.Bytes(), cb.Bytes())
}

// FuzzValidateURL: webhook URLs (tenants' POST /endpoints).
func FuzzValidateURL(f *testing.F) {
	for _, s := range []string{
		"https://example.com/hook?x=1", "https://Example.COM:443/h", "http://127.0.0.1:9000/h",
		"https://[2001:db8::1]:8443/h", "https://2130706433/", "https://0x7f000001/", "https://127.1/",
		"https://bücher.example/", "https://xn--bcher-kva.example/", "https://[64:ff9b::7f00:1]/",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, raw string, allowPrivate bool) {
		p := URLPolicy{AllowPrivate: allowPrivate, Destinations: ssrf.Policy{AllowPrivate: allowPrivate}}
		norm, err := ValidateURL(raw, p)
		if err != nil {
			invalidOn(t, err, "url")
			return
		}
		if len(norm) > MaxURLLength {
			t.Fatalf("normal form %q is longer than the limit", norm)
		}
		// The normal form is a fixed point: validating it again gives it back.
		again, err := ValidateURL(norm, p)
		if err != nil {
			t.Fatalf("normal form %q of %q is refused: %v", norm, raw, err)
		}
		if again != norm {
			t.Fatalf("normal form is not stable: %q -> %q -> %q", raw, norm, again)
		}
		if !allowPrivate && !strings.HasPrefix(norm, "https://") {
			t.Fatalf("strict policy accepted %q", norm)
		}
	})
}

// FuzzValidateEvents: event patterns (tenants' POST /endpoints), one per line of the input.
func FuzzValidateEvents(f *testing.F) {
	f.Add("export.done\nexport.*\n*")
	f.Add("a.b\na.b\nz")
	f.Add("Export!")
	f.Add(".*")
	f.Fuzz(func(t *testing.T, lines string) {
		patterns := strings.Split(lines, "\n")
		out, err := ValidateEvents(patterns)
		if err != nil {
			invalidOn(t, err, "events")
			return
		}
		if len(out) == 0 || len(out) > MaxEventPatterns {
			t.Fatalf("accepted %d patterns", len(out))
		}
		for i, p := range out {
			if !validPattern(p) || (i > 0 && out[i-1] >= p) {
				t.Fatalf("output %q is not valid, sorted and de-duplicated", out)
			}
			// A concrete pattern matches itself; any pattern matches what it names.
			if p != "*" && !strings.HasSuffix(p, ".*") && !Match(p, p) {
				t.Fatalf("%q does not match itself", p)
			}
			if prefix, ok := strings.CutSuffix(p, ".*"); ok && (!Match(p, prefix+".x") || Match(p, prefix)) {
				t.Fatalf("%q matches wrongly", p)
			}
		}
		again, err := ValidateEvents(out)
		if err != nil || strings.Join(again, "\n") != strings.Join(out, "\n") {
			t.Fatalf("stored form %q does not validate to itself: %q, %v", out, again, err)
		}
		for _, p := range patterns {
			_ = MatchAny(out, p) // never panics on any type name
		}
	})
}
