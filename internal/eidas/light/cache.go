package light

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sesame-id/sesame/internal/store"
)

// The EC eIDAS-Node's four caches (its Ignite cache names). The first word
// says who writes: "specificNode..." is written by the specific part (the
// bridge) for the node, "nodeSpecific..." by the node for the specific
// part.
const (
	// CacheConnectorRequest holds the bridge's LightRequests (foreign
	// citizen → French SP).
	CacheConnectorRequest = "specificNodeConnectorRequestCache"
	// CacheConnectorResponse holds the node's LightResponses to them.
	CacheConnectorResponse = "nodeSpecificConnectorResponseCache"
	// CacheProxyserviceRequest holds the node's LightRequests from
	// foreign SPs (French citizen → foreign SP).
	CacheProxyserviceRequest = "nodeSpecificProxyserviceRequestCache"
	// CacheProxyserviceResponse holds the bridge's LightResponses to them.
	CacheProxyserviceResponse = "specificNodeProxyserviceResponseCache"
)

// DefaultCacheTTL is how long a message waits to be taken. It is taken a
// second after it is put (one auto-submitted form), so this only bounds
// what an abandoned browser leaves behind.
const DefaultCacheTTL = 5 * time.Minute

// ErrUnknownID is returned by Take for an id that is not (or no longer)
// in the cache: never put, expired, or already taken once.
var ErrUnknownID = errors.New("light: no message under this id (unknown, expired or already used)")

// ErrDuplicateID is returned by Put when the id is already in the cache;
// a message is never overwritten.
var ErrDuplicateID = errors.New("light: a message with this id is already waiting")

// Cache is one of the four caches over a store.Store: Redis (shared with
// the node's side) or the memory store in development. Messages are keyed
// by cache name and id and taken once with the store's atomic Take, so a
// message is consumed once across replicas.
//
// A real EC node keeps these caches in Apache Ignite; talking to it needs
// a store.Store over the Ignite thin client (see docs/eidas.md).
type Cache struct {
	st   store.Store
	name string
	ttl  time.Duration
}

// NewCache returns the cache name over st; ttl <= 0 means DefaultCacheTTL.
func NewCache(st store.Store, name string, ttl time.Duration) *Cache {
	if ttl <= 0 {
		ttl = DefaultCacheTTL
	}
	return &Cache{st: st, name: name, ttl: ttl}
}

// Name returns the cache's name.
func (c *Cache) Name() string { return c.name }

func (c *Cache) key(id string) string { return "eidas:" + c.name + ":" + id }

// Put stores a marshalled message under id for the cache's TTL, refusing
// an id already waiting (ErrDuplicateID).
func (c *Cache) Put(ctx context.Context, id string, msg []byte) error {
	if err := ValidID(id); err != nil {
		return fmt.Errorf("light: %s: id: %v", c.name, err)
	}
	ok, err := c.st.Add(ctx, c.key(id), msg, c.ttl)
	if err != nil {
		return fmt.Errorf("light: %s: put: %w", c.name, err)
	}
	if !ok {
		return fmt.Errorf("light: %s: %w", c.name, ErrDuplicateID)
	}
	return nil
}

// Take returns the message under id and removes it atomically: of two
// concurrent Takes one gets it, the other ErrUnknownID.
func (c *Cache) Take(ctx context.Context, id string) ([]byte, error) {
	if err := ValidID(id); err != nil {
		return nil, fmt.Errorf("light: %s: id: %v: %w", c.name, err, ErrUnknownID)
	}
	b, err := c.st.Take(ctx, c.key(id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("light: %s: %w", c.name, ErrUnknownID)
	}
	if err != nil {
		return nil, fmt.Errorf("light: %s: take: %w", c.name, err)
	}
	return b, nil
}

// PutRequest marshals r and puts it under r.ID.
func (c *Cache) PutRequest(ctx context.Context, r *Request) error {
	b, err := MarshalRequest(r)
	if err != nil {
		return err
	}
	return c.Put(ctx, r.ID, b)
}

// TakeRequest takes and parses the LightRequest under id. A message that
// does not parse is gone all the same (single use).
func (c *Cache) TakeRequest(ctx context.Context, id string) (*Request, error) {
	b, err := c.Take(ctx, id)
	if err != nil {
		return nil, err
	}
	return ParseRequest(b)
}

// PutResponse marshals r and puts it under r.ID.
func (c *Cache) PutResponse(ctx context.Context, r *Response) error {
	b, err := MarshalResponse(r)
	if err != nil {
		return err
	}
	return c.Put(ctx, r.ID, b)
}

// TakeResponse takes and parses the LightResponse under id.
func (c *Cache) TakeResponse(ctx context.Context, id string) (*Response, error) {
	b, err := c.Take(ctx, id)
	if err != nil {
		return nil, err
	}
	return ParseResponse(b)
}
