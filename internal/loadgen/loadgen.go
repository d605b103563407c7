// Package loadgen is Sésame's load generator (`sesame bench`, `make
// bench`): it starts the dev stack as separate processes — redis-server on
// the Redis store, one or more brokers, the mock IdPs — from a generated
// configuration, then runs complete logins with many virtual users, each a
// browser with its own cookie jar and, for the same login, the SP that
// redeems the code and checks the tokens. It reports logins per second,
// the latency of each step, and what a login costs: the CPU time of each
// process (from /proc), the generator's own, and Redis commands, bytes and
// memory.
//
// The generator knows the stack only over HTTP, as a browser and an SP
// do: it imports no broker code, verifies the id_token with go-oidc
// against the broker's /jwks, and parses pages with plain string scans.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options choose what the bench runs.
type Options struct {
	// Binary is the sesame executable the stack's processes run.
	Binary string
	// Users is the number of virtual users logging in at once.
	Users int
	// Duration is how long logins are measured; Logins, when positive,
	// stops the measure after that many logins instead (whichever comes
	// first).
	Duration time.Duration
	Logins   int
	// Rate, when positive, starts logins at that many per second in
	// all (open loop, as citizens arrive), instead of each user starting
	// its next login as soon as the last ends; Users then bounds how
	// many run at once. Half the saturated rate is where issue 10's p99
	// target is read.
	Rate float64
	// Warmup is the number of logins each user runs before the measure
	// starts (connections opened, keys and discovery fetched); they are
	// not counted. Zero means one.
	Warmup int
	// Platform is "std" (client_secret_basic) or "plus" (PAR,
	// private_key_jwt, DPoP, encrypted id_token and userinfo).
	Platform string
	// Store is "memory" or "redis".
	Store string
	// Replicas, above one, starts that many brokers on one Redis behind
	// a round-robin proxy inside the bench, and measures with 1, 2, …
	// Replicas of them in turn: one Report each, the scale-out table.
	Replicas int
	// KeepDir keeps the configs and logs of the processes in that
	// folder; empty, they go to a temporary folder removed at the end.
	KeepDir string
	// Attach, instead of starting a stack, logs in at this running
	// platform's issuer (standard only), as the SP registered in Config
	// (the file the stack runs). Its processes are found by their
	// listening ports; its Redis, if any, by the file's broker.redis.
	Attach string
	Config string
	// ProfileDir, when set, turns on the profilers (broker.pprof on a
	// metrics listener, providers.pprof) and writes, for each measure, a
	// CPU profile of every broker and of the mock IdPs over the measured
	// phase there: broker-K.pprof and idps.pprof, or broker-K-of-N.pprof
	// and idps-of-N.pprof for the scale-out rows. Needs Duration.
	ProfileDir string
	// Progress, when set, receives a line as each phase starts.
	Progress io.Writer
}

func (o *Options) check() error {
	if o.Binary == "" {
		return errors.New("bench: no sesame binary to start the stack with")
	}
	if o.Users < 1 {
		return fmt.Errorf("-users %d: want at least 1", o.Users)
	}
	if o.Duration <= 0 && o.Logins <= 0 {
		return errors.New("-duration must be positive")
	}
	switch o.Platform {
	case "std", "plus":
	default:
		return fmt.Errorf("-platform %q: want std or plus", o.Platform)
	}
	switch o.Store {
	case "memory", "redis":
	default:
		return fmt.Errorf("-store %q: want memory or redis", o.Store)
	}
	if o.Replicas < 1 {
		return fmt.Errorf("-replicas %d: want at least 1", o.Replicas)
	}
	if o.Attach != "" {
		if o.Platform != "std" {
			return errors.New("-attach logs in on the standard platform only: the bench has no \"+\" SP's private keys in a stack it did not configure")
		}
		if o.Replicas > 1 {
			return errors.New("-attach and -replicas do not go together: -replicas starts its own brokers")
		}
		if o.Config == "" {
			return errors.New("-attach needs -config, the file the stack runs, for the SP registration the bench plays")
		}
	} else if o.Config != "" {
		return errors.New("-config goes with -attach; without it the bench writes its own config")
	}
	if o.Replicas > 1 && o.Store != "redis" {
		return fmt.Errorf("-replicas %d needs -store redis: replicas share their sessions through Redis", o.Replicas)
	}
	if o.ProfileDir != "" && (o.Attach != "" || o.Duration < time.Second) {
		return errors.New("-profile needs a stack the bench starts and a -duration of at least 1s: the profile covers the measured seconds")
	}
	if o.Rate < 0 {
		return fmt.Errorf("-rate %v: want a positive rate, or 0 for none", o.Rate)
	}
	if o.Warmup <= 0 {
		o.Warmup = 1
	}
	return nil
}

