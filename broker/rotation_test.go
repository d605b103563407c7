package broker_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

	"github.com/sesame-id/sesame/broker"
	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/keys"
	"github.com/sesame-id/sesame/internal/testredis"
)

// strictKeySet is the least forgiving SP: it fetches /jwks, keeps the
// answer exactly as long as its Cache-Control max-age says, and never
// fetches again on an unknown kid (go-oidc's RemoteKeySet does, which
// would hide a key that signs before SPs could know it). A token whose kid
// it lacks fails: that is what a next key published too late costs.
type strictKeySet struct {
	url     string
	mu      sync.Mutex
	set     jose.JSONWebKeySet
	expires time.Time
}

var maxAgeRE = regexp.MustCompile(`max-age=(\d+)`)

func (k *strictKeySet) keys(ctx context.Context) (jose.JSONWebKeySet, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if time.Now().Before(k.expires) {
		return k.set, nil
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	defer resp.Body.Close()
	m := maxAgeRE.FindStringSubmatch(resp.Header.Get("Cache-Control"))
	if resp.StatusCode != http.StatusOK || m == nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("jwks: %d, Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return jose.JSONWebKeySet{}, err
	}
	age, _ := strconv.Atoi(m[1])
	k.set, k.expires = set, time.Now().Add(time.Duration(age)*time.Second)
	return set, nil
}

// VerifySignature implements oidc.KeySet.
func (k *strictKeySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		return nil, err
	}
	set, err := k.keys(ctx)
	if err != nil {
		return nil, err
	}
	kid := jws.Signatures[0].Header.KeyID
	found := set.Key(kid)
	if len(found) == 0 {
		return nil, fmt.Errorf("kid %s is not in the cached /jwks of %s", kid, k.url)
	}
	return jws.Verify(found[0])
}

// loadClient is one browser and SP of the load: a full login through the
// broker replicas, then the SP's checks of the id_token.
type loadClient struct {
	issuer    string
	replicas  []string
	verifiers map[string][]*oidc.IDTokenVerifier // by client_id: every SP-side verifier
}

// issued is what one login gave: the kid and alg of its id_token.
type issued struct {
	kid, alg string
	at       time.Time
}

// login runs a whole login for clientID, the steps alternating between
// replicas as behind a load balancer (the IdP's callback goes to the
// issuer's address), and verifies the id_token with every verifier.
func (lc *loadClient) login(ctx context.Context, n int, clientID string) (issued, error) {
	front, back := lc.replicas[n%2], lc.replicas[(n+1)%2]
	b := teststack.NewBrowser()
	b.Timeout = 10 * time.Second
	nonce := randomString()
	p := teststack.AuthParams()
	p.Set("client_id", clientID)
	p.Set("nonce", nonce)
	p.Set("state", randomString())
	resp, _, err := fetch(b, http.MethodGet, front+"/authorize?"+p.Encode(), nil)
	if err != nil || resp.Header.Get("Location") != "/authorize/choose" {
		return issued{}, fmt.Errorf("authorize on %s: %v %v", front, status(resp), err)
	}
	_, page, err := fetch(b, http.MethodGet, back+"/authorize/choose", nil)
	if err != nil {
		return issued{}, fmt.Errorf("chooser: %w", err)
	}
	csrf := teststack.CSRFRE.FindStringSubmatch(page)
	if csrf == nil {
		return issued{}, errors.New("chooser: no csrf")
	}
	resp, _, err = fetch(b, http.MethodPost, back+"/authorize/choose", url.Values{"csrf": {csrf[1]}, "idp": {"impots"}})
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		return issued{}, fmt.Errorf("choose: %v %v", status(resp), err)
	}
	idpAuth := resp.Header.Get("Location")
	_, page, err = fetch(b, http.MethodGet, idpAuth, nil)
	tx := teststack.TxRE.FindStringSubmatch(page)
	if err != nil || tx == nil {
		return issued{}, fmt.Errorf("idp page: %v", err)
	}
	resp, _, err = fetch(b, http.MethodPost, strings.Split(idpAuth, "?")[0], url.Values{"tx": {tx[1]}, "identity": {"angela-dubois"}, "action": {"login"}})
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		return issued{}, fmt.Errorf("idp login: %v %v", status(resp), err)
	}
	resp, _, err = fetch(b, http.MethodGet, resp.Header.Get("Location"), nil)
	if err != nil || resp.Header.Get("Location") != "/authorize/consent" {
		return issued{}, fmt.Errorf("callback: %v %v", status(resp), err)
	}
	_, page, err = fetch(b, http.MethodGet, front+"/authorize/consent", nil)
	csrf = teststack.CSRFRE.FindStringSubmatch(page)
	if err != nil || csrf == nil {
		return issued{}, fmt.Errorf("consent page: %v", err)
	}
	resp, _, err = fetch(b, http.MethodPost, front+"/authorize/consent", url.Values{"csrf": {csrf[1]}})
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		return issued{}, fmt.Errorf("consent: %v %v", status(resp), err)
	}
	final, _ := url.Parse(resp.Header.Get("Location"))
	code := final.Query().Get("code")
	if code == "" {
		return issued{}, fmt.Errorf("no code in %s", final)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, back+"/token", strings.NewReader(url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {teststack.SPRedirect},
	}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, teststack.SPSecret)
	tr, err := b.Do(req)
	if err != nil {
		return issued{}, fmt.Errorf("token: %w", err)
	}
	var tok struct {
		IDToken string `json:"id_token"`
	}
	err = json.NewDecoder(tr.Body).Decode(&tok)
	tr.Body.Close()
	if err != nil || tr.StatusCode != http.StatusOK || tok.IDToken == "" {
		return issued{}, fmt.Errorf("token on %s: %d %v", back, tr.StatusCode, err)
	}
	for _, v := range lc.verifiers[clientID] {
		idt, err := v.Verify(ctx, tok.IDToken)
		if err != nil {
			return issued{}, fmt.Errorf("SP verification of the id_token: %w", err)
		}
		if idt.Nonce != nonce {
			return issued{}, errors.New("nonce mismatch")
		}
	}
	jws, err := jose.ParseSigned(tok.IDToken, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		return issued{}, err
	}
	h := jws.Signatures[0].Header
	return issued{kid: h.KeyID, alg: h.Algorithm, at: time.Now()}, nil
}

