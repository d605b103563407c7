package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/redis/go-redis/v9"

	"github.com/sesame-id/sesame/internal/testredis"
	"github.com/sesame-id/sesame/providers/dataprovider"
)

// The binary under test and the module it was built from, set by TestMain.
var (
	sesameBin  string
	moduleRoot string
)

// TestMain builds cmd/sesame once; every stack runs that binary.
func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		fmt.Fprintf(os.Stderr, "e2e: cannot find the module root (go env GOMOD = %q): %v\n", gomod, err)
		return 1
	}
	moduleRoot = filepath.Dir(gomod)
	dir, err := os.MkdirTemp("", "sesame-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	sesameBin = filepath.Join(dir, "sesame")
	start := time.Now()
	build := exec.Command("go", "build", "-o", sesameBin, "./cmd/sesame")
	build.Dir = moduleRoot
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/sesame failed: %v\n%s", err, out)
		return 1
	}
	fmt.Printf("e2e: built %s in %v\n", sesameBin, time.Since(start).Round(time.Millisecond))
	return m.Run()
}

// Fixed credentials of the test stack. They mirror config/dev.yaml; only
// the ports change from one stack to the next.
const (
	subSecret = "e2e-only-sub-secret-0123456789abcdef0123"

	demoSPID     = "demo-sp"
	demoSPSecret = "e2e-only-demo-sp-secret-0123456789abcdef"
	otherSPID    = "other-sector-sp"
	otherSecret  = "e2e-only-other-sector-secret-0123456789ab"

	brokerClientAtIdPs = "sesame-std"

	spaceID     = "citizen-space"
	spaceSecret = "e2e-only-citizen-space-secret-0123456789ab"

	// demoSPPlusID is the demo SP's registration on "+" (private_key_jwt
	// with the keys the demo SP publishes at /jwks); plusSPID is the test
	// itself as a "+" SP, whose keys are inline in the config.
	demoSPPlusID = "demo-sp-plus"
	plusSPID     = "e2e-plus-sp"

	// privateSPID is a private SP with identity consent: its
	// information page asks for a ticked box (the consent page).
	privateSPID     = "private-sp"
	privateSPSecret = "e2e-only-private-sp-secret-0123456789abcd"
)

// idpSecrets are the broker's client secrets at each mock IdP.
var idpSecrets = map[string]string{
	"impots":  "e2e-only-impots-secret-0123456789abcdef",
	"ameli":   "e2e-only-ameli-secret-0123456789abcdef",
	"laposte": "e2e-only-laposte-secret-0123456789abcdef",
	// The "+" IdPs. msa's broker entry allows eidas1 and eidas2 only,
	// while the mock msa can assert eidas3: the S100018 row.
	"france-identite": "e2e-only-france-identite-secret-0123456789",
	"msa":             "e2e-only-msa-secret-0123456789abcdef012",
}

// spClient is an SP registration as the test (acting as that SP) uses it.
type spClient struct {
	ID, Secret string
	// RedirectURI and PostLogoutURI are URIs registered for this client
	// that nobody serves: the test reads the redirect and never follows it.
	RedirectURI   string
	PostLogoutURI string
	// Alg is the id_token signing algorithm registered for the client.
	Alg string
	// SignedUserinfo is the userinfo_signed_response_alg, or "".
	SignedUserinfo string
	Sector         string
}

// stackOptions choose how a stack runs.
type stackOptions struct {
	// Memory runs the broker on its embedded in-memory store instead of
	// a private redis-server.
	Memory bool
	// Citizen adds the citizen space (sesame dashboard, a fourth
	// process), the history store and the mail, sent to SMTP.
	Citizen *citizenOptions
	// KeysDir makes the standard platform sign from that key directory
	// (sesame keys init), reloaded on SIGHUP only, with /jwks cached 1s.
	KeysDir string
	// EIDAS adds the eIDAS bridge and the mock eIDAS node (in the
	// providers process), sharing the broker's Redis.
	EIDAS bool
}

