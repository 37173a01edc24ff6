package ssrf_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/datajetty/webhooks/shared/ssrf"
)

// These tests never dial anything but loopback: non-loopback ranges are covered by
// CheckAddr alone so the suite generates no traffic towards internal networks.

func TestCheckAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr   string
		reason string // "" means allowed under both policies
		always bool   // blocked even with AllowPrivate
	}{
		// Public destinations.
		{"93.184.215.14", "", false},
		{"1.1.1.1", "", false},
		{"2606:4700:4700::1111", "", false},
		{"2a00:1450:4001:80b::200e", "", false},

		// Cloud metadata, always blocked, and reported as metadata not link-local/private.
		{"169.254.169.254", "a cloud metadata address", true},
		{"169.254.170.2", "a cloud metadata address", true},
		{"169.254.170.23", "a cloud metadata address", true},
		{"fd00:ec2::254", "a cloud metadata address", true},
		{"fd00:ec2::23", "a cloud metadata address", true},
		{"100.100.100.200", "a cloud metadata address", true},

		// Unspecified / "this network".
		{"0.0.0.0", "an unspecified address", true},
		{"0.1.2.3", "an unspecified address", true},
		{"::", "an unspecified address", true},

		// IPv4 written as IPv6: refused as mapped even when the IPv4 would be public.
		{"::ffff:127.0.0.1", "an IPv4-mapped IPv6 address", true},
		{"::ffff:10.0.0.1", "an IPv4-mapped IPv6 address", true},
		{"::ffff:169.254.169.254", "an IPv4-mapped IPv6 address", true},
		{"::ffff:1.1.1.1", "an IPv4-mapped IPv6 address", true},

		// Translation / tunnelling prefixes that embed an IPv4 address.
		{"64:ff9b::a9fe:a9fe", "a NAT64 address", true},
		{"64:ff9b:1::1", "a NAT64 address", true},
		{"2002:a00:1::1", "a 6to4 address", true},
		{"192.88.99.1", "a 6to4 address", true},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "a Teredo address", true},

		// Broadcast and multicast.
		{"255.255.255.255", "a broadcast address", true},
		{"224.0.0.1", "a multicast address", true},
		{"239.255.255.250", "a multicast address", true},
		{"ff02::1", "a multicast address", true},

		// Documentation.
		{"192.0.2.10", "a documentation address", true},
		{"198.51.100.7", "a documentation address", true},
		{"203.0.113.99", "a documentation address", true},
		{"2001:db8::1", "a documentation address", true},
		{"3fff::1", "a documentation address", true},

		// Reserved.
		{"240.0.0.1", "a reserved address", true},
		{"254.255.255.255", "a reserved address", true},
		{"::127.0.0.1", "a reserved address", true}, // deprecated IPv4-compatible
		{"100::1", "a reserved address", true},      // discard-only
		{"fec0::1", "a reserved address", true},     // deprecated site-local
		{"2001:20::1", "a reserved address", true},  // ORCHIDv2
		{"4000::1", "a reserved address", true},     // unallocated, outside 2000::/3

		// Private unless AllowPrivate.
		{"127.0.0.1", "a loopback address", false},
		{"127.255.255.254", "a loopback address", false},
		{"::1", "a loopback address", false},
		{"10.0.0.1", "a private address", false},
		{"172.16.0.1", "a private address", false},
		{"172.31.255.255", "a private address", false},
		{"192.168.1.1", "a private address", false},
		{"fc00::1", "a unique-local address", false},
		{"fd12:3456::1", "a unique-local address", false},
		{"169.254.1.1", "a link-local address", false},
		{"fe80::1", "a link-local address", false},
		{"fe80::1%eth0", "a link-local address", false}, // zones must not dodge matching
		{"100.64.0.1", "a carrier-grade NAT address", false},
		{"100.127.255.255", "a carrier-grade NAT address", false},
		{"192.0.0.8", "an IETF protocol assignment address", false},
		{"198.18.0.1", "a benchmarking address", false},
		{"198.19.255.255", "a benchmarking address", false},
		{"2001:2::1", "a benchmarking address", false},

		// Neighbours of blocked ranges stay allowed.
		{"172.32.0.1", "", false},
		{"100.128.0.1", "", false},
		{"198.20.0.1", "", false},
		{"223.255.255.255", "", false},
	}
	for _, tc := range tests {
		for _, allowPrivate := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/allowPrivate=%t", tc.addr, allowPrivate), func(t *testing.T) {
				t.Parallel()
				ip := netip.MustParseAddr(tc.addr)
				err := ssrf.Policy{AllowPrivate: allowPrivate}.CheckAddr(ip)
				wantBlocked := tc.reason != "" && (tc.always || !allowPrivate)
				if !wantBlocked {
					if err != nil {
						t.Fatalf("CheckAddr(%s) = %v, want allowed", tc.addr, err)
					}
					return
				}
				if err == nil {
					t.Fatalf("CheckAddr(%s) allowed, want blocked as %s", tc.addr, tc.reason)
				}
				if !errors.Is(err, ssrf.ErrBlockedDestination) || !ssrf.IsBlocked(err) {
					t.Errorf("error %v does not wrap ErrBlockedDestination", err)
				}
				var be *ssrf.BlockedError
				if !errors.As(err, &be) || be.Reason != tc.reason {
					t.Fatalf("CheckAddr(%s) = %v, want reason %q", tc.addr, err, tc.reason)
				}
				if want := "destination " + ip.String() + " is " + tc.reason; err.Error() != want {
					t.Errorf("message %q, want %q", err, want)
				}
			})
		}
	}
}

