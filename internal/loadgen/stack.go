package loadgen

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"text/template"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Fixed names of the bench's registrations. The secrets are random per
// run (see newSecrets); only the bench and its own processes know them.
const (
	stdClientID    = "bench-sp"
	plusClientID   = "bench-sp-plus"
	brokerAtIdPs   = "sesame-bench"
	stdIdP         = "impots"
	plusIdP        = "france-identite"
	benchIdentity  = "angela-dubois"
	spRedirectPath = "/bench/callback"
)

// proc is one process of the stack.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// Stack is the dev stack the bench starts: redis-server (on Redis), one or
// more broker processes and the mock IdPs' process, all from generated
// configuration files, and, in front of several brokers, a round-robin
// proxy inside the bench.
type Stack struct {
	dir    string
	bin    string
	redis  *redisServer
	procs  []*proc
	broker []*proc
	idps   *proc
	// proxies front the brokers, one per platform, when there are
	// several; active is how many brokers they send requests to.
	proxies []*http.Server
	rr      []*roundRobin

	// Std and Plus are the platforms' issuers as the SP and the browser
	// see them; Providers is the mock IdPs' base URL.
	Std, Plus, Providers string
	// RedirectURI is the SP's registered redirect URI: nothing listens
	// there; the bench reads the code from the broker's redirect.
	RedirectURI string
	secrets     secrets
	plusKeys    plusKeys
	// profilers are the brokers' CPU profile URLs (with -profile).
	profilers []string
	// keep leaves the folder (configs, logs) in place at Stop.
	keep bool
}

// secrets are the random shared secrets of one run.
type secrets struct {
	Sub, Session, SP, IdP string
}

func newSecrets() (secrets, error) {
	var s secrets
	for _, p := range []*string{&s.Sub, &s.Session, &s.SP, &s.IdP} {
		v, err := randomB64(32)
		if err != nil {
			return s, err
		}
		*p = v
	}
	return s, nil
}

// plusKeys are the "+" SP's keys: Sign signs its client assertions
// (ES256); Enc decrypts the id_tokens and userinfo the broker encrypts to
// it (ECDH-ES). Public is the inline jwks of its registration.
type plusKeys struct {
	Sign, Enc jose.JSONWebKey
	Public    string
}

func newPlusKeys() (plusKeys, error) {
	key := func(alg, use string) (jose.JSONWebKey, error) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return jose.JSONWebKey{}, err
		}
		jwk := jose.JSONWebKey{Key: k, Algorithm: alg, Use: use}
		tp, err := jwk.Thumbprint(crypto.SHA256)
		if err != nil {
			return jose.JSONWebKey{}, err
		}
		jwk.KeyID = use + "-" + base64.RawURLEncoding.EncodeToString(tp)[:12]
		return jwk, nil
	}
	var pk plusKeys
	var err1, err2 error
	pk.Sign, err1 = key(string(jose.ES256), "sig")
	pk.Enc, err2 = key(string(jose.ECDH_ES), "enc")
	if err := errors.Join(err1, err2); err != nil {
		return pk, fmt.Errorf("the + SP's keys: %w", err)
	}
	pub, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pk.Sign.Public(), pk.Enc.Public()}})
	if err != nil {
		return pk, fmt.Errorf("the + SP's public keys: %w", err)
	}
	pk.Public = string(pub)
	return pk, nil
}

// stackOptions say what to start.
type stackOptions struct {
	bin      string
	redis    bool
	replicas int
	// proxied puts the round-robin proxy in front of the brokers even
	// with one, so that the rows of a scale-out table compare alike.
	proxied bool
	// logDir, when set, keeps the processes' logs and configs there
	// instead of a folder removed at the end.
	logDir string
	// pprof gives each broker a metrics listener with its profiler.
	pprof bool
}

// errPortTaken marks a process that could not bind its port: another
// process took it between the bench's pick and the bind.
var errPortTaken = errors.New("port already in use")

