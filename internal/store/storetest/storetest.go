// Package storetest is the conformance suite for store.Store implementations.
// Every implementation runs the same suite so that tests written against
// memstore tell the truth about Redis, and vice versa.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sesame-id/sesame/internal/store"
)

const (
	// shortTTL is long enough to survive a Put followed by a Get on a loaded
	// CI machine, yet keeps the expiry tests well under a second.
	shortTTL = 250 * time.Millisecond
	// expiryGrace is added to shortTTL before asserting expiry; Redis expires
	// with millisecond precision, so this only absorbs scheduler noise.
	expiryGrace = 150 * time.Millisecond
	longTTL     = time.Hour

	// Concurrency tests repeat the race several times: a non-atomic
	// implementation does not lose every single round, especially with few
	// CPUs.
	raceRounds = 10
	racers     = 100
	// contend's parameters: enough keys per batch for the walkers to fall
	// into step, and a budget that catches a broken in-memory store on two
	// CPUs nearly every run.
	contendKeys   = 2048
	contendBudget = 400 * time.Millisecond
	largeValLen   = 64 << 10
)

// runID keeps keys of different runs apart when the suite targets a shared,
// long-lived backend.
var runID = func() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}()

// Run runs the conformance suite. newStore is called once per subtest and must
// return a ready store; it is responsible for closing it (t.Cleanup), and
// must tolerate the suite closing it first. Stores may share a backend:
// every subtest uses its own keys.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store)
		// parallel subtests only sleep; running them together keeps the
		// suite fast without making the racing subtests noisier.
		parallel bool
	}{
		{"GetMissing", testGetMissing, false},
		{"PutGetRoundTrip", testPutGetRoundTrip, false},
		{"ValuesNotAliased", testValuesNotAliased, false},
		{"Overwrite", testOverwrite, false},
		{"TTLExpiry", testTTLExpiry, true},
		{"RejectsNonPositiveTTL", testRejectsNonPositiveTTL, false},
		{"Delete", testDelete, false},
		{"DeleteMissing", testDeleteMissing, false},
		{"Write", testWrite, true},
		{"Incr", testIncr, true},
		{"Take", testTake, false},
		{"Swap", testSwap, false},
		{"SwapConcurrent", testSwapConcurrent, false},
		{"GetMany", testGetMany, false},
		{"TakeConcurrent", testTakeConcurrent, false},
		{"Add", testAdd, true},
		{"AddConcurrent", testAddConcurrent, false},
		{"AddAll", testAddAll, true},
		{"LargeValue", testLargeValue, false},
		{"OddKeys", testOddKeys, false},
		{"CancelledContext", testCancelledContext, false},
		{"Closed", testClosed, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			if tc.parallel {
				t.Parallel()
			}
			tc.fn(t, s)
		})
	}
}

// key returns a key unique to the running subtest.
func key(t *testing.T, suffix string) string {
	return "storetest:" + runID + ":" + t.Name() + ":" + suffix
}

func mustPut(t *testing.T, s store.Store, k string, v []byte, ttl time.Duration) {
	t.Helper()
	if err := s.Put(context.Background(), k, v, ttl); err != nil {
		t.Fatalf("Put(%q): %v", k, err)
	}
}

// wantValue asserts that k currently holds want.
func wantValue(t *testing.T, s store.Store, k string, want []byte) {
	t.Helper()
	got, err := s.Get(context.Background(), k)
	if err != nil {
		t.Fatalf("Get(%q): %v, want %s", k, err, abbrev(want))
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %s, want %s", k, abbrev(got), abbrev(want))
	}
}

// wantMissing asserts that k is absent, via Get which must say ErrNotFound
// and nothing else.
func wantMissing(t *testing.T, s store.Store, k string) {
	t.Helper()
	got, err := s.Get(context.Background(), k)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(%q) = %s, %v; want ErrNotFound", k, abbrev(got), err)
	}
	if errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Get(%q) error %v wraps both ErrNotFound and ErrUnavailable", k, err)
	}
}

