package broker_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/sesame-id/sesame/broker"
	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/store"
	"github.com/sesame-id/sesame/internal/testredis"
)

// counting counts store calls: each is one round trip to Redis (Write is
// one pipeline).
type counting struct {
	store.Store
	n atomic.Int32
	// w counts the calls that write (each one round trip, a pipeline
	// or a script for the compound ones).
	w atomic.Int32
}

func (c *counting) Get(ctx context.Context, k string) ([]byte, error) {
	c.n.Add(1)
	return c.Store.Get(ctx, k)
}

func (c *counting) Put(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	c.n.Add(1)
	c.w.Add(1)
	return c.Store.Put(ctx, k, v, ttl)
}

func (c *counting) Add(ctx context.Context, k string, v []byte, ttl time.Duration) (bool, error) {
	c.n.Add(1)
	c.w.Add(1)
	return c.Store.Add(ctx, k, v, ttl)
}

func (c *counting) Delete(ctx context.Context, k string) error {
	c.n.Add(1)
	c.w.Add(1)
	return c.Store.Delete(ctx, k)
}

func (c *counting) Take(ctx context.Context, k string) ([]byte, error) {
	c.n.Add(1)
	c.w.Add(1)
	return c.Store.Take(ctx, k)
}

func (c *counting) Incr(ctx context.Context, k string, ttl time.Duration) (int64, time.Duration, error) {
	c.n.Add(1)
	c.w.Add(1)
	return c.Store.Incr(ctx, k, ttl)
}

func (c *counting) Write(ctx context.Context, puts []store.Entry, deletes ...string) error {
	c.n.Add(1)
	c.w.Add(1)
	return c.Store.Write(ctx, puts, deletes...)
}

// loginCommands is N, the Redis commands of a whole standard login
// (authorize to userinfo) on one broker, as Redis counts them (INFO
// commandstats, which counts the GET and SET inside each compare-and-set
// script too): GET 8, SET 8, DEL 2, GETDEL 1, EVAL 3 today (the session
// at the choice and at the consent, the code at the token step). A
// change that adds one fails TestRedisBudget; one that saves some
// lowers it.
const loginCommands = 22

