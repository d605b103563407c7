// Command sesame runs Sésame's parts: the broker, the mock identity
// providers, the demo service provider, or all three for development.
//
//	sesame broker       [-config FILE]
//	sesame providers    [-config FILE]
//	sesame demo-sp      [-config FILE]
//	sesame dashboard    [-config FILE]   the citizen space
//	sesame dev          [-config FILE]   all of them in one process
//	sesame dev -sp FILE                  also register the SPs of FILE (sesame sp new)
//	sesame check-config FILE
//	sesame healthcheck URL               exit 0 on a 2xx answer
//	sesame keys signing [-alg ES256,RS256] > keys.json
//	sesame keys init DIR [-alg ES256,RS256]
//	sesame keys rotate DIR [-alg ES256] [-lead 10m] [-keep 24h] [-hsm-label L]
//	sesame keys status DIR
//	sesame keys session
//	sesame keys dataprovider > dp-keys.json
//	sesame bench [-users N] [-duration D] [-platform std|plus] [-store memory|redis] [-replicas N]
//	sesame sp new [-plus] [-name N] [-redirect-uri U] [-out DIR] > sp.yaml
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/sesame-id/sesame/broker"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/dashboard"
	demosp "github.com/sesame-id/sesame/demo-sp"
	"github.com/sesame-id/sesame/internal/store"
	"github.com/sesame-id/sesame/providers"
)