func abbrev(b []byte) string {
	if b == nil {
		return "<nil>"
	}
	if len(b) > 32 {
		return fmt.Sprintf("%q…(%d bytes)", b[:32], len(b))
	}
	return fmt.Sprintf("%q", b)
}

func testGetMissing(t *testing.T, s store.Store) {
	wantMissing(t, s, key(t, "never-written"))
}

func testPutGetRoundTrip(t *testing.T, s store.Store) {
	values := map[string][]byte{
		"text":   []byte("hello"),
		"binary": {0x00, 0x01, 0x00, 0xff, 0x00},
		"zeros":  make([]byte, 16),
		"crlf":   []byte("a\r\nb\r\n"),
		// An empty value must be found, not confused with a missing key.
		"empty": {},
	}
	for name, v := range values {
		mustPut(t, s, key(t, name), v, longTTL)
	}
	for name, v := range values {
		wantValue(t, s, key(t, name), v)
	}
}

func testValuesNotAliased(t *testing.T, s store.Store) {
	k := key(t, "k")
	buf := []byte("original")
	mustPut(t, s, k, buf, longTTL)
	copy(buf, "CLOBBER!")
	wantValue(t, s, k, []byte("original"))

	got, err := s.Get(context.Background(), k)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	copy(got, "CLOBBER!")
	wantValue(t, s, k, []byte("original"))
}

func testOverwrite(t *testing.T, s store.Store) {
	k := key(t, "k")
	mustPut(t, s, k, []byte("a much longer first value"), longTTL)
	mustPut(t, s, k, []byte("second"), longTTL)
	wantValue(t, s, k, []byte("second"))
}

func testTTLExpiry(t *testing.T, s store.Store) {
	short, long, extended, tiny := key(t, "short"), key(t, "long"), key(t, "extended"), key(t, "tiny")

	start := time.Now()
	mustPut(t, s, short, []byte("s"), shortTTL)
	// The server starts the TTL somewhere between start and now: a loaded
	// machine can take longer than the grace to answer the Put, so the
	// wait for expiry counts from the answer, not from the call.
	stored := time.Now()
	mustPut(t, s, long, []byte("l"), longTTL)
	// Overwriting replaces the TTL too, so sessions can be extended.
	mustPut(t, s, extended, []byte("e1"), shortTTL)
	mustPut(t, s, extended, []byte("e2"), longTTL)
	// Sub-millisecond TTLs are valid and must not be rejected by a backend
	// that counts in milliseconds.
	mustPut(t, s, tiny, []byte("t"), time.Microsecond)

	got, err := s.Get(context.Background(), short)
	if elapsed := time.Since(start); err != nil && elapsed < shortTTL {
		t.Fatalf("Get before expiry (%v after Put, ttl %v) = %v", elapsed, shortTTL, err)
	} else if err == nil && !bytes.Equal(got, []byte("s")) {
		t.Fatalf("Get before expiry = %s, want \"s\"", abbrev(got))
	}

	time.Sleep(time.Until(stored.Add(shortTTL + expiryGrace)))
	wantMissing(t, s, short)
	wantMissing(t, s, tiny)
	wantValue(t, s, long, []byte("l"))
	wantValue(t, s, extended, []byte("e2"))
	if v, err := s.Take(context.Background(), short); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Take(expired) = %s, %v; want ErrNotFound", abbrev(v), err)
	}
}

func testRejectsNonPositiveTTL(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, ttl := range []time.Duration{0, -time.Second} {
		k := key(t, ttl.String())
		err := s.Put(ctx, k, []byte("v"), ttl)
		if err == nil {
			t.Errorf("Put(ttl=%v) succeeded, want error", ttl)
		} else if errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrNotFound) {
			t.Errorf("Put(ttl=%v) = %v; a caller bug must not look like an outage or a miss", ttl, err)
		}
		ok, err := s.Add(ctx, k, []byte("v"), ttl)
		if err == nil || ok {
			t.Errorf("Add(ttl=%v) = %v, %v; want false, error", ttl, ok, err)
		}
		wantMissing(t, s, k)
	}
}