// TestRedisBudget holds the design's budget: at most 2 Redis round trips
// per HTTP step of a login, the writes of each step (one, but at the
// callback: see docs/performance.md), N Redis commands
// for the whole login, and at most 2 KB per stored session.
func TestRedisBudget(t *testing.T) {
	r := testredis.Start(t)
	s := teststack.New(t, func(c *config.Config) { c.Broker.Redis.URL = r.URL() })
	// A replica of the stack's broker, on the same Redis, whose store
	// calls are counted; the IdPs send their callbacks to the stack's
	// issuer, so the test redirects them here.
	kv := &counting{}
	b, err := broker.New(s.Config.Broker, slog.New(slog.NewTextHandler(io.Discard, nil)),
		broker.WithStoreWrapper(func(st store.Store) store.Store { kv.Store = st; return kv }))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	srv := httptest.NewServer(b.Platforms[0])
	defer srv.Close()
	here := func(u string) string { return strings.Replace(u, s.BrokerURL, srv.URL, 1) }

	// writeBudget is each step's writes: one at most, but at the callback
	// (the session taken before the IdP is called, so that a replayed
	// callback fails, then the rotated session written).
	writeBudget := map[string]int32{"callback": 2}
	step := func(name string, budget int32) {
		t.Helper()
		got, writes := kv.n.Swap(0), kv.w.Swap(0)
		if got > budget {
			t.Errorf("%s made %d store round trips, budget %d", name, got, budget)
		}
		wb, ok := writeBudget[name]
		if !ok {
			wb = 1
		}
		if writes > wb {
			t.Errorf("%s made %d writes, budget %d", name, writes, wb)
		}
		t.Logf("%s: %d store round trips, %d writes", name, got, writes)
	}
	opt, _ := redis.ParseURL(r.URL())
	c := redis.NewClient(opt)
	defer c.Close()
	before := commandCalls(t, c)
	br := s.Browser
	// The request waits in a sealed cookie: nothing stored until the
	// choice, which creates the session in one compare-and-set.
	teststack.Get(t, br, srv.URL+"/authorize?"+teststack.AuthParams().Encode())
	step("authorize", 0)
	_, page := teststack.Get(t, br, srv.URL+"/authorize/choose")
	step("chooser", 0)
	resp, _ := teststack.Post(t, br, srv.URL+"/authorize/choose", url.Values{"csrf": {teststack.Field(t, teststack.CSRFRE, page)}, "idp": {"impots"}})
	step("choose", 1)
	idpAuth := resp.Header.Get("Location")
	_, idpPage := teststack.Get(t, br, idpAuth)
	resp, _ = teststack.Post(t, br, strings.Split(idpAuth, "?")[0], url.Values{"tx": {teststack.Field(t, teststack.TxRE, idpPage)}, "identity": {"angela-dubois"}, "action": {"login"}})
	kv.n.Store(0)
	teststack.Get(t, br, here(resp.Header.Get("Location")))
	step("callback", 2)

	keys, err := c.Keys(context.Background(), "*:sess").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("sessions in Redis: %v %v", keys, err)
	}
	size, _ := c.StrLen(context.Background(), keys[0]).Result()
	t.Logf("session after the callback: %d bytes", size)
	if size > 2048 {
		t.Errorf("a live session takes %d bytes, budget 2048", size)
	}

	kv.n.Store(0)
	_, page = teststack.Get(t, br, srv.URL+"/authorize/consent")
	step("information page", 1)
	resp, _ = teststack.Post(t, br, srv.URL+"/authorize/consent", url.Values{"csrf": {teststack.Field(t, teststack.CSRFRE, page)}})
	step("consent", 2)
	u, _ := url.Parse(resp.Header.Get("Location"))
	form := url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {teststack.SPRedirect}}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(teststack.SPID, teststack.SPSecret)
	tr, err := http.DefaultClient.Do(req)
	if err != nil || tr.StatusCode != http.StatusOK {
		t.Fatalf("token: %v %v", err, tr)
	}
	var out struct {
		AccessToken string `json:"access_token"`
		IDToken     string `json:"id_token"`
	}
	_ = json.NewDecoder(tr.Body).Decode(&out)
	tr.Body.Close()
	step("token", 2)
	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+out.AccessToken)
	if ur, err := http.DefaultClient.Do(req); err != nil || ur.StatusCode != http.StatusOK {
		t.Fatalf("userinfo: %v %v", err, ur)
	} else {
		ur.Body.Close()
	}
	// The token and its session's revocation marker, in one read.
	step("userinfo", 1)
	// The KEYS and STRLEN above are the test's own; HELLO, CLIENT,
	// SELECT and AUTH open the pool's connections, which a broker under
	// load keeps.
	after := commandCalls(t, c)
	total, by := int64(0), map[string]int64{}
	for name, n := range after {
		switch name {
		case "keys", "strlen", "hello", "client|setinfo", "client", "select", "auth":
			continue
		}
		if d := n - before[name]; d > 0 {
			by[name] = d
			total += d
		}
	}
	if total > loginCommands {
		t.Errorf("a login took %d Redis commands %v, N is %d", total, by, loginCommands)
	}
	t.Logf("login: %d Redis commands %v (N = %d)", total, by, loginCommands)
	end := url.Values{"id_token_hint": {out.IDToken}}
	teststack.Get(t, br, srv.URL+"/session/end?"+end.Encode())
	// Load, then the deletion with the revocation markers and the
	// IdP logout record in one pipeline.
	step("logout", 2)
}

func (c *counting) Swap(ctx context.Context, prev []byte, next store.Entry, puts []store.Entry, deletes ...string) (bool, error) {
	c.n.Add(1)
	c.w.Add(1)
	return c.Store.Swap(ctx, prev, next, puts, deletes...)
}

func (c *counting) GetMany(ctx context.Context, keys ...string) ([][]byte, error) {
	c.n.Add(1)
	return c.Store.GetMany(ctx, keys...)
}

