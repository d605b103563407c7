package loadgen

import (
	"slices"
	"time"
)

// Step names, in the order a login runs them. "verify" is the generator's
// own check of the id_token (no request); "par" exists on "+" only.
const (
	StepPAR       = "par"
	StepAuthorize = "authorize"
	StepChooser   = "chooser"
	StepChoose    = "choose"
	StepIdPPage   = "idp_page"
	StepIdPLogin  = "idp_login"
	StepCallback  = "callback"
	StepInfo      = "info_page"
	StepConsent   = "consent"
	StepToken     = "token"
	StepVerify    = "verify"
	StepUserinfo  = "userinfo"
)

// stepsStandard and stepsPlus are the steps of one login on each platform.
var (
	stepsStandard = []string{StepAuthorize, StepChooser, StepChoose, StepIdPPage, StepIdPLogin,
		StepCallback, StepInfo, StepConsent, StepToken, StepVerify, StepUserinfo}
	stepsPlus = append([]string{StepPAR}, stepsStandard...)
)

// StepServer says which process serves a step: "broker", "idp" or
// "generator" (verify, done locally).
func StepServer(step string) string {
	switch step {
	case StepIdPPage, StepIdPLogin:
		return "idp"
	case StepVerify:
		return "generator"
	}
	return "broker"
}

// recorder holds one virtual user's step durations and failures. Each user
// has its own, so recording takes no lock; they are merged at the end.
type recorder struct {
	durations map[string][]time.Duration
	errors    map[string]int
	// sample is the first error message seen per step.
	sample map[string]string
	ok     int
	failed int
}

func newRecorder(steps []string, capacity int) *recorder {
	r := &recorder{durations: map[string][]time.Duration{}, errors: map[string]int{}, sample: map[string]string{}}
	for _, s := range steps {
		r.durations[s] = make([]time.Duration, 0, capacity)
	}
	return r
}

func (r *recorder) observe(step string, d time.Duration) {
	r.durations[step] = append(r.durations[step], d)
}

func (r *recorder) fail(step, msg string) {
	r.errors[step]++
	if _, seen := r.sample[step]; !seen {
		r.sample[step] = msg
	}
	r.failed++
}

// merge adds o's observations to r.
func (r *recorder) merge(o *recorder) {
	for s, d := range o.durations {
		r.durations[s] = append(r.durations[s], d...)
	}
	for s, n := range o.errors {
		r.errors[s] += n
		if _, seen := r.sample[s]; !seen {
			r.sample[s] = o.sample[s]
		}
	}
	r.ok += o.ok
	r.failed += o.failed
}

// percentile returns the p-th percentile (0 < p ≤ 100) of sorted by the
// nearest-rank method: the smallest value with at least p% of the values
// at or below it. It is 0 for no values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(float64(len(sorted))*p/100+0.999999999) - 1
	rank = max(0, min(rank, len(sorted)-1))
	return sorted[rank]
}

// StepStats are the latencies of one step over the measured logins, as the
// generator saw them (request sent to body read).
type StepStats struct {
	Step   string        `json:"step"`
	Server string        `json:"server"`
	Count  int           `json:"count"`
	P50    time.Duration `json:"p50_ns"`
	P95    time.Duration `json:"p95_ns"`
	P99    time.Duration `json:"p99_ns"`
	Max    time.Duration `json:"max_ns"`
	Errors int           `json:"errors"`
	// FirstError is the first failure seen at this step, when any.
	FirstError string `json:"first_error,omitempty"`
}

// stepStats sorts each step's durations and reads its percentiles.
func (r *recorder) stepStats(steps []string) []StepStats {
	out := make([]StepStats, 0, len(steps))
	for _, s := range steps {
		d := r.durations[s]
		slices.Sort(d)
		st := StepStats{Step: s, Server: StepServer(s), Count: len(d), Errors: r.errors[s], FirstError: r.sample[s]}
		if len(d) > 0 {
			st.P50, st.P95, st.P99, st.Max = percentile(d, 50), percentile(d, 95), percentile(d, 99), d[len(d)-1]
		}
		out = append(out, st)
	}
	return out
}
