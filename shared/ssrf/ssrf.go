// Package ssrf keeps outbound webhook traffic away from internal destinations.
//
// Tenants choose webhook URLs, so every destination is attacker-controlled. Checking the URL
// host at registration time is not enough: DNS can answer differently at delivery time
// (rebinding), a host can have several addresses, and redials happen long after the first
// lookup. The guard therefore runs inside net.Dialer.Control, on the exact IP the socket is
// about to connect to, after DNS resolution and for every dial attempt.
package ssrf

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrBlockedDestination is wrapped by every refusal from CheckAddr and the guarded dialer.
var ErrBlockedDestination = errors.New("ssrf: blocked destination")

// BlockedError describes a refused destination. Reason is a short category phrase such as
// "a private address"; it is safe to show a tenant, unlike Addr, which may reveal how our
// internal DNS resolved their host name.
type BlockedError struct {
	Addr   netip.Addr
	Reason string
}

// Error names the address and its category, e.g. "destination 10.0.0.1 is a private address".
func (e *BlockedError) Error() string {
	return "destination " + e.Addr.String() + " is " + e.Reason
}

// Unwrap returns ErrBlockedDestination so errors.Is works through url.Error and net.OpError.
func (e *BlockedError) Unwrap() error { return ErrBlockedDestination }

// IsBlocked reports whether err (typically from an http.Client built by NewClient) is a
// refusal by the guard rather than a network failure.
func IsBlocked(err error) bool { return errors.Is(err, ErrBlockedDestination) }

// Policy decides which destinations may be dialled. The zero value is the production policy.
type Policy struct {
	// AllowPrivate permits loopback, RFC 1918, unique-local, link-local, CGNAT and other
	// non-public ranges. It exists for local development and tests, where receivers run on
	// 127.0.0.1; it never unlocks the always-blocked ranges such as cloud metadata.
	AllowPrivate bool
}

type rangeRule struct {
	prefixes []netip.Prefix
	reason   string
}

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// alwaysBlocked is consulted first and in order, so a metadata address is reported as such
// rather than as link-local, and broadcast before the reserved block that contains it.
var alwaysBlocked = []rangeRule{
	// Instance metadata / credential endpoints: reaching one from a Lambda would hand a
	// tenant our IAM credentials. AWS EC2 IMDS (v4 and v6), ECS task metadata, EKS Pod
	// Identity (v4 and v6), Alibaba Cloud. GCP, Azure and Oracle share 169.254.169.254.
	{prefixes(
		"169.254.169.254/32", "fd00:ec2::254/128",
		"169.254.170.2/32",
		"169.254.170.23/32", "fd00:ec2::23/128",
		"100.100.100.200/32",
	), "a cloud metadata address"},
	{prefixes("0.0.0.0/8", "::/128"), "an unspecified address"},
	// Mapped addresses are refused as a class, before any unmapping, so that an IPv4 rule
	// can never be sidestepped by writing the address in IPv6 form.
	{prefixes("::ffff:0:0/96"), "an IPv4-mapped IPv6 address"},
	// Translation and tunnelling prefixes embed an arbitrary IPv4 address (possibly an
	// internal one) that a gateway would forward to.
	{prefixes("64:ff9b::/96", "64:ff9b:1::/48"), "a NAT64 address"},
	{prefixes("2002::/16", "192.88.99.0/24"), "a 6to4 address"},
	{prefixes("2001::/32"), "a Teredo address"},
	{prefixes("255.255.255.255/32"), "a broadcast address"},
	{prefixes("224.0.0.0/4", "ff00::/8"), "a multicast address"},
	{prefixes("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20"), "a documentation address"},
	{prefixes("240.0.0.0/4"), "a reserved address"},
}

// privateRanges are refused unless Policy.AllowPrivate.
var privateRanges = []rangeRule{
	{prefixes("127.0.0.0/8", "::1/128"), "a loopback address"},
	{prefixes("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"), "a private address"},
	{prefixes("fc00::/7"), "a unique-local address"},
	{prefixes("169.254.0.0/16", "fe80::/10"), "a link-local address"},
	{prefixes("100.64.0.0/10"), "a carrier-grade NAT address"},
	{prefixes("192.0.0.0/24"), "an IETF protocol assignment address"},
	{prefixes("198.18.0.0/15", "2001:2::/48"), "a benchmarking address"},
}

