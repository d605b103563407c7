package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"go.yaml.in/yaml/v3"

	"github.com/sesame-id/sesame/config"
)

// The parts of the compose specification compose.yaml uses. Decoding is
// strict (KnownFields), so a misspelt key fails here rather than being
// ignored by Docker.
type composeFile struct {
	Name     string                     `yaml:"name"`
	Services map[string]*composeService `yaml:"services"`
	Volumes  map[string]any             `yaml:"volumes"`
	// Extension fields (x-...), the anchors' home.
	Extensions map[string]any `yaml:",inline"`
}

type composeService struct {
	Image           string            `yaml:"image"`
	Build           *composeBuild     `yaml:"build"`
	NetworkMode     string            `yaml:"network_mode"`
	User            string            `yaml:"user"`
	ReadOnly        bool              `yaml:"read_only"`
	CapDrop         []string          `yaml:"cap_drop"`
	SecurityOpt     []string          `yaml:"security_opt"`
	EnvFile         []string          `yaml:"env_file"`
	Environment     map[string]string `yaml:"environment"`
	Volumes         []string          `yaml:"volumes"`
	Tmpfs           []string          `yaml:"tmpfs"`
	Ports           []string          `yaml:"ports"`
	Command         []string          `yaml:"command"`
	Entrypoint      []string          `yaml:"entrypoint"`
	Healthcheck     *composeHealth    `yaml:"healthcheck"`
	DependsOn       map[string]any    `yaml:"depends_on"`
	Restart         string            `yaml:"restart"`
	StopGracePeriod string            `yaml:"stop_grace_period"`
}

type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

type composeHealth struct {
	Test        []string `yaml:"test"`
	Interval    string   `yaml:"interval"`
	Timeout     string   `yaml:"timeout"`
	Retries     int      `yaml:"retries"`
	StartPeriod string   `yaml:"start_period"`
}

// loadCompose reads compose.yaml as Docker Compose would, after
// interpolation: "$$" is a literal "$"; any other "$" would be filled from
// the host's environment, which the one-command start must not need.
func loadCompose(t *testing.T) *composeFile {
	t.Helper()
	raw, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for i := 0; i < len(raw); i++ {
		if raw[i] != '$' {
			text.WriteByte(raw[i])
			continue
		}
		if i+1 < len(raw) && raw[i+1] == '$' {
			text.WriteByte('$')
			i++
			continue
		}
		line := 1 + bytes.Count(raw[:i], []byte("\n"))
		t.Fatalf("compose.yaml:%d: a variable compose would take from the host environment; write $$ for the container's shell", line)
	}
	dec := yaml.NewDecoder(strings.NewReader(text.String()))
	dec.KnownFields(true)
	var c composeFile
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	for k := range c.Extensions {
		if !strings.HasPrefix(k, "x-") {
			t.Errorf("compose.yaml: unknown top-level key %q", k)
		}
	}
	return &c
}

// sesameService is a compose service running the Sésame image.
type sesameService struct {
	name string
	svc  *composeService
	part string            // broker, providers, demo-sp, dashboard
	env  map[string]string // env_file, then environment
	cfg  *config.Config
	// mounts maps a path in the container to the file or folder of the
	// repository mounted there.
	mounts map[string]string
	text   string // the config file as written
}

const configInContainer = "/etc/sesame/sesame.yaml"

