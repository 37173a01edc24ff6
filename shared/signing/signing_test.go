package signing_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/datajetty/webhooks/shared/signing"
)

// rawKey returns n recognisable bytes so leak checks can search for them.
func rawKey(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i)*7
	}
	return b
}

func encodeKey(b []byte) string { return "whsec_" + base64.StdEncoding.EncodeToString(b) }

func mustParse(t *testing.T, s string) signing.Secret {
	t.Helper()
	sec, err := signing.ParseSecret(s)
	if err != nil {
		t.Fatalf("ParseSecret: %v", err)
	}
	return sec
}

// officialVerifier builds the reference Standard Webhooks verifier from the whsec_ form, so
// the interop tests exercise the real secret format, not just the raw key.
func officialVerifier(t *testing.T, s signing.Secret) *standardwebhooks.Webhook {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(s.Encode())
	if err != nil {
		t.Fatalf("NewWebhook: %v", err)
	}
	return wh
}

func TestParseSecret(t *testing.T) {
	t.Parallel()
	valid32 := encodeKey(rawKey(32, 1))
	tests := []struct {
		name    string
		in      string
		wantErr string // substring; "" means success
	}{
		{"32 bytes", valid32, ""},
		{"24 bytes minimum", encodeKey(rawKey(24, 2)), ""},
		{"64 bytes maximum", encodeKey(rawKey(64, 3)), ""},
		{"empty", "", "missing the \"whsec_\" prefix"},
		{"no prefix", strings.TrimPrefix(valid32, "whsec_"), "missing the \"whsec_\" prefix"},
		{"wrong prefix case", "WHSEC_" + strings.TrimPrefix(valid32, "whsec_"), "missing the \"whsec_\" prefix"},
		{"prefix only", "whsec_", "key is 0 bytes"},
		{"url-safe alphabet", "whsec_" + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb, 0xff}, 16)), "not valid standard base64"},
		{"missing padding", "whsec_" + base64.RawStdEncoding.EncodeToString(rawKey(32, 4)), "not valid standard base64"},
		{"garbage", "whsec_not*base64!", "not valid standard base64"},
		{"embedded newline", "whsec_" + base64.StdEncoding.EncodeToString(rawKey(30, 5))[:20] + "\n" + base64.StdEncoding.EncodeToString(rawKey(30, 5))[20:], "not valid standard base64"},
		{"too short", encodeKey(rawKey(23, 6)), "key is 23 bytes, must be 24 to 64"},
		{"too long", encodeKey(rawKey(65, 7)), "must be 24 to 64"},
		{"huge", "whsec_" + strings.Repeat("A", 1<<20), "must be 24 to 64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sec, err := signing.ParseSecret(tc.in)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseSecret: unexpected error %v", err)
				}
				if got := sec.Encode(); got != tc.in {
					t.Fatalf("Encode round trip = %q, want %q", got, tc.in)
				}
				return
			}
			if err == nil {
				t.Fatal("ParseSecret: expected an error")
			}
			if !errors.Is(err, signing.ErrInvalidSecret) {
				t.Errorf("error %v does not wrap ErrInvalidSecret", err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not mention %q", err, tc.wantErr)
			}
			// The error must never carry the secret text back out.
			if body := strings.TrimPrefix(tc.in, "whsec_"); len(body) >= 8 && strings.Contains(err.Error(), body[:8]) {
				t.Errorf("error %q leaks secret material", err)
			}
			if !sec.IsZero() {
				t.Error("failed parse returned a non-zero Secret")
			}
		})
	}
}

func TestGenerateSecret(t *testing.T) {
	t.Parallel()
	a, err := signing.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, err := signing.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(a.Encode(), "whsec_"))
	if err != nil || len(raw) != 32 {
		t.Fatalf("generated secret decodes to %d bytes (err %v), want 32", len(raw), err)
	}
	if a.Equal(b) {
		t.Fatal("two generated secrets are equal")
	}
	again := mustParse(t, a.Encode())
	if !again.Equal(a) {
		t.Fatal("Encode/ParseSecret round trip changed the key")
	}
}

