package risk_test

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sesame-id/sesame/broker/risk"
	"github.com/sesame-id/sesame/internal/store"
	"github.com/sesame-id/sesame/internal/store/memstore"
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestParseNetwork(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.0/24":   "192.0.2.0/24",
		"10.1.2.3/8":     "10.0.0.0/8",
		" 192.0.2.7 ":    "192.0.2.7/32",
		"2001:db8::/32":  "2001:db8::/32",
		"2001:db8::1":    "2001:db8::1/128",
		"::ffff:1.2.3.4": "1.2.3.4/32",
	} {
		got, err := risk.ParseNetwork(in)
		if err != nil || got.String() != want {
			t.Errorf("ParseNetwork(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "10.0.0.300/8", "192.0.2.0/33", "example.org", "fe80::1%eth0", "192.0.2.0/"} {
		if _, err := risk.ParseNetwork(in); err == nil {
			t.Errorf("ParseNetwork(%q): no error", in)
		}
	}
}

func TestDenyNetworks(t *testing.T) {
	if _, err := risk.NewDenyNetworks([]string{"192.0.2.0/24", "10.0.0.300/8"}); err == nil || !strings.Contains(err.Error(), "deny_networks[1]") || !strings.Contains(err.Error(), "10.0.0.300/8") {
		t.Errorf("a bad entry: %v, want an error naming deny_networks[1] and its value", err)
	}
	d, err := risk.NewDenyNetworks([]string{"192.0.2.0/24", "2001:db8::/32", "203.0.113.9"})
	if err != nil {
		t.Fatal(err)
	}
	for a, want := range map[string]bool{
		"192.0.2.0": true, "192.0.2.255": true, "192.0.3.0": false, "192.0.1.255": false,
		"::ffff:192.0.2.10": true, // IPv4 seen through an IPv6 socket
		"2001:db8:ffff::1":  true, "2001:db9::1": false,
		"203.0.113.9": true, "203.0.113.10": false,
		"fe80::1%eth0": false,
	} {
		if got := d.Contains(addr(a)); got != want {
			t.Errorf("Contains(%s) = %v, want %v", a, got, want)
		}
	}
	if d.Contains(netip.Addr{}) {
		t.Error("an unknown address is in a denied network")
	}
	v, err := d.Assess(context.Background(), risk.Signals{ClientIP: addr("192.0.2.1")})
	if err != nil || !v.Suspicious || !slices.Equal(v.Reasons, []string{risk.ReasonDenyNetwork}) {
		t.Errorf("Assess = %+v, %v", v, err)
	}
}

func TestWAFHeader(t *testing.T) {
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	w := risk.NewWAFHeader("x-suspicious", []string{"1", "Bot"})
	for _, c := range []struct {
		name string
		h    http.Header
		want bool
	}{
		{"value", h("X-Suspicious", "1"), true},
		{"case of the value", h("X-Suspicious", "BOT"), true},
		{"in a list", h("X-Suspicious", "scanner, bot"), true},
		{"second line", h("X-Suspicious", "0", "X-Suspicious", "1"), true},
		{"other value", h("X-Suspicious", "0"), false},
		{"prefix only", h("X-Suspicious", "10"), false},
		{"absent", h("X-Other", "1"), false},
		{"empty", h("X-Suspicious", ""), false},
	} {
		if got := w.Flags(c.h); got != c.want {
			t.Errorf("%s: Flags = %v, want %v", c.name, got, c.want)
		}
	}
	any := risk.NewWAFHeader("X-Suspicious", nil)
	if !any.Flags(h("X-Suspicious", "whatever")) || any.Flags(h("X-Suspicious", " , ")) {
		t.Error("with no values: any non-empty value must flag, and only that")
	}
	// The header means something only from the proxy that sets it.
	ctx := context.Background()
	if v, _ := w.Assess(ctx, risk.Signals{Header: h("X-Suspicious", "1")}); v.Suspicious {
		t.Error("the header fired on a request that did not come through a trusted proxy")
	}
	if v, _ := w.Assess(ctx, risk.Signals{Header: h("X-Suspicious", "1"), ViaTrustedProxy: true}); !slices.Equal(v.Reasons, []string{risk.ReasonWAF}) {
		t.Errorf("through a trusted proxy: %+v", v)
	}
}

func TestFailedTrips(t *testing.T) {
	ctx := context.Background()
	kv := memstore.New()
	if _, err := risk.NewFailedTrips(kv, "t:", []byte("k"), 0, time.Minute); err == nil {
		t.Error("max 0 accepted")
	}
	f, err := risk.NewFailedTrips(kv, "t:", []byte("key"), 3, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	one := risk.Signals{ClientIP: addr("198.51.100.7")}
	for i := 1; i <= 3; i++ {
		if v, _ := f.Assess(ctx, one); v.Suspicious {
			t.Fatalf("suspicious after %d failures, want after 3", i-1)
		}
		v, err := f.FailedTrip(ctx, one)
		if err != nil || v.Suspicious != (i == 3) {
			t.Fatalf("failure %d: %+v, %v", i, v, err)
		}
	}
	if v, _ := f.Assess(ctx, one); !slices.Equal(v.Reasons, []string{risk.ReasonFailedTrips}) {
		t.Fatalf("after 3 failures: %+v", v)
	}
	// Another address is not concerned; the same IPv6 /64 is one client.
	if v, _ := f.Assess(ctx, risk.Signals{ClientIP: addr("198.51.100.8")}); v.Suspicious {
		t.Error("a neighbour address is suspicious")
	}
	six := func(a string) risk.Signals { return risk.Signals{ClientIP: addr(a)} }
	for _, a := range []string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"} {
		if _, err := f.FailedTrip(ctx, six(a)); err != nil {
			t.Fatal(err)
		}
	}
	if v, _ := f.Assess(ctx, six("2001:db8:1:2::99")); !v.Suspicious {
		t.Error("three failures from one IPv6 /64 did not make it suspicious")
	}
	if v, _ := f.Assess(ctx, six("2001:db8:1:3::1")); v.Suspicious {
		t.Error("the next /64 is suspicious")
	}
	// The IPv4 address seen as IPv6 is the same client.
	if v, _ := f.Assess(ctx, six("::ffff:198.51.100.7")); !v.Suspicious {
		t.Error("::ffff:198.51.100.7 is not 198.51.100.7")
	}
	// An unknown address is not counted, and costs no round trip.
	if v, err := f.FailedTrip(ctx, risk.Signals{}); v.Suspicious || err != nil {
		t.Errorf("no address: %+v, %v", v, err)
	}
	// The window ends: the address is clean again.
	time.Sleep(350 * time.Millisecond)
	if v, _ := f.Assess(ctx, one); v.Suspicious {
		t.Error("still suspicious after the window")
	}
}

// The count names no address in clear in the store.
func TestFailedTripsKeysNameNoAddress(t *testing.T) {
	rec := &keys{Store: memstore.New()}
	f, _ := risk.NewFailedTrips(rec, "ns:", []byte("key"), 1, time.Minute)
	if _, err := f.FailedTrip(context.Background(), risk.Signals{ClientIP: addr("198.51.100.7")}); err != nil {
		t.Fatal(err)
	}
	if len(rec.seen) != 1 || !strings.HasPrefix(rec.seen[0], "ns:risk:ft:") || strings.Contains(rec.seen[0], "198.51.100") {
		t.Errorf("store keys %q", rec.seen)
	}
	g, _ := risk.NewFailedTrips(rec, "ns:", []byte("another key"), 1, time.Minute)
	if _, err := g.FailedTrip(context.Background(), risk.Signals{ClientIP: addr("198.51.100.7")}); err != nil {
		t.Fatal(err)
	}
	if rec.seen[0] == rec.seen[1] {
		t.Error("the key does not depend on the secret: an address's key can be computed by anyone")
	}
}

type keys struct {
	store.Store
	seen []string
}

func (k *keys) Incr(ctx context.Context, key string, ttl time.Duration) (int64, time.Duration, error) {
	k.seen = append(k.seen, key)
	return k.Store.Incr(ctx, key, ttl)
}

// All merges the verdicts; a rule that fails leaves the others' verdict
// and reports its error.
func TestAll(t *testing.T) {
	ctx := context.Background()
	kv := memstore.New()
	d, _ := risk.NewDenyNetworks([]string{"192.0.2.0/24"})
	f, _ := risk.NewFailedTrips(kv, "t:", []byte("k"), 1, time.Minute)
	all := risk.All{d, f, risk.NewWAFHeader("X-Suspicious", nil)}
	s := risk.Signals{ClientIP: addr("192.0.2.1"), Header: http.Header{"X-Suspicious": {"1"}}, ViaTrustedProxy: true}
	if v, err := all.Assess(ctx, s); err != nil || !slices.Equal(v.Reasons, []string{risk.ReasonDenyNetwork, risk.ReasonWAF}) {
		t.Fatalf("Assess = %+v, %v", v, err)
	}
	if v, err := all.FailedTrip(ctx, s); err != nil || !slices.Equal(v.Reasons, []string{risk.ReasonFailedTrips}) {
		t.Fatalf("FailedTrip = %+v, %v", v, err)
	}
	if v, _ := all.Assess(ctx, s); !slices.Equal(v.Reasons, []string{risk.ReasonDenyNetwork, risk.ReasonFailedTrips, risk.ReasonWAF}) {
		t.Fatalf("after the failure: %+v", v)
	}
	if v, err := all.Assess(ctx, risk.Signals{ClientIP: addr("203.0.113.1")}); err != nil || v.Suspicious || v.Reasons != nil {
		t.Errorf("a clean request: %+v, %v", v, err)
	}
	// The store down: the count is not read, the other rules still fire.
	_ = kv.Close()
	v, err := all.Assess(ctx, s)
	if !errors.Is(err, store.ErrUnavailable) || !slices.Equal(v.Reasons, []string{risk.ReasonDenyNetwork, risk.ReasonWAF}) {
		t.Errorf("store down: %+v, %v", v, err)
	}
	if v, err := (risk.All{d}).FailedTrip(ctx, s); err != nil || v.Suspicious {
		t.Errorf("FailedTrip with no counting rule: %+v, %v", v, err)
	}
}

func TestVerdictWith(t *testing.T) {
	v := risk.Fired("waf").With("waf", "", "deny_network")
	if !v.Suspicious || !slices.Equal(v.Reasons, []string{"waf", "deny_network"}) {
		t.Errorf("%+v", v)
	}
	if (risk.Verdict{}).With().Suspicious {
		t.Error("no reason, suspicious")
	}
}
