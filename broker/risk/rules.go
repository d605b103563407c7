package risk

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/sesame-id/sesame/internal/store"
)

// ParseNetwork reads one network of a deny list: a CIDR range
// (192.0.2.0/24, 2001:db8::/32) or a single address. Host bits past the
// prefix are dropped, as 10.1.2.3/8 plainly means 10.0.0.0/8.
func ParseNetwork(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("%q: expected a CIDR range such as 192.0.2.0/24 or 2001:db8::/32, or one address", s)
}

// DenyNetworks fires for a client in one of its networks.
type DenyNetworks struct{ nets []netip.Prefix }

// NewDenyNetworks parses a deny list; an error names the entry at fault.
func NewDenyNetworks(cidrs []string) (*DenyNetworks, error) {
	d := &DenyNetworks{}
	for i, c := range cidrs {
		p, err := ParseNetwork(c)
		if err != nil {
			return nil, fmt.Errorf("deny_networks[%d]: %w", i, err)
		}
		d.nets = append(d.nets, p)
	}
	return d, nil
}

// Contains reports whether a is in a denied network. An IPv4 address
// written as IPv6 (::ffff:192.0.2.1) is the IPv4 address.
func (d *DenyNetworks) Contains(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, n := range d.nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// Assess implements Assessor; it makes no round trip.
func (d *DenyNetworks) Assess(_ context.Context, s Signals) (Verdict, error) {
	if d.Contains(s.ClientIP) {
		return Fired(ReasonDenyNetwork), nil
	}
	return Verdict{}, nil
}

// WAFHeader fires when the web application firewall in front of the
// broker flags a request in a header of its own.
//
// The header is believed only on a request that came through a trusted
// proxy. From anywhere else it is the client's own words: believing it
// would let anyone write the metric and the audit reason that operators
// alert on, and would hide that the request reached the broker around
// the WAF, where no WAF looked at it. The proxy in front must overwrite
// (not append to) the header, so a client cannot set it through the WAF
// either.
type WAFHeader struct {
	name   string
	values []string
}

// NewWAFHeader fires on header name when one of its comma-separated
// values is one of values (ASCII case ignored); with no values, on any
// non-empty value.
func NewWAFHeader(name string, values []string) *WAFHeader {
	w := &WAFHeader{name: http.CanonicalHeaderKey(strings.TrimSpace(name))}
	for _, v := range values {
		w.values = append(w.values, strings.TrimSpace(v))
	}
	return w
}

// Flags reports whether the header values h holds flag the request.
func (w *WAFHeader) Flags(h http.Header) bool {
	for _, line := range h.Values(w.name) {
		for _, v := range strings.Split(line, ",") {
			v = strings.TrimSpace(v)
			if v == "" {
				continue
			}
			if len(w.values) == 0 {
				return true
			}
			for _, want := range w.values {
				if strings.EqualFold(v, want) {
					return true
				}
			}
		}
	}
	return false
}

// Assess implements Assessor; it makes no round trip.
func (w *WAFHeader) Assess(_ context.Context, s Signals) (Verdict, error) {
	if s.ViaTrustedProxy && w.Flags(s.Header) {
		return Fired(ReasonWAF), nil
	}
	return Verdict{}, nil
}

// FailedTrips fires once Max trips to IdPs failed from one address in a
// window. The count lives in the store, so every replica adds to and
// reads the same one; the window is fixed, and starts at the first
// failure counted (the store's Incr).
//
// An IPv4 client is counted by its address, an IPv6 client by its /64:
// one subscriber usually holds a whole /64, and counting single IPv6
// addresses would let anyone escape the count by changing address.
type FailedTrips struct {
	kv     store.Store
	prefix string
	key    []byte
	max    int64
	window time.Duration
}

// NewFailedTrips counts in kv under prefix. The store keys name an
// address only by its HMAC under key, so a dump of the store does not
// list who failed; max is at least 1 and window positive.
func NewFailedTrips(kv store.Store, prefix string, key []byte, max int, window time.Duration) (*FailedTrips, error) {
	if max < 1 || window <= 0 {
		return nil, fmt.Errorf("failed_trips: max must be at least 1 and window positive (got %d, %s)", max, window)
	}
	return &FailedTrips{kv: kv, prefix: prefix, key: key, max: int64(max), window: window}, nil
}

// subject is the store key of a's count; "" for no address.
func (f *FailedTrips) subject(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	a = a.Unmap().WithZone("")
	who := a.String()
	if a.Is6() {
		who = netip.PrefixFrom(a, 64).Masked().String()
	}
	m := hmac.New(sha256.New, f.key)
	m.Write([]byte(who))
	return f.prefix + "risk:ft:" + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

func (f *FailedTrips) verdict(n int64) Verdict {
	if n >= f.max {
		return Fired(ReasonFailedTrips)
	}
	return Verdict{}
}

// Assess implements Assessor: one store read.
func (f *FailedTrips) Assess(ctx context.Context, s Signals) (Verdict, error) {
	k := f.subject(s.ClientIP)
	if k == "" {
		return Verdict{}, nil
	}
	v, err := f.kv.Get(ctx, k)
	if errors.Is(err, store.ErrNotFound) {
		return Verdict{}, nil
	}
	if err != nil {
		return Verdict{}, fmt.Errorf("failed trips: read the count: %w", err)
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return Verdict{}, fmt.Errorf("failed trips: the count is not a number")
	}
	return f.verdict(n), nil
}

// FailedTrip implements TripCounter: one store increment.
func (f *FailedTrips) FailedTrip(ctx context.Context, s Signals) (Verdict, error) {
	k := f.subject(s.ClientIP)
	if k == "" {
		return Verdict{}, nil
	}
	n, _, err := f.kv.Incr(ctx, k, f.window)
	if err != nil {
		return Verdict{}, fmt.Errorf("failed trips: count: %w", err)
	}
	return f.verdict(n), nil
}