func (o *Options) progress(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", args...)
	}
}

// Run starts the stack (or attaches to one), measures, stops what it
// started and returns one Report, or one per replica count (1 … Replicas)
// when Replicas is above one.
func Run(ctx context.Context, o Options) (_ []*Report, err error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if o.Attach != "" {
		t, sub, err := attach(&o)
		if err != nil {
			return nil, err
		}
		if sub.redis != nil {
			defer sub.redis.Close()
		}
		o.progress("bench: attached to %s; %d user(s), %d warm-up login(s) each, then %s", t.issuer, o.Users, o.Warmup, o.measureText())
		r, err := measure(ctx, o, sub, t)
		if err != nil {
			return nil, err
		}
		r.Replicas, r.Attached = 1, t.issuer
		return []*Report{r}, nil
	}
	o.progress("bench: starting the stack (%s store, %d broker(s))", o.Store, o.Replicas)
	st, err := startStack(ctx, stackOptions{bin: o.Binary, redis: o.Store == "redis", replicas: o.Replicas, logDir: o.KeepDir, pprof: o.ProfileDir != ""})
	if err != nil {
		return nil, err
	}
	defer func() {
		// The logs of a failed run stay, for the error names them.
		st.keep = st.keep || err != nil
		st.Stop()
	}()
	t := target{
		plus: o.Platform == "plus", issuer: st.Std, idp: stdIdP, idpIssuer: st.Providers + "/" + stdIdP,
		identity: benchIdentity, clientID: stdClientID, secret: st.secrets.SP, redirectURI: st.RedirectURI, acr: "eidas1",
	}
	if t.plus {
		t.issuer, t.idp, t.idpIssuer, t.clientID, t.secret, t.acr = st.Plus, plusIdP, st.Providers+"/"+plusIdP, plusClientID, "", "eidas2"
		t.keys = st.plusKeys
	}
	sub := &subject{brokerPids: st.BrokerPids(), idpPid: st.idps.cmd.Process.Pid, where: "logs in " + st.dir, profileDir: o.ProfileDir}
	if st.redis != nil {
		// The bench reads INFO on one connection of its own, opened
		// before the first snapshot, so that its HELLO is not counted.
		sub.redis = st.redis.client()
		defer sub.redis.Close()
	}
	var reports []*Report
	for k := 1; k <= o.Replicas; k++ {
		sub.profiles = nil
		for i, u := range st.Profilers()[:min(k, len(st.Profilers()))] {
			name := fmt.Sprintf("broker-%d.pprof", i+1)
			if o.Replicas > 1 {
				name = fmt.Sprintf("broker-%d-of-%d.pprof", i+1, k)
			}
			sub.profiles = append(sub.profiles, profileTarget{url: u, file: name})
		}
		if u := st.IdPProfiler(); u != "" {
			name := "idps.pprof"
			if o.Replicas > 1 {
				name = fmt.Sprintf("idps-of-%d.pprof", k)
			}
			sub.profiles = append(sub.profiles, profileTarget{url: u, file: name})
		}
		if o.Replicas > 1 {
			st.SetActive(k)
			o.progress("bench: %d of %d brokers active", k, o.Replicas)
		}
		o.progress("bench: %d user(s), %d warm-up login(s) each, then %s", o.Users, o.Warmup, o.measureText())
		r, err := measure(ctx, o, sub, t)
		if err != nil {
			return reports, err
		}
		r.Replicas = k
		r.Proxied = o.Replicas > 1
		reports = append(reports, r)
	}
	return reports, nil
}

func (o *Options) measureText() string {
	switch {
	case o.Logins > 0 && o.Duration > 0:
		return fmt.Sprintf("%d logins or %s, whichever comes first", o.Logins, o.Duration)
	case o.Logins > 0:
		return fmt.Sprintf("%d logins", o.Logins)
	}
	return o.Duration.String() + " of logins"
}