// sesameServices loads, for each Sésame service, the config it mounts
// with exactly the environment compose gives it.
func sesameServices(t *testing.T, c *composeFile) []*sesameService {
	t.Helper()
	var list []*sesameService
	names := make([]string, 0, len(c.Services))
	for n := range c.Services {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		svc := c.Services[n]
		if svc.Image != "sesame:local" {
			continue
		}
		s := &sesameService{name: n, svc: svc, env: map[string]string{}, mounts: map[string]string{}}
		for _, f := range svc.EnvFile {
			for k, v := range readEnvFile(t, f) {
				s.env[k] = v
			}
		}
		for k, v := range svc.Environment {
			s.env[k] = v
		}
		for _, v := range svc.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) < 2 || !strings.HasPrefix(parts[0], "./") {
				t.Fatalf("%s: volume %q: expected a bind mount ./SRC:DST[:ro]", n, v)
			}
			if len(parts) != 3 || parts[2] != "ro" {
				t.Errorf("%s: volume %q: Sésame's config and keys are mounted read-only (:ro)", n, v)
			}
			s.mounts[parts[1]] = filepath.Clean(parts[0])
		}
		if len(svc.Command) != 3 && !(len(svc.Command) == 5 && svc.Command[3] == "-drain") {
			t.Fatalf("%s: command %q: expected [PART, -config, FILE] (and -drain D for a broker)", n, svc.Command)
		}
		if svc.Command[1] != "-config" || svc.Command[2] != configInContainer {
			t.Fatalf("%s: command %q: expected -config %s", n, svc.Command, configInContainer)
		}
		s.part = svc.Command[0]
		src, ok := s.mounts[configInContainer]
		if !ok {
			t.Fatalf("%s: nothing mounted at %s, the file its command reads", n, configInContainer)
		}
		raw, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		s.text = string(raw)
		req, _ := configRefs(s.text)
		for _, k := range req {
			if _, ok := s.env[k]; !ok {
				t.Errorf("%s: %s references %s, which neither its env_file nor its environment sets", n, src, k)
			}
		}
		onlyEnv(t, s.text, s.env)
		cfg, err := config.Parse(src, raw)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		s.cfg = cfg
		list = append(list, s)
	}
	return list
}

func byPart(list []*sesameService, part string) []*sesameService {
	var out []*sesameService
	for _, s := range list {
		if s.part == part {
			out = append(out, s)
		}
	}
	return out
}

// TestComposeServices: the stack the issue asks for, every container
// non-root on a read-only root filesystem.
func TestComposeServices(t *testing.T) {
	c := loadCompose(t)
	if c.Name == "" {
		t.Error("compose.yaml: no project name: containers and volumes would be named after the folder")
	}
	for _, want := range []string{"lb", "providers", "demo-sp", "dashboard", "mailpit", "postgres", "redis-master", "redis-replica"} {
		if c.Services[want] == nil {
			t.Errorf("compose.yaml: no %s service", want)
		}
	}
	for name, s := range c.Services {
		if !s.ReadOnly {
			t.Errorf("%s: read_only is not true", name)
		}
		if s.User == "" || s.User == "root" || s.User == "0" || strings.HasPrefix(s.User, "0:") {
			t.Errorf("%s: user %q: every container runs as a non-root user", name, s.User)
		}
		if !slices.Contains(s.CapDrop, "ALL") {
			t.Errorf("%s: cap_drop lacks ALL", name)
		}
		if !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("%s: security_opt lacks no-new-privileges:true", name)
		}
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s: port %q is published beyond the host's loopback, with dev-only secrets", name, p)
			}
		}
	}
	list := sesameServices(t, c)
	brokers := byPart(list, "broker")
	if len(brokers) != 2 {
		t.Fatalf("%d broker services, want 2 replicas", len(brokers))
	}
	for _, part := range []string{"providers", "demo-sp", "dashboard"} {
		if n := len(byPart(list, part)); n != 1 {
			t.Errorf("%d %s services, want 1", n, part)
		}
	}
	for _, s := range list {
		if s.svc.Build == nil || s.svc.Build.Dockerfile != "deploy/Dockerfile" || filepath.Clean(s.svc.Build.Context) != ".." {
			t.Errorf("%s: build: want context .. (the repository) and dockerfile deploy/Dockerfile", s.name)
		}
		if s.svc.NetworkMode != "service:lb" {
			t.Errorf("%s: network_mode %q: the Sésame containers share the load balancer's namespace (compose/sesame.yaml says why)", s.name, s.svc.NetworkMode)
		}
		if s.svc.User != "65532:65532" {
			t.Errorf("%s: user %q: want the image's nonroot user 65532:65532", s.name, s.svc.User)
		}
	}
	if m := c.Services["mailpit"]; m != nil && m.NetworkMode != "service:lb" {
		t.Errorf("mailpit: network_mode %q: it must share the namespace, so that SMTP is on loopback", m.NetworkMode)
	}
}

// listener is one address something listens on in the shared namespace.
type listener struct{ who, addr string }