func testDelete(t *testing.T, s store.Store) {
	k, other := key(t, "k"), key(t, "other")
	mustPut(t, s, k, []byte("v"), longTTL)
	mustPut(t, s, other, []byte("o"), longTTL)
	if err := s.Delete(context.Background(), k); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantMissing(t, s, k)
	wantValue(t, s, other, []byte("o"))
}

func testDeleteMissing(t *testing.T, s store.Store) {
	if err := s.Delete(context.Background(), key(t, "never-written")); err != nil {
		t.Fatalf("Delete(missing) = %v, want nil", err)
	}
}

func testTake(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := key(t, "k")
	mustPut(t, s, k, []byte("code"), longTTL)

	got, err := s.Take(ctx, k)
	if err != nil || !bytes.Equal(got, []byte("code")) {
		t.Fatalf("first Take = %s, %v; want \"code\", nil", abbrev(got), err)
	}
	got, err = s.Take(ctx, k)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second Take = %s, %v; want ErrNotFound", abbrev(got), err)
	}
	wantMissing(t, s, k)

	if got, err := s.Take(ctx, key(t, "never-written")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Take(missing) = %s, %v; want ErrNotFound", abbrev(got), err)
	}
}

// race starts n goroutines that call fn(i) at the same instant and waits for
// them.
func race(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

func testTakeConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	for round := range raceRounds {
		k := key(t, fmt.Sprint(round))
		want := []byte(fmt.Sprintf("code-%d", round))
		mustPut(t, s, k, want, longTTL)

		var won, lost atomic.Int32
		race(racers, func(int) {
			got, err := s.Take(ctx, k)
			switch {
			case err == nil:
				won.Add(1)
				if !bytes.Equal(got, want) {
					t.Errorf("round %d: Take = %s, want %q", round, abbrev(got), want)
				}
			case errors.Is(err, store.ErrNotFound):
				lost.Add(1)
			default:
				t.Errorf("round %d: Take: %v", round, err)
			}
		})
		if won.Load() != 1 || lost.Load() != racers-1 {
			t.Fatalf("round %d: %d concurrent Takes: %d got the value, %d got ErrNotFound; want exactly 1 and %d",
				round, racers, won.Load(), lost.Load(), racers-1)
		}
		wantMissing(t, s, k)
	}

	// Goroutines released together mostly run one after the other, so an
	// in-process store whose Take is a Get followed by a Delete survives the
	// rounds above; see contend.
	contend(t, "Take", func(keys []string) {
		for _, k := range keys {
			mustPut(t, s, k, []byte("v"), longTTL)
		}
	}, func(k string) bool {
		_, err := s.Take(ctx, k)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Take(%q): %v", k, err)
		}
		return err == nil
	})
}

// contend catches atomicity bugs whose window is only nanoseconds wide, as
// in an in-memory store: a few goroutines, started together by a spin
// barrier, apply op to the same keys in the same order, so they keep
// colliding on each key. Batches repeat until some key is won more than once
// or contendBudget is spent. Over a network the window is wide and the first
// batch suffices; in memory a broken store typically fails within a few
// batches.
func contend(t *testing.T, opName string, prepare func(keys []string), op func(k string) (won bool)) {
	t.Helper()
	workers := min(max(2, runtime.GOMAXPROCS(0)), 8)
	start := time.Now()
	for batch := 0; batch == 0 || time.Since(start) < contendBudget; batch++ {
		keys := make([]string, contendKeys)
		for i := range keys {
			keys[i] = key(t, fmt.Sprintf("contend-%d-%d", batch, i))
		}
		prepare(keys)
		wins := make([]atomic.Int32, len(keys))
		var ready atomic.Int32
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				ready.Add(1)
				for ready.Load() < int32(workers) {
					runtime.Gosched()
				}
				for i, k := range keys {
					if op(k) {
						wins[i].Add(1)
					}
				}
			})
		}
		wg.Wait()
		for i := range wins {
			if n := wins[i].Load(); n != 1 {
				t.Fatalf("batch %d: %d goroutines walking the same keys: %s succeeded %d times on key %d, want exactly once",
					batch, workers, opName, n, i)
			}
		}
	}
}

