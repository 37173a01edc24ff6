package api

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/datajetty/webhooks/shared/domain"
)

// The fuzz targets of the API's parsers of outside input (besides tokens, in shared/auth).
// Invariants: no panic; anything accepted round-trips; a rejection is a domain Invalid error
// naming the field, which classify turns into a 400, never a 500. Seeds are in
// testdata/fuzz/<target>/ and in f.Add; `make fuzz` runs each target for FUZZTIME.

func requireInvalid(t *testing.T, err error, field string) {
	t.Helper()
	var de *domain.Error
	if !errors.As(err, &de) || de.Kind != domain.KindInvalid || de.Field != field || de.Msg == "" {
		t.Fatalf("rejection %v (%T) is not a domain Invalid error on %q", err, err, field)
	}
	if status, body := classify(err); status != http.StatusBadRequest || body.Error != CodeInvalidRequest {
		t.Fatalf("rejection %v answers %d %s", err, status, body.Error)
	}
}

// FuzzOpenCursor: pagination cursors (the cursor query parameter).
func FuzzOpenCursor(f *testing.F) {
	key := []byte("fuzz-cursor-key-0123456789abcdef")
	f.Add(signCursor(key, "acme", "ep_7m3q2a4rkvbx6c5dz2w3n4p5qe"), "acme")
	f.Add(signCursor(key, "acme\x00deliveries\x00ep_1", "2026-11-27T12:00:00Z#evt_1#1"), "acme\x00deliveries\x00ep_1")
	f.Add(signCursor(key, "acme", "e"), "globex")
	f.Add("ZXBf.AAAAAAAAAAAAAAAAAAAAAA", "acme")
	f.Add("", "acme")
	f.Fuzz(func(t *testing.T, cursor, tenant string) {
		pos, err := openCursor(key, tenant, cursor)
		if err != nil {
			requireInvalid(t, err, "cursor")
			return
		}
		// Accepted: it is exactly the cursor the service issues for that position.
		if again := signCursor(key, tenant, pos); again != cursor {
			t.Fatalf("cursor %q opens to %q, which signs as %q", cursor, pos, again)
		}
	})
}

// FuzzRequestID: the X-Request-Id header (sent once, or twice when twice is set).
func FuzzRequestID(f *testing.F) {
	f.Add("create-1", false)
	f.Add("", false)
	f.Add("a,b", false)
	f.Add(strings.Repeat("k", MaxRequestIDLength+1), false)
	f.Add("key", true)
	f.Add("cl\xc3\xa9", false)
	f.Fuzz(func(t *testing.T, v string, twice bool) {
		h := http.Header{"X-Request-Id": {v}}
		if twice {
			h["X-Request-Id"] = append(h["X-Request-Id"], v)
		}
		id, fromClient, err := requestID(h)
		if err != nil {
			requireInvalid(t, err, "X-Request-Id")
			if !strings.HasPrefix(id, "req_") || fromClient {
				t.Fatalf("a refused X-Request-Id gives id %q (fromClient %v); want a generated one", id, fromClient)
			}
			return
		}
		if twice || !fromClient || id != v || len(v) < 1 || len(v) > MaxRequestIDLength || strings.ContainsAny(v, ", ") {
			t.Fatalf("accepted X-Request-Id %q (twice %v) as %q, fromClient %v", v, twice, id, fromClient)
		}
		for _, c := range []byte(v) {
			if c < 0x21 || c > 0x7e {
				t.Fatalf("accepted X-Request-Id %q holds byte %#x", v, c)
			}
		}
	})
}

// FuzzDecodeRegisterBody: the POST /endpoints body, decoded strictly.
func FuzzDecodeRegisterBody(f *testing.F) {
	f.Add([]byte(`{"url":"https://app.example.com/hook","events":["export.done"],"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`))
	f.Add([]byte(`{"endpoint_id":"ep_x","version":2,"url":"u","events":["*"]}`))
	f.Add([]byte(`{"url":1}`))
	f.Add([]byte(`{"callback":"x"}`))
	f.Add([]byte(`{} {}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var b registerBody
		err := decodeJSON(body, &b)
		if err == nil {
			return
		}
		var de *domain.Error
		if !errors.As(err, &de) || de.Kind != domain.KindInvalid {
			t.Fatalf("rejection %v (%T) is not a domain Invalid error", err, err)
		}
		if status, _ := classify(err); status != http.StatusBadRequest {
			t.Fatalf("rejection %v answers %d", err, status)
		}
	})
}