// startStack starts the stack and waits until every part answers.
func startStack(ctx context.Context, o stackOptions) (*Stack, error) {
	dir := o.logDir
	if dir == "" {
		d, err := os.MkdirTemp("", "sesame-bench-")
		if err != nil {
			return nil, fmt.Errorf("bench folder: %w", err)
		}
		dir = d
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("bench folder: %w", err)
	}
	s := &Stack{dir: dir, bin: o.bin, keep: o.logDir != ""}
	var err error
	if s.secrets, err = newSecrets(); err != nil {
		return nil, s.fail(err)
	}
	if s.plusKeys, err = newPlusKeys(); err != nil {
		return nil, s.fail(err)
	}
	if o.redis {
		if s.redis, err = startRedis(ctx, dir); err != nil {
			return nil, s.fail(err)
		}
	}
	// Replicas share their signing keys, as they must: a token signed by
	// one verifies against the /jwks of another.
	keys := map[string]string{}
	for name, algs := range map[string]string{"std": "ES256,RS256", "plus": "ES256"} {
		out, err := exec.CommandContext(ctx, o.bin, "keys", "signing", "-alg", algs).Output()
		if err != nil {
			return nil, s.fail(fmt.Errorf("%s keys signing: %w", o.bin, err))
		}
		keys[name] = filepath.Join(dir, name+"-keys.json")
		if err := os.WriteFile(keys[name], out, 0o600); err != nil {
			return nil, s.fail(err)
		}
	}
	for attempt := 1; ; attempt++ {
		err := s.launch(ctx, o, keys)
		if err == nil {
			return s, nil
		}
		s.stopProcs()
		if !errors.Is(err, errPortTaken) || attempt == 3 {
			return nil, s.fail(err)
		}
	}
}

// fail stops what was started, keeping the folder and its logs, and
// returns err.
func (s *Stack) fail(err error) error {
	s.keep = true
	s.Stop()
	return fmt.Errorf("%w (configs and logs in %s)", err, s.dir)
}

