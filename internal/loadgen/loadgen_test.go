package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sesameBin is the binary the stacks run, built once by TestMain.
var sesameBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		fmt.Fprintf(os.Stderr, "loadgen: cannot find the module root (go env GOMOD = %q): %v\n", gomod, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "sesame-loadgen-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	sesameBin = filepath.Join(dir, "sesame")
	build := exec.Command("go", "build", "-o", sesameBin, "./cmd/sesame")
	build.Dir = filepath.Dir(gomod)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: go build ./cmd/sesame: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

func runBench(t *testing.T, o Options) *Report {
	t.Helper()
	o.Binary = sesameBin
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	reports, err := Run(ctx, o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(reports) != 1 {
		t.Fatalf("Run gave %d reports, want 1", len(reports))
	}
	return reports[0]
}

// checkReport asserts that every login completed, every step of the
// platform was seen once per login, and the report's fields are filled:
// counts and presence, never a timing.
func checkReport(t *testing.T, r *Report, logins int, steps []string) {
	t.Helper()
	if r.Logins != logins || r.Failed != 0 || len(r.FailedByStep) != 0 {
		t.Errorf("report: %d logins completed, %d failed %v; want %d completed, none failed", r.Logins, r.Failed, r.FailedByStep, logins)
	}
	if r.LoginsPerSec <= 0 || r.Elapsed <= 0 {
		t.Errorf("report: %.1f logins/s over %v, want both positive", r.LoginsPerSec, r.Elapsed)
	}
	if len(r.Steps) != len(steps) {
		t.Fatalf("report has %d steps, want %d (%v)", len(r.Steps), len(steps), steps)
	}
	for i, s := range r.Steps {
		if s.Step != steps[i] || s.Count != logins || s.Errors != 0 || s.P50 <= 0 || s.P99 < s.P95 || s.P95 < s.P50 || s.Max < s.P99 {
			t.Errorf("step %d: %+v, want %s seen %d times without error, with ordered percentiles", i, s, steps[i], logins)
		}
	}
	if !r.CPU.Measured {
		t.Errorf("the processes' CPU was not measured: %s", r.CPU.Error)
	}
	if r.CPU.Generator <= 0 || r.CPU.GeneratorCores <= 0 {
		t.Errorf("the generator's CPU per login is %v (%.2f cores), want it measured", r.CPU.Generator, r.CPU.GeneratorCores)
	}
	if r.Machine.CPUs < 1 || r.Machine.LoadBefore == "" || r.Machine.BusyCores <= 0 {
		t.Errorf("machine: %+v, want CPUs, load average and busy cores", r.Machine)
	}
	var out bytes.Buffer
	r.Write(&out)
	text := out.String()
	for _, want := range append([]string{"logins/s", "CPU per login (ms): broker", "mock IdPs", "generator", "p99 ms", "load average"}, steps...) {
		if !strings.Contains(text, want) {
			t.Errorf("the printed report lacks %q:\n%s", want, text)
		}
	}
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"logins_per_sec"`, `"p95_ns"`, `"broker_ns_per_login"`, `"idps_ns_per_login"`, `"generator_ns_per_login"`, `"busy_cores"`} {
		if !bytes.Contains(raw, []byte(key)) {
			t.Errorf("the JSON report lacks %s: %s", key, raw)
		}
	}
	if t.Failed() {
		t.Logf("report:\n%s", text)
	}
}

// TestBenchStandardMemory: two users, twenty complete logins on the
// standard platform and the memory store; every one completes and the
// report holds every figure, with no Redis part.
func TestBenchStandardMemory(t *testing.T) {
	r := runBench(t, Options{Users: 2, Logins: 20, Duration: 2 * time.Minute, Platform: "std", Store: "memory", Replicas: 1})
	checkReport(t, r, 20, stepsStandard)
	if r.Redis != nil {
		t.Errorf("memory store, yet a Redis report: %+v", r.Redis)
	}
}

// TestBenchPlusRedis: the "+" flow (PAR, private_key_jwt, DPoP, JWE) on
// Redis; the Redis part counts the brokers' commands and bytes, and the
// live sessions are exactly the logins run, warm-up included.
func TestBenchPlusRedis(t *testing.T) {
	r := runBench(t, Options{Users: 2, Logins: 10, Duration: 2 * time.Minute, Platform: "plus", Store: "redis", Replicas: 1})
	checkReport(t, r, 10, stepsPlus)
	rr := r.Redis
	if rr == nil {
		t.Fatal("Redis store, yet no Redis report")
	}
	if rr.CommandsPerLogin < 1 || rr.ByCommand["set"] <= 0 || rr.ByCommand["get"] <= 0 || rr.InBytesPerLogin <= 0 || rr.OutBytesPerLogin <= 0 {
		t.Errorf("Redis per login: %+v, want commands (set, get) and bytes both ways", rr)
	}
	if _, ok := rr.ByCommand["info"]; ok {
		t.Errorf("the bench's own INFO is counted as the brokers': %v", rr.ByCommand)
	}
	// 10 measured logins + 1 warm-up login per user.
	if rr.LiveSessions != 12 || rr.Sampled != 12 || rr.SessionRecordBytes <= 0 {
		t.Errorf("Redis sessions: %d live, %d sampled, %.0f bytes each; want 12 live, all sampled, a size", rr.LiveSessions, rr.Sampled, rr.SessionRecordBytes)
	}
	if k := rr.Keys["sess"]; k == nil || k.Count != 12 || rr.KeyBytesPerSession <= rr.SessionRecordBytes {
		t.Errorf("Redis keys by kind: %v, %.0f bytes per session; want 12 sess, and more bytes than the record alone (the access token)", rr.Keys, rr.KeyBytesPerSession)
	}
	var out bytes.Buffer
	r.Write(&out)
	for _, want := range []string{"Redis per login", "redis-server", "session record", "Redis keys at the end"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the printed report lacks %q:\n%s", want, out.String())
		}
	}
}

// TestBenchAttach: the bench started by hand against a running stack
// (here one the test starts) finds the SP in the stack's config and the
// processes by their ports.
func TestBenchAttach(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := startStack(ctx, stackOptions{bin: sesameBin, replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Stop()
	r := runBench(t, Options{Users: 2, Logins: 10, Duration: time.Minute, Platform: "std", Store: "memory", Replicas: 1,
		Attach: st.Std, Config: filepath.Join(st.dir, "broker-1.yaml")})
	checkReport(t, r, 10, stepsStandard)
	if r.Attached != st.Std || r.CPU.IdPsInBroker {
		t.Errorf("attached report: %q, IdPs in the broker %v; want %s and separate processes", r.Attached, r.CPU.IdPsInBroker, st.Std)
	}
}

// TestBenchRefusesBadOptions: each bad combination gets a clear error,
// before anything is started.
func TestBenchRefusesBadOptions(t *testing.T) {
	base := Options{Binary: "sesame", Users: 1, Duration: time.Second, Platform: "std", Store: "memory", Replicas: 1}
	for _, tc := range []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"no users", func(o *Options) { o.Users = 0 }, "-users 0"},
		{"no duration", func(o *Options) { o.Duration = 0 }, "-duration"},
		{"platform", func(o *Options) { o.Platform = "premium" }, `-platform "premium"`},
		{"store", func(o *Options) { o.Store = "etcd" }, `-store "etcd"`},
		{"negative rate", func(o *Options) { o.Rate = -1 }, "-rate -1"},
		{"replicas on memory", func(o *Options) { o.Replicas = 2 }, "needs -store redis"},
		{"attach without config", func(o *Options) { o.Attach = "http://localhost:8000" }, "-attach needs -config"},
		{"attach plus", func(o *Options) { o.Attach, o.Config, o.Platform = "http://localhost:8000", "x.yaml", "plus" }, "standard platform only"},
		{"config without attach", func(o *Options) { o.Config = "x.yaml" }, "-config goes with -attach"},
		{"profile attached", func(o *Options) { o.Attach, o.Config, o.ProfileDir = "http://localhost:8000", "x.yaml", "p" }, "-profile needs a stack the bench starts"},
		{"profile without duration", func(o *Options) { o.Duration, o.Logins, o.ProfileDir = 0, 10, "p" }, "-profile needs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.edit(&o)
			_, err := Run(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// TestBenchProfile: with ProfileDir the broker serves its profiler on a
// metrics listener, the mock IdPs on their own, and the bench writes
// both CPU profiles over the measure, gzipped pprof files.
func TestBenchProfile(t *testing.T) {
	dir := t.TempDir()
	r := runBench(t, Options{Users: 2, Duration: 2 * time.Second, Platform: "std", Store: "memory", Replicas: 1, ProfileDir: dir})
	if r.Logins == 0 || r.Failed != 0 {
		t.Errorf("%d logins, %d failed", r.Logins, r.Failed)
	}
	for _, f := range []string{"broker-1.pprof", "idps.pprof"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatalf("profile: %v", err)
		}
		if len(b) < 100 || b[0] != 0x1f || b[1] != 0x8b {
			t.Errorf("%s is %d bytes starting %x, want a gzipped profile", f, len(b), b[:min(4, len(b))])
		}
	}
}
