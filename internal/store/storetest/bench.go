package storetest

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sesame-id/sesame/internal/store"
)

// Bench measures the operations one login step makes (a sealed session of
// about 1 KB): Put, Get, and the Put+Take pair of a one-time code. Parallel,
// so the Redis figures include connection-pool behaviour.
func Bench(b *testing.B, s store.Store) {
	ctx := context.Background()
	value := make([]byte, 1024)
	b.Run("Put", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i++
				if err := s.Put(ctx, "bench:put:"+strconv.Itoa(i%1000), value, time.Minute); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	if err := s.Put(ctx, "bench:get", value, time.Minute); err != nil {
		b.Fatal(err)
	}
	b.Run("Get", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Get(ctx, "bench:get"); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("PutTake", func(b *testing.B) {
		var n int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				k := "bench:code:" + strconv.FormatInt(atomic.AddInt64(&n, 1), 36)
				if err := s.Put(ctx, k, value, 30*time.Second); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Take(ctx, k); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