func testAdd(t *testing.T, s store.Store) {
	ctx := context.Background()
	add := func(k, v string, ttl time.Duration, want bool) {
		t.Helper()
		ok, err := s.Add(ctx, k, []byte(v), ttl)
		if err != nil || ok != want {
			t.Fatalf("Add(%q, %q) = %v, %v; want %v, nil", k, v, ok, err, want)
		}
	}

	jti := key(t, "jti")
	start := time.Now()
	add(jti, "first", shortTTL, true)
	add(jti, "replay", shortTTL, false)
	if time.Since(start) < shortTTL {
		// A refused Add must leave the original value alone.
		wantValue(t, s, jti, []byte("first"))
	}

	put := key(t, "put")
	mustPut(t, s, put, []byte("p"), longTTL)
	add(put, "x", longTTL, false)
	wantValue(t, s, put, []byte("p"))

	del := key(t, "deleted")
	add(del, "1", longTTL, true)
	if err := s.Delete(ctx, del); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	add(del, "2", longTTL, true)

	taken := key(t, "taken")
	add(taken, "1", longTTL, true)
	if _, err := s.Take(ctx, taken); err != nil {
		t.Fatalf("Take: %v", err)
	}
	add(taken, "2", longTTL, true)

	time.Sleep(time.Until(start.Add(shortTTL + expiryGrace)))
	add(jti, "after-expiry", longTTL, true)
	wantValue(t, s, jti, []byte("after-expiry"))
}

func testAddConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	for round := range raceRounds {
		k := key(t, fmt.Sprint(round))
		var won, winner atomic.Int32
		race(racers, func(i int) {
			ok, err := s.Add(ctx, k, []byte(fmt.Sprint(i)), longTTL)
			if err != nil {
				t.Errorf("round %d: Add: %v", round, err)
				return
			}
			if ok {
				won.Add(1)
				winner.Store(int32(i))
			}
		})
		if n := won.Load(); n != 1 {
			t.Fatalf("round %d: %d concurrent Adds reported success %d times, want exactly once", round, racers, n)
		}
		// The stored value must be the winner's, not a later loser's.
		wantValue(t, s, k, []byte(fmt.Sprint(winner.Load())))
	}

	contend(t, "Add", func([]string) {}, func(k string) bool {
		ok, err := s.Add(ctx, k, []byte("v"), longTTL)
		if err != nil {
			t.Errorf("Add(%q): %v", k, err)
		}
		return ok
	})
}

func testLargeValue(t *testing.T, s store.Store) {
	ctx := context.Background()
	v := make([]byte, largeValLen)
	_, _ = rand.Read(v)
	k := key(t, "k")
	mustPut(t, s, k, v, longTTL)
	wantValue(t, s, k, v)
	got, err := s.Take(ctx, k)
	if err != nil || !bytes.Equal(got, v) {
		t.Fatalf("Take(large) = %s, %v; want the %d-byte value", abbrev(got), err, len(v))
	}
	k2 := key(t, "added")
	if ok, err := s.Add(ctx, k2, v, longTTL); !ok || err != nil {
		t.Fatalf("Add(large) = %v, %v", ok, err)
	}
	wantValue(t, s, k2, v)
}

func testOddKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	suffixes := []string{
		"{hashtag}",
		"{user:42}:session",
		"a{b}c{d}",
		"{}",
		"with space",
		"nul",
		"nul\x00byte",
		"\xff\xfe not utf-8",
		"crlf\r\n*1\r\n$4\r\nPING\r\n",
		"glob*?[a-z]",
		"unicode-clé-🔑",
		strings.Repeat("k", 1024),
	}
	keys := make([]string, len(suffixes))
	for i, sfx := range suffixes {
		keys[i] = key(t, sfx)
		mustPut(t, s, keys[i], []byte(fmt.Sprint("v", i)), longTTL)
	}
	// Reading back after all writes proves that no two keys collide.
	for i, k := range keys {
		wantValue(t, s, k, []byte(fmt.Sprint("v", i)))
	}
	for i, k := range keys {
		got, err := s.Take(ctx, k)
		if err != nil || string(got) != fmt.Sprint("v", i) {
			t.Fatalf("Take(%q) = %s, %v", k, abbrev(got), err)
		}
		if ok, err := s.Add(ctx, k, []byte("again"), longTTL); !ok || err != nil {
			t.Fatalf("Add(%q) after Take = %v, %v", k, ok, err)
		}
		if err := s.Delete(ctx, k); err != nil {
			t.Fatalf("Delete(%q): %v", k, err)
		}
		wantMissing(t, s, k)
	}
}

func testCancelledContext(t *testing.T, s store.Store) {
	k := key(t, "k")
	mustPut(t, s, k, []byte("v"), longTTL)
	absent := key(t, "absent")

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()

	for _, c := range []struct {
		ctx  context.Context
		want error
	}{{cancelled, context.Canceled}, {expired, context.DeadlineExceeded}} {
		check := func(op string, err error) {
			t.Helper()
			if !errors.Is(err, c.want) {
				t.Errorf("%s with done context = %v, want an error wrapping %v", op, err, c.want)
			}
			// The caller gave up; blaming the backend would page someone
			// every time a browser disconnects.
			if errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s with done context = %v; must not wrap ErrUnavailable or ErrNotFound", op, err)
			}
		}
		_, err := s.Get(c.ctx, k)
		check("Get", err)
		check("Put", s.Put(c.ctx, absent, []byte("v"), longTTL))
		ok, err := s.Add(c.ctx, absent, []byte("v"), longTTL)
		check("Add", err)
		if ok {
			t.Errorf("Add with done context reported success")
		}
		check("Delete", s.Delete(c.ctx, k))
		_, err = s.Take(c.ctx, k)
		check("Take", err)
	}
	// A request that was already abandoned must not consume one-time values
	// or write anything.
	wantValue(t, s, k, []byte("v"))
	wantMissing(t, s, absent)
}

func testClosed(t *testing.T, s store.Store) {
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil (Close is idempotent)", err)
	}
	ctx := context.Background()
	k := key(t, "k")
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s after Close = %v, want an error wrapping ErrUnavailable", op, err)
		}
	}
	_, err := s.Get(ctx, k)
	check("Get", err)
	check("Put", s.Put(ctx, k, []byte("v"), longTTL))
	_, err = s.Add(ctx, k, []byte("v"), longTTL)
	check("Add", err)
	check("Delete", s.Delete(ctx, k))
	_, err = s.Take(ctx, k)
	check("Take", err)
}

// testWrite checks a batch of puts and deletes: every put lands with its
// own TTL, deletes apply (also to keys put earlier), and a put without a
// TTL refuses the whole batch.
func testWrite(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.Put(ctx, "w:old", []byte("old"), time.Minute); err != nil {
		t.Fatal(err)
	}
	err := s.Write(ctx, []store.Entry{
		{Key: "w:a", Value: []byte("a"), TTL: time.Minute},
		{Key: "w:short", Value: []byte("s"), TTL: 300 * time.Millisecond},
	}, "w:old", "w:absent")
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if v, err := s.Get(ctx, "w:a"); err != nil || string(v) != "a" {
		t.Fatalf("w:a = %q, %v", v, err)
	}
	if _, err := s.Get(ctx, "w:old"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted key still there: %v", err)
	}
	time.Sleep(600 * time.Millisecond)
	if _, err := s.Get(ctx, "w:short"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a batched put kept no TTL: %v", err)
	}
	if err := s.Write(ctx, []store.Entry{{Key: "w:b", Value: []byte("b"), TTL: time.Minute}, {Key: "w:nottl", Value: []byte("x")}}); err == nil {
		t.Fatal("a put without TTL was accepted")
	}
	if _, err := s.Get(ctx, "w:b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("a refused batch was partly applied")
	}
}

