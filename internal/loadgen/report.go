package loadgen

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is one measure: what was run, how fast, and what a login cost.
type Report struct {
	Platform string `json:"platform"`
	Store    string `json:"store"`
	// Replicas is the number of brokers requests went to; Proxied says
	// they went through the bench's round-robin proxy.
	Replicas int  `json:"replicas"`
	Proxied  bool `json:"proxied"`
	// Attached is the issuer of a stack the bench did not start, or "".
	Attached string `json:"attached,omitempty"`
	Users    int    `json:"users"`
	// Rate is the offered rate of logins per second (0: closed loop,
	// each user starting its next login when the last ends).
	Rate    float64   `json:"rate,omitempty"`
	Started time.Time `json:"started"`
	// Elapsed is the measured phase, from the first login started to the
	// last one finished.
	Elapsed time.Duration `json:"elapsed_ns"`
	// Logins completed (every step passed, tokens verified); Failed
	// logins stopped at a step, counted in FailedByStep.
	Logins       int            `json:"logins"`
	Failed       int            `json:"failed"`
	FailedByStep map[string]int `json:"failed_by_step"`
	LoginsPerSec float64        `json:"logins_per_sec"`
	Steps        []StepStats    `json:"steps"`
	CPU          CPU            `json:"cpu"`
	// Redis is nil on the memory store.
	Redis   *RedisReport `json:"redis,omitempty"`
	Machine Machine      `json:"machine"`
}

// CPU is the CPU time (user + system) per completed login of each
// process, and how many cores each kept busy on average.
type CPU struct {
	// Measured is false when /proc could not be read (not Linux); Error
	// says why.
	Measured bool   `json:"measured"`
	Error    string `json:"error,omitempty"`
	// Broker is all broker processes together.
	Broker time.Duration `json:"broker_ns_per_login"`
	IdPs   time.Duration `json:"idps_ns_per_login"`
	// IdPsInBroker says the mock IdPs run inside the broker's process
	// (sesame dev, attached): their CPU is in Broker's.
	IdPsInBroker bool          `json:"idps_in_broker,omitempty"`
	Redis        time.Duration `json:"redis_ns_per_login"`
	// Generator is the bench process itself (getrusage): the virtual
	// users, the SP's token checks, and the proxy when
	// GeneratorIncludesProxy.
	Generator              time.Duration `json:"generator_ns_per_login"`
	GeneratorIncludesProxy bool          `json:"generator_includes_proxy"`

	BrokerCores    float64 `json:"broker_cores"`
	IdPCores       float64 `json:"idp_cores"`
	RedisCores     float64 `json:"redis_cores"`
	GeneratorCores float64 `json:"generator_cores"`
}

// RedisReport is the brokers' use of Redis per completed login.
type RedisReport struct {
	CommandsPerLogin float64            `json:"commands_per_login"`
	ByCommand        map[string]float64 `json:"by_command"`
	InBytesPerLogin  float64            `json:"in_bytes_per_login"`
	OutBytesPerLogin float64            `json:"out_bytes_per_login"`
	// UsedMemoryPerLogin is the growth of used_memory per login: what a
	// login leaves in Redis while its session lives (the session and
	// its short-lived keys: access token, consumed code markers).
	UsedMemoryPerLogin float64 `json:"used_memory_per_login"`
	// LiveSessions is the number of session records (…:sess keys) at the
	// end; SessionRecordBytes is the average MEMORY USAGE of Sampled of
	// them.
	LiveSessions       int     `json:"live_sessions"`
	SessionRecordBytes float64 `json:"session_record_bytes"`
	Sampled            int     `json:"sampled"`
	// Keys are all the platforms' keys at the end, by kind (sess, at,
	// upstream, …), warm-up logins' included; KeyBytesPerSession is
	// their MEMORY USAGE summed, per live session: what Redis holds per
	// citizen logged in, less Redis's own overhead.
	Keys               map[string]*KeyKind `json:"keys"`
	KeyBytesPerSession float64             `json:"key_bytes_per_session"`
}