// subject is what the bench measures besides its own logins: the broker
// and mock-IdP processes (ids; 0 when unknown), and Redis, when there is
// one.
type subject struct {
	brokerPids []int
	idpPid     int
	redis      *redis.Client
	// where says where to look when the stack fails (its logs).
	where string
	// profiles are the brokers' profilers to read over the measure, into
	// profileDir.
	profiles   []profileTarget
	profileDir string
}

// counters are the CPU times read before and after the measure.
type counters struct {
	at       time.Time
	broker   time.Duration
	idps     time.Duration
	self     time.Duration
	selfOK   bool
	busy     time.Duration
	total    time.Duration
	procErr  error
	machErr  error
	snapshot redisSnapshot
}

func (sub *subject) read(ctx context.Context) (counters, error) {
	var c counters
	c.at = time.Now()
	if len(sub.brokerPids) == 0 || sub.idpPid == 0 {
		c.procErr = errors.New("the processes serving the stack are not known")
	}
	for _, pid := range sub.brokerPids {
		d, err := procCPU(pid)
		c.broker += d
		c.procErr = errors.Join(c.procErr, err)
	}
	// sesame dev serves the broker and the mock IdPs in one process:
	// its CPU is counted once, as the broker's.
	if sub.idpPid != 0 && !slices.Contains(sub.brokerPids, sub.idpPid) {
		d, err := procCPU(sub.idpPid)
		c.idps = d
		c.procErr = errors.Join(c.procErr, err)
	}
	c.self, c.selfOK = selfCPU()
	c.busy, c.total, c.machErr = machineCPU()
	if sub.redis != nil {
		s, err := snapshotRedis(ctx, sub.redis)
		if err != nil {
			return c, err
		}
		c.snapshot = s
	}
	return c, nil
}