// citizenOptions are the citizen space's parts.
type citizenOptions struct {
	// PostgresURL puts the history in that database; empty: a SQLite
	// file in the stack's folder.
	PostgresURL string
	// SMTP is the relay (an in-process server of the test), on loopback
	// without TLS.
	SMTPHost string
	SMTPPort int
}

// stack is one running broker, mock-IdP and demo-SP trio.
type stack struct {
	Broker    string // the standard platform's issuer, http://localhost:PORT
	Plus      string // the "+" platform's issuer, on its own port
	Providers string // the mock IdPs' base URL; each issuer is Providers/<id>
	// DPKeys are the dgfip mock data provider's private keys.
	DPKeys jose.JSONWebKeySet
	DemoSP string // the demo SP's base URL
	// Dashboard is the citizen space's base URL, and HistoryPath its
	// SQLite file (with stackOptions.Citizen).
	Dashboard   string
	HistoryPath string
	// RP is the base of URIs registered for the test itself acting as an
	// SP; nothing listens there.
	RP      string
	Clients map[string]spClient
	// PlusSP is the test's own "+" SP, with its private keys.
	PlusSP *plusClient

	// Redis is a client of the broker's private redis-server (nil on the
	// memory store); RedisURL is the URL the broker was given.
	Redis    *redis.Client
	RedisURL string

	dir   string
	procs []*proc
}

// IdPIssuer is the issuer of one mock IdP.
func (s *stack) IdPIssuer(id string) string { return s.Providers + "/" + id }

// proc is one sesame process of a stack.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// startStack starts redis-server (unless opts.Memory), then sesame broker,
// sesame providers and sesame demo-sp as three processes with one config,
// and waits until each answers. Everything is stopped at the test's end; the
// logs are printed when the test failed.
func startStack(t *testing.T, opts stackOptions) *stack {
	t.Helper()
	if sesameBin == "" {
		t.Fatal("e2e: the sesame binary was not built (TestMain did not run)")
	}
	s := &stack{dir: t.TempDir(), Clients: map[string]spClient{}, PlusSP: newPlusClient(t)}
	if !opts.Memory {
		srv := testredis.Start(t)
		s.RedisURL = srv.URL()
		ro, err := redis.ParseURL(s.RedisURL)
		if err != nil {
			t.Fatalf("parse %s: %v", s.RedisURL, err)
		}
		s.Redis = redis.NewClient(ro)
		t.Cleanup(func() { _ = s.Redis.Close() })
	}

	t.Cleanup(func() { s.stop(t) })
	// Ports are free when picked but may be taken by another test process
	// before sesame binds them; such a clash is retried with new ports.
	for attempt := 1; ; attempt++ {
		err := s.launch(t, opts)
		if err == nil {
			return s
		}
		s.kill()
		if !errors.Is(err, errPortTaken) || attempt == 3 {
			t.Fatal(err)
		}
		t.Logf("e2e: %v; retrying with other ports", err)
	}
}

// errPortTaken marks a process that could not bind its port.
var errPortTaken = errors.New("port already in use")