// testIncr checks a fixed-window counter: it counts from 1, a later
// increment keeps the first TTL, and after it the count starts again.
// Margins are 400 ms either side, so a loaded machine does not flake it.
func testIncr(t *testing.T, s store.Store) {
	ctx := context.Background()
	const window = time.Second
	if n, left, err := s.Incr(ctx, "incr:k", window); err != nil || n != 1 || left <= window-400*time.Millisecond || left > window {
		t.Fatalf("first Incr = %d, %v left, %v; want 1, about %v left", n, left, err, window)
	}
	time.Sleep(600 * time.Millisecond)
	// The window left is what a Retry-After says: the first TTL's
	// remainder, not a fresh window.
	if n, left, err := s.Incr(ctx, "incr:k", window); err != nil || n != 2 || left <= 0 || left > window-200*time.Millisecond {
		t.Fatalf("second Incr = %d, %v left, %v; want 2, under %v left", n, left, err, window-200*time.Millisecond)
	}
	// At 1.2 s a fixed window (ending at 1 s) is over; a TTL renewed by
	// the second increment would run to 1.6 s.
	time.Sleep(600 * time.Millisecond)
	if n, _, err := s.Incr(ctx, "incr:k", window); err != nil || n != 1 {
		t.Fatalf("after the window Incr = %d, %v; want 1", n, err)
	}
	if _, _, err := s.Incr(ctx, "incr:nottl", 0); err == nil {
		t.Fatal("Incr without TTL accepted")
	}
}

// testSwap checks compare-and-set: it writes only over the expected value
// (or over nothing, with prev nil), and applies its puts and deletes
// whatever the outcome.
func testSwap(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := key(t, "k")
	swap := func(prev []byte, v string, want bool, puts []store.Entry, deletes ...string) {
		t.Helper()
		ok, err := s.Swap(ctx, prev, store.Entry{Key: k, Value: []byte(v), TTL: longTTL}, puts, deletes...)
		if err != nil || ok != want {
			t.Fatalf("Swap(%q → %q) = %v, %v; want %v", prev, v, ok, err, want)
		}
	}
	swap(nil, "one", true, nil)
	wantValue(t, s, k, []byte("one"))
	swap(nil, "again", false, nil)
	wantValue(t, s, k, []byte("one"))
	swap([]byte("other"), "two", false, nil)
	wantValue(t, s, k, []byte("one"))
	// A lost swap still writes its records and deletes.
	rec, gone := key(t, "rec"), key(t, "gone")
	mustPut(t, s, gone, []byte("x"), longTTL)
	swap([]byte("other"), "two", false, []store.Entry{{Key: rec, Value: []byte("r"), TTL: longTTL}}, gone)
	wantValue(t, s, rec, []byte("r"))
	wantMissing(t, s, gone)
	swap([]byte("one"), "two", true, nil)
	wantValue(t, s, k, []byte("two"))
	// Binary values compare byte for byte.
	swap([]byte("two\x00tail"), "three", false, nil)
	swap([]byte("two"), "bin\x00\xff", true, nil)
	swap([]byte("bin\x00\xff"), "four", true, nil)
	// A value that has gone does not match any prev, but matches absent.
	if err := s.Delete(ctx, k); err != nil {
		t.Fatal(err)
	}
	swap([]byte("four"), "five", false, nil)
	wantMissing(t, s, k)
	swap(nil, "six", true, nil)
	// The TTL applies to what is written.
	short := key(t, "short")
	if ok, err := s.Swap(ctx, nil, store.Entry{Key: short, Value: []byte("s"), TTL: shortTTL}, nil); err != nil || !ok {
		t.Fatalf("Swap short = %v, %v", ok, err)
	}
	time.Sleep(shortTTL + expiryGrace)
	wantMissing(t, s, short)
	if _, err := s.Swap(ctx, nil, store.Entry{Key: key(t, "nottl"), Value: []byte("x")}, nil); err == nil {
		t.Fatal("Swap without TTL accepted")
	}
}

