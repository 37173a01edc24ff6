package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/datajetty/webhooks/shared/ssrf"
)

func TestValidateURL(t *testing.T) {
	t.Parallel()
	strict, local := URLPolicy{Destinations: ssrf.Policy{}}, URLPolicy{AllowPrivate: true, Destinations: ssrf.Policy{AllowPrivate: true}}
	cases := []struct {
		in, want string
		p        URLPolicy
		bad      string // substring of the message when invalid
	}{
		{in: "https://Example.COM/Hook?x=1", want: "https://example.com/Hook?x=1", p: strict},
		{in: "https://example.com:443/h", want: "https://example.com/h", p: strict},
		{in: "https://example.com:8443/h", want: "https://example.com:8443/h", p: strict},
		{in: "HTTPS://example.com/h", want: "https://example.com/h", p: strict},
		{in: "http://127.0.0.1:9000/h", want: "http://127.0.0.1:9000/h", p: local},
		{in: "", p: strict, bad: "required"},
		{in: "http://example.com/h", p: strict, bad: "https"},
		{in: "ftp://example.com/h", p: local, bad: "https"},
		{in: "example.com/h", p: strict, bad: "absolute"},
		{in: "https://user:pw@example.com/h", p: strict, bad: "user information"},
		{in: "https://example.com/h#f", p: strict, bad: "fragment"},
		{in: "https:///h", p: strict, bad: "no host"},
		{in: "https://example.com:99999/h", p: strict, bad: "port"},
		{in: "https://10.1.2.3/h", p: strict, bad: "non-public"},
		{in: "https://[::1]/h", p: strict, bad: "non-public"},
		{in: "https://[::ffff:8.8.8.8]/h", p: strict, bad: "non-public"},
		{in: "https://100.64.1.1/h", p: strict, bad: "non-public"},
		// Numeric spellings of an IPv4 address (here all 127.0.0.1) get a clear 400, even
		// where the local switch allows loopback: write the address as a.b.c.d.
		{in: "https://2130706433/h", p: strict, bad: "non-standard form"},
		{in: "https://0x7f000001/h", p: strict, bad: "non-standard form"},
		{in: "https://0X7F000001/h", p: strict, bad: "non-standard form"},
		{in: "https://017700000001/h", p: strict, bad: "non-standard form"},
		{in: "https://127.1/h", p: strict, bad: "non-standard form"},
		{in: "https://127.0.0.01/h", p: strict, bad: "non-standard form"},
		{in: "https://0x7f.0.0.1/h", p: strict, bad: "non-standard form"},
		{in: "https://134744072/h", p: strict, bad: "non-standard form"}, // 8.8.8.8: public, still ambiguous
		{in: "http://2130706433/h", p: local, bad: "non-standard form"},
		{in: "https://1.2.3.4./h", want: "https://1.2.3.4/h", p: strict},
		// IPv6 literals that embed an IPv4 address a gateway would forward to.
		{in: "https://[64:ff9b::7f00:1]/h", p: strict, bad: "NAT64"},
		{in: "https://[64:ff9b:1::a00:1]/h", p: strict, bad: "NAT64"},
		{in: "https://[2002:7f00:1::1]/h", p: strict, bad: "6to4"},
		{in: "https://[::7f00:1]/h", p: strict, bad: "reserved"}, // IPv4-compatible
		{in: "https://[::127.0.0.1]/h", p: strict, bad: "reserved"},
		{in: "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/h", p: strict, bad: "Teredo"},
		{in: "https://[64:ff9b::7f00:1]/h", p: local, bad: "NAT64"}, // never allowed
		{in: "https://[fe80::1%25eth0]/h", p: local, bad: "zone"},
		{in: "https://[2606:4700:0:0::1111]:8443/h", want: "https://[2606:4700::1111]:8443/h", p: strict},
		{in: "https://[2606:4700::1111]/h", p: URLPolicy{}, bad: "IP literals are not accepted"},
		// Host names must be valid IDNA; internationalised names are stored as A-labels.
		{in: "https://Bücher.Example/h", want: "https://xn--bcher-kva.example/h", p: strict},
		{in: "https://xn--bcher-kva.example/h", want: "https://xn--bcher-kva.example/h", p: strict},
		{in: "https://ＥＸＡＭＰＬＥ.com/h", want: "https://example.com/h", p: strict},
		{in: "https://example.com./h", want: "https://example.com/h", p: strict},
		{in: "https://xn--zz.example/h", p: strict, bad: "not a valid host name"},
		{in: "https://exa_mple.com/h", p: strict, bad: "not a valid host name"},
		{in: "https://-bad.example/h", p: strict, bad: "not a valid host name"},
		{in: "https://a..b/h", p: strict, bad: "not a valid host name"},
		{in: "https://a\u200db.example/h", p: strict, bad: "not a valid host name"},
		{in: "https://" + strings.Repeat("a", 64) + ".example/h", p: strict, bad: "not a valid host name"},
		{in: "https://%bc%92.example/h", p: strict, bad: "not UTF-8"},
		{in: "https://localhost/h", p: strict, bad: "localhost"},
		{in: "https://api.localhost:8443/h", p: strict, bad: "localhost"},
		{in: "http://localhost:8080/h", want: "http://localhost:8080/h", p: local},
		{in: "https://example.com/" + strings.Repeat("a", MaxURLLength), p: strict, bad: "longer"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ValidateURL(tc.in, tc.p)
			if tc.bad != "" {
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.bad) {
					t.Fatalf("want invalid %q, got %v", tc.bad, err)
				}
				var de *Error
				if errors.As(err, &de); de.Field != "url" {
					t.Fatalf("field %q", de.Field)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestValidateEventsAndMatch(t *testing.T) {
	t.Parallel()
	got, err := ValidateEvents([]string{"export.done", "*", "export.done", "import.*"})
	if err != nil || strings.Join(got, ",") != "*,export.done,import.*" {
		t.Fatalf("got %v %v", got, err)
	}
	for _, bad := range [][]string{nil, {""}, {"Export"}, {"a..b"}, {"ex*"}, {"*.done"}, {".a"}, {"a b"}, make([]string, 51)} {
		if _, err := ValidateEvents(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q accepted", bad)
		}
	}
	matches := []struct {
		pattern, typ string
		want         bool
	}{
		{"*", "export.done", true},
		{"export.*", "export.done", true},
		{"export.*", "export.done.partial", true},
		{"export.*", "export", false},
		{"export.*", "exports.done", false},
		{"export.done", "export.done", true},
		{"export.done", "export.done2", false},
	}
	for _, m := range matches {
		if Match(m.pattern, m.typ) != m.want {
			t.Errorf("Match(%q,%q) != %v", m.pattern, m.typ, m.want)
		}
	}
	ep := Endpoint{Events: []string{"import.done", "export.*"}}
	if !ep.Subscribes("export.failed") || ep.Subscribes("import.failed") {
		t.Error("Subscribes")
	}
}

func TestValidateReplayFrom(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	if err := ValidateReplayFrom(now.Add(-time.Hour), now); err != nil {
		t.Fatal(err)
	}
	if err := ValidateReplayFrom(now.Add(time.Second), now); err == nil || !strings.Contains(err.Error(), "future") {
		t.Fatalf("future: %v", err)
	}
	if err := ValidateReplayFrom(now.Add(-EventRetention-time.Second), now); err == nil || !strings.Contains(err.Error(), "30 days") {
		t.Fatalf("too old: %v", err)
	}
}

func TestIDs(t *testing.T) {
	t.Parallel()
	a, b := NewID(EndpointIDPrefix), NewID(EndpointIDPrefix)
	if a == b || !ValidID(EndpointIDPrefix, a) {
		t.Fatalf("ids %s %s", a, b)
	}
	for _, bad := range []string{"", "ep_", "rp_" + a[3:], a + "a", "ep_AAAAAAAAAAAAAAAAAAAAAAAAAA", "ep_00000000000000000000000000"} {
		if ValidID(EndpointIDPrefix, bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestErrorsMatchByKind(t *testing.T) {
	t.Parallel()
	err := Conflict(ReasonReplayInProgress, "busy")
	if !errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) || KindOf(err) != KindConflict {
		t.Fatal("kind matching")
	}
	if KindOf(errors.New("x")) != KindInternal {
		t.Fatal("plain errors are internal")
	}
	wrapped := Unavailable("database", errors.New("throttled"))
	if !errors.Is(wrapped, ErrUnavailable) || wrapped.Msg != "database is temporarily unavailable" {
		t.Fatalf("%v", wrapped)
	}
}

func TestSigningCiphertextsDuringRotation(t *testing.T) {
	t.Parallel()
	now := time.Now()
	ep := Endpoint{SecretCiphertext: []byte("new"), PreviousSecretCiphertext: []byte("old"), PreviousSecretExpiresAt: now.Add(time.Hour)}
	if got := ep.SigningCiphertexts(now); len(got) != 2 {
		t.Fatalf("during the grace period both secrets sign, got %d", len(got))
	}
	if got := ep.SigningCiphertexts(now.Add(2 * time.Hour)); len(got) != 1 || string(got[0]) != "new" {
		t.Fatalf("after the grace period only the new secret signs, got %q", got)
	}
}

func TestParseEvent(t *testing.T) {
	t.Parallel()
	ok := `{"id":"evt_1","tenant_id":"acme","type":"export.done","occurred_at":"2026-11-27T10:00:00Z","data":{"rows":3}}`
	e, err := ParseEvent([]byte(ok))
	if err != nil || e.ID != "evt_1" || e.TenantID != "acme" || !e.OccurredAt.Equal(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("%+v %v", e, err)
	}
	p, err := e.Payload()
	if err != nil || string(p) != `{"id":"evt_1","type":"export.done","timestamp":"2026-11-27T10:00:00Z","data":{"rows":3}}` {
		t.Fatalf("payload %s %v", p, err)
	}
	bad := map[string]string{
		"not json":     `{`,
		"no id":        `{"tenant_id":"acme","type":"export.done","occurred_at":"2026-11-27T10:00:00Z","data":{}}`,
		"no tenant":    `{"id":"e","type":"export.done","occurred_at":"2026-11-27T10:00:00Z","data":{}}`,
		"bad type":     `{"id":"e","tenant_id":"acme","type":"Export!","occurred_at":"2026-11-27T10:00:00Z","data":{}}`,
		"bad time":     `{"id":"e","tenant_id":"acme","type":"export.done","occurred_at":"yesterday","data":{}}`,
		"no data":      `{"id":"e","tenant_id":"acme","type":"export.done","occurred_at":"2026-11-27T10:00:00Z"}`,
		"hash in id":   `{"id":"e#1","tenant_id":"acme","type":"export.done","occurred_at":"2026-11-27T10:00:00Z","data":{}}`,
		"too large":    `{"id":"e","tenant_id":"acme","type":"export.done","occurred_at":"2026-11-27T10:00:00Z","data":"` + strings.Repeat("x", MaxEventBytes) + `"}`,
		"missing time": `{"id":"e","tenant_id":"acme","type":"export.done","data":{}}`,
	}
	for name, body := range bad {
		if _, err := ParseEvent([]byte(body)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: accepted (%v)", name, err)
		}
	}
}

func TestEventClockRules(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	if err := CheckEventTime(Event{OccurredAt: now.Add(MaxClockSkew)}, now); err != nil {
		t.Fatalf("within the skew: %v", err)
	}
	want := "occurred_at 2026-11-27T12:05:01Z is 5m1s ahead of the service's clock (2026-11-27T12:00:00Z); at most 5m0s is tolerated"
	if err := CheckEventTime(Event{OccurredAt: now.Add(MaxClockSkew + time.Second)}, now); !errors.Is(err, ErrInvalid) || err.Error() != want {
		t.Fatalf("future event: %v", err)
	}
	recent := Event{OccurredAt: now.Add(-time.Hour)}
	if got := EventExpiry(recent, now.Add(-2*time.Hour)); !got.Equal(recent.OccurredAt.Add(EventRetention + 24*time.Hour)) {
		t.Fatalf("expiry counts from occurred_at when it is later: %v", got)
	}
	old := Event{OccurredAt: now.Add(-40 * 24 * time.Hour)}
	if got := EventExpiry(old, now); !got.Equal(now.Add(EventRetention + 24*time.Hour)) {
		t.Fatalf("a backfilled event keeps the full retention from when it was stored: %v", got)
	}
	if _, err := ParseEvent([]byte(`{"id":5,"tenant_id":"a","type":"export.done","occurred_at":"2026-11-27T10:00:00Z","data":{}}`)); err == nil || !strings.Contains(err.Error(), "id must be a string") {
		t.Fatalf("a wrongly typed field must be named: %v", err)
	}
}

// TestPayloadKeepsDataAsSent: data reaches the receiver byte for byte, only compacted: no
// HTML escaping, no re-encoding of escapes or characters, never larger than sent.
func TestPayloadKeepsDataAsSent(t *testing.T) {
	t.Parallel()
	data := "{ \"html\": \"<a href=\\\"x?a=1&b=2\\\">\u2028</a>\",\n  \"escaped\": \"\\u003c\\/\",\t\"n\": [1, 2.50, -0e3], \"ü\": \"&&&\" }"
	e := Event{ID: `evt<&>"\`, Type: "export.done", OccurredAt: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC), Data: json.RawMessage(data)}
	p, err := e.Payload()
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(data)); err != nil {
		t.Fatal(err)
	}
	want := `{"id":"evt<&>\"\\","type":"export.done","timestamp":"2026-11-27T10:00:00Z","data":` + compact.String() + `}`
	if string(p) != want {
		t.Fatalf("payload\n got  %s\n want %s", p, want)
	}
	var back struct{ Data json.RawMessage }
	if err := json.Unmarshal(p, &back); err != nil || !bytes.Equal(back.Data, compact.Bytes()) {
		t.Fatalf("data does not round-trip: %s %v", back.Data, err)
	}
	// The worst character for an escaping encoder: the payload grows by its fixed part only.
	worst := Event{ID: "e", Type: "export.done", OccurredAt: e.OccurredAt, Data: json.RawMessage(`"` + strings.Repeat("<", 1000) + `"`)}
	if p, err := worst.Payload(); err != nil || len(p) > 1002+100 {
		t.Fatalf("1000 '<' became %d bytes (%v)", len(p), err)
	}
}

// TestParseEventReasons pins the reasons docs/events.md lists, and the order of the checks:
// an envelope wrong in every field from one onwards is refused for that field.
func TestParseEventReasons(t *testing.T) {
	t.Parallel()
	fields := []struct{ name, good, bad, reason string }{
		{"id", `"e1"`, `"e#1"`, "id must be 1-128 visible ASCII characters other than '#'"},
		{"tenant_id", `"acme"`, `""`, "tenant_id must be 1-128 visible ASCII characters other than '#'"},
		{"type", `"export.done"`, `"Export!"`, `type must be an event type like "export.done"`},
		{"occurred_at", `"2026-11-27T10:00:00Z"`, `"yesterday"`, "occurred_at must be an RFC 3339 timestamp"},
		{"data", `{}`, `null`, "data is required"},
	}
	for i, f := range fields {
		var parts []string
		for j, g := range fields {
			v := g.good
			if j >= i {
				v = g.bad
			}
			parts = append(parts, `"`+g.name+`":`+v)
		}
		body := "{" + strings.Join(parts, ",") + "}"
		_, err := ParseEvent([]byte(body))
		var de *Error
		if !errors.As(err, &de) || de.Kind != KindInvalid || de.Msg != f.reason || de.Field != f.name {
			t.Errorf("%s wrong and every later field wrong too: got %v, want %q", f.name, err, f.reason)
		}
	}
	for body, want := range map[string]string{
		`{"id":5,"tenant_id":"a","type":"export.done","occurred_at":"2026-11-27T10:00:00Z","data":{}}`:     "id must be a string, not a JSON number",
		`{"id":"e","tenant_id":["a"],"type":"export.done","occurred_at":"2026-11-27T10:00:00Z","data":{}}`: "tenant_id must be a string, not a JSON array",
		`{"id":"e","tenant_id":"a","type":"export.done","occurred_at":1795782896,"data":{}}`:               "occurred_at must be a string, not a JSON number",
		`[1,2]`:       "event is not a JSON object but a JSON array",
		`"text"`:      "event is not a JSON object but a JSON string",
		`{"id":`:      "event is not valid JSON (at byte 6)",
		`{"id":"e",}`: "event is not valid JSON (at byte 11)",
		`{"id":"e","tenant_id":"a","type":"export.done","data":{}}`: "occurred_at is required (RFC 3339)",
	} {
		if _, err := ParseEvent([]byte(body)); err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %q", body, err, want)
		}
	}
}

// TestReasonsListsEveryReason: Reasons (which the OpenAPI agreement test reads) holds every
// Reason… constant declared in errors.go, so a new reason cannot be left out of the docs.
func TestReasonsListsEveryReason(t *testing.T) {
	t.Parallel()
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var declared []string
	ast.Inspect(f, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok {
			for i, name := range vs.Names {
				if strings.HasPrefix(name.Name, "Reason") && i < len(vs.Values) {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok {
						declared = append(declared, strings.Trim(lit.Value, `"`))
					}
				}
			}
		}
		return true
	})
	got := slices.Clone(Reasons)
	slices.Sort(got)
	slices.Sort(declared)
	if len(declared) == 0 || !slices.Equal(got, declared) {
		t.Fatalf("Reasons %v, declared %v", got, declared)
	}
}
