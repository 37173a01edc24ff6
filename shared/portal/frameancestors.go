package portal

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// ParseFrameAncestors checks a CSP frame-ancestors source list and returns it normalised
// (single spaces). Accepted: 'none' (alone), 'self', and origins of embedding platforms:
// https://host, https://*.host, with an optional port; http:// only for localhost and
// 127.0.0.1 (local development). Refused, because they would let any page frame the portal
// (clickjacking) or break out of the header: "*", bare schemes ("https:"), paths,
// quotes other than the two keywords, and separators (";", ",").
func ParseFrameAncestors(list string) (string, error) {
	fields := strings.Fields(list)
	if len(fields) == 0 {
		return "", fmt.Errorf("portal: frame ancestors: empty; use 'none' to forbid framing")
	}
	for _, f := range fields {
		switch {
		case f == "'none'":
			if len(fields) > 1 {
				return "", fmt.Errorf("portal: frame ancestors: 'none' must stand alone, not with %q", list)
			}
		case f == "'self'":
		default:
			if err := checkOrigin(f); err != nil {
				return "", fmt.Errorf("portal: frame ancestors: %q: %w", f, err)
			}
		}
	}
	return strings.Join(fields, " "), nil
}

func checkOrigin(s string) error {
	if strings.ContainsAny(s, ";,'\"\\") {
		return fmt.Errorf("only 'none', 'self' or origins like https://platform.example.com")
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("not an origin like https://platform.example.com")
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return fmt.Errorf("an origin has no user, path, query or fragment")
	}
	host := u.Hostname()
	if port := u.Port(); port != "" && port != "*" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("invalid port")
		}
	}
	switch u.Scheme {
	case "https":
	case "http":
		if host != "localhost" && host != "127.0.0.1" {
			return fmt.Errorf("plain http only for localhost or 127.0.0.1")
		}
	default:
		return fmt.Errorf("the scheme must be https")
	}
	name := strings.TrimPrefix(host, "*.")
	if name == "" || strings.Contains(name, "*") {
		return fmt.Errorf("a wildcard may only replace the leftmost label (https://*.example.com)")
	}
	if ip := net.ParseIP(name); ip != nil {
		return nil
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return fmt.Errorf("invalid host name")
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("invalid host name")
			}
		}
	}
	return nil
}
