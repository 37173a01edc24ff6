package domain

import (
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// Limits on endpoint registration.
const (
	MaxURLLength       = 2048
	MaxEventPatterns   = 50
	MaxEventTypeLength = 128
)

// URLPolicy tells ValidateURL whether plain http and private literal hosts are acceptable
// (local development and tests only).
type URLPolicy struct{ AllowPrivate bool }

// ValidateURL checks a webhook URL and returns its normalised form (lower-case scheme and
// host, no default port). The real destination check happens at dial time (shared/ssrf);
// refusing obviously internal literals here only gives the tenant an earlier, clearer error.
func ValidateURL(raw string, p URLPolicy) (string, error) {
	if raw == "" {
		return "", Invalid("url", "url is required")
	}
	if len(raw) > MaxURLLength {
		return "", Invalid("url", "url is longer than %d characters", MaxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Opaque != "" {
		return "", Invalid("url", "url must be an absolute https URL")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && p.AllowPrivate:
	default:
		return "", Invalid("url", "url must use https")
	}
	if u.User != nil {
		return "", Invalid("url", "url must not contain user information")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return "", Invalid("url", "url must not contain a fragment")
	}
	host := u.Hostname()
	if host == "" {
		return "", Invalid("url", "url has no host")
	}
	if port := u.Port(); port != "" {
		if n, ok := parsePort(port); !ok || n == 0 {
			return "", Invalid("url", "url has an invalid port")
		}
		if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
			u.Host = bracket(host)
		}
	}
	if addr, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil && !p.AllowPrivate && !publicLiteral(addr) {
		return "", Invalid("url", "url points at a non-public address")
	}
	u.Host = strings.ToLower(u.Host)
	return u.String(), nil
}

func bracket(host string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]"
	}
	return host
}

func parsePort(s string) (int, bool) {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
		if n > 65535 {
			return 0, false
		}
	}
	return n, true
}

// publicLiteral is a coarse registration-time filter; shared/ssrf has the full list.
func publicLiteral(a netip.Addr) bool {
	if a.Is4In6() {
		return false
	}
	ip := net.IP(a.AsSlice())
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !netip.MustParsePrefix("100.64.0.0/10").Contains(a)
}

var eventTypeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$`)

// ValidEventType reports whether t is a concrete event type name like "export.done".
func ValidEventType(t string) bool {
	return len(t) <= MaxEventTypeLength && eventTypeRE.MatchString(t)
}

// ValidateEvents checks a subscription list and returns it de-duplicated and sorted.
// Patterns are concrete types ("export.done"), "*" (everything) or a prefix wildcard
// ("export.*": every type under export.).
func ValidateEvents(events []string) ([]string, error) {
	if len(events) == 0 {
		return nil, Invalid("events", "events must list at least one event type")
	}
	if len(events) > MaxEventPatterns {
		return nil, Invalid("events", "events lists %d patterns; at most %d are allowed", len(events), MaxEventPatterns)
	}
	seen := make(map[string]bool, len(events))
	out := make([]string, 0, len(events))
	for i, e := range events {
		if !validPattern(e) {
			return nil, Invalid("events", "events[%d] %q is not an event type (like \"export.done\") or wildcard (\"*\", \"export.*\")", i, truncate(e, 64))
		}
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	sort.Strings(out)
	return out, nil
}

func validPattern(p string) bool {
	if p == "*" {
		return true
	}
	if prefix, ok := strings.CutSuffix(p, ".*"); ok {
		return ValidEventType(prefix)
	}
	return ValidEventType(p)
}

// Match reports whether the event type matches one pattern.
func Match(pattern, eventType string) bool {
	switch {
	case pattern == "*":
		return true
	case strings.HasSuffix(pattern, ".*"):
		return strings.HasPrefix(eventType, pattern[:len(pattern)-1])
	default:
		return pattern == eventType
	}
}

// MatchAny reports whether any pattern matches the event type.
func MatchAny(patterns []string, eventType string) bool {
	for _, p := range patterns {
		if Match(p, eventType) {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