func TestEqual(t *testing.T) {
	t.Parallel()
	a := mustParse(t, encodeKey(rawKey(32, 1)))
	tests := []struct {
		name string
		x, y signing.Secret
		want bool
	}{
		{"same key", a, mustParse(t, a.Encode()), true},
		{"different key", a, mustParse(t, encodeKey(rawKey(32, 2))), false},
		{"prefix of key", mustParse(t, encodeKey(rawKey(24, 1))), a, false},
		{"zero vs key", signing.Secret{}, a, false},
		{"zero vs zero", signing.Secret{}, signing.Secret{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.x.Equal(tc.y); got != tc.want {
				t.Errorf("Equal = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSignKnownVector(t *testing.T) {
	t.Parallel()
	// Published Standard Webhooks example (24-byte key), cross-checked against the
	// reference implementation's own Sign so a wrong constant cannot hide a bug.
	sec := mustParse(t, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	msgID, ts, body := "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`)
	const want = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	if got := signing.Sign(msgID, ts, body, sec); got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
	ref, err := officialVerifier(t, sec).Sign(msgID, ts, body)
	if err != nil || ref != want {
		t.Fatalf("reference Sign = %q (err %v), want %q", ref, err, want)
	}
}

func TestSignInterop(t *testing.T) {
	t.Parallel()
	oldSec := mustParse(t, encodeKey(rawKey(32, 11)))
	newSec := mustParse(t, encodeKey(rawKey(24, 99)))
	other := mustParse(t, encodeKey(rawKey(64, 42)))
	body := []byte(`{"type":"export.done","data":{"id":"exp_1"}}`)

	tests := []struct {
		name     string
		signWith []signing.Secret
		verifier signing.Secret
		body     []byte // body handed to the verifier
		ok       bool
	}{
		{"single secret", []signing.Secret{newSec}, newSec, body, true},
		{"rotation verifier has new", []signing.Secret{newSec, oldSec}, newSec, body, true},
		{"rotation verifier has old", []signing.Secret{newSec, oldSec}, oldSec, body, true},
		{"zero secret skipped", []signing.Secret{{}, newSec}, newSec, body, true},
		{"tampered body", []signing.Secret{newSec}, newSec, append(bytes.Clone(body), ' '), false},
		{"wrong secret", []signing.Secret{newSec}, other, body, false},
		{"rotation wrong secret", []signing.Secret{newSec, oldSec}, other, body, false},
		{"no secrets", nil, newSec, body, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			// time.Now keeps the delivery inside the verifier's 5-minute tolerance, so the
			// full Verify (not the timestamp-ignoring variant) is exercised.
			signing.SetHeaders(h, "msg_2Lz8", time.Now(), body, tc.signWith...)
			err := officialVerifier(t, tc.verifier).Verify(tc.body, h)
			if tc.ok && err != nil {
				t.Fatalf("official verifier rejected a valid delivery: %v (signature header %q)", err, h.Get(signing.HeaderSignature))
			}
			if !tc.ok && err == nil {
				t.Fatal("official verifier accepted a delivery it should reject")
			}
		})
	}
}

func TestSetHeaders(t *testing.T) {
	t.Parallel()
	sec := mustParse(t, encodeKey(rawKey(32, 3)))
	ts := time.Unix(1700000000, 999_000_000) // sub-second part must be truncated
	h := http.Header{}
	signing.SetHeaders(h, "msg_abc", ts, []byte("x"), sec, sec)
	if got := h.Get("webhook-id"); got != "msg_abc" {
		t.Errorf("webhook-id = %q", got)
	}
	if got := h.Get("webhook-timestamp"); got != "1700000000" {
		t.Errorf("webhook-timestamp = %q", got)
	}
	sigs := strings.Split(h.Get("webhook-signature"), " ")
	if len(sigs) != 2 {
		t.Fatalf("webhook-signature has %d entries, want 2: %q", len(sigs), h.Get("webhook-signature"))
	}
	for _, s := range sigs {
		v, mac, ok := strings.Cut(s, ",")
		raw, err := base64.StdEncoding.DecodeString(mac)
		if !ok || v != "v1" || err != nil || len(raw) != 32 {
			t.Errorf("malformed signature %q", s)
		}
	}
}

func TestRedaction(t *testing.T) {
	t.Parallel()
	raw := rawKey(32, 200)
	sec := mustParse(t, encodeKey(raw))

	type withExported struct {
		Name, Pad string
		S         signing.Secret
	}
	type withUnexported struct {
		name string
		s    signing.Secret
	}

	var jsonLog bytes.Buffer
	slog.New(slog.NewJSONHandler(&jsonLog, nil)).Info("rotated", "secret", sec, "ptr", &sec, slog.Group("g", "s", sec))
	var textLog bytes.Buffer
	slog.New(slog.NewTextHandler(&textLog, nil)).Info("rotated", "secret", sec, "holder", withUnexported{"ep", sec})

	outputs := map[string]string{
		"%v":                     fmt.Sprintf("%v", sec),
		"%+v":                    fmt.Sprintf("%+v", sec),
		"%#v":                    fmt.Sprintf("%#v", sec),
		"%s":                     fmt.Sprintf("%s", sec),
		"%x":                     fmt.Sprintf("%x", sec),
		"%d":                     fmt.Sprintf("%d", sec),
		"%q":                     fmt.Sprintf("%q", sec),
		"pointer %+v":            fmt.Sprintf("%+v", &sec),
		"slice %v":               fmt.Sprintf("%v", []signing.Secret{sec}),
		"exported field %+v":     fmt.Sprintf("%+v", withExported{Name: "ep", S: sec}),
		"exported field %#v":     fmt.Sprintf("%#v", withExported{Name: "ep", S: sec}),
		"unexported field %+v":   fmt.Sprintf("%+v", withUnexported{"ep", sec}),
		"unexported field %#v":   fmt.Sprintf("%#v", withUnexported{"ep", sec}),
		"pointer to holder %+v":  fmt.Sprintf("%+v", &withUnexported{"ep", sec}),
		"String":                 sec.String(),
		"GoString":               sec.GoString(),
		"slog JSON":              jsonLog.String(),
		"slog text":              textLog.String(),
		"slog LogValue":          sec.LogValue().String(),
		"error wrapping %v":      fmt.Errorf("sealing %v: boom", sec).Error(),
		"Println":                fmt.Sprintln(sec, &sec),
		"unexported field %v {}": fmt.Sprintf("%v", withUnexported{"ep", sec}),
	}
	forbidden := []string{
		base64.StdEncoding.EncodeToString(raw)[:12],
		base64.RawURLEncoding.EncodeToString(raw)[:12],
		hex.EncodeToString(raw)[:12],
		fmt.Sprint(raw[:4])[1:], // decimal bytes as fmt prints a []byte, without the '['
		string(raw[:8]),
	}
	for name, out := range outputs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, f := range forbidden {
				if strings.Contains(out, f) {
					t.Fatalf("output leaks key material %q: %s", f, out)
				}
			}
		})
	}
	for _, name := range []string{"%v", "%+v", "%#v", "%s", "String", "GoString", "slog LogValue"} {
		if outputs[name] != "whsec_***" {
			t.Errorf("%s = %q, want whsec_***", name, outputs[name])
		}
	}
	if !strings.Contains(jsonLog.String(), `"secret":"whsec_***"`) {
		t.Errorf("slog JSON does not show the redacted placeholder: %s", jsonLog.String())
	}
}

func BenchmarkSign(b *testing.B) {
	body := bytes.Repeat([]byte("a"), 1024)
	s1, err := signing.GenerateSecret()
	if err != nil {
		b.Fatal(err)
	}
	s2, err := signing.GenerateSecret()
	if err != nil {
		b.Fatal(err)
	}
	ts := time.Unix(1700000000, 0)
	for _, bc := range []struct {
		name    string
		secrets []signing.Secret
	}{
		{"1secret", []signing.Secret{s1}},
		{"2secrets", []signing.Secret{s1, s2}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				_ = signing.Sign("msg_2Lz8Qv5Yx", ts, body, bc.secrets...)
			}
		})
	}
}