const usage = `usage: sesame <command> [flags]

commands:
  broker        run the federation broker
  providers     run the mock identity providers
  demo-sp       run the demo service provider
  dashboard     run the citizen space ("Mon espace Sésame")
  dev           run broker, mock IdPs, demo SP and citizen space in one process
  healthcheck   GET a URL and fail unless it answers 2xx (the container's health check)
  check-config  validate a config file and explain every error
  keys          generate keys: "keys signing" (private JWKS), "keys session" (AES key) or "keys dataprovider" (a mock data provider's decryption keys);
                manage a signing key directory: "keys init DIR", "keys rotate DIR", "keys status DIR"
  bench         load generator: complete logins against the dev stack, with their cost (docs/performance.md)
  sp new        print a ready SP entry with fresh credentials (-plus: and its keys); sesame dev -sp FILE registers it
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "broker", "providers", "demo-sp", "dashboard", "dev":
		err = run(cmd, args)
	case "healthcheck":
		err = healthcheck(args)
	case "check-config":
		err = checkConfig(args, os.Stdout)
	case "keys":
		err = genKeys(args, os.Stdout)
	case "bench":
		err = bench(args, os.Stdout, os.Stderr)
	case "sp":
		err = spCommand(args, os.Stdout, os.Stderr)
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "sesame: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sesame:", err)
		os.Exit(1)
	}
}

func checkConfig(args []string, out io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: sesame check-config FILE")
	}
	cfg, err := config.Load(args[0])
	if probs := (*config.Problems)(nil); errors.As(err, &probs) {
		// Every problem on its own line, file:line:column first, as
		// compilers print them (editors jump to them); the count goes to
		// stderr and the exit status is 1.
		for _, l := range probs.Lines() {
			fmt.Fprintln(out, l)
		}
		return fmt.Errorf("%s: %d problem(s)", args[0], len(probs.Items))
	}
	if err != nil {
		return err
	}
	parts := []string{}
	if cfg.Broker != nil {
		store := "in-memory store"
		if cfg.Broker.Redis.Enabled() {
			store = "Redis"
		}
		parts = append(parts, fmt.Sprintf("broker (%d platform(s), %d IdP(s), %s)", len(cfg.Broker.Platforms), len(cfg.Broker.IdentityProviders), store))
		if r := cfg.Broker.CivilRegistry; r != nil {
			parts = append(parts, fmt.Sprintf("civil registry check (on outage: %s)", r.OnOutage))
		}
	}
	if cfg.Providers != nil {
		parts = append(parts, fmt.Sprintf("mock IdPs (%d)", len(cfg.Providers.IdPs)))
		if n := len(cfg.Providers.DataProviders); n > 0 {
			parts = append(parts, fmt.Sprintf("mock data providers (%d)", n))
		}
		if cfg.Providers.CivilRegistry != nil {
			parts = append(parts, "mock civil registry")
		}
	}
	if cfg.DemoSP != nil {
		parts = append(parts, "demo SP")
	}
	if cfg.Dashboard != nil {
		parts = append(parts, "citizen space")
	}
	if cfg.History != nil {
		parts = append(parts, "history ("+cfg.History.Driver+")")
	}
	if cfg.Mail != nil {
		m := "mail (outbox)"
		if cfg.Mail.SMTP.Host != "" {
			m = "mail (SMTP " + cfg.Mail.SMTP.Host + ")"
		}
		parts = append(parts, m)
	}
	fmt.Fprintf(out, "%s: OK: %v\n", args[0], parts)
	return nil
}

// server is one listener to run.
type server struct {
	name, addr, url string
	handler         http.Handler
}

func run(cmd string, args []string) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	path := fs.String("config", "config/dev.yaml", "configuration file")
	drain := fs.Duration("drain", 0, "on SIGTERM, how long readiness fails before the listeners close (e.g. 5s behind a load balancer)")
	var spFiles fileList
	fs.Var(&spFiles, "sp", "an SP file (sesame sp new) whose SPs the broker registers at start, on the platform of its level; repeatable")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(spFiles) > 0 && cmd != "dev" && cmd != "broker" {
		return fmt.Errorf("-sp registers SPs on the broker: use it with sesame dev or sesame broker, not %s", cmd)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	slog.SetDefault(log)
	cfg, added, err := loadConfig(*path, spFiles)
	if err != nil {
		return err
	}
	if cfg.Log.Format == "json" {
		// Every line JSON from here on, audit events included.
		log = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
		slog.SetDefault(log)
	}
	for _, a := range added {
		log.Info("SP registered from an SP file", "client_id", a.ClientID, "platform", a.Platform, "file", a.File)
	}
	var servers []server
	var drainers []func()
	// reloads run at SIGHUP, in order; each logs nothing itself.
	var reloads []reloader
	want := func(part string) bool { return cmd == part || cmd == "dev" }

	// The history and the mail queue, for the broker and the citizen
	// space; closed last, once the listeners are down, so that what
	// waits is written and sent.
	var shared *citizen
	if want("broker") || want("dashboard") {
		c, extra, err := openCitizen(cfg, log)
		if err != nil {
			return err
		}
		shared = c
		defer shared.close(log)
		servers = append(servers, extra...)
	}

	// brokerStore is the broker's store, shared with the mock eIDAS node
	// inside `sesame dev`.
	var brokerStore store.Store
	if want("broker") {
		if cfg.Broker == nil {
			return fmt.Errorf("%s has no broker section", *path)
		}
		b, err := broker.New(cfg.Broker, log, shared.brokerOptions(cfg, log)...)
		if err != nil {
			return err
		}
		defer b.Close()
		shared.metrics(b.Metrics)
		log.Info("broker store", "backend", b.Backend)
		brokerStore = b.Store
		// The SP, data-provider and IdP registries, re-read from the
		// file; the rest of the file needs a restart (see Reloader).
		rl := broker.NewReloader(b, cfg, log, shared.namesSetter())
		reloads = append(reloads, reloader{"registry", func() error { return reloadRegistry(rl, *path, spFiles) }})
		for _, p := range b.Platforms {
			servers = append(servers, server{"broker", p.Listen(), p.Issuer(), p})
			drainers = append(drainers, p.Drain)
		}
		reloads = append(reloads, reloader{"signing keys", b.ReloadKeys})
		if addr := cfg.Broker.MetricsListen; addr != "" {
			mux := http.NewServeMux()
			mux.Handle("GET /metrics", b.Metrics.Handler())
			if cfg.Broker.Pprof {
				mountPprof(mux)
			}
			servers = append(servers, server{"metrics", addr, "http://" + addr + "/metrics", mux})
		}
	}
	if want("providers") {
		if cfg.Providers == nil {
			return fmt.Errorf("%s has no providers section", *path)
		}
		s, err := providers.New(cfg.Providers)
		if err != nil {
			return err
		}
		h, closeNode, err := withEIDASNode(cfg.Providers, s, brokerStore)
		if err != nil {
			return err
		}
		defer closeNode()
		if cfg.Providers.Pprof {
			mux := http.NewServeMux()
			mountPprof(mux)
			mux.Handle("/", h)
			h = mux
		}
		servers = append(servers, server{"mock IdPs", cfg.Providers.Listen, cfg.Providers.BaseURL, h})
	}
	if want("demo-sp") {
		if cfg.DemoSP == nil {
			return fmt.Errorf("%s has no demo_sp section", *path)
		}
		a, err := demosp.New(cfg.DemoSP)
		if err != nil {
			return err
		}
		servers = append(servers, server{"demo SP", cfg.DemoSP.Listen, cfg.DemoSP.BaseURL, a})
	}
	if want("dashboard") && (cmd == "dashboard" || cfg.Dashboard != nil) {
		if cfg.Dashboard == nil {
			return fmt.Errorf("%s has no dashboard section", *path)
		}
		d, err := dashboard.New(cfg.Dashboard, shared.history, shared.mailerOrNil(), log, dashboardOptions(cfg)...)
		if err != nil {
			return err
		}
		servers = append(servers, server{"citizen space", cfg.Dashboard.Listen, cfg.Dashboard.BaseURL, d})
	}
	return serve(log, servers, reloads, func() {
		for _, d := range drainers {
			d()
		}
		if *drain > 0 {
			log.Info("draining: readiness fails, listeners stay open", "for", *drain)
			time.Sleep(*drain)
		}
	})
}

// reloader is something SIGHUP reloads without a restart.
type reloader struct {
	name   string
	reload func() error
}

// serve runs every listener until SIGINT or SIGTERM, then drains them;
// SIGHUP runs the reloaders. Listeners are bound before anything is
// logged as ready, so a port clash fails at once.
func serve(log *slog.Logger, servers []server, reloads []reloader, beforeShutdown func()) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var https []*http.Server
	errc := make(chan error, len(servers))
	for _, s := range servers {
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		hs := &http.Server{
			Handler:           s.handler,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       120 * time.Second,
			// net/http reads up to 1 MiB of headers, so that the services
			// themselves answer 64 KiB–1 MiB with their documented 431
			// page (web.MaxHeaderBytes); beyond, net/http's bare 431.
			MaxHeaderBytes: 1 << 20,
			ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		https = append(https, hs)
		log.Info("listening", "part", s.name, "addr", ln.Addr().String(), "url", s.url)
		go func() {
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s: %w", s.name, err)
			}
		}()
	}
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case err := <-errc:
			return err
		case <-hup:
			runReloads(log, reloads)
		}
	}
	beforeShutdown()
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, hs := range https {
		wg.Go(func() { _ = hs.Shutdown(sctx) })
	}
	wg.Wait()
	return nil
}

// runReloads runs every reloader, logging each outcome: a failed reload
// keeps what was in use, and the others still run.
func runReloads(log *slog.Logger, reloads []reloader) {
	log.Info("SIGHUP: reloading", "parts", len(reloads))
	for _, r := range reloads {
		if err := r.reload(); err != nil {
			log.Error("reload failed", "part", r.name, "err", err)
			continue
		}
		log.Info("reloaded", "part", r.name)
	}
}
