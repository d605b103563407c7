package broker_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/internal/testredis"
)

// phase is a stretch of a fault run and the logins that started in it.
type phase struct {
	name       string
	from, to   time.Time
	ok, failed int
	byStep     map[string]int
}

// tally sorts the logins of run into phases by their start, and checks
// every failure is one the broker promises for a store outage (503
// S190005 or temporarily_unavailable, with Retry-After) or a write lost
// with a node (S190001, invalid_grant, invalid_token): never another 5xx.
func tally(t *testing.T, run *loginRun, phases []*phase) {
	t.Helper()
	in := func(at time.Time) *phase {
		for _, p := range phases {
			if !at.Before(p.from) && at.Before(p.to) {
				return p
			}
		}
		return nil
	}
	for _, st := range run.ok {
		if p := in(st); p != nil {
			p.ok++
		}
	}
	for _, f := range run.failures {
		if !f.documented() && !f.lostWrite() {
			t.Errorf("a login failed with an undocumented answer: %v", f)
		}
		if p := in(run.starts[f]); p != nil {
			p.failed++
			if p.byStep == nil {
				p.byStep = map[string]int{}
			}
			p.byStep[fmt.Sprintf("%s %d %s", f.step, f.status, f.code)]++
		}
	}
	for _, p := range phases {
		t.Logf("%-40s %6.1fs: %3d logins ok, %3d failed %v", p.name, p.to.Sub(p.from).Seconds(), p.ok, p.failed, p.byStep)
	}
}

// firstLastFailure is the window from the first failed step to the last.
func firstLastFailure(run *loginRun) (time.Time, time.Time) {
	var first, last time.Time
	for _, f := range run.failures {
		if first.IsZero() || f.at.Before(first) {
			first = f.at
		}
		if f.at.After(last) {
			last = f.at
		}
	}
	return first, last
}

