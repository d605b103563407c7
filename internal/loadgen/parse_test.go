package loadgen

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

func TestAttrAfter(t *testing.T) {
	page := []byte(`<form method="post" action="/impots/login?x=1&amp;y=2"><input type="hidden" name="tx" value="abc-123"><input type="hidden" name="csrf" value="q&#43;w">`)
	for _, tc := range []struct {
		marker []byte
		want   string
		ok     bool
	}{
		{actionMarker, "/impots/login?x=1&y=2", true},
		{txMarker, "abc-123", true},
		{csrfMarker, "q+w", true},
		{[]byte(`name="nope" value="`), "", false},
	} {
		got, ok := attrAfter(page, tc.marker)
		if got != tc.want || ok != tc.ok {
			t.Errorf("attrAfter(%s) = %q, %v; want %q, %v", tc.marker, got, ok, tc.want, tc.ok)
		}
	}
	if _, ok := attrAfter([]byte(`name="tx" value="unclosed`), txMarker); ok {
		t.Error("attrAfter accepts a value with no closing quote")
	}
}

func TestErrorCode(t *testing.T) {
	for page, want := range map[string]string{
		`<p>Code d'erreur&nbsp;: <code>S020027</code></p><p><code>abc</code>`: "S020027",
		`<p>no code here</p>`:                           "",
		`<code>S` + strings.Repeat("9", 40) + `</code>`: "",
	} {
		if got := errorCode([]byte(page)); got != want {
			t.Errorf("errorCode(%.40q) = %q, want %q", page, got, want)
		}
	}
}