// TestComposeNetwork: every port the browser uses is published by the
// load balancer and served by the process whose URLs name it; nothing
// else in the shared namespace binds the same port; each broker replica's
// health check and HAProxy's backends are the ports its config listens
// on.
func TestComposeNetwork(t *testing.T) {
	c := loadCompose(t)
	list := sesameServices(t, c)
	lb := c.Services["lb"]
	hap := parseHAProxy(t, "compose/haproxy.cfg")
	var listeners []listener
	for _, b := range hap.binds {
		listeners = append(listeners, listener{"haproxy " + b.frontend, b.addr})
	}
	mp := c.Services["mailpit"]
	smtp := mp.Environment["MP_SMTP_BIND_ADDR"]
	ui := mp.Environment["MP_UI_BIND_ADDR"]
	listeners = append(listeners, listener{"mailpit smtp", smtp}, listener{"mailpit ui", ui})

	var one *sesameService
	for _, s := range list {
		cfg := s.cfg
		switch s.part {
		case "broker":
			one = s
			for _, p := range cfg.Broker.Platforms {
				listeners = append(listeners, listener{s.name + " " + p.ID, p.Listen})
				if host, _, _ := net.SplitHostPort(p.Listen); host != "127.0.0.1" {
					t.Errorf("%s: platform %s listens on %s: a replica is reached through HAProxy only (loopback)", s.name, p.ID, p.Listen)
				}
			}
			listeners = append(listeners, listener{s.name + " metrics", cfg.Broker.MetricsListen})
			if host, _, _ := net.SplitHostPort(cfg.Broker.MetricsListen); host != "127.0.0.1" {
				t.Errorf("%s: metrics_listen %s is not on loopback", s.name, cfg.Broker.MetricsListen)
			}
			checkHealth(t, s, cfg.Broker.Platforms[0].Listen, "/healthz")
			if !slices.Contains(cfg.Broker.TrustedProxies, "127.0.0.1/32") {
				t.Errorf("%s: trusted_proxies lacks 127.0.0.1/32, HAProxy's address: per-IP limits would count HAProxy", s.name)
			}
			grace := mustDuration(t, s.svc.StopGracePeriod)
			drain := mustDuration(t, s.svc.Command[4])
			if grace < drain+30e9 {
				t.Errorf("%s: stop_grace_period %s < drain %s + 20 s shutdown + 10 s flush", s.name, grace, drain)
			}
		case "providers":
			listeners = append(listeners, listener{s.name, cfg.Providers.Listen})
			checkHealth(t, s, cfg.Providers.Listen, "/"+cfg.Providers.IdPs[0].ID+"/.well-known/openid-configuration")
		case "demo-sp":
			listeners = append(listeners, listener{s.name, cfg.DemoSP.Listen})
			checkHealth(t, s, cfg.DemoSP.Listen, "/healthz")
		case "dashboard":
			listeners = append(listeners, listener{s.name, cfg.Dashboard.Listen})
			checkHealth(t, s, cfg.Dashboard.Listen, "/healthz")
		}
	}
	// One namespace: one port, one listener.
	seen := map[string]string{}
	for _, l := range listeners {
		port := portOf(t, l.addr)
		if other, dup := seen[port]; dup {
			t.Errorf("port %s: %s and %s both listen on it in the shared namespace", port, other, l.who)
		}
		seen[port] = l.who
	}
	if host, _, _ := net.SplitHostPort(smtp); host != "127.0.0.1" {
		t.Errorf("mailpit: SMTP on %s: Sésame takes a relay without TLS on loopback only", smtp)
	}

	// The browser's URLs: each is http://localhost:PORT with PORT
	// published by lb and listened on, on all interfaces, by its server.
	published := map[string]bool{}
	for _, p := range lb.Ports {
		parts := strings.Split(p, ":")
		if len(parts) != 3 || parts[1] != parts[2] {
			t.Errorf("lb: port %q: want 127.0.0.1:PORT:PORT, the same port inside and out, as the URLs say", p)
			continue
		}
		published[parts[2]] = true
	}
	cfg := one.cfg
	urls := map[string]string{} // url -> who serves its port
	for _, p := range cfg.Broker.Platforms {
		urls[p.Issuer] = "haproxy"
	}
	urls[cfg.Providers.BaseURL] = "providers"
	urls[cfg.DemoSP.BaseURL] = "demo-sp"
	urls[cfg.Dashboard.BaseURL] = "dashboard"
	urls["http://localhost:"+portOf(t, ui)] = "mailpit ui"
	servedBy := map[string]string{}
	for _, l := range listeners {
		if host, port, _ := net.SplitHostPort(l.addr); host == "0.0.0.0" {
			servedBy[port] = l.who
		}
	}
	for u, who := range urls {
		pu, err := url.Parse(u)
		if err != nil || pu.Scheme != "http" || pu.Hostname() != "localhost" {
			t.Errorf("%s: want http://localhost:PORT (the same for the browser and the containers)", u)
			continue
		}
		if !published[pu.Port()] {
			t.Errorf("%s (%s): port %s is not published by lb", u, who, pu.Port())
		}
		if s, ok := servedBy[pu.Port()]; !ok || !strings.HasPrefix(s, who) {
			t.Errorf("%s: port %s is served on 0.0.0.0 by %q, want %s", u, pu.Port(), s, who)
		}
		delete(published, pu.Port())
	}
	for p := range published {
		t.Errorf("lb publishes port %s, which no URL of the stack uses", p)
	}

	// HAProxy: each frontend is a platform's issuer port, and its backend
	// is that platform's listen address in each replica, checked on
	// /readyz.
	if hap.check != "/readyz" {
		t.Errorf("haproxy.cfg: health check %q, want GET /readyz (readiness decides routing)", hap.check)
	}
	brokers := byPart(list, "broker")
	for _, p := range cfg.Broker.Platforms {
		iss, _ := url.Parse(p.Issuer)
		var fe *haFrontend
		for i := range hap.binds {
			if portOf(t, hap.binds[i].addr) == iss.Port() {
				fe = &hap.binds[i]
			}
		}
		if fe == nil {
			t.Errorf("haproxy.cfg: no frontend on %s, the port of platform %s's issuer", iss.Port(), p.ID)
			continue
		}
		var want []string
		for _, b := range brokers {
			for _, bp := range b.cfg.Broker.Platforms {
				if bp.ID == p.ID {
					want = append(want, bp.Listen)
				}
			}
		}
		got := hap.servers[fe.backend]
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("haproxy.cfg: backend %s sends to %v, but platform %s of the replicas listens on %v", fe.backend, got, p.ID, want)
		}
	}
}