// clusterMasterLost kills a master of a three-master cluster without
// replicas during a run of logins, keeps it down for a while, starts it
// again (empty: no persistence) and measures what the logins saw in each
// phase. With full coverage required (Redis' default) the whole cluster
// refuses commands once the other masters flag the node failed; without,
// only the keys in its third of the slots fail.
func clusterMasterLost(t *testing.T, fullCoverage bool) {
	c := testredis.StartClusterWith(t, testredis.ClusterOptions{NoFullCoverage: !fullCoverage})
	s := teststack.New(t, teststack.RedisAddrs(c.Addrs()...))
	for range 3 {
		if _, err := login(s); err != nil {
			t.Fatalf("login before the fault: %v", err)
		}
	}
	// Citizens already logged in: their SP calls userinfo with the access
	// token, one key, on one node or another.
	tokens := map[string]int{} // access token → node holding its record
	onDead := func() (dead, live int) {
		for _, n := range tokens {
			if n == 0 {
				dead++
			} else {
				live++
			}
		}
		return
	}
	for d, l := onDead(); len(tokens) < 12 || d == 0 || l == 0; d, l = onDead() {
		if len(tokens) > 60 {
			t.Fatalf("tokens on node 0: %d, elsewhere: %d", d, l)
		}
		b := s.WithBrowser()
		u := b.Login(t, teststack.AuthParams(), "impots", "angela-dubois")
		st, out := s.Token(t, url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {teststack.SPRedirect}}, true)
		if st != http.StatusOK {
			t.Fatalf("token: %d %v", st, out)
		}
		at := out["access_token"].(string)
		_, tag, _ := strings.Cut(at, ".")
		for _, k := range c.Keys() {
			if strings.Contains(k, "{"+tag+"}at:") {
				tokens[at] = c.NodeHolding(k)
			}
		}
	}
	stop := make(chan struct{})
	run := runLogins(t, s, stop)
	time.Sleep(2 * time.Second)
	start := run.startedAt()
	killAt := time.Now()
	slots := c.SlotsOf(0)
	c.KillNode(0)
	flaggedAt := c.WaitNodeFailed(0, 30*time.Second)
	t.Logf("master %s (%d slots of 16384) killed; the others flagged it failed after %v (cluster-node-timeout 2s)",
		c.Addr(0), slots, flaggedAt.Sub(killAt).Round(time.Millisecond))
	time.Sleep(time.Until(killAt.Add(8 * time.Second)))
	// The SPs' userinfo calls while the node is down, by where the token
	// lives.
	calls := map[string]int{}
	for at, node := range tokens {
		where := "token on a live node"
		if node == 0 {
			where = "token on the dead node"
		}
		calls[fmt.Sprintf("%s: %d", where, s.UserinfoStatus(t, "Bearer "+at))]++
	}
	t.Logf("userinfo with tokens issued before the kill, node down: %v", calls)
	if calls["token on the dead node: 200"] > 0 {
		t.Error("a token on the dead node was served")
	}
	if !fullCoverage && calls["token on a live node: 503"] > 0 {
		t.Error("without full coverage, a token on a live node was refused")
	}
	if fullCoverage && calls["token on a live node: 200"] > 0 {
		t.Error("with full coverage required, a token on a live node was still served once the node was flagged failed")
	}
	time.Sleep(time.Until(killAt.Add(10 * time.Second)))
	restartAt := time.Now()
	c.RestartNode(0)
	okAt := time.Now()
	t.Logf("node restarted; cluster_state ok everywhere after %v", okAt.Sub(restartAt).Round(time.Millisecond))
	time.Sleep(clientCatchUp)
	stopAt := time.Now()
	close(stop)
	run.wg.Wait()

	before := &phase{name: "before the kill", from: start, to: killAt}
	suspect := &phase{name: "killed, not yet flagged failed", from: killAt, to: flaggedAt}
	down := &phase{name: "flagged failed, node down", from: flaggedAt, to: restartAt}
	back := &phase{name: "node back (empty)", from: restartAt, to: stopAt}
	tally(t, run, []*phase{before, suspect, down, back})
	first, last := firstLastFailure(run)
	t.Logf("full coverage %v: failures from %v to %v after the kill (window %v)", fullCoverage,
		first.Sub(killAt).Round(time.Millisecond), last.Sub(killAt).Round(time.Millisecond), last.Sub(first).Round(time.Millisecond))

	// (A login started just before the kill may fail after it: the
	// failure's own time counts.)
	for _, f := range run.failures {
		if f.at.Before(killAt) {
			t.Errorf("a login failed before the kill: %v", f)
		}
	}
	if down.failed == 0 {
		t.Error("no login failed while a master was down: the test proves nothing")
	}
	// Every login that started once the client had time to see the node
	// back must succeed.
	for _, f := range run.failures {
		if st := run.starts[f]; st.After(okAt.Add(3 * time.Second)) {
			t.Errorf("a login started %v after the node was back failed: %v", st.Sub(okAt).Round(time.Millisecond), f)
		}
	}
	var after int
	for _, st := range run.ok {
		if st.After(okAt) {
			after++
		}
	}
	if after == 0 {
		t.Error("no login succeeded after the node was back")
	}
}

// startedAt is when the run began (its first login).
func (r *loginRun) startedAt() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	first := time.Now()
	for _, st := range r.ok {
		if st.Before(first) {
			first = st
		}
	}
	for _, st := range r.starts {
		if st.Before(first) {
			first = st
		}
	}
	return first.Add(-time.Millisecond)
}

// TestClusterMasterLostNoReplicas: a master of a cluster without
// replicas is killed and comes back, with cluster-require-full-coverage
// no (what docs/operations.md recommends), then with Redis' default.
func TestClusterMasterLostNoReplicas(t *testing.T) {
	t.Run("require-full-coverage no", func(t *testing.T) { clusterMasterLost(t, false) })
	t.Run("require-full-coverage yes", func(t *testing.T) { clusterMasterLost(t, true) })
}