func TestErrorDetail(t *testing.T) {
	for page, want := range map[string]string{
		`<main><p><code>S020027</code></p>`: "S020027",
		`<div class="fr-alert" role="alert" id="login-error">
      <p>Identité inconnue&nbsp;: choisissez-en une.</p></div>`: "Identité inconnue\u00a0: choisissez-en une.",
		`{"error":"invalid_grant"}`: `{"error":"invalid_grant"}`,
	} {
		if got := errorDetail([]byte(page)); got != want {
			t.Errorf("errorDetail(%.30q) = %q, want %q", page, got, want)
		}
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{50: 50 * time.Millisecond, 95: 95 * time.Millisecond, 99: 99 * time.Millisecond, 100: 100 * time.Millisecond} {
		if got := percentile(d, p); got != want {
			t.Errorf("p%v of 1..100 ms = %v, want %v", p, got, want)
		}
	}
	if got := percentile(d[:1], 99); got != time.Millisecond {
		t.Errorf("p99 of one value = %v, want that value", got)
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("p50 of nothing = %v, want 0", got)
	}
	// Nearest rank: p50 of 1..3 is 2, p99 of 1..3 is 3.
	if got := percentile(d[:3], 50); got != 2*time.Millisecond {
		t.Errorf("p50 of 1..3 ms = %v, want 2ms", got)
	}
}

func TestRecorderMerge(t *testing.T) {
	a, b := newRecorder(stepsStandard, 0), newRecorder(stepsStandard, 0)
	a.observe(StepToken, 3*time.Millisecond)
	b.observe(StepToken, time.Millisecond)
	b.observe(StepToken, 2*time.Millisecond)
	a.fail(StepChooser, "first")
	b.fail(StepChooser, "second")
	a.ok, b.ok = 1, 2
	a.merge(b)
	st := a.stepStats(stepsStandard)
	var tok, ch StepStats
	for _, s := range st {
		switch s.Step {
		case StepToken:
			tok = s
		case StepChooser:
			ch = s
		}
	}
	if tok.Count != 3 || tok.P50 != 2*time.Millisecond || tok.Max != 3*time.Millisecond || tok.Server != "broker" {
		t.Errorf("token after merge: %+v, want 3 values, p50 2ms, max 3ms, served by the broker", tok)
	}
	if ch.Errors != 2 || ch.FirstError != "first" || a.ok != 3 || a.failed != 2 {
		t.Errorf("chooser after merge: %+v, ok %d failed %d; want 2 errors, the first kept, 3 ok, 2 failed", ch, a.ok, a.failed)
	}
}

func TestParseProcStat(t *testing.T) {
	// The command name holds a space and a parenthesis; utime 150,
	// stime 50 ticks (fields 14 and 15).
	line := "4242 (sesame (x) y) S 1 4242 4242 0 -1 4194560 1234 0 0 0 150 50 0 0 20 0 9 0 12345 1000000 2000 18446744073709551615"
	got, err := parseProcStat([]byte(line))
	if err != nil || got != 2*time.Second {
		t.Errorf("parseProcStat = %v, %v; want 2s", got, err)
	}
	if _, err := parseProcStat([]byte("4242 (short) S 1 2")); err == nil {
		t.Error("parseProcStat accepts a truncated line")
	}
	if _, err := parseProcStat([]byte("no parenthesis")); err == nil {
		t.Error("parseProcStat accepts a line without a command name")
	}
	// The test's own process: some CPU already used.
	if d, err := procCPU(os.Getpid()); err != nil || d < 0 {
		t.Errorf("procCPU(self) = %v, %v", d, err)
	}
}

func TestParseMachineStat(t *testing.T) {
	raw := "cpu  100 5 50 800 40 3 2 0 7 0\ncpu0 50 2 25 400 20 1 1 0 0 0\n"
	busy, total, err := parseMachineStat([]byte(raw))
	// busy = user+nice+system+irq+softirq+steal = 100+5+50+3+2+0 = 160;
	// total adds idle and iowait: 1000 ticks. Guest (7) is inside user.
	if err != nil || busy != 1600*time.Millisecond || total != 10*time.Second {
		t.Errorf("parseMachineStat = %v, %v, %v; want 1.6s busy of 10s", busy, total, err)
	}
	if _, _, err := parseMachineStat([]byte("intr 1 2 3\n")); err == nil {
		t.Error("parseMachineStat accepts a file without a cpu line")
	}
}

const infoSample = "# Stats\r\ntotal_connections_received:3\r\ntotal_commands_processed:%d\r\ntotal_net_input_bytes:%d\r\ntotal_net_output_bytes:%d\r\n\r\n" +
	"# Commandstats\r\ncmdstat_get:calls=%d,usec=10,usec_per_call=1.00,rejected_calls=0,failed_calls=0\r\ncmdstat_info:calls=%d,usec=5,usec_per_call=5.00,rejected_calls=0,failed_calls=0\r\ncmdstat_client|setinfo:calls=2,usec=1,usec_per_call=0.50,rejected_calls=0,failed_calls=0\r\n\r\n" +
	"# Memory\r\nused_memory:%d\r\nused_memory_human:1M\r\n\r\n# CPU\r\nused_cpu_sys:%s\r\nused_cpu_user:%s\r\nused_cpu_sys_children:9.000000\r\n"

func TestParseInfoAndDelta(t *testing.T) {
	first, err := parseInfo(fmt.Sprintf(infoSample, 10, 1000, 5000, 4, 1, 100000, "1.000000", "2.500000"))
	if err != nil {
		t.Fatal(err)
	}
	if first.Calls["get"] != 4 || first.Calls["client|setinfo"] != 2 || first.TotalCommands != 10 || first.NetIn != 1000 || first.NetOut != 5000 ||
		first.UsedMemory != 100000 || first.CPU != 3500*time.Millisecond {
		t.Fatalf("parseInfo: %+v", first)
	}
	// The second snapshot, right after the first: its INFO cost 50 bytes
	// in and 2000 out.
	before, _ := parseInfo(fmt.Sprintf(infoSample, 11, 1050, 7000, 4, 2, 100000, "1.000000", "2.500000"))
	after, _ := parseInfo(fmt.Sprintf(infoSample, 40, 3050, 19000, 24, 3, 160000, "1.250000", "2.750000"))
	d := after.sub(before, before.subRaw(first))
	if d.Commands != 20 || d.Calls["get"] != 20 || d.Calls["info"] != 0 {
		t.Errorf("delta commands: %d %v, want the 20 GETs and no INFO", d.Commands, d.Calls)
	}
	if d.NetIn != 1950 || d.NetOut != 10000 || d.UsedMemory != 60000 || d.CPU != 500*time.Millisecond {
		t.Errorf("delta: in %d out %d memory %d cpu %v; want 1950, 10000, 60000, 500ms", d.NetIn, d.NetOut, d.UsedMemory, d.CPU)
	}
	if _, err := parseInfo("# Stats\r\ntotal_commands_processed:1\r\n"); err == nil {
		t.Error("parseInfo accepts an answer without the fields the report needs")
	}
}

func TestKeyKind(t *testing.T) {
	for key, want := range map[string]string{
		"sesame:std:{0a1b}:sess":     "sess",
		"sesame:plus:{tag}at:digest": "at",
		"sesame:std:{tag}revoked":    "revoked",
		"sesame:std:upstream:digest": "upstream",
		"sesame:std:rl:login:digest": "rl",
		"sesame:std:":                "other",
	} {
		if got := keyKind(key); got != want {
			t.Errorf("keyKind(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestListeningInodes(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 111 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F40 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 222 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:1FA4 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 333 1 0000000000000000 100 0 0 10 0
`
	got := listeningInodes([]byte(table), 8000)
	if len(got) != 1 || got[0] != "111" {
		t.Errorf("listeningInodes(8000) = %v, want [111]: the listener, not the connection", got)
	}
	if got := listeningInodes([]byte(table), 9000); len(got) != 0 {
		t.Errorf("listeningInodes(9000) = %v, want none", got)
	}
}

// TestRoundRobin: each request goes to the next active backend, with the
// Host it was sent to; narrowing the active set keeps the others idle.
func TestRoundRobin(t *testing.T) {
	var backends []string
	hits := make([]int, 3)
	for i := range hits {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits[i]++
			fmt.Fprintf(w, "%d %s", i, r.Host)
		}))
		defer srv.Close()
		backends = append(backends, srv.URL)
	}
	rr, err := newRoundRobin(backends, 4)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(rr)
	defer front.Close()
	get := func() {
		t.Helper()
		resp, err := http.Get(front.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// The broker behind sees the request as sent to the issuer.
		if !strings.HasSuffix(string(body), " "+strings.TrimPrefix(front.URL, "http://")) {
			t.Errorf("backend saw Host %q, want the proxy's %s", body, front.URL)
		}
	}
	for range 6 {
		get()
	}
	if hits[0] != 2 || hits[1] != 2 || hits[2] != 2 {
		t.Errorf("6 requests over 3 backends: %v, want 2 each", hits)
	}
	rr.active.Store(1)
	for range 3 {
		get()
	}
	if hits[0] != 5 || hits[1] != 2 || hits[2] != 2 {
		t.Errorf("3 more with 1 active: %v, want them all on the first", hits)
	}
}