// launch picks ports, writes one config per broker and starts the
// processes: the mock IdPs first, then the brokers, then the proxies.
func (s *Stack) launch(ctx context.Context, o stackOptions, keys map[string]string) error {
	n := max(1, o.replicas)
	proxied := o.proxied || n > 1
	ports, err := freePorts(4 + 3*n)
	if err != nil {
		return err
	}
	s.Providers = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	s.Std = fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	s.Plus = fmt.Sprintf("http://127.0.0.1:%d", ports[2])
	s.RedirectURI = fmt.Sprintf("http://127.0.0.1:%d%s", ports[3], spRedirectPath)
	// Without a proxy the one broker listens on the issuers' ports.
	stdListen, plusListen := ports[1:2], ports[2:3]
	if proxied {
		stdListen, plusListen = nil, nil
		for i := range n {
			stdListen = append(stdListen, ports[4+2*i])
			plusListen = append(plusListen, ports[5+2*i])
		}
	}
	d := configData{
		Std: s.Std, Plus: s.Plus, Providers: s.Providers, ProvidersPort: ports[0], RedirectURI: s.RedirectURI,
		StdKeys: keys["std"], PlusKeys: keys["plus"], Secrets: s.secrets, PlusJWKS: s.plusKeys.Public,
		StdClient: stdClientID, PlusClient: plusClientID, BrokerAtIdPs: brokerAtIdPs,
	}
	if s.redis != nil {
		d.RedisURL = s.redis.URL()
	}
	var paths []string
	s.profilers = nil
	for i := range n {
		d.StdPort, d.PlusPort = stdListen[i], plusListen[i]
		if o.pprof {
			d.MetricsPort = ports[4+2*n+i]
			s.profilers = append(s.profilers, fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile", d.MetricsPort))
		}
		path := filepath.Join(s.dir, fmt.Sprintf("broker-%d.yaml", i+1))
		if err := writeConfig(path, d); err != nil {
			return err
		}
		paths = append(paths, path)
	}
	s.idps = s.start("providers", "providers", paths[0])
	if err := waitReady(ctx, s.idps, s.Providers+"/"+stdIdP+"/.well-known/openid-configuration"); err != nil {
		return err
	}
	var stdBackends, plusBackends []string
	for i, path := range paths {
		p := s.start(fmt.Sprintf("broker-%d", i+1), "broker", path)
		s.broker = append(s.broker, p)
		stdBackends = append(stdBackends, fmt.Sprintf("http://127.0.0.1:%d", stdListen[i]))
		plusBackends = append(plusBackends, fmt.Sprintf("http://127.0.0.1:%d", plusListen[i]))
	}
	for i, p := range s.broker {
		// /readyz also proves the broker reaches its store.
		for _, u := range []string{stdBackends[i] + "/readyz", plusBackends[i] + "/readyz"} {
			if err := waitReady(ctx, p, u); err != nil {
				return err
			}
		}
		want := `"backend":"memory"`
		if s.redis != nil {
			want = `"backend":"redis"`
		}
		if log, _ := os.ReadFile(p.log); !bytes.Contains(log, []byte(want)) {
			return fmt.Errorf("sesame %s does not log %s: it runs on the wrong store\n%s", p.name, want, tail(log, 20))
		}
	}
	if proxied {
		for i, backends := range [][]string{stdBackends, plusBackends} {
			rr, err := newRoundRobin(backends, 8*n+64)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", ports[1+i]))
			if err != nil {
				return fmt.Errorf("%w: the proxy cannot listen on the issuer's port: %w", errPortTaken, err)
			}
			srv := &http.Server{Handler: rr, ReadHeaderTimeout: 10 * time.Second}
			go func() { _ = srv.Serve(ln) }()
			s.proxies = append(s.proxies, srv)
			s.rr = append(s.rr, rr)
		}
	}
	return nil
}

// SetActive makes the proxies send requests to the first k brokers only
// (a scale-out row with k replicas). It does nothing without proxies.
func (s *Stack) SetActive(k int) {
	for _, rr := range s.rr {
		rr.active.Store(int64(max(1, min(k, len(rr.proxies)))))
	}
}

// Profilers are the brokers' CPU profile URLs, in order; none unless
// the stack was started with its profilers.
func (s *Stack) Profilers() []string { return s.profilers }

// IdPProfiler is the mock IdPs' CPU profile URL ("" unless the stack was
// started with its profilers).
func (s *Stack) IdPProfiler() string {
	if len(s.profilers) == 0 {
		return ""
	}
	return s.Providers + "/debug/pprof/profile"
}

// BrokerPids are the broker processes' ids.
func (s *Stack) BrokerPids() []int {
	var out []int
	for _, p := range s.broker {
		out = append(out, p.cmd.Process.Pid)
	}
	return out
}

// Stop ends every process, the proxies and redis-server, and removes the
// bench's folder unless it is to be kept (-keep, or a failure).
func (s *Stack) Stop() {
	for _, srv := range s.proxies {
		_ = srv.Close()
	}
	s.proxies = nil
	s.stopProcs()
	if s.redis != nil {
		s.redis.stop()
		s.redis = nil
	}
	if !s.keep {
		_ = os.RemoveAll(s.dir)
	}
}

// stopProcs sends SIGTERM to every process, then SIGKILL after 5 s.
func (s *Stack) stopProcs() {
	for _, p := range s.procs {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, p := range s.procs {
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	s.procs, s.broker, s.idps = nil, nil, nil
}

// start runs `sesame <sub> -config path` with its output in a log file.
func (s *Stack) start(name, sub, path string) *proc {
	p := &proc{name: name, log: filepath.Join(s.dir, name+".log"), done: make(chan struct{})}
	s.procs = append(s.procs, p)
	f, err := os.Create(p.log)
	if err != nil {
		p.err = err
		close(p.done)
		return p
	}
	p.cmd = exec.Command(s.bin, sub, "-config", path)
	p.cmd.Dir = s.dir
	p.cmd.Stdout, p.cmd.Stderr = f, f
	setDeathSignal(p.cmd)
	if err := p.cmd.Start(); err != nil {
		_ = f.Close()
		p.err = fmt.Errorf("start %s %s: %w", s.bin, sub, err)
		close(p.done)
		return p
	}
	go func() {
		p.err = p.cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	return p
}

// waitReady polls u until it answers 200, the process exits, or 30 s pass
// (a loaded machine starts processes slowly).
func waitReady(ctx context.Context, p *proc, u string) error {
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	last := ""
	for time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case <-p.done:
			log, _ := os.ReadFile(p.log)
			err := fmt.Errorf("sesame %s exited before answering %s: %v\n%s", p.name, u, p.err, tail(log, 30))
			if bytes.Contains(log, []byte("address already in use")) {
				err = fmt.Errorf("%w: %w", errPortTaken, err)
			}
			return err
		default:
		}
		resp, err := c.Get(u)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(25 * time.Millisecond)
	}
	log, _ := os.ReadFile(p.log)
	return fmt.Errorf("sesame %s: %s not ready within 30 s (last: %s)\n%s", p.name, u, last, tail(log, 30))
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePorts reserves n loopback ports by listening on port 0, then frees
// them for the processes; all n stay open until all are read, so they
// differ.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomB64(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// roundRobin sends each request to the next of the active backends, as a
// Kubernetes Service or an nginx upstream would, over kept-alive
// connections. It has no health check: the bench's brokers do not die.
type roundRobin struct {
	proxies []*httputil.ReverseProxy
	next    atomic.Uint64
	active  atomic.Int64
}

func newRoundRobin(backends []string, idle int) (*roundRobin, error) {
	rr := &roundRobin{}
	tr := &http.Transport{MaxIdleConns: idle, MaxIdleConnsPerHost: idle, IdleConnTimeout: 90 * time.Second}
	for _, b := range backends {
		u, err := url.Parse(b)
		if err != nil {
			return nil, fmt.Errorf("proxy backend %q: %w", b, err)
		}
		p := &httputil.ReverseProxy{
			// The broker sees the request as sent to its issuer; it
			// trusts no proxy header, so none is added.
			Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(u); r.Out.Host = r.In.Host },
			Transport: tr,
			ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
				http.Error(w, "502 Bad Gateway (bench proxy): "+err.Error(), http.StatusBadGateway)
			},
		}
		rr.proxies = append(rr.proxies, p)
	}
	rr.active.Store(int64(len(rr.proxies)))
	return rr, nil
}

func (rr *roundRobin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i := rr.next.Add(1) % uint64(rr.active.Load())
	rr.proxies[i].ServeHTTP(w, r)
}

// configData fills configTemplate for one broker.
type configData struct {
	Std, Plus, Providers string
	StdPort, PlusPort    int
	MetricsPort          int
	ProvidersPort        int
	RedirectURI          string
	RedisURL             string
	StdKeys, PlusKeys    string
	Secrets              secrets
	PlusJWKS             string
	StdClient            string
	PlusClient           string
	BrokerAtIdPs         string
}

func writeConfig(path string, d configData) error {
	var b bytes.Buffer
	if err := configTemplate.Execute(&b, d); err != nil {
		return fmt.Errorf("bench config: %w", err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		return fmt.Errorf("bench config: %w", err)
	}
	return nil
}

// configTemplate is the bench's stack: the shape of config/dev.yaml
// (standard platform with impots, "+" with France Identité, the mock IdPs)
// reduced to what a login uses, on the bench's ports, with the bench as
// the SP of each platform. Logging is JSON as in production, audit events
// included: they are part of a login's cost.
var configTemplate = template.Must(template.New("bench").Parse(`# Written by sesame bench.
log:
  format: json
broker:
{{- if .RedisURL}}
  redis:
    url: "{{.RedisURL}}"
{{- end}}
  sub_secret: "{{.Secrets.Sub}}"
  session_keys: ["{{.Secrets.Session}}"]
  theme: dsfr
  leeway: 10s
{{- if .MetricsPort}}
  metrics_listen: "127.0.0.1:{{.MetricsPort}}"
  pprof: true
{{- end}}
  identity_providers:
    - id: impots
      name: impots.gouv.fr
      issuer: "{{.Providers}}/impots"
      client_id: {{.BrokerAtIdPs}}
      client_secret: "{{.Secrets.IdP}}"
      acr_values: [eidas1]
    - id: france-identite
      name: France Identité
      issuer: "{{.Providers}}/france-identite"
      client_id: {{.BrokerAtIdPs}}
      client_secret: "{{.Secrets.IdP}}"
      acr_values: [eidas2, eidas3]
  platforms:
    - id: std
      listen: "127.0.0.1:{{.StdPort}}"
      issuer: "{{.Std}}"
      acr_values: [eidas1]
      default_acr: eidas1
      nonce: required
      session_ttl: 30m
      code_ttl: 30s
      access_token_ttl: 60s
      id_token_ttl: 60s
      signing_keys: ["{{.StdKeys}}"]
      identity_providers: [impots]
      service_providers:
        - client_id: {{.StdClient}}
          client_secret: "{{.Secrets.SP}}"
          name: Banc de charge
          sector: bench.sesame.localhost
          redirect_uris: ["{{.RedirectURI}}"]
          scopes: [openid, identite_pivot, email]
    - id: plus
      level: plus
      listen: "127.0.0.1:{{.PlusPort}}"
      issuer: "{{.Plus}}"
      acr_values: [eidas2, eidas3]
      default_acr: eidas3
      sso_levels: [eidas2]
      nonce: required
      session_ttl: 10m
      code_ttl: 30s
      access_token_ttl: 60s
      id_token_ttl: 60s
      signing_keys: ["{{.PlusKeys}}"]
      identity_providers: [france-identite]
      service_providers:
        - client_id: {{.PlusClient}}
          name: Banc de charge (+)
          sector: bench.sesame.localhost
          redirect_uris: ["{{.RedirectURI}}"]
          scopes: [openid, identite_pivot, email]
          jwks: '{{.PlusJWKS}}'
          token_endpoint_auth_methods: [private_key_jwt]

providers:
  listen: "127.0.0.1:{{.ProvidersPort}}"
  base_url: "{{.Providers}}"
{{- if .MetricsPort}}
  pprof: true
{{- end}}
  idps:
    - id: impots
      name: impots.gouv.fr (mock)
      acr_values: [eidas1]
      clients:
        - client_id: {{.BrokerAtIdPs}}
          client_secret: "{{.Secrets.IdP}}"
          redirect_uris: ["{{.Std}}/idp/callback", "{{.Plus}}/idp/callback"]
    - id: france-identite
      name: France Identité (mock)
      acr_values: [eidas2, eidas3]
      clients:
        - client_id: {{.BrokerAtIdPs}}
          client_secret: "{{.Secrets.IdP}}"
          redirect_uris: ["{{.Std}}/idp/callback", "{{.Plus}}/idp/callback"]
`))