// launch picks ports, writes the config and starts the three processes,
// waiting until each answers.
func (s *stack) launch(t *testing.T, opts stackOptions) error {
	t.Helper()
	ports := freePorts(t, 6)
	s.Broker = fmt.Sprintf("http://localhost:%d", ports[0])
	s.Providers = fmt.Sprintf("http://localhost:%d", ports[1])
	s.DemoSP = fmt.Sprintf("http://localhost:%d", ports[2])
	s.RP = fmt.Sprintf("http://localhost:%d", ports[3])
	s.Plus = fmt.Sprintf("http://localhost:%d", ports[4])
	s.Dashboard = fmt.Sprintf("http://localhost:%d", ports[5])
	s.HistoryPath = filepath.Join(s.dir, "history.db")
	s.PlusSP.RedirectURI = s.RP + "/plus/callback"
	s.PlusSP.PostLogoutURI = s.RP + "/plus/logged-out"
	s.Clients[demoSPID] = spClient{
		ID: demoSPID, Secret: demoSPSecret, Alg: "ES256", Sector: "demo.sesame.localhost",
		RedirectURI: s.RP + "/demo/callback", PostLogoutURI: s.RP + "/demo/logged-out",
	}
	s.Clients[otherSPID] = spClient{
		ID: otherSPID, Secret: otherSecret, Alg: "RS256", SignedUserinfo: "ES256", Sector: "other.sesame.localhost",
		RedirectURI: s.RP + "/other/callback", PostLogoutURI: s.RP + "/other/logged-out",
	}
	s.Clients[privateSPID] = spClient{
		ID: privateSPID, Secret: privateSPSecret, Alg: "ES256", Sector: "private.sesame.localhost",
		RedirectURI: s.RP + "/private/callback", PostLogoutURI: s.RP + "/private/logged-out",
	}

	// The dgfip mock's keys, so that the test can read what the broker
	// encrypts to it, as that provider would.
	set, err := dataprovider.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	s.DPKeys = set
	raw, _ := json.Marshal(set)
	dpKeys := filepath.Join(s.dir, "dp-dgfip.jwks.json")
	if err := os.WriteFile(dpKeys, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(s.dir, "sesame.yaml")
	writeConfig(t, cfgPath, configData{DPKeys: dpKeys,
		BrokerPort: ports[0], ProvidersPort: ports[1], DemoSPPort: ports[2], PlusPort: ports[4],
		Broker: s.Broker, Providers: s.Providers, DemoSP: s.DemoSP, Plus: s.Plus,
		Demo: s.Clients[demoSPID], Other: s.Clients[otherSPID], Private: s.Clients[privateSPID], PlusSP: s.PlusSP,
		RedisURL: s.RedisURL, SessionKey: randomKey(t), IdPSecrets: idpSecrets,
		SubSecret: subSecret,
		Citizen:   opts.Citizen, DashboardPort: ports[5], Dashboard: s.Dashboard, SpaceSecret: spaceSecret,
		CookieKey: randomKey(t), HistoryPath: s.HistoryPath, KeysDir: opts.KeysDir, EIDAS: opts.EIDAS,
	})

	broker := s.start(t, "broker", cfgPath)
	providers := s.start(t, "providers", cfgPath)
	demo := s.start(t, "demo-sp", cfgPath)
	// /readyz also proves the broker reaches its store.
	ready := []struct {
		p   *proc
		url string
	}{
		{broker, s.Broker + "/readyz"},
		{broker, s.Plus + "/readyz"},
		{providers, s.IdPIssuer("impots") + "/.well-known/openid-configuration"},
		{demo, s.DemoSP + "/healthz"},
	}
	if opts.Citizen != nil {
		ready = append(ready, struct {
			p   *proc
			url string
		}{s.start(t, "dashboard", cfgPath), s.Dashboard + "/healthz"})
	}
	for _, w := range ready {
		if err := waitReady(w.p, w.url); err != nil {
			return err
		}
	}

	backend := `"backend":"redis"`
	if opts.Memory {
		backend = `"backend":"memory"`
	}
	if log := readFile(broker.log); !strings.Contains(log, backend) {
		t.Fatalf("broker log does not say %q; the stack runs on the wrong store:\n%s", backend, log)
	}
	return nil
}

// freePorts reserves n loopback ports by listening on port 0, then frees
// them for the processes. All n stay open until all are read, so they differ.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return ports
}