func TestCheckAddrInvalid(t *testing.T) {
	t.Parallel()
	for _, p := range []ssrf.Policy{{}, {AllowPrivate: true}} {
		if err := p.CheckAddr(netip.Addr{}); !ssrf.IsBlocked(err) {
			t.Errorf("%+v: zero Addr = %v, want blocked", p, err)
		}
	}
}

func TestIsBlocked(t *testing.T) {
	t.Parallel()
	blocked := ssrf.Policy{}.CheckAddr(netip.MustParseAddr("10.1.2.3"))
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"unrelated", errors.New("connection refused"), false},
		{"sentinel", ssrf.ErrBlockedDestination, true},
		{"direct", blocked, true},
		{"wrapped like net/http", &url.Error{Op: "Post", URL: "http://x", Err: &net.OpError{Op: "dial", Net: "tcp", Err: blocked}}, true},
		{"fmt wrapped", fmt.Errorf("deliver: %w", blocked), true},
		{"text only", errors.New(blocked.Error()), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := ssrf.IsBlocked(tc.err); got != tc.want {
				t.Errorf("IsBlocked(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestNewTransportSettings(t *testing.T) {
	t.Parallel()
	tr := ssrf.NewTransport(ssrf.Policy{})
	if tr.Proxy != nil {
		t.Error("Proxy must be nil: environment proxies would bypass the dial-time guard")
	}
	if tr.DialContext == nil {
		t.Error("DialContext must be the guarded dialer")
	}
	if tr.TLSClientConfig == nil || tr.TLSClientConfig.MinVersion != tls.VersionTLS12 {
		t.Error("TLS minimum version must be 1.2")
	}
	if tr.MaxIdleConnsPerHost != 16 || tr.IdleConnTimeout != 90*time.Second || tr.TLSHandshakeTimeout != 5*time.Second {
		t.Errorf("pool/timeouts = %d, %v, %v", tr.MaxIdleConnsPerHost, tr.IdleConnTimeout, tr.TLSHandshakeTimeout)
	}
	if tr.ResponseHeaderTimeout != 0 {
		t.Error("ResponseHeaderTimeout is the caller's business (context / Client.Timeout)")
	}
	c := ssrf.NewClient(ssrf.Policy{}, 3*time.Second)
	if c.Timeout != 3*time.Second || c.CheckRedirect == nil {
		t.Errorf("client = %+v", c)
	}
}

// receiver is a loopback test server that counts both accepted connections and requests,
// so a refused dial can be shown to have produced no traffic at all.
type receiver struct {
	srv   *httptest.Server
	conns atomic.Int32
	hits  atomic.Int32
}

func newReceiver(t *testing.T, listenAddr string) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", listenAddr, err)
	}
	r := &receiver{}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.hits.Add(1)
		_, _ = io.WriteString(w, "ok")
	}))
	r.srv.Listener.Close()
	r.srv.Listener = ln
	r.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			r.conns.Add(1)
		}
	}
	r.srv.Start()
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) port() string {
	_, port, _ := net.SplitHostPort(r.srv.Listener.Addr().String())
	return port
}

