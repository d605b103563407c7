package light

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sesame-id/sesame/internal/store"
	"github.com/sesame-id/sesame/internal/store/memstore"
	"github.com/sesame-id/sesame/internal/store/redisstore"
	"github.com/sesame-id/sesame/internal/testredis"
)

// The cache runs on both stores: the memory one of `sesame dev` and a real
// redis-server, the store a bridge and a node share across replicas.
func TestCache(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		st := memstore.New()
		t.Cleanup(func() { _ = st.Close() })
		testCache(t, st)
	})
	t.Run("redis", func(t *testing.T) {
		srv := testredis.Start(t)
		st, err := redisstore.Open(redisstore.Config{URL: srv.URL()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		testCache(t, st)
	})
}

func testCache(t *testing.T, st store.Store) {
	ctx := context.Background()
	t.Run("request put, taken once", func(t *testing.T) {
		c := NewCache(st, CacheConnectorRequest, 0)
		r := sampleRequest()
		if err := c.PutRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := c.PutRequest(ctx, r); !errors.Is(err, ErrDuplicateID) {
			t.Errorf("second Put: %v, want ErrDuplicateID", err)
		}
		// Another cache does not see it: the name is part of the key.
		if _, err := NewCache(st, CacheProxyserviceRequest, 0).Take(ctx, r.ID); !errors.Is(err, ErrUnknownID) {
			t.Errorf("other cache: %v", err)
		}
		got, err := c.TakeRequest(ctx, r.ID)
		if err != nil || got.ID != r.ID || got.CitizenCountryCode != "BE" {
			t.Fatalf("TakeRequest: %+v, %v", got, err)
		}
		if _, err := c.TakeRequest(ctx, r.ID); !errors.Is(err, ErrUnknownID) {
			t.Errorf("replayed Take: %v, want ErrUnknownID", err)
		}
	})
	t.Run("response", func(t *testing.T) {
		c := NewCache(st, CacheConnectorResponse, 0)
		r := sampleResponse()
		if err := c.PutResponse(ctx, r); err != nil {
			t.Fatal(err)
		}
		got, err := c.TakeResponse(ctx, r.ID)
		if err != nil || got.Subject != r.Subject || got.Value(AttrCurrentFamilyName) != "Ødegård" {
			t.Fatalf("TakeResponse: %+v, %v", got, err)
		}
	})
	t.Run("bad ids", func(t *testing.T) {
		c := NewCache(st, CacheConnectorResponse, 0)
		if err := c.Put(ctx, "a|b", []byte("x")); err == nil {
			t.Error("Put accepted id a|b")
		}
		if _, err := c.Take(ctx, "a b"); !errors.Is(err, ErrUnknownID) {
			t.Errorf("Take(a b): %v", err)
		}
		if err := c.PutRequest(ctx, &Request{ID: NewID()}); !errors.Is(err, ErrMalformed) {
			t.Errorf("PutRequest of an invalid request: %v", err)
		}
	})
	t.Run("expires", func(t *testing.T) {
		c := NewCache(st, CacheProxyserviceResponse, 50*time.Millisecond)
		id := NewID()
		if err := c.Put(ctx, id, []byte("x")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		if _, err := c.Take(ctx, id); !errors.Is(err, ErrUnknownID) {
			t.Errorf("Take after TTL: %v", err)
		}
	})
	t.Run("concurrent takes: one wins", func(t *testing.T) {
		c := NewCache(st, CacheProxyserviceRequest, 0)
		id := NewID()
		if err := c.Put(ctx, id, []byte("x")); err != nil {
			t.Fatal(err)
		}
		var wins, unknown atomic.Int32
		var wg sync.WaitGroup
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := c.Take(ctx, id)
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, ErrUnknownID):
					unknown.Add(1)
				default:
					t.Errorf("Take: %v", err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 || unknown.Load() != 15 {
			t.Errorf("%d wins, %d unknown; want 1 and 15", wins.Load(), unknown.Load())
		}
	})
	t.Run("store down", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		c := NewCache(st, CacheConnectorRequest, 0)
		if _, err := c.Take(cctx, NewID()); err == nil || errors.Is(err, ErrUnknownID) {
			t.Errorf("Take on a cancelled context: %v (a store fault is not an unknown id)", err)
		}
	})
}
