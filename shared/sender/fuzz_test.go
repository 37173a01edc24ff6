package sender

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzRetryAfter: a receiver's Retry-After header (delay-seconds or an HTTP date).
// Invariants: no panic; the result is 0 (ignored: the schedule applies) or a delay within
// [5 s, 12 h]; an accepted value reads back to that delay.
func FuzzRetryAfter(f *testing.F) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{"5", "120", "43200", "43201", "4", "-1", "0", " 60 ", "1e3", "9999999999999999999",
		now.Add(time.Hour).Format(http.TimeFormat), "Fri, 27 Nov 2026 12:00:04 GMT", "Friday, 27-Nov-26 13:00:00 GMT", "Fri Nov 27 13:00:00 2026", "soon"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d := RetryAfter(v, now)
		if d == 0 {
			return
		}
		if d < minRetryAfter || d > maxRetryAfter {
			t.Fatalf("Retry-After %q gives %s, outside [%s, %s]", v, d, minRetryAfter, maxRetryAfter)
		}
		s := strings.TrimSpace(v)
		if secs, err := strconv.ParseInt(s, 10, 64); err == nil {
			if d != time.Duration(secs)*time.Second {
				t.Fatalf("Retry-After %q gives %s", v, d)
			}
			return
		}
		at, err := http.ParseTime(s)
		if err != nil || at.Sub(now) != d {
			t.Fatalf("Retry-After %q gives %s, but reads as %v (%v)", v, d, at, err)
		}
	})
}