func fetch(c *http.Client, method, u string, form url.Values) (*http.Response, string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return nil, "", err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func status(r *http.Response) string {
	if r == nil {
		return "no response"
	}
	return r.Status + " " + r.Header.Get("Location")
}

func randomString() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// jwksKids lists the kids a replica publishes.
func jwksKids(t *testing.T, u string) []string {
	t.Helper()
	_, body := teststack.Get(t, http.DefaultClient, u+"/jwks")
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	slices.Sort(out)
	return out
}

// Two broker replicas on one Redis share a key directory; four browsers
// log in without pause through both, each step on either replica, while
// the keys are rotated twice for ES256 and RS256 (next key published,
// then signing, the old one retired, then removed). Every id_token is
// checked by SPs that fetch /jwks from either replica, both go-oidc's
// RemoteKeySet and an SP that trusts its cache for the whole max-age and
// never refetches: no login may fail.
//
// The timing rule under test: a next key is published lead (3s) before it
// signs, which exceeds the JWKS max-age (1s) plus the replicas' reload
// period (250ms); a retired key stays published keep (4s) after it stops
// signing, longer than any id_token here waits for its check.
func TestKeyRotationUnderLoad(t *testing.T) {
	const (
		maxAge = time.Second
		reload = 250 * time.Millisecond
		lead   = 3 * time.Second
		keep   = 4 * time.Second
	)
	r := testredis.Start(t)
	dir := t.TempDir()
	if _, err := keys.Init(dir, []jose.SignatureAlgorithm{jose.ES256, jose.RS256}, time.Now()); err != nil {
		t.Fatal(err)
	}
	s := teststack.New(t, func(c *config.Config) {
		c.Broker.Redis.URL = r.URL()
		pl := &c.Broker.Platforms[0]
		pl.SigningKeysDir = dir
		pl.SigningKeysReload = config.Duration(reload)
		pl.JWKSMaxAge = config.Duration(maxAge)
		rs := pl.ServiceProviders[0]
		rs.ClientID, rs.IDTokenSignedResponseAlg = "sp-rs256", "RS256"
		pl.ServiceProviders = append(pl.ServiceProviders, rs)
	})
	b, err := broker.New(s.Config.Broker, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	srv := httptest.NewServer(b.Platforms[0])
	t.Cleanup(srv.Close)
	replicas := []string{s.BrokerURL, srv.URL}

	ctx := context.Background()
	lc := &loadClient{issuer: s.BrokerURL, replicas: replicas, verifiers: map[string][]*oidc.IDTokenVerifier{}}
	for _, sp := range []struct{ id, alg string }{{teststack.SPID, "ES256"}, {"sp-rs256", "RS256"}} {
		for _, rep := range replicas {
			cfg := &oidc.Config{ClientID: sp.id, SupportedSigningAlgs: []string{sp.alg}}
			lc.verifiers[sp.id] = append(lc.verifiers[sp.id],
				oidc.NewVerifier(s.BrokerURL, oidc.NewRemoteKeySet(ctx, rep+"/jwks"), cfg),
				oidc.NewVerifier(s.BrokerURL, &strictKeySet{url: rep + "/jwks"}, cfg))
		}
	}

	var (
		mu       sync.Mutex
		failures []string
		seen     = map[string][]string{} // alg → kids in the order they first signed
		counts   = map[string]int{}      // kid → id_tokens
		logins   atomic.Int64
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	for g := range 4 {
		wg.Go(func() {
			for n := g; ; n += 4 {
				select {
				case <-stop:
					return
				default:
				}
				client := teststack.SPID
				if n%3 == 2 {
					client = "sp-rs256"
				}
				got, err := lc.login(ctx, n, client)
				logins.Add(1)
				mu.Lock()
				if err != nil {
					failures = append(failures, fmt.Sprintf("%s %s: %v", time.Now().Format("15:04:05.000"), client, err))
				} else {
					if !slices.Contains(seen[got.alg], got.kid) {
						seen[got.alg] = append(seen[got.alg], got.kid)
					}
					counts[got.kid]++
				}
				mu.Unlock()
			}
		})
	}

	// The replicas' JWKS, sampled while the load runs: how long they
	// differed after a rotation (at most a reload period is expected).
	var diverged atomic.Int64
	wg.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if !slices.Equal(jwksKidsQuiet(replicas[0]), jwksKidsQuiet(replicas[1])) {
					diverged.Add(1)
				}
			}
		}
	})

	rotate := func(step string) {
		t.Helper()
		report, err := keys.Rotate(dir, keys.RotateOptions{Lead: lead, Keep: keep})
		if err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("%s: %v", step, err)
		}
		t.Logf("%s: %s", step, strings.Join(report, "; "))
	}
	nextAt := func() time.Time {
		m, err := keys.ReadManifest(dir)
		if err != nil {
			t.Fatal(err)
		}
		var at time.Time
		for _, k := range m.Keys {
			if k.State == keys.Next && k.ActivateAt.After(at) {
				at = k.ActivateAt
			}
		}
		return at
	}
	start := time.Now()
	initial := jwksKids(t, replicas[0])
	time.Sleep(time.Second)
	rotate("rotation 1 (next keys published)")
	time.Sleep(time.Until(nextAt()) + time.Second)
	rotate("rotation 2 (first next keys sign since their activate_at; old keys retired, new next keys)")
	time.Sleep(time.Until(nextAt()) + time.Second)
	rotate("rotation 3 (second next keys sign; the first keys are past remove_at and go)")
	time.Sleep(2 * reload)
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)

	t.Logf("%d logins in %s through 2 replicas, %d failed; kids in signing order: ES256 %v, RS256 %v; id_tokens per kid %v; JWKS samples where the replicas differed: %d",
		logins.Load(), elapsed.Round(time.Millisecond), len(failures), seen["ES256"], seen["RS256"], counts, diverged.Load())
	for i, f := range failures {
		if i == 20 {
			t.Errorf("... and %d more", len(failures)-20)
			break
		}
		t.Error(f)
	}
	if len(failures) > 0 {
		t.Fatalf("%d of %d logins failed during the rotations", len(failures), logins.Load())
	}
	// The signing key changed twice for each algorithm, each key signing
	// a share of the load.
	for _, alg := range []string{"ES256", "RS256"} {
		if len(seen[alg]) != 3 {
			t.Fatalf("%s: kids %v signed, want 3 (two rotations)", alg, seen[alg])
		}
		for _, kid := range seen[alg] {
			if counts[kid] < 3 {
				t.Errorf("%s: key %s signed %d id_tokens; the load did not cover its period", alg, kid, counts[kid])
			}
		}
	}
	// Both replicas publish the same keys in the end: the first ones are
	// gone, the second retired, the third current, and new next keys.
	a, bk := jwksKids(t, replicas[0]), jwksKids(t, replicas[1])
	if !slices.Equal(a, bk) {
		t.Fatalf("replicas publish %v and %v", a, bk)
	}
	for _, kid := range initial {
		if slices.Contains(a, kid) {
			t.Errorf("first key %s still published after its remove_at", kid)
		}
	}
	if len(a) != 6 {
		t.Errorf("JWKS %v: want 6 keys (retired, current and next, per alg)", a)
	}
}

// jwksKidsQuiet is jwksKids for a goroutine: nil on error.
func jwksKidsQuiet(u string) []string {
	resp, err := http.Get(u + "/jwks")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if json.NewDecoder(resp.Body).Decode(&set) != nil {
		return nil
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	slices.Sort(out)
	return out
}
