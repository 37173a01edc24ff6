package domain

import (
	"net/netip"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Limits on endpoint registration.
const (
	MaxURLLength       = 2048
	MaxEventPatterns   = 50
	MaxEventTypeLength = 128
)

// DestinationChecker decides whether an IP address may receive webhooks: the dial-time guard
// (shared/ssrf.Policy) implements it, so registration refuses exactly the literals delivery
// would refuse.
type DestinationChecker interface {
	CheckAddr(netip.Addr) error
}

// URLPolicy tells ValidateURL whether plain http and private destinations are acceptable
// (local development and tests only), and how to judge an IP literal host.
type URLPolicy struct {
	AllowPrivate bool
	// Destinations judges IP literal hosts; nil refuses every IP literal.
	Destinations DestinationChecker
}

// hostProfile is IDNA as a client looks a host name up (UTS #46 mapping, STD3 rules, bidi
// and joiner checks), with DNS lengths enforced: labels of 1-63 bytes, at most 253 in all.
var hostProfile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.VerifyDNSLength(true))

// ValidateURL checks a webhook URL and returns its normalised form: lower-case scheme, the
// host as lower-case ASCII (an internationalised name in its xn-- form, an IPv6 literal in
// its canonical form, no trailing dot), no default port. The real destination check happens
// at dial time (shared/ssrf); refusing non-public literals, numeric IPv4 spellings and
// invalid names here only gives the tenant an earlier, clearer error.
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
	host, err := normalHost(u, p)
	if err != nil {
		return "", err
	}
	if port := u.Port(); port != "" {
		if n, ok := parsePort(port); !ok || n == 0 {
			return "", Invalid("url", "url has an invalid port")
		}
		if !(u.Scheme == "https" && port == "443") && !(u.Scheme == "http" && port == "80") {
			host += ":" + port
		}
	}
	u.Host = host
	out := u.String()
	if len(out) > MaxURLLength {
		return "", Invalid("url", "url is longer than %d characters once normalised", MaxURLLength)
	}
	return out, nil
}

// normalHost checks the URL's host and returns it normalised, bracketed when IPv6.
func normalHost(u *url.URL, p URLPolicy) (string, error) {
	host := u.Hostname()
	if host == "" {
		return "", Invalid("url", "url has no host")
	}
	if strings.HasPrefix(u.Host, "[") {
		addr, err := netip.ParseAddr(host)
		if err != nil || !addr.Is6() {
			return "", Invalid("url", "url has an invalid IPv6 address")
		}
		if addr.Zone() != "" {
			return "", Invalid("url", "url must not name an IPv6 zone")
		}
		if err := checkLiteral(addr, p); err != nil {
			return "", err
		}
		return "[" + addr.String() + "]", nil
	}
	if !utf8.ValidString(host) {
		return "", Invalid("url", "url host is not a valid host name (not UTF-8)")
	}
	ascii, err := hostProfile.ToASCII(host)
	if err != nil {
		return "", Invalid("url", "url host is not a valid host name (IDNA: letters, digits and hyphens per label, labels of 1-63 characters)")
	}
	// One trailing dot (a fully qualified name) is dropped; any other empty label is wrong.
	ascii = strings.TrimSuffix(ascii, ".")
	if ascii == "" || strings.HasPrefix(ascii, ".") || strings.HasSuffix(ascii, ".") || strings.Contains(ascii, "..") {
		return "", Invalid("url", "url host is not a valid host name (empty label)")
	}
	if addr, err := netip.ParseAddr(ascii); err == nil && addr.Is4() {
		if err := checkLiteral(addr, p); err != nil {
			return "", err
		}
		return addr.String(), nil
	}
	if endsInNumber(ascii) {
		// 2130706433, 0x7f000001, 017700000001, 127.1 and 127.0.0.01 are all 127.0.0.1 to
		// a URL parser or resolver that follows inet_aton (browsers, curl, getaddrinfo).
		return "", Invalid("url", "url host %q is an IPv4 address in a non-standard form (a single number, octal, hexadecimal or fewer than four parts); write it as four decimal numbers a.b.c.d", truncate(ascii, 64))
	}
	if !p.AllowPrivate && (ascii == "localhost" || strings.HasSuffix(ascii, ".localhost")) {
		return "", Invalid("url", "url points at a non-public address (localhost is always loopback)")
	}
	return ascii, nil
}

// checkLiteral refuses an IP literal the dial-time guard would refuse.
func checkLiteral(addr netip.Addr, p URLPolicy) error {
	if p.Destinations == nil {
		return Invalid("url", "url points at a non-public address (IP literals are not accepted)")
	}
	if err := p.Destinations.CheckAddr(addr); err != nil {
		return &Error{Kind: KindInvalid, Field: "url", Msg: "url points at a non-public address: " + err.Error(), Err: err}
	}
	return nil
}

// endsInNumber reports whether a host's last label is a number (decimal, or hexadecimal
// with 0x), which makes a URL parser read the whole host as an IPv4 address (WHATWG URL).
func endsInNumber(host string) bool {
	last := host[strings.LastIndexByte(host, '.')+1:]
	if last == "" {
		return false
	}
	if rest, ok := strings.CutPrefix(strings.ToLower(last), "0x"); ok {
		return strings.Trim(rest, "0123456789abcdef") == ""
	}
	return strings.Trim(last, "0123456789") == ""
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