func checkHealth(t *testing.T, s *sesameService, listen, path string) {
	t.Helper()
	hc := s.svc.Healthcheck
	if hc == nil {
		t.Errorf("%s: no healthcheck", s.name)
		return
	}
	want := []string{"CMD", "/sesame", "healthcheck", "http://127.0.0.1:" + portOf(t, listen) + path}
	if !slices.Equal(hc.Test, want) {
		t.Errorf("%s: healthcheck %q, want %q (the port its config listens on)", s.name, hc.Test, want)
	}
}

// TestComposeConsistency: what one component's config says of another
// is what that other serves: issuers, redirect URIs, the citizen space,
// Redis through the sentinels, PostgreSQL, SMTP, signing keys.
func TestComposeConsistency(t *testing.T) {
	c := loadCompose(t)
	list := sesameServices(t, c)
	cfg := byPart(list, "broker")[0].cfg
	std, plus := cfg.Broker.Platforms[0], cfg.Broker.Platforms[1]
	if cfg.DemoSP.Issuer != std.Issuer || cfg.DemoSP.Plus.Issuer != plus.Issuer {
		t.Errorf("demo_sp issuers %s, %s; platforms %s, %s", cfg.DemoSP.Issuer, cfg.DemoSP.Plus.Issuer, std.Issuer, plus.Issuer)
	}
	if cfg.Dashboard.Issuer != std.Issuer {
		t.Errorf("dashboard.issuer %s, want the standard platform %s", cfg.Dashboard.Issuer, std.Issuer)
	}
	if cfg.Broker.CitizenSpaceURL != cfg.Dashboard.BaseURL || cfg.DemoSP.CitizenSpaceURL != cfg.Dashboard.BaseURL {
		t.Errorf("citizen_space_url (broker %s, demo SP %s) is not dashboard.base_url %s", cfg.Broker.CitizenSpaceURL, cfg.DemoSP.CitizenSpaceURL, cfg.Dashboard.BaseURL)
	}
	mocks := map[string]config.MockIdP{}
	for _, m := range cfg.Providers.IdPs {
		mocks[m.ID] = m
	}
	for _, idp := range cfg.Broker.IdentityProviders {
		if idp.Issuer != cfg.Providers.BaseURL+"/"+idp.ID {
			t.Errorf("IdP %s: issuer %s, but the mock IdPs serve %s/%s", idp.ID, idp.Issuer, cfg.Providers.BaseURL, idp.ID)
		}
		m, ok := mocks[idp.ID]
		if !ok || len(m.Clients) == 0 {
			t.Errorf("IdP %s: no mock IdP with a client for the broker", idp.ID)
			continue
		}
		cl := m.Clients[0]
		if cl.ClientID != idp.ClientID || cl.ClientSecret != idp.ClientSecret {
			t.Errorf("IdP %s: the broker's client_id/secret differ from the mock's", idp.ID)
		}
		for _, p := range cfg.Broker.Platforms {
			if !slices.Contains(cl.RedirectURIs, p.Issuer+"/idp/callback") {
				t.Errorf("mock IdP %s: redirect_uris lack %s/idp/callback", idp.ID, p.Issuer)
			}
		}
	}
	for _, dp := range cfg.Providers.DataProviders {
		for _, p := range cfg.Broker.Platforms {
			if !slices.Contains(dp.Issuers, p.Issuer) {
				t.Errorf("mock data provider %s: issuers lack %s", dp.ID, p.Issuer)
			}
		}
	}

	// Redis: the sentinels the brokers ask are the sentinel services, and
	// they watch the master service under the name the brokers give.
	sc := parseSentinel(t, "compose/sentinel.conf")
	var sentinels []string
	for name, s := range c.Services {
		if strings.HasPrefix(name, "redis-sentinel-") {
			sentinels = append(sentinels, name+":"+sc.port)
			if !slices.Contains(s.Volumes, "./compose/sentinel.conf:/etc/sesame/sentinel.conf:ro") {
				t.Errorf("%s: does not mount compose/sentinel.conf", name)
			}
		}
	}
	slices.Sort(sentinels)
	addrs := slices.Sorted(slices.Values(cfg.Broker.Redis.Addrs))
	if len(sentinels) != 3 || !slices.Equal(addrs, sentinels) {
		t.Errorf("broker redis.addrs %v, sentinel services %v: want the three sentinels", addrs, sentinels)
	}
	if sc.master != cfg.Broker.Redis.MasterName || c.Services[sc.host] == nil || sc.quorum != 2 {
		t.Errorf("sentinel.conf monitors %q at %s (quorum %d): want master_name %q, a compose service, quorum 2 of 3", sc.master, sc.host, sc.quorum, cfg.Broker.Redis.MasterName)
	}
	if ep := strings.Join(c.Services["redis-replica"].Entrypoint, " "); !strings.Contains(ep, "--replicaof "+sc.host+" 6379") {
		t.Errorf("redis-replica: %q does not replicate %s", ep, sc.host)
	}
	stores := readEnvFile(t, "compose/stores.env")
	if cfg.Broker.Redis.Password != stores["REDIS_PASSWORD"] {
		t.Error("broker redis.password (compose/sesame.env) differs from REDIS_PASSWORD (compose/stores.env)")
	}

	// PostgreSQL: the history URL names the postgres service and its
	// user, database and password.
	u, err := url.Parse(cfg.History.URL)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	if u.Hostname() != "postgres" || c.Services["postgres"] == nil || u.User.Username() != stores["POSTGRES_USER"] || pw != stores["POSTGRES_PASSWORD"] || strings.TrimPrefix(u.Path, "/") != stores["POSTGRES_DB"] {
		t.Errorf("history.url does not match the postgres service and compose/stores.env")
	}
	if smtp := fmt.Sprintf("%s:%d", cfg.Mail.SMTP.Host, cfg.Mail.SMTP.Port); smtp != c.Services["mailpit"].Environment["MP_SMTP_BIND_ADDR"] {
		t.Errorf("mail.smtp %s is not where Mailpit listens (%s)", smtp, c.Services["mailpit"].Environment["MP_SMTP_BIND_ADDR"])
	}

	// Signing keys: both replicas sign with the same files, mounted from
	// the repository, private JWKS; "+" keys are ES256 only.
	for _, b := range byPart(list, "broker") {
		for _, p := range b.cfg.Broker.Platforms {
			if len(p.SigningKeys) == 0 {
				t.Errorf("%s: platform %s has no signing_keys: each replica would make its own", b.name, p.ID)
			}
			for _, k := range p.SigningKeys {
				src := hostPath(t, b, k)
				checkPrivateJWKS(t, src, p.IsPlus())
			}
		}
	}
}