// TestClusterFailover kills a master of a cluster whose masters have a
// replica each: the replica takes over its slots, and logins resume
// without the node coming back.
func TestClusterFailover(t *testing.T) {
	c := testredis.StartClusterWith(t, testredis.ClusterOptions{Replicas: 1})
	s := teststack.New(t, teststack.RedisAddrs(c.Addrs()...))
	for range 3 {
		if _, err := login(s); err != nil {
			t.Fatalf("login before the fault: %v", err)
		}
	}
	masters := c.Masters()
	if len(masters) != 3 {
		t.Fatalf("masters %v, want three", masters)
	}
	victim := masters[0]
	stop := make(chan struct{})
	run := runLogins(t, s, stop)
	time.Sleep(2 * time.Second)
	start := run.startedAt()
	killAt := time.Now()
	c.KillNode(victim)
	flaggedAt := c.WaitNodeFailed(victim, 30*time.Second)
	var promotedAt time.Time
	deadline := time.Now().Add(60 * time.Second)
	for {
		if now := c.Masters(); len(now) == 3 && !slices.Contains(now, victim) {
			c.WaitState("ok", 30*time.Second)
			promotedAt = time.Now()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no replica took over the dead master's slots")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("master %s killed: flagged failed after %v, its replica serving its slots (cluster_state ok) after %v",
		c.Addr(victim), flaggedAt.Sub(killAt).Round(time.Millisecond), promotedAt.Sub(killAt).Round(time.Millisecond))
	time.Sleep(clientCatchUp)
	stopAt := time.Now()
	close(stop)
	run.wg.Wait()

	tally(t, run, []*phase{
		{name: "before the kill", from: start, to: killAt},
		{name: "killed, replica not yet promoted", from: killAt, to: promotedAt},
		{name: "replica promoted", from: promotedAt, to: stopAt},
	})
	first, last := firstLastFailure(run)
	var lost int
	for _, f := range run.failures {
		if f.lostWrite() {
			lost++
		}
		if f.at.Before(killAt) {
			t.Errorf("a login failed before the kill: %v", f)
		}
		if st := run.starts[f]; st.After(promotedAt.Add(clientCatchUp / 2)) {
			t.Errorf("a login started %v after the promotion failed: %v", st.Sub(promotedAt).Round(time.Millisecond), f)
		} else if st.After(promotedAt) {
			t.Logf("a login started %v after the promotion still failed (the client had not reloaded the slot map): %v", st.Sub(promotedAt).Round(time.Millisecond), f)
		}
	}
	t.Logf("failover: %d logins failed (%d by a write lost with the old master), from %v to %v after the kill",
		len(run.failures), lost, first.Sub(killAt).Round(time.Millisecond), last.Sub(killAt).Round(time.Millisecond))
	var after int
	for _, st := range run.ok {
		if st.After(promotedAt) {
			after++
		}
	}
	if after == 0 {
		t.Error("no login succeeded after the promotion")
	}
}

// TestClusterTLSLogins runs logins and a logout through the broker on a
// Cluster that speaks TLS only (clients and cluster bus), configured
// with redis.addrs, redis.tls and a private CA, as an ACL user with the
// default user off. A wrong password leaves the broker unready.
func TestClusterTLSLogins(t *testing.T) {
	t.Parallel()
	c := testredis.StartClusterWith(t, testredis.ClusterOptions{TLS: true})
	c.AddUser("sesame", "acl-pw-c1u5")
	s := teststack.New(t, teststack.RedisClusterTLS(c.Addrs(), c.CAFile(), "sesame", "acl-pw-c1u5"))
	for i := range 3 {
		s.Browser = teststack.NewBrowser()
		u := s.Login(t, teststack.AuthParams(), "impots", "angela-dubois")
		status, out := s.Token(t, url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {teststack.SPRedirect}}, true)
		if status != http.StatusOK {
			t.Fatalf("login %d over TLS: token: %d %v", i, status, out)
		}
		at := out["access_token"].(string)
		if st := s.UserinfoStatus(t, "Bearer "+at); st != http.StatusOK {
			t.Fatalf("login %d over TLS: userinfo: %d", i, st)
		}
		logout(t, s, out["id_token"].(string))
		if st := s.UserinfoStatus(t, "Bearer "+at); st != http.StatusUnauthorized {
			t.Fatalf("login %d over TLS: userinfo after logout: %d, want 401", i, st)
		}
	}
	bad := teststack.New(t, teststack.RedisClusterTLS(c.Addrs(), c.CAFile(), "sesame", "wrong-password"))
	if resp, _ := teststack.Get(t, http.DefaultClient, bad.BrokerURL+"/readyz"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with a wrong Redis password: %d, want 503", resp.StatusCode)
	}
	noCA := teststack.New(t, teststack.RedisClusterTLS(c.Addrs(), "", "sesame", "acl-pw-c1u5"))
	if resp, _ := teststack.Get(t, http.DefaultClient, noCA.BrokerURL+"/readyz"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz without the CA: %d, want 503", resp.StatusCode)
	}
}