// measure runs the warm-up, then the measured logins, and builds the
// report from the counters read around them.
func measure(ctx context.Context, o Options, sub *subject, t target) (*Report, error) {
	g, err := newGenerator(ctx, t)
	if err != nil {
		return nil, err
	}
	g.forwardedFor = o.Attach != ""
	defer g.back.CloseIdleConnections()
	capacity := 256
	if o.Logins > 0 {
		capacity = o.Logins/o.Users + 1
	}
	users := make([]*user, o.Users)
	for i := range users {
		if users[i], err = g.newUser(i, capacity); err != nil {
			return nil, err
		}
		defer users[i].close()
	}
	// Warm-up: every user logs in Warmup times; any failure means the
	// stack does not work, which no figure can hide.
	var wg sync.WaitGroup
	errs := make([]error, len(users))
	for i, u := range users {
		wg.Go(func() {
			for range o.Warmup {
				if err := u.login(); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("a warm-up login failed, the stack does not work (%s): %w", sub.where, err)
	}
	for _, u := range users {
		u.rec = newRecorder(g.steps, capacity)
	}

	// Two snapshots in a row: the second shows what the first cost
	// Redis (its own INFO, in and out), which is taken off the deltas.
	first, err := sub.read(ctx)
	if err != nil {
		return nil, err
	}
	before, err := sub.read(ctx)
	if err != nil {
		return nil, err
	}
	loadBefore := loadAverage()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if o.Duration > 0 {
		var stop context.CancelFunc
		runCtx, stop = context.WithTimeout(runCtx, o.Duration)
		defer stop()
	}
	profiled := sub.profile(ctx, o.Duration)
	var started atomic.Int64
	t0 := time.Now()
	for _, u := range users {
		wg.Go(func() {
			for runCtx.Err() == nil {
				n := started.Add(1)
				if o.Logins > 0 && n > int64(o.Logins) {
					return
				}
				if o.Rate > 0 {
					// Login n starts at its slot, or at once when every
					// user was busy past it.
					at := t0.Add(time.Duration(float64(n-1) / o.Rate * float64(time.Second)))
					select {
					case <-runCtx.Done():
						return
					case <-time.After(time.Until(at)):
					}
				}
				if err := u.login(); err != nil {
					var se *stepError
					if errors.As(err, &se) {
						u.rec.fail(se.step, se.msg)
					} else {
						u.rec.fail("login", err.Error())
					}
					// A failing stack is not hammered in a tight loop.
					time.Sleep(10 * time.Millisecond)
					continue
				}
				u.rec.ok++
			}
		})
	}
	wg.Wait()
	after, err := sub.read(ctx)
	if err != nil {
		return nil, err
	}
	if err := profiled(); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("bench interrupted: %w", ctx.Err())
	}

	all := newRecorder(g.steps, 0)
	for _, u := range users {
		all.merge(u.rec)
	}
	r := &Report{
		Platform: o.Platform, Store: o.Store, Users: o.Users, Rate: o.Rate,
		Started: before.at, Elapsed: after.at.Sub(before.at),
		Logins: all.ok, Failed: all.failed, Steps: all.stepStats(g.steps),
		Machine:      Machine{CPUs: runtime.NumCPU(), LoadBefore: loadBefore, LoadAfter: loadAverage(), GoVersion: runtime.Version()},
		FailedByStep: map[string]int{},
	}
	for s, n := range all.errors {
		r.FailedByStep[s] = n
	}
	if secs := r.Elapsed.Seconds(); secs > 0 {
		r.LoginsPerSec = float64(r.Logins) / secs
	}
	if before.procErr == nil && after.procErr == nil {
		r.CPU.Measured = true
		r.CPU.Broker = perLogin(after.broker-before.broker, r.Logins)
		r.CPU.IdPs = perLogin(after.idps-before.idps, r.Logins)
		r.CPU.BrokerCores = cores(after.broker-before.broker, r.Elapsed)
		r.CPU.IdPCores = cores(after.idps-before.idps, r.Elapsed)
		r.CPU.IdPsInBroker = slices.Contains(sub.brokerPids, sub.idpPid)
	} else {
		r.CPU.Error = errors.Join(before.procErr, after.procErr).Error()
	}
	if before.selfOK && after.selfOK {
		r.CPU.Generator = perLogin(after.self-before.self, r.Logins)
		r.CPU.GeneratorCores = cores(after.self-before.self, r.Elapsed)
		r.CPU.GeneratorIncludesProxy = o.Replicas > 1
	}
	if sub.redis != nil {
		d := after.snapshot.sub(before.snapshot, before.snapshot.subRaw(first.snapshot))
		r.CPU.Redis = perLogin(d.CPU, r.Logins)
		r.CPU.RedisCores = cores(d.CPU, r.Elapsed)
		if r.Redis, err = redisReport(ctx, sub.redis, d, r.Logins); err != nil {
			return nil, err
		}
	}
	if before.machErr == nil && after.machErr == nil && after.total > before.total {
		// /proc/stat counts all cores: total is elapsed × CPUs.
		frac := float64(after.busy-before.busy) / float64(after.total-before.total)
		r.Machine.BusyCores = frac * float64(r.Machine.CPUs)
		ours := r.CPU.BrokerCores + r.CPU.IdPCores + r.CPU.RedisCores + r.CPU.GeneratorCores
		r.Machine.OthersCores = max(0, r.Machine.BusyCores-ours)
	}
	return r, nil
}

// subRaw is s − before for the bytes: the cost of the snapshot taken at
// before, as the next one sees it.
func (s redisSnapshot) subRaw(before redisSnapshot) redisSnapshot {
	return redisSnapshot{NetIn: s.NetIn - before.NetIn, NetOut: s.NetOut - before.NetOut}
}

func perLogin(d time.Duration, logins int) time.Duration {
	if logins == 0 {
		return 0
	}
	return d / time.Duration(logins)
}

func cores(d, elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	return d.Seconds() / elapsed.Seconds()
}

// redisReport turns the brokers' Redis use into per-login figures, and
// samples the live session records.
func redisReport(ctx context.Context, c *redis.Client, d redisDelta, logins int) (*RedisReport, error) {
	r := &RedisReport{ByCommand: map[string]float64{}}
	n := float64(max(1, logins))
	r.CommandsPerLogin = float64(d.Commands) / n
	for name, calls := range d.Calls {
		r.ByCommand[name] = float64(calls) / n
	}
	r.InBytesPerLogin = float64(d.NetIn) / n
	r.OutBytesPerLogin = float64(d.NetOut) / n
	r.UsedMemoryPerLogin = float64(d.UsedMemory) / n
	kinds, err := keySample(ctx, c, 100)
	if err != nil {
		return nil, err
	}
	r.Keys = kinds
	if k := kinds["sess"]; k != nil && k.Count > 0 {
		r.LiveSessions, r.SessionRecordBytes, r.Sampled = k.Count, k.Bytes, k.Sampled
		var sum float64
		for _, k := range kinds {
			sum += float64(k.Count) * k.Bytes
		}
		r.KeyBytesPerSession = sum / float64(r.LiveSessions)
	}
	return r, nil
}