// hostPath maps a path in a container to the repository file mounted
// there.
func hostPath(t *testing.T, s *sesameService, p string) string {
	t.Helper()
	for dst, src := range s.mounts {
		if p == dst {
			return src
		}
		if rel, ok := strings.CutPrefix(p, dst+"/"); ok {
			return filepath.Join(src, rel)
		}
	}
	t.Fatalf("%s: %s is not under any mount", s.name, p)
	return ""
}

func checkPrivateJWKS(t *testing.T, path string, esOnly bool) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Error(err)
		return
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil || len(set.Keys) == 0 {
		t.Errorf("%s: not a JWKS with keys: %v", path, err)
		return
	}
	for _, k := range set.Keys {
		if k.IsPublic() || !k.Valid() {
			t.Errorf("%s: key %s is not a valid private key", path, k.KeyID)
		}
		if esOnly && k.Algorithm != "ES256" {
			t.Errorf("%s: key %s is %s; a plus platform signs with ES256 only", path, k.KeyID, k.Algorithm)
		}
	}
}

// TestComposeCheckConfig: `sesame check-config` accepts the compose
// config with each service's environment.
func TestComposeCheckConfig(t *testing.T) {
	c := loadCompose(t)
	for _, s := range sesameServices(t, c) {
		out := checkConfig(t, s.mounts[configInContainer], s.env)
		if !strings.Contains(out, "OK") {
			t.Errorf("%s: %s", s.name, out)
		}
	}
}