func randomKey(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *stack) start(t *testing.T, sub, cfgPath string) *proc {
	t.Helper()
	logPath := filepath.Join(s.dir, sub+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sesameBin, sub, "-config", cfgPath)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = f, f
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		t.Fatalf("start sesame %s: %v", sub, err)
	}
	p := &proc{name: sub, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	s.procs = append(s.procs, p)
	return p
}

// stop ends every process and, when the test failed, prints the end of
// each log.
func (s *stack) stop(t *testing.T) {
	procs := s.procs
	s.kill()
	if t.Failed() {
		for _, p := range procs {
			t.Logf("---- sesame %s log (last 60 lines of %s) ----\n%s", p.name, p.log, tail(readFile(p.log), 60))
		}
	}
}

// kill ends every process: SIGTERM, then SIGKILL after 5 s.
func (s *stack) kill() {
	for _, p := range s.procs {
		select {
		case <-p.done:
			continue
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range s.procs {
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	s.procs = nil
}

// waitReady polls url until it answers 200, the process exits, or 20 s
// pass.
func waitReady(p *proc, url string) error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			log := readFile(p.log)
			err := fmt.Errorf("sesame %s exited before answering %s: %v\n%s", p.name, url, p.err, tail(log, 60))
			if strings.Contains(log, "address already in use") {
				err = fmt.Errorf("%w: %w", errPortTaken, err)
			}
			return err
		default:
		}
		resp, err := c.Get(url)
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
	return fmt.Errorf("sesame %s: %s not ready within 20 s (last: %s)\n%s", p.name, url, last, tail(readFile(p.log), 60))
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	return string(b)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logCount counts the lines of a process's log that contain substr.
func (s *stack) logCount(name, substr string) int {
	for _, p := range s.procs {
		if p.name == name {
			b, _ := os.ReadFile(p.log)
			return bytes.Count(b, []byte(substr))
		}
	}
	return 0
}

// waitLog waits up to 1 s (processes write asynchronously) until the log
// of name holds more than already lines containing substr.
func (s *stack) waitLog(name, substr string, already int) bool {
	for range 40 {
		if s.logCount(name, substr) > already {
			return true
		}
		time.Sleep(25 * time.Millisecond)
	}
	return false
}

// configData fills configTemplate.
type configData struct {
	BrokerPort, ProvidersPort, DemoSPPort, PlusPort int
	Broker, Providers, DemoSP, Plus                 string
	Demo, Other                                     spClient
	PlusSP                                          *plusClient
	RedisURL, SessionKey, SubSecret                 string
	IdPSecrets                                      map[string]string
	// DPKeys is the file of the dgfip mock's private keys.
	DPKeys string
	// The citizen space, when Citizen is set.
	Citizen                           *citizenOptions
	DashboardPort                     int
	Dashboard, SpaceSecret, CookieKey string
	HistoryPath                       string
	KeysDir                           string
	EIDAS                             bool
	// Private is the private SP with identity consent, registered when
	// its ID is set.
	Private spClient
}

// configTemplate is config/dev.yaml with this stack's ports, the test's
// Redis, and extra redirect URIs and SPs for the test acting as an SP.
// Both platforms share the broker's IdP registry; each mock IdP knows the
// broker's client by both platforms' callback URIs.
var configTemplate = template.Must(template.New("cfg").Parse(`# Written by the e2e harness.
log:
  format: json
broker:
  redis:
    url: "{{.RedisURL}}"
  sub_secret: "{{.SubSecret}}"
  session_keys: ["{{.SessionKey}}"]
  theme: dsfr
  leeway: 10s
{{- if .Citizen}}
  citizen_space_url: "{{.Dashboard}}"
{{- end}}
{{- if .EIDAS}}
  eidas:
    node_url: "{{.Providers}}/eidas-node"
    connector:
      request_issuer: specificCommunicationDefinitionConnectorRequest
      request_secret: e2e-eidas-connector-request-secret-0123456
      response_issuer: specificCommunicationDefinitionConnectorResponse
      response_secret: e2e-eidas-connector-response-secret-012345
    countries: [{code: CB, name: Mock Node}, {code: BE, name: Belgique}, {code: DE, name: Deutschland}]
    proxy:
      request_issuer: specificCommunicationDefinitionProxyserviceRequest
      request_secret: e2e-eidas-proxy-request-secret-0123456789
      response_issuer: specificCommunicationDefinitionProxyserviceResponse
      response_secret: e2e-eidas-proxy-response-secret-012345678
{{- end}}
  identity_providers:
{{- if .EIDAS}}
    - {id: eidas, kind: eidas, name: Identité européenne, acr_values: [eidas1, eidas2, eidas3]}
{{- end}}
    - id: impots
      name: impots.gouv.fr
      issuer: "{{.Providers}}/impots"
      client_id: sesame-std
      client_secret: "{{index .IdPSecrets "impots"}}"
      acr_values: [eidas1]
    - id: ameli
      name: ameli.fr
      issuer: "{{.Providers}}/ameli"
      client_id: sesame-std
      client_secret: "{{index .IdPSecrets "ameli"}}"
      acr_values: [eidas1]
    - id: laposte
      name: L'Identité Numérique La Poste
      issuer: "{{.Providers}}/laposte"
      client_id: sesame-std
      client_secret: "{{index .IdPSecrets "laposte"}}"
      acr_values: [eidas1, eidas2, eidas3]
    - id: france-identite
      name: France Identité
      issuer: "{{.Providers}}/france-identite"
      client_id: sesame-std
      client_secret: "{{index .IdPSecrets "france-identite"}}"
      acr_values: [eidas2, eidas3]
    # The broker allows msa up to eidas2; the mock msa can assert eidas3.
    - id: msa
      name: MSA
      issuer: "{{.Providers}}/msa"
      client_id: sesame-std
      client_secret: "{{index .IdPSecrets "msa"}}"
      acr_values: [eidas1, eidas2]
  data_scopes:
    - {scope: dgfip_rfr, provider: dgfip, claims: [revenu_fiscal_de_reference], label_fr: Revenu fiscal de référence (DGFiP), label_en: Reference tax income (DGFiP)}
    - {scope: dgfip_nbpart, provider: dgfip, claims: [nombre_de_parts], label_fr: Nombre de parts fiscales (DGFiP), label_en: Number of tax shares (DGFiP)}
    - {scope: cnaf_quotient_familial, provider: cnaf, claims: [quotient_familial], label_fr: Quotient familial (CNAF), label_en: Family quotient (CNAF)}
    - {scope: cnaf_composition_familiale, provider: cnaf, claims: [allocataires, enfants], label_fr: Composition du foyer (CNAF), label_en: Household composition (CNAF)}
  platforms:
    - id: std
      listen: "127.0.0.1:{{.BrokerPort}}"
      issuer: "{{.Broker}}"
      acr_values: [eidas1]
      default_acr: eidas1
      nonce: required
      session_ttl: 30m
      code_ttl: 30s
      access_token_ttl: 60s
      id_token_ttl: 60s
{{- if .KeysDir}}
      signing_keys_dir: "{{.KeysDir}}"
      signing_keys_reload: 1h
      jwks_max_age: 1s
{{- end}}
      identity_providers: [impots, ameli, laposte{{if .EIDAS}}, eidas{{end}}]
      data_providers:
        - {id: dgfip, name: DGFiP, client_id: dp-dgfip, client_secret: "e2e-dp-dgfip-secret-0123456789abcdef", jwks_uri: "{{.Providers}}/dp/dgfip/jwks", scopes: [dgfip_rfr, dgfip_nbpart, identite_pivot], introspection_encrypted_response_enc: A256GCM}
        - {id: cnaf, name: CNAF, client_id: dp-cnaf, client_secret: "e2e-dp-cnaf-secret-0123456789abcdef0", jwks_uri: "{{.Providers}}/dp/cnaf/jwks", scopes: [cnaf_quotient_familial, cnaf_composition_familiale, identite_pivot], introspection_encrypted_response_enc: A256GCM}
      service_providers:
        - client_id: demo-sp
          client_secret: "{{.Demo.Secret}}"
          name: Démarche de démonstration
          sector: "{{.Demo.Sector}}"
          redirect_uris: ["{{.DemoSP}}/callback", "{{.Demo.RedirectURI}}"]
          post_logout_redirect_uris: ["{{.DemoSP}}/logged-out", "{{.Demo.PostLogoutURI}}"]
          scopes: [openid, profile, birth, identite_pivot, email, given_name, family_name, birthdate, gender, birthplace, birthcountry, preferred_username, dgfip_rfr, dgfip_nbpart, cnaf_quotient_familial, cnaf_composition_familiale]
          claims: [amr]
        - client_id: other-sector-sp
          client_secret: "{{.Other.Secret}}"
          name: Autre administration
          sector: "{{.Other.Sector}}"
          redirect_uris: ["{{.Other.RedirectURI}}"]
          post_logout_redirect_uris: ["{{.Other.PostLogoutURI}}"]
          scopes: [openid, identite_pivot, email]
          userinfo_signed_response_alg: {{.Other.SignedUserinfo}}
          id_token_signed_response_alg: {{.Other.Alg}}
{{- with .Private.ID}}
        - client_id: {{.}}
          client_secret: "{{$.Private.Secret}}"
          name: Entreprise de démonstration
          type: private
          identity_consent: true
          sector: "{{$.Private.Sector}}"
          redirect_uris: ["{{$.Private.RedirectURI}}"]
          post_logout_redirect_uris: ["{{$.Private.PostLogoutURI}}"]
          scopes: [openid, identite_pivot, email]
{{- end}}
{{- if .Citizen}}
        - client_id: citizen-space
          client_secret: "{{.SpaceSecret}}"
          name: Mon espace Sésame
          sector: espace.sesame.localhost
          citizen_space: true
          redirect_uris: ["{{.Dashboard}}/callback"]
          post_logout_redirect_uris: ["{{.Dashboard}}/"]
          scopes: [openid, given_name, email]
{{- end}}

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
      identity_providers: [france-identite, laposte, msa{{if .EIDAS}}, eidas{{end}}]
      data_providers:
        - {id: dgfip, name: DGFiP, client_id: dp-dgfip, client_secret: "e2e-dp-dgfip-secret-0123456789abcdef", jwks_uri: "{{.Providers}}/dp/dgfip/jwks", scopes: [dgfip_rfr, dgfip_nbpart, identite_pivot], introspection_encrypted_response_enc: A256GCM}
        - {id: cnaf, name: CNAF, client_id: dp-cnaf, client_secret: "e2e-dp-cnaf-secret-0123456789abcdef0", jwks_uri: "{{.Providers}}/dp/cnaf/jwks", scopes: [cnaf_quotient_familial, cnaf_composition_familiale, identite_pivot], introspection_encrypted_response_enc: A256GCM}
      service_providers:
        - client_id: demo-sp-plus
          name: Démarche sensible de démonstration
          sector: "{{.Demo.Sector}}"
          redirect_uris: ["{{.DemoSP}}/callback"]
          post_logout_redirect_uris: ["{{.DemoSP}}/logged-out"]
          scopes: [openid, profile, birth, identite_pivot, email, dgfip_rfr, dgfip_nbpart, cnaf_quotient_familial, cnaf_composition_familiale]
          claims: [amr]
          jwks_uri: "{{.DemoSP}}/jwks"
          token_endpoint_auth_methods: [private_key_jwt]
          idp_hints: [france-identite, laposte]
        - client_id: e2e-plus-sp
          name: Démarche sensible de test
          sector: "{{.PlusSP.Sector}}"
          redirect_uris: ["{{.PlusSP.RedirectURI}}"]
          post_logout_redirect_uris: ["{{.PlusSP.PostLogoutURI}}"]
          scopes: [openid, identite_pivot, email]
          jwks: '{{.PlusSP.PublicJWKS}}'
          token_endpoint_auth_methods: [private_key_jwt]

providers:
  listen: "127.0.0.1:{{.ProvidersPort}}"
  base_url: "{{.Providers}}"
{{- if .EIDAS}}
  eidas_node:
    connector_request_secret: e2e-eidas-connector-request-secret-0123456
    connector_response_secret: e2e-eidas-connector-response-secret-012345
    proxy_request_secret: e2e-eidas-proxy-request-secret-0123456789
    proxy_response_secret: e2e-eidas-proxy-response-secret-012345678
    connector_response_urls:
      "{{.Broker}}": "{{.Broker}}/eidas/connector/response"
      "{{.Plus}}": "{{.Plus}}/eidas/connector/response"
    proxy_request_url: "{{.Broker}}/eidas/proxy/request"
    redis: {url: "{{.RedisURL}}"}
{{- end}}
  idps:
    - id: impots
      name: impots.gouv.fr (mock)
      acr_values: [eidas1]
      clients:
        - client_id: sesame-std
          client_secret: "{{index .IdPSecrets "impots"}}"
          redirect_uris: ["{{.Broker}}/idp/callback", "{{.Plus}}/idp/callback"]
          post_logout_redirect_uris: ["{{.Broker}}/idp/logout/callback", "{{.Plus}}/idp/logout/callback"]
    - id: ameli
      name: ameli.fr (mock)
      acr_values: [eidas1]
      end_session: false
      clients:
        - client_id: sesame-std
          client_secret: "{{index .IdPSecrets "ameli"}}"
          redirect_uris: ["{{.Broker}}/idp/callback", "{{.Plus}}/idp/callback"]
          post_logout_redirect_uris: ["{{.Broker}}/idp/logout/callback", "{{.Plus}}/idp/logout/callback"]
    - id: laposte
      name: L'Identité Numérique La Poste (mock)
      acr_values: [eidas1, eidas2, eidas3]
      clients:
        - client_id: sesame-std
          client_secret: "{{index .IdPSecrets "laposte"}}"
          redirect_uris: ["{{.Broker}}/idp/callback", "{{.Plus}}/idp/callback"]
          post_logout_redirect_uris: ["{{.Broker}}/idp/logout/callback", "{{.Plus}}/idp/logout/callback"]
    - id: france-identite
      name: France Identité (mock)
      acr_values: [eidas2, eidas3]
      clients:
        - client_id: sesame-std
          client_secret: "{{index .IdPSecrets "france-identite"}}"
          redirect_uris: ["{{.Broker}}/idp/callback", "{{.Plus}}/idp/callback"]
          post_logout_redirect_uris: ["{{.Broker}}/idp/logout/callback", "{{.Plus}}/idp/logout/callback"]
    - id: msa
      name: MSA (mock)
      acr_values: [eidas1, eidas2, eidas3]
      clients:
        - client_id: sesame-std
          client_secret: "{{index .IdPSecrets "msa"}}"
          redirect_uris: ["{{.Broker}}/idp/callback", "{{.Plus}}/idp/callback"]
          post_logout_redirect_uris: ["{{.Broker}}/idp/logout/callback", "{{.Plus}}/idp/logout/callback"]
  data_providers:
    - {id: dgfip, issuers: ["{{.Broker}}", "{{.Plus}}"], client_id: dp-dgfip, client_secret: "e2e-dp-dgfip-secret-0123456789abcdef", keys: "{{.DPKeys}}"}
    - {id: cnaf, issuers: ["{{.Broker}}", "{{.Plus}}"], client_id: dp-cnaf, client_secret: "e2e-dp-cnaf-secret-0123456789abcdef0"}

demo_sp:
  listen: "127.0.0.1:{{.DemoSPPort}}"
  base_url: "{{.DemoSP}}"
  issuer: "{{.Broker}}"
  client_id: demo-sp
  client_secret: "{{.Demo.Secret}}"
  scopes: [openid, identite_pivot, email, dgfip_rfr, dgfip_nbpart, cnaf_quotient_familial, cnaf_composition_familiale]
  acr_values: eidas1
{{- if .Citizen}}
  citizen_space_url: "{{.Dashboard}}"
{{- end}}
  data_providers:
    - {id: dgfip, name: DGFiP, url: "{{.Providers}}/dp/dgfip"}
    - {id: cnaf, name: CNAF, url: "{{.Providers}}/dp/cnaf"}
  plus:
    issuer: "{{.Plus}}"
    client_id: demo-sp-plus
    auth_method: private_key_jwt
    par: true
    dpop: true
    scopes: [openid, identite_pivot, email, dgfip_rfr, dgfip_nbpart, cnaf_quotient_familial, cnaf_composition_familiale]
    acr_values: eidas3
{{- with .Citizen}}

dashboard:
  listen: "127.0.0.1:{{$.DashboardPort}}"
  base_url: "{{$.Dashboard}}"
  issuer: "{{$.Broker}}"
  client_id: citizen-space
  client_secret: "{{$.SpaceSecret}}"
  cookie_key: "{{$.CookieKey}}"
history:
{{- if .PostgresURL}}
  driver: postgres
  url: "{{.PostgresURL}}"
{{- else}}
  driver: sqlite
  path: "{{$.HistoryPath}}"
{{- end}}
  flush_every: 50ms
mail:
  from: "Sésame (e2e) <ne-pas-repondre@sesame.localhost>"
  smtp: {host: "{{.SMTPHost}}", port: {{.SMTPPort}}, tls: none}
  retries: 2
{{- end}}
`))

func writeConfig(t *testing.T, path string, d configData) {
	t.Helper()
	var b bytes.Buffer
	if err := configTemplate.Execute(&b, d); err != nil {
		t.Fatalf("config template: %v", err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	check := exec.Command(sesameBin, "check-config", path)
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("sesame check-config refused the e2e config: %v\n%s\n%s", err, out, b.String())
	}
}

// identity is one row of providers/identities.csv, read by the test itself
// so that the expected claims do not come from the code under test.
type identity map[string]string

// Name is what the demo SP shows: given names, a space, the family name.
func (id identity) Name() string { return id["given_name"] + " " + id["family_name"] }

func loadIdentity(t *testing.T, id string) identity {
	t.Helper()
	f, err := os.Open(filepath.Join(moduleRoot, "providers", "identities.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(bufio.NewReader(f)).ReadAll()
	if err != nil {
		t.Fatalf("identities.csv: %v", err)
	}
	for _, row := range rows[1:] {
		if row[0] == id {
			out := identity{}
			for i, col := range rows[0] {
				out[col] = row[i]
			}
			return out
		}
	}
	t.Fatalf("identities.csv has no identity %q", id)
	return nil
}

// scanKeys returns every key of the private Redis with its PTTL and value.
func (s *stack) scanKeys(t *testing.T) map[string]redisEntry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out := map[string]redisEntry{}
	iter := s.Redis.Scan(ctx, 0, "*", 100).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		pttl, err := s.Redis.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatalf("PTTL %q: %v", k, err)
		}
		v, err := s.Redis.Get(ctx, k).Bytes()
		if err != nil && !errors.Is(err, redis.Nil) {
			t.Fatalf("GET %q: %v", k, err)
		}
		out[k] = redisEntry{PTTL: pttl, Value: v}
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("SCAN: %v", err)
	}
	return out
}

type redisEntry struct {
	PTTL  time.Duration
	Value []byte
}
