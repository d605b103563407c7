package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/sesame-id/sesame/internal/loadgen"
)

const benchUsage = `usage: sesame bench [-users N] [-duration D] [-logins N] [-rate R] [-platform std|plus] [-store memory|redis] [-replicas N] [-json] [-keep DIR]
       sesame bench -attach ISSUER -config FILE [-users N] [-duration D] [-logins N] [-json]

Starts the dev stack as separate processes (redis-server with -store redis,
the broker(s), the mock IdPs) from a generated config, runs complete logins
with N virtual users, and prints logins/s, the latency of each step and the
CPU, Redis commands, bytes and memory per login. With -replicas N (Redis),
N brokers run behind a round-robin proxy and the measure is repeated with
1, 2, … N of them: the scale-out table. With -attach, the bench logs in at
a running stack instead (make run: -attach http://localhost:8000 -config
config/dev.yaml). See docs/performance.md.

`

// bench runs the load generator: `sesame bench`.
func bench(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, benchUsage); fs.PrintDefaults() }
	o := loadgen.Options{Progress: stderr}
	fs.IntVar(&o.Users, "users", 8, "virtual users logging in at once, each with its own cookie jar")
	fs.DurationVar(&o.Duration, "duration", 20*time.Second, "how long logins are measured (after the warm-up)")
	fs.IntVar(&o.Logins, "logins", 0, "stop after this many measured logins (0: -duration only)")
	fs.Float64Var(&o.Rate, "rate", 0, "start logins at this many per second in all (open loop; -users bounds how many at once); 0: each user starts its next login at once")
	fs.IntVar(&o.Warmup, "warmup", 1, "logins per user before the measure starts, not counted")
	fs.StringVar(&o.Platform, "platform", "std", `"std" (client_secret_basic) or "plus" (PAR, private_key_jwt, DPoP, encrypted tokens)`)
	fs.StringVar(&o.Store, "store", "memory", `the brokers' store: "memory" or "redis" (a private redis-server)`)
	fs.IntVar(&o.Replicas, "replicas", 1, "brokers on one Redis behind a round-robin proxy; above 1, measure 1…N of them (needs -store redis)")
	fs.StringVar(&o.KeepDir, "keep", "", "keep the processes' configs and logs in this folder")
	fs.StringVar(&o.Attach, "attach", "", "instead of starting a stack, log in at this running standard platform's issuer (e.g. http://localhost:8000 for make run)")
	fs.StringVar(&o.Config, "config", "", "with -attach: the config file the stack runs (e.g. config/dev.yaml), for the SP the bench plays, the mock IdP and Redis")
	fs.StringVar(&o.ProfileDir, "profile", "", "write the CPU profiles of each broker and of the mock IdPs over the measure to this folder (broker-1.pprof, idps.pprof; go tool pprof)")
	asJSON := fs.Bool("json", false, "print the reports as JSON")
	cpuProfile := fs.String("cpuprofile", "", "write the generator's own CPU profile to this file (go tool pprof)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench: unexpected argument %q", fs.Arg(0))
	}
	// -replicas on Redis only: say so rather than fail when the store
	// was left at its default.
	storeSet := false
	fs.Visit(func(f *flag.Flag) { storeSet = storeSet || f.Name == "store" })
	if o.Replicas > 1 && !storeSet {
		o.Store = "redis"
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: the sesame binary to start the stack with: %w", err)
	}
	o.Binary = bin
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("bench: -cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("bench: -cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	reports, err := loadgen.Run(ctx, o)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(reports)
	}
	for i, r := range reports {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		r.Write(stdout)
	}
	if len(reports) > 1 {
		fmt.Fprintln(stdout)
		loadgen.WriteScaleOut(stdout, reports)
	}
	return nil
}