func TestDialGuard(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		listen       string
		host         string
		allowPrivate bool
		wantReason   string // "" means the request must succeed
	}{
		{"ipv4 literal", "127.0.0.1:0", "127.0.0.1", false, "a loopback address"},
		{"ipv4 literal allowed", "127.0.0.1:0", "127.0.0.1", true, ""},
		{"hostname resolving to loopback", "127.0.0.1:0", "localhost", false, "a loopback address"},
		{"hostname resolving to loopback allowed", "127.0.0.1:0", "localhost", true, ""},
		{"ipv6 literal", "[::1]:0", "[::1]", false, "a loopback address"},
		{"ipv6 literal allowed", "[::1]:0", "[::1]", true, ""},
		// Mapped literals are always refused, even where the plain IPv4 form is allowed.
		{"ipv4-mapped literal", "127.0.0.1:0", "[::ffff:127.0.0.1]", false, "an IPv4-mapped IPv6 address"},
		{"ipv4-mapped literal allowPrivate", "127.0.0.1:0", "[::ffff:127.0.0.1]", true, "an IPv4-mapped IPv6 address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// A receiver per case, so its counters belong to this request alone.
			rcv := newReceiver(t, tc.listen)
			client := ssrf.NewClient(ssrf.Policy{AllowPrivate: tc.allowPrivate}, 0)
			resp, err := client.Get("http://" + tc.host + ":" + rcv.port() + "/")
			if tc.wantReason == "" {
				if err != nil {
					t.Fatalf("GET: %v", err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || rcv.hits.Load() != 1 {
					t.Fatalf("status %d, receiver hits %d", resp.StatusCode, rcv.hits.Load())
				}
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatal("GET succeeded, want refusal")
			}
			if !ssrf.IsBlocked(err) {
				t.Fatalf("GET error %v is not a guard refusal", err)
			}
			var be *ssrf.BlockedError
			if !errors.As(err, &be) || be.Reason != tc.wantReason {
				t.Fatalf("GET error %v, want reason %q", err, tc.wantReason)
			}
			// The guard refuses before connect(2): no connection, let alone a request.
			if n := rcv.conns.Load(); n != 0 {
				t.Errorf("receiver accepted %d connections, want none", n)
			}
			if n := rcv.hits.Load(); n != 0 {
				t.Errorf("receiver served %d requests, want none", n)
			}
		})
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	var targetHits atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/start", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/target", http.StatusFound)
	})
	mux.HandleFunc("/target", func(w http.ResponseWriter, r *http.Request) {
		targetHits.Add(1)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	tests := []struct {
		name   string
		method string
		body   io.Reader
	}{
		{"GET", http.MethodGet, nil},
		{"POST", http.MethodPost, strings.NewReader(`{"a":1}`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			client := ssrf.NewClient(ssrf.Policy{AllowPrivate: true}, 0)
			req, err := http.NewRequest(tc.method, srv.URL+"/start", tc.body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", tc.method, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("status %d, want the 302 itself", resp.StatusCode)
			}
			if loc := resp.Header.Get("Location"); loc != "/target" {
				t.Errorf("Location %q", loc)
			}
			if n := targetHits.Load(); n != 0 {
				t.Fatalf("redirect target was requested %d times", n)
			}
		})
	}
}