// testSwapConcurrent: of many Swaps from one value, exactly one wins.
func testSwapConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	for round := range raceRounds {
		k := key(t, fmt.Sprint(round))
		mustPut(t, s, k, []byte("start"), longTTL)
		var won, winner atomic.Int32
		race(racers, func(i int) {
			ok, err := s.Swap(ctx, []byte("start"), store.Entry{Key: k, Value: []byte(fmt.Sprint(i)), TTL: longTTL}, nil)
			if err != nil {
				t.Errorf("round %d: Swap: %v", round, err)
				return
			}
			if ok {
				won.Add(1)
				winner.Store(int32(i))
			}
		})
		if n := won.Load(); n != 1 {
			t.Fatalf("round %d: %d concurrent Swaps won %d times, want exactly once", round, racers, n)
		}
		wantValue(t, s, k, []byte(fmt.Sprint(winner.Load())))
	}
	contend(t, "Swap", func(keys []string) {
		for _, k := range keys {
			mustPut(t, s, k, []byte("start"), longTTL)
		}
	}, func(k string) bool {
		ok, err := s.Swap(ctx, []byte("start"), store.Entry{Key: k, Value: []byte("next"), TTL: longTTL}, nil)
		if err != nil {
			t.Errorf("Swap(%q): %v", k, err)
		}
		return ok
	})
}

// testGetMany reads several keys at once, nil for the absent ones.
func testGetMany(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, b, missing := key(t, "a"), key(t, "b"), key(t, "missing")
	mustPut(t, s, a, []byte("A"), longTTL)
	mustPut(t, s, b, []byte{}, longTTL)
	got, err := s.GetMany(ctx, a, missing, b)
	if err != nil {
		t.Fatalf("GetMany: %v", err)
	}
	if len(got) != 3 || string(got[0]) != "A" || got[1] != nil || got[2] == nil || len(got[2]) != 0 {
		t.Fatalf("GetMany = %q, want [A <nil> \"\"]", got)
	}
	if got, err := s.GetMany(ctx, missing); err != nil || len(got) != 1 || got[0] != nil {
		t.Fatalf("GetMany(missing) = %q, %v", got, err)
	}
}

// testAddAll: several SET NX in one call, each reported, each with its
// TTL; of concurrent AddAlls over the same keys each key is won once.
func testAddAll(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, b, taken := key(t, "a"), key(t, "b"), key(t, "taken")
	mustPut(t, s, taken, []byte("first"), longTTL)
	got, err := s.AddAll(ctx, []store.Entry{{Key: a, Value: []byte("A"), TTL: shortTTL}, {Key: taken, Value: []byte("x"), TTL: longTTL}, {Key: b, Value: []byte("B"), TTL: longTTL}})
	if err != nil || len(got) != 3 || !got[0] || got[1] || !got[2] {
		t.Fatalf("AddAll = %v, %v; want [true false true]", got, err)
	}
	wantValue(t, s, taken, []byte("first"))
	wantValue(t, s, b, []byte("B"))
	if got, err := s.AddAll(ctx, []store.Entry{{Key: a, Value: []byte("again"), TTL: longTTL}}); err != nil || got[0] {
		t.Fatalf("AddAll over a live key = %v, %v", got, err)
	}
	time.Sleep(shortTTL + expiryGrace)
	if got, err := s.AddAll(ctx, []store.Entry{{Key: a, Value: []byte("later"), TTL: longTTL}}); err != nil || !got[0] {
		t.Fatalf("AddAll after expiry = %v, %v", got, err)
	}
	if _, err := s.AddAll(ctx, []store.Entry{{Key: key(t, "nottl"), Value: []byte("x")}}); err == nil {
		t.Fatal("AddAll without TTL accepted")
	}
	contend(t, "AddAll", func([]string) {}, func(k string) bool {
		got, err := s.AddAll(ctx, []store.Entry{{Key: k, Value: []byte("v"), TTL: longTTL}, {Key: k + ":other", Value: []byte("v"), TTL: longTTL}})
		if err != nil {
			t.Errorf("AddAll(%q): %v", k, err)
			return false
		}
		return got[0]
	})
}