// Machine is where the figures come from: on a shared machine they are
// indicative only, which BusyCores and OthersCores show.
type Machine struct {
	CPUs       int    `json:"cpus"`
	GoVersion  string `json:"go_version"`
	LoadBefore string `json:"load_before"`
	LoadAfter  string `json:"load_after"`
	// BusyCores is the machine's whole CPU use during the measure (every
	// process); OthersCores is what was not the stack's or the bench's.
	BusyCores   float64 `json:"busy_cores"`
	OthersCores float64 `json:"others_cores"`
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

// Write prints the report for a person.
func (r *Report) Write(w io.Writer) {
	brokers := fmt.Sprintf("%d broker", r.Replicas)
	if r.Replicas > 1 {
		brokers += "s"
	}
	if r.Proxied {
		brokers += " behind the bench's round-robin proxy"
	}
	if r.Attached != "" {
		brokers = "attached to " + r.Attached
	}
	users := fmt.Sprintf("%d users", r.Users)
	if r.Rate > 0 {
		users = fmt.Sprintf("logins started at %.1f/s by up to %d users", r.Rate, r.Users)
	}
	fmt.Fprintf(w, "sesame bench: platform %s, %s store, %s, %s\n", r.Platform, r.Store, brokers, users)
	fmt.Fprintf(w, "machine: %d CPUs, %s, load average %s before, %s after", r.Machine.CPUs, r.Machine.GoVersion, r.Machine.LoadBefore, r.Machine.LoadAfter)
	if r.Machine.BusyCores > 0 {
		fmt.Fprintf(w, "; %.2f of %d cores busy during the run, %.2f of them other processes", r.Machine.BusyCores, r.Machine.CPUs, r.Machine.OthersCores)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "logins: %d completed, %d failed in %s: %.1f logins/s\n\n", r.Logins, r.Failed, r.Elapsed.Round(time.Millisecond), r.LoginsPerSec)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "step\tserved by\tcount\tp50 ms\tp95 ms\tp99 ms\tmax ms\terrors\t")
	for _, s := range r.Steps {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%d\t\n", s.Step, s.Server, s.Count, ms(s.P50), ms(s.P95), ms(s.P99), ms(s.Max), s.Errors)
	}
	_ = tw.Flush()
	for _, s := range r.Steps {
		if s.FirstError != "" {
			fmt.Fprintf(w, "first error at %s: %s\n", s.Step, s.FirstError)
		}
	}
	if n := r.FailedByStep["login"]; n > 0 {
		fmt.Fprintf(w, "%d logins failed outside a step\n", n)
	}

	fmt.Fprintln(w)
	c := r.CPU
	gen := "generator"
	if c.GeneratorIncludesProxy {
		gen = "generator (with the proxy)"
	}
	if c.Measured {
		idps := "mock IdPs " + ms(c.IdPs)
		if c.IdPsInBroker {
			idps = "mock IdPs in the broker's process"
		}
		fmt.Fprintf(w, "CPU per login (ms): broker %s, %s", ms(c.Broker), idps)
		if r.Redis != nil {
			fmt.Fprintf(w, ", redis-server %s", ms(c.Redis))
		}
		fmt.Fprintf(w, ", %s %s\n", gen, ms(c.Generator))
		idps = fmt.Sprintf("mock IdPs %.2f", c.IdPCores)
		if c.IdPsInBroker {
			idps = "mock IdPs in the broker's process"
		}
		fmt.Fprintf(w, "CPU busy (cores):   broker %.2f, %s", c.BrokerCores, idps)
		if r.Redis != nil {
			fmt.Fprintf(w, ", redis-server %.2f", c.RedisCores)
		}
		fmt.Fprintf(w, ", %s %.2f\n", gen, c.GeneratorCores)
	} else {
		fmt.Fprintf(w, "CPU of the stack's processes not measured (%s); %s %s ms per login\n", c.Error, gen, ms(c.Generator))
	}
	if rr := r.Redis; rr != nil {
		names := slices.Sorted(maps.Keys(rr.ByCommand))
		var parts []string
		for _, n := range names {
			parts = append(parts, fmt.Sprintf("%s %.3g", n, rr.ByCommand[n]))
		}
		fmt.Fprintf(w, "Redis per login: %.1f commands (%s), %.0f bytes in, %.0f bytes out\n",
			rr.CommandsPerLogin, strings.Join(parts, ", "), rr.InBytesPerLogin, rr.OutBytesPerLogin)
		fmt.Fprintf(w, "Redis memory: %.0f bytes of keys per live session (MEMORY USAGE), of which the session record %.0f (average of %d of %d); used_memory %+.0f bytes per login\n",
			rr.KeyBytesPerSession, rr.SessionRecordBytes, rr.Sampled, rr.LiveSessions, rr.UsedMemoryPerLogin)
		var keys []string
		for _, n := range slices.Sorted(maps.Keys(rr.Keys)) {
			k := rr.Keys[n]
			keys = append(keys, fmt.Sprintf("%s %d × %.0f B", n, k.Count, k.Bytes))
		}
		fmt.Fprintf(w, "Redis keys at the end (count × average MEMORY USAGE): %s\n", strings.Join(keys, ", "))
	}
}

// WriteScaleOut prints the scale-out table of reports measured with 1, 2, …
// brokers on one Redis.
func WriteScaleOut(w io.Writer, reports []*Report) {
	if len(reports) == 0 {
		return
	}
	fmt.Fprintf(w, "scale-out: %d users, platform %s, %s store, brokers behind the bench's round-robin proxy\n", reports[0].Users, reports[0].Platform, reports[0].Store)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "replicas\tlogins/s\tbroker ms/login\tIdPs ms/login\tredis ms/login\tgenerator+proxy ms/login\tmachine busy cores\tothers' cores\tfailed\t")
	for _, r := range reports {
		fmt.Fprintf(tw, "%d\t%.1f\t%s\t%s\t%s\t%s\t%.2f\t%.2f\t%d\t\n", r.Replicas, r.LoginsPerSec, ms(r.CPU.Broker), ms(r.CPU.IdPs), ms(r.CPU.Redis), ms(r.CPU.Generator), r.Machine.BusyCores, r.Machine.OthersCores, r.Failed)
	}
	_ = tw.Flush()
}