// TestComposeServes starts the mock IdPs and the demo SP from the compose
// config (on free loopback ports instead of 0.0.0.0) and calls the URLs
// their health checks call.
func TestComposeServes(t *testing.T) {
	c := loadCompose(t)
	for _, s := range sesameServices(t, c) {
		var listen string
		switch s.part {
		case "providers":
			listen = s.cfg.Providers.Listen
		case "demo-sp":
			listen = s.cfg.DemoSP.Listen
		default:
			continue // the brokers and the citizen space need Redis or PostgreSQL: see TestChartServes
		}
		t.Run(s.name, func(t *testing.T) {
			port := strconv.Itoa(freePort(t))
			path := filepath.Join(t.TempDir(), "sesame.yaml")
			if err := os.WriteFile(path, []byte(strings.ReplaceAll(s.text, `"`+listen+`"`, `"127.0.0.1:`+port+`"`)), 0o600); err != nil {
				t.Fatal(err)
			}
			p := startSesame(t, s.env, s.part, "-config", path)
			hc := s.svc.Healthcheck.Test[3]
			u, _ := url.Parse(hc)
			waitStatus(t, p, "http://127.0.0.1:"+port+u.Path, 200)
		})
	}
}

// ---- HAProxy and Sentinel configs, the lines the tests need ----

type haFrontend struct{ frontend, addr, backend string }

type haproxy struct {
	binds   []haFrontend
	servers map[string][]string // backend -> server addresses
	check   string              // the health check's URI
}

func parseHAProxy(t *testing.T, path string) *haproxy {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := &haproxy{servers: map[string][]string{}}
	var section, name string
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch f[0] {
		case "global", "defaults", "frontend", "backend":
			section, name = f[0], ""
			if len(f) > 1 {
				name = f[1]
			}
			if section == "frontend" {
				h.binds = append(h.binds, haFrontend{frontend: name})
			}
			continue
		}
		switch {
		case section == "frontend" && f[0] == "bind":
			h.binds[len(h.binds)-1].addr = f[1]
		case section == "frontend" && f[0] == "default_backend":
			h.binds[len(h.binds)-1].backend = f[1]
		case section == "backend" && f[0] == "server":
			h.servers[name] = append(h.servers[name], f[2])
			if !slices.Contains(f, "check") {
				t.Errorf("%s: server %s of %s is not health-checked", path, f[1], name)
			}
		case f[0] == "http-check" && len(f) >= 6 && f[1] == "send":
			h.check = f[5]
		}
	}
	return h
}

type sentinelConf struct {
	port, master, host string
	quorum             int
}

func parseSentinel(t *testing.T, path string) sentinelConf {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s sentinelConf
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "port":
			s.port = f[1]
		case len(f) == 6 && f[0] == "sentinel" && f[1] == "monitor":
			s.master, s.host = f[2], f[3]
			s.quorum, _ = strconv.Atoi(f[5])
		}
	}
	return s
}