// TestRedisBudgetPlus measures a "+" login with its FAPI 2.0 profile.
// The single-use jtis of a request (the client assertion's, the DPoP
// proof's) are stored in one pipeline of SET NX before it may proceed;
// the token step still goes one over the design's 2 round trips (those
// markers, the code's take, the token's write). The budgets are today's
// figures, so that a regression fails.
func TestRedisBudgetPlus(t *testing.T) {
	r := testredis.Start(t)
	k, err := plusKeysOnce()
	if err != nil {
		t.Fatal(err)
	}
	kv := &counting{}
	s := teststack.NewWrapped(t, func(st store.Store) store.Store { kv.Store = st; return kv },
		teststack.Plus(k.jwks), teststack.FAPI(), teststack.RedisURL(r.URL()))
	c := &fapiClient{rig: &rig{Stack: s, keys: k}, key: newDPoPKey(t), verifier: oauth2.GenerateVerifier()}
	step := func(name string, budget int32) {
		t.Helper()
		got, writes := kv.n.Swap(0), kv.w.Swap(0)
		if got > budget {
			t.Errorf("%s made %d store round trips, budget %d", name, got, budget)
		}
		t.Logf("+ %s: %d store round trips, %d writes", name, got, writes)
	}
	kv.n.Store(0)
	uri := c.push(t, c.pushParams(), c.key)
	step("PAR", 2)
	idpAuth := c.authorizeAndChoose(t, uri)
	step("authorize (request_uri) + chooser + choose", 2)
	cb := c.IdPLogin(t, idpAuth, "angela-dubois", nil)
	kv.n.Store(0)
	resp, _ := teststack.Get(t, c.Browser, teststack.Abs(c.BrokerURL, cb))
	step("callback", 2)
	_, page := teststack.Get(t, c.Browser, teststack.Abs(c.BrokerURL, resp.Header.Get("Location")))
	kv.n.Store(0)
	resp, _ = teststack.Post(t, c.Browser, c.BrokerURL+"/authorize/consent", url.Values{"csrf": {teststack.Field(t, teststack.CSRFRE, page)}})
	step("consent", 2)
	u, _ := url.Parse(resp.Header.Get("Location"))
	status, out := c.redeemDPoP(t, u.Query().Get("code"), c.key)
	if status != http.StatusOK {
		t.Fatalf("token: %d %v", status, out)
	}
	step("token", 3)
	at := out["access_token"].(string)
	if st, ch := c.userinfoWith(t, "DPoP "+at, c.proof(t, c.key, http.MethodGet, "/userinfo", at)); st != http.StatusOK {
		t.Fatalf("userinfo: %d %s", st, ch)
	}
	step("userinfo", 2)
}

// Introspection reads the token and its session's revocation marker in
// one round trip, whatever the answer's form.
func TestRedisBudgetIntrospection(t *testing.T) {
	r := testredis.Start(t)
	kv := &counting{}
	s := teststack.NewWrapped(t, func(st store.Store) store.Store { kv.Store = st; return kv },
		withData(func(dp *config.DataProvider) { dp.IntrospectionEncryptedResponseAlg = "ECDH-ES" }), teststack.RedisURL(r.URL()))
	at := dataLogin(t, s, "impots")["access_token"].(string)
	for _, name := range []string{"active (signed and encrypted)", "again"} {
		kv.n.Store(0)
		if st, _, _ := introspect(t, s, at, http.Header{"Accept": {"application/token-introspection+jwt"}}); st != http.StatusOK {
			t.Fatalf("introspect: %d", st)
		}
		if n := kv.n.Load(); n != 1 {
			t.Errorf("introspection %s made %d store round trips, want 1", name, n)
		}
		t.Logf("introspection %s: %d store round trip", name, kv.n.Load())
	}
}

func (c *counting) AddAll(ctx context.Context, entries []store.Entry) ([]bool, error) {
	c.n.Add(1)
	c.w.Add(1)
	return c.Store.AddAll(ctx, entries)
}

// commandCalls reads INFO commandstats: calls by command, the INFO
// commands (the test's own) left out.
func commandCalls(t *testing.T, c *redis.Client) map[string]int64 {
	t.Helper()
	raw, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatalf("INFO commandstats: %v", err)
	}
	calls := map[string]int64{}
	for _, line := range strings.Split(raw, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, isCmd := strings.CutPrefix(k, "cmdstat_")
		if !ok || !isCmd || name == "info" {
			continue
		}
		n, _, _ := strings.Cut(strings.TrimPrefix(v, "calls="), ",")
		calls[name], err = strconv.ParseInt(n, 10, 64)
		if err != nil {
			t.Fatalf("INFO commandstats %q: %v", line, err)
		}
	}
	return calls
}
