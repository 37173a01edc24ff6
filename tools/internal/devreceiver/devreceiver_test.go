package devreceiver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/datajetty/webhooks/shared/dev/testenv"
	"github.com/datajetty/webhooks/shared/signing"
)

func newSecret(t *testing.T) signing.Secret {
	t.Helper()
	s, err := signing.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// post sends body to the receiver, signed at ts with secrets (none: unsigned).
func post(t *testing.T, url, id string, ts time.Time, body string, secrets ...signing.Secret) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if len(secrets) > 0 {
		signing.SetHeaders(req.Header, id, ts, []byte(body), secrets...)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp, buf.Bytes()
}

const delivery = `{"id":"evt_42","type":"export.done","timestamp":"2026-01-02T03:04:05Z","data":{"export_id":"exp_1","rows":1234}}`

func TestDeliveries(t *testing.T) {
	secret, other := newSecret(t), newSecret(t)
	out := &testenv.Buffer{}
	srv := httptest.NewServer(NewHandler(secret.Encode(), out))
	defer srv.Close()
	now := time.Now()

	cases := []struct {
		name    string
		id      string
		ts      time.Time
		body    string // signed body
		sent    string // body actually sent ("" = body)
		secrets []signing.Secret
		status  int
		want    string
	}{
		{"valid", "evt_42", now, delivery, "", []signing.Secret{secret}, 200, "signature OK"},
		{"rotation: old and new secret", "evt_42", now, delivery, "", []signing.Secret{other, secret}, 200, "signature OK"},
		{"wrong secret", "evt_42", now, delivery, "", []signing.Secret{other}, 401, "signature INVALID"},
		{"tampered body", "evt_42", now, delivery, strings.Replace(delivery, "1234", "9999", 1), []signing.Secret{secret}, 401, "signature INVALID"},
		{"stale timestamp", "evt_42", now.Add(-10 * time.Minute), delivery, "", []signing.Secret{secret}, 401, "signature INVALID"},
		{"unsigned", "", now, delivery, "", nil, 401, "signature INVALID"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sent := c.sent
			if sent == "" {
				sent = c.body
			}
			req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(sent))
			if err != nil {
				t.Fatal(err)
			}
			if len(c.secrets) > 0 {
				signing.SetHeaders(req.Header, c.id, c.ts, []byte(c.body), c.secrets...)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Errorf("status %d, want %d", resp.StatusCode, c.status)
			}
			got := out.Take()
			lines := strings.Split(got, "\n")
			first := lines[0]
			if !strings.Contains(first, c.want) || !strings.Contains(first, "export.done") {
				t.Errorf("first line %q lacks %q and the event type", first, c.want)
			}
			if c.id != "" && !strings.Contains(first, c.id) {
				t.Errorf("first line %q lacks the webhook-id", first)
			}
			if _, err := time.Parse("15:04:05", strings.Fields(first)[0]); err != nil {
				t.Errorf("first line %q does not start with the time", first)
			}
			if !strings.Contains(got, `"rows": `) || len(lines) < 4 {
				t.Errorf("payload not pretty-printed:\n%s", got)
			}
			if strings.Contains(got, secret.Encode()) || strings.Contains(got, other.Encode()) {
				t.Error("output shows a secret")
			}
		})
	}
}

func TestChallengeIsEchoed(t *testing.T) {
	secret := newSecret(t)
	out := &testenv.Buffer{}
	srv := httptest.NewServer(NewHandler(secret.Encode(), out))
	defer srv.Close()
	body := `{"type":"webhook.challenge","challenge":"c_0123456789abcdef"}`

	// Signed with the receiver's secret, and with another one (a secret the service
	// generated, which the receiver cannot know yet): both are answered.
	for _, s := range []signing.Secret{secret, newSecret(t)} {
		resp, got := post(t, srv.URL, "msg_1", time.Now(), body, s)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		var echo struct{ Challenge string }
		if err := json.Unmarshal(got, &echo); err != nil || echo.Challenge != "c_0123456789abcdef" {
			t.Fatalf("answer %s does not echo the challenge", got)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
	}
	lines := out.Take()
	if !strings.Contains(lines, "webhook.challenge  signature OK — challenge answered") ||
		!strings.Contains(lines, "webhook.challenge  signature INVALID — challenge answered") {
		t.Errorf("output:\n%s", lines)
	}
}

func TestBadRequests(t *testing.T) {
	srv := httptest.NewServer(NewHandler(newSecret(t).Encode(), &testenv.Buffer{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: status %d, want 405", resp.StatusCode)
	}

	// A receiver started with an unusable secret rejects every delivery, saying why.
	out := &testenv.Buffer{}
	bad := httptest.NewServer(NewHandler("not-a-secret", out))
	defer bad.Close()
	r, _ := post(t, bad.URL, "evt_1", time.Now(), delivery, newSecret(t))
	if r.StatusCode != http.StatusUnauthorized || !strings.Contains(out.Take(), "signature INVALID (receiver misconfigured") {
		t.Errorf("misconfigured receiver: status %d", r.StatusCode)
	}
}

func TestPrettyShortens(t *testing.T) {
	big := `{"data":"` + strings.Repeat("é", 2000) + `"}`
	got := pretty([]byte(big))
	if len(got) > maxShown+100 || !strings.Contains(got, "bytes)") {
		t.Errorf("not shortened: %d bytes", len(got))
	}
	if !strings.HasSuffix(got, "\n") || strings.ContainsRune(got, '\uFFFD') {
		t.Error("cut inside a character or no final newline")
	}
	if got := pretty([]byte("not json")); got != "  \"not json\"\n" {
		t.Errorf("non-JSON body shown as %q", got)
	}
}

func TestCheckSecret(t *testing.T) {
	for s, ok := range map[string]bool{
		newSecret(t).Encode(): true,
		"":                    false,
		"abc":                 false,
		"whsec_":              false,
		"whsec_!!!":           false,
	} {
		if err := CheckSecret(s); (err == nil) != ok {
			t.Errorf("CheckSecret(%q) = %v", s, err)
		}
	}
}