// globalUnicast6 is the only IPv6 space IANA allocates for global unicast. Anything outside
// it that no rule above names (IPv4-compatible ::/96, discard-only 100::/64, deprecated
// site-local fec0::/10, ...) has no business being a webhook destination.
var globalUnicast6 = netip.MustParsePrefix("2000::/3")

// ietfProtocol6 holds special-purpose assignments (ORCHID, AMT, ...) around Teredo and the
// IPv6 benchmarking block; none is a legitimate receiver.
var ietfProtocol6 = netip.MustParsePrefix("2001::/23")

// CheckAddr returns nil if ip may be dialled under p, or a *BlockedError (wrapping
// ErrBlockedDestination) naming the category that forbids it.
func (p Policy) CheckAddr(ip netip.Addr) error {
	if !ip.IsValid() {
		return &BlockedError{Addr: ip, Reason: "not a valid address"}
	}
	// netip.Prefix.Contains never matches an address that carries a zone, so the zone must
	// go before matching or fe80::1%eth0 would slip past every rule.
	a := ip.WithZone("")
	for _, r := range alwaysBlocked {
		if r.contains(a) {
			return &BlockedError{Addr: ip, Reason: r.reason}
		}
	}
	for _, r := range privateRanges {
		if r.contains(a) {
			if p.AllowPrivate {
				return nil
			}
			return &BlockedError{Addr: ip, Reason: r.reason}
		}
	}
	if a.Is6() && (!globalUnicast6.Contains(a) || ietfProtocol6.Contains(a)) {
		return &BlockedError{Addr: ip, Reason: "a reserved address"}
	}
	return nil
}

func (r rangeRule) contains(a netip.Addr) bool {
	for _, p := range r.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Transport tuning. Webhook traffic goes to many hosts, but each busy endpoint receives a
// stream of deliveries, so a modest per-host idle pool saves TLS handshakes.
const (
	dialTimeout         = 5 * time.Second
	tlsHandshakeTimeout = 5 * time.Second
	keepAlive           = 30 * time.Second
	idleConnTimeout     = 90 * time.Second
	maxIdleConns        = 256
	maxIdleConnsPerHost = 16
	// Receivers are untrusted; Go's default 1 MiB header allowance is far more than any
	// honest webhook response needs.
	maxResponseHeaderBytes = 64 << 10
)

// NewTransport returns an http.Transport whose every connection is checked against p at
// dial time. Response deadlines are left to the caller's context or http.Client.Timeout.
func NewTransport(p Policy) *http.Transport {
	d := &net.Dialer{
		Timeout:   dialTimeout,
		KeepAlive: keepAlive,
		// Control runs after DNS resolution, once per address actually dialled (including
		// each Happy Eyeballs attempt and every later redial), just before connect(2).
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				// Fail closed: an address we cannot parse is an address we cannot vet.
				return &BlockedError{Reason: "not a valid address"}
			}
			return p.CheckAddr(ap.Addr())
		},
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		// The resolver turns an IPv4-mapped literal such as [::ffff:127.0.0.1] into plain
		// IPv4 before Control sees it, so literals are vetted here too; this is what makes
		// the mapped form refused as such, whatever AllowPrivate says.
		if host, _, err := net.SplitHostPort(addr); err == nil {
			if ip, err := netip.ParseAddr(host); err == nil {
				if err := p.CheckAddr(ip); err != nil {
					return nil, &net.OpError{Op: "dial", Net: network, Err: err}
				}
			}
		}
		return d.DialContext(ctx, network, addr)
	}
	return &http.Transport{
		// Never consult HTTP(S)_PROXY: a proxy would make the connection on our behalf to
		// whatever the tenant named, and the dial-time guard would only see the proxy.
		Proxy:                  nil,
		DialContext:            dial,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    tlsHandshakeTimeout,
		ForceAttemptHTTP2:      true, // a custom DialContext/TLS config otherwise disables h2
		MaxIdleConns:           maxIdleConns,
		MaxIdleConnsPerHost:    maxIdleConnsPerHost,
		IdleConnTimeout:        idleConnTimeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}
}

// NewClient returns an http.Client on NewTransport(p) that never follows redirects: a
// redirect is just another attacker-chosen URL, and the 3xx response itself is the result
// the caller records. timeout bounds the whole exchange (0 means no client-level limit).
func NewClient(p Policy, timeout time.Duration) *http.Client {
	return &http.Client{
		Transport:     NewTransport(p),
		Timeout:       timeout,
		CheckRedirect: NoRedirect,
	}
}

// NoRedirect is an http.Client CheckRedirect function that returns the 3xx response
// instead of following it.
func NoRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
