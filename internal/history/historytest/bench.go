package historytest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sesame-id/sesame/internal/history"
)

// Bench measures what a login and a visit of the citizen space cost the
// store: Append of a batch of 100 entries (the broker's default batch, so
// a login costs about a hundredth of it), and List of a 20-row page (the
// default page) of an account with 1000 rows among 20000, first page and
// a later one. s must be on an empty database.
func Bench(b *testing.B, s history.Store) {
	ctx := context.Background()
	batch := func(n int, at time.Time) []history.Entry {
		out := make([]history.Entry, 100)
		for i := range out {
			out[i] = conn(fmt.Sprintf("acc-%d", (n*100+i)%20), time.Duration(i)*time.Millisecond, fmt.Sprintf("C-%d-%d", n, i))
			out[i].Time = at.Add(time.Duration(i) * time.Millisecond)
		}
		return out
	}
	// 200 batches of 100 over 20 accounts: 1000 rows each.
	for n := range 200 {
		if err := s.Append(ctx, batch(n, base.Add(time.Duration(n)*time.Second))); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("Append100", func(b *testing.B) {
		n := 1000
		for b.Loop() {
			n++
			if err := s.Append(ctx, batch(n, base.Add(time.Duration(n)*time.Second))); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100/1e3, "µs/entry")
	})
	first, err := s.List(ctx, history.Query{Account: "acc-7", Limit: 20})
	if err != nil || len(first.Entries) != 20 {
		b.Fatalf("List: %d entries, %v", len(first.Entries), err)
	}
	b.Run("List20", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.List(ctx, history.Query{Account: "acc-7", Limit: 20}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("List20Next", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.List(ctx, history.Query{Account: "acc-7", Limit: 20, After: first.Next}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ListParallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.List(ctx, history.Query{Account: "acc-7", Limit: 20}); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
