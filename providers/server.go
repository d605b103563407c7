// Package providers runs the mock identity providers: real OpenID Connect
// providers (discovery, JWKS, authorization code flow with PKCE, userinfo,
// RP-initiated and back-channel logout) whose login page lets a tester pick one of the test
// identities instead of typing a password. They serve development and are
// the harness for the broker's eIDAS-level tests; the Scenario type is
// where they will learn to misbehave on purpose.
package providers

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/keys"
	"github.com/sesame-id/sesame/internal/web"
	"github.com/sesame-id/sesame/providers/civilregistry"
	"github.com/sesame-id/sesame/providers/dataprovider"
)

// Lifetimes follow FranceConnect's so that the broker is tested against the
// timings it will meet.
const (
	codeTTL        = 30 * time.Second
	accessTokenTTL = 60 * time.Second
	idTokenTTL     = 60 * time.Second
	// pendingTTL is how long a person may stay on the login page.
	pendingTTL = 15 * time.Minute
	// loginTTL keeps a login known to end_session; the mock has no SSO, so
	// this only has to outlive a broker session.
	loginTTL = 12 * time.Hour
)

// maxBody bounds every request body; the largest legitimate one is a token
// request of a few hundred bytes.
const maxBody = 64 << 10

//go:embed templates/*.html
var templatesFS embed.FS

// Server serves every mock IdP of a config, each under BaseURL/<id>/.
type Server struct {
	base       string // BaseURL without trailing slash
	idps       []*mockIdP
	identities []Identity
	byID       map[string]*Identity
	pages      *web.Renderer
	// parts are the login page's parts rendered once (see loginParts).
	parts   *loginParts
	handler http.Handler
	// backchannel posts logout tokens to the clients.
	backchannel *http.Client
	// now is the clock of every expiry and token time; tests move it.
	now func() time.Time
	// dps are the mock data providers, under BaseURL/dp/<id>/.
	dps *dataprovider.Server
	// rnipp is the mock civil registry, under BaseURL/rnipp/ (nil: none).
	rnipp *civilregistry.Server
}

// mockIdP is one provider: its issuer, keys, clients and in-memory state.
// State is per IdP, so a code or token of one IdP means nothing at another.
type mockIdP struct {
	cfg    config.MockIdP
	issuer string
	// path is the issuer's URL path, where the login form posts.
	path    string
	keys    *keys.Set
	clients map[string]config.MockClient

	pending *store[pendingLogin]
	codes   *store[codeRecord]
	// redeemed remembers used codes for as long as the tokens they gave
	// live, so that a replayed code also revokes those tokens.
	redeemed *store[string]
	tokens   *store[tokenRecord]
	logins   *store[loginRecord]
	// sends are the last back-channel logouts, for the sessions page.
	sends *sendLog
}

// New builds the handler serving every mock IdP of cfg under
// cfg.BaseURL/<id>/. Each IdP gets fresh ES256 and RS256 keys, so tokens do
// not survive a restart, which suits a mock.
func New(cfg *config.Providers) (*Server, error) {
	if cfg == nil {
		return nil, errors.New("providers: no providers configuration")
	}
	base := strings.TrimSuffix(cfg.BaseURL, "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("providers: base_url %q: expected an absolute http(s) URL", cfg.BaseURL)
	}
	idents, err := loadConfiguredIdentities(cfg.Identities)
	if err != nil {
		return nil, err
	}
	pages, err := web.NewRenderer(web.ThemeNeutral, "Fournisseurs d'identité de test", templatesFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("providers: %w", err)
	}
	parts, err := newLoginParts(idents)
	if err != nil {
		return nil, err
	}
	s := &Server{base: base, identities: idents, byID: map[string]*Identity{}, pages: pages, parts: parts, backchannel: newBackchannelClient(), now: time.Now}
	for i := range s.identities {
		s.byID[s.identities[i].ID] = &s.identities[i]
	}
	clock := func() time.Time { return s.now() }
	seen := map[string]bool{}
	for _, m := range cfg.IdPs {
		if m.ID == "" || strings.ContainsAny(m.ID, "/?#% ") || seen[m.ID] {
			return nil, fmt.Errorf("providers: idp id %q is empty, not a plain path segment or duplicate", m.ID)
		}
		seen[m.ID] = true
		if m.Name == "" {
			m.Name = m.ID
		}
		if len(m.ACRValues) == 0 {
			return nil, fmt.Errorf("providers: idp %s: acr_values is empty", m.ID)
		}
		ks, err := keys.Generate(jose.ES256, jose.RS256)
		if err != nil {
			return nil, fmt.Errorf("providers: idp %s: %w", m.ID, err)
		}
		idp := &mockIdP{
			cfg: m, issuer: base + "/" + m.ID, path: strings.TrimSuffix(u.Path, "/") + "/" + m.ID, keys: ks, clients: map[string]config.MockClient{},
			pending: newStore[pendingLogin](clock), codes: newStore[codeRecord](clock),
			redeemed: newStore[string](clock), tokens: newStore[tokenRecord](clock),
			logins: newStore[loginRecord](clock), sends: &sendLog{},
		}
		for _, c := range m.Clients {
			idp.clients[c.ClientID] = c
		}
		s.idps = append(s.idps, idp)
	}
	if len(cfg.DataProviders) > 0 {
		if s.dps, err = dataprovider.New(cfg.DataProviders, dataprovider.Options{BaseURL: base}); err != nil {
			return nil, fmt.Errorf("providers: %w", err)
		}
	}
	if cfg.CivilRegistry != nil {
		if s.rnipp, err = newRegistry(cfg, strings.TrimSuffix(u.Path, "/")+"/rnipp", s.identities); err != nil {
			return nil, err
		}
	}
	s.handler = web.WithCorrelationID(web.SecureHeaders(s.routes(u.Path)))
	return s, nil
}

func loadConfiguredIdentities(path string) ([]Identity, error) {
	if path == "" {
		return LoadIdentities(strings.NewReader(builtinIdentities))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("providers: %w", err)
	}
	defer f.Close()
	ids, err := LoadIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("providers: %s: %w", path, err)
	}
	return ids, nil
}

// routes registers each IdP's endpoints under the base URL's path, so the
// issuer URLs resolve when the listener is reached directly.
func (s *Server) routes(prefix string) http.Handler {
	prefix = strings.TrimSuffix(prefix, "/")
	mux := http.NewServeMux()
	mux.Handle("/static/", web.Assets())
	mux.HandleFunc("GET "+prefix+"/{$}", s.index)
	for _, idp := range s.idps {
		p := prefix + "/" + idp.cfg.ID
		mux.HandleFunc("GET "+p+"/.well-known/openid-configuration", idp.discovery)
		mux.Handle("GET "+p+"/jwks", keys.JWKSHandler(idp.keys))
		mux.HandleFunc("GET "+p+"/authorize", func(w http.ResponseWriter, r *http.Request) { s.authorize(idp, w, r) })
		mux.HandleFunc("POST "+p+"/authorize", func(w http.ResponseWriter, r *http.Request) { s.login(idp, w, r) })
		mux.HandleFunc("POST "+p+"/token", func(w http.ResponseWriter, r *http.Request) { s.token(idp, w, r) })
		userinfo := func(w http.ResponseWriter, r *http.Request) { s.userinfo(idp, w, r) }
		mux.HandleFunc("GET "+p+"/userinfo", userinfo)
		mux.HandleFunc("POST "+p+"/userinfo", userinfo)
		mux.HandleFunc("GET "+p+"/sessions", func(w http.ResponseWriter, r *http.Request) { s.sessions(idp, w, r) })
		mux.HandleFunc("POST "+p+"/sessions/end", func(w http.ResponseWriter, r *http.Request) { s.endLogins(idp, w, r) })
		if idp.cfg.HasEndSession() {
			endSession := func(w http.ResponseWriter, r *http.Request) { s.endSession(idp, w, r) }
			mux.HandleFunc("GET "+p+"/end_session", endSession)
			mux.HandleFunc("POST "+p+"/end_session", endSession)
		}
	}
	if s.dps != nil {
		mux.Handle(prefix+"/dp/", s.dps)
	}
	if s.rnipp != nil {
		mux.Handle(prefix+"/rnipp/", s.rnipp)
	}
	// No catch-all 404 page: it would also swallow the mux's 405 answers
	// (GET /token), which tell a client developer more.
	return mux
}

// ServeHTTP serves the index, the static assets and every IdP's endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Issuers returns each mock IdP's issuer keyed by its id, for wiring a dev
// stack and for tests.
func (s *Server) Issuers() map[string]string {
	out := map[string]string{}
	for _, idp := range s.idps {
		out[idp.cfg.ID] = idp.issuer
	}
	return out
}

// Identities returns the test identities the mock IdPs offer.
func (s *Server) Identities() []Identity { return append([]Identity(nil), s.identities...) }

// scopeClaims maps each scope to the claims it releases. Besides the
// standard groups, FranceConnect's one-scope-per-claim style is accepted,
// since that is how a broker may ask.
var scopeClaims = map[string][]string{
	"openid":             {"sub"},
	"profile":            {"given_name", "family_name", "birthdate", "gender", "preferred_username"},
	"birth":              {"birthplace", "birthcountry"},
	"email":              {"email"},
	"identite_pivot":     {"given_name", "family_name", "birthdate", "gender", "birthplace", "birthcountry"},
	"given_name":         {"given_name"},
	"family_name":        {"family_name"},
	"birthdate":          {"birthdate"},
	"gender":             {"gender"},
	"birthplace":         {"birthplace"},
	"birthcountry":       {"birthcountry"},
	"preferred_username": {"preferred_username"},
}

// supportedScopes lists scopeClaims' keys in a stable, readable order.
var supportedScopes = []string{
	"openid", "profile", "birth", "email", "identite_pivot", "given_name", "family_name",
	"birthdate", "gender", "birthplace", "birthcountry", "preferred_username",
}

type discoveryDoc struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	EndSessionEndpoint                string   `json:"end_session_endpoint,omitempty"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ClaimsSupported                   []string `json:"claims_supported"`
	ACRValuesSupported                []string `json:"acr_values_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	PromptValuesSupported             []string `json:"prompt_values_supported"`
	AuthorizationResponseISSSupported bool     `json:"authorization_response_iss_parameter_supported"`
	ClaimsParameterSupported          bool     `json:"claims_parameter_supported"`
	RequestParameterSupported         bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported      bool     `json:"request_uri_parameter_supported"`
	BackchannelLogoutSupported        bool     `json:"backchannel_logout_supported"`
	BackchannelLogoutSessionSupported bool     `json:"backchannel_logout_session_supported"`
}

func (idp *mockIdP) discovery(w http.ResponseWriter, r *http.Request) {
	d := discoveryDoc{
		Issuer:                            idp.issuer,
		AuthorizationEndpoint:             idp.issuer + "/authorize",
		TokenEndpoint:                     idp.issuer + "/token",
		UserinfoEndpoint:                  idp.issuer + "/userinfo",
		JWKSURI:                           idp.issuer + "/jwks",
		ResponseTypesSupported:            []string{"code"},
		ResponseModesSupported:            []string{"query"},
		GrantTypesSupported:               []string{"authorization_code"},
		SubjectTypesSupported:             []string{"public"},
		IDTokenSigningAlgValuesSupported:  []string{"ES256", "RS256"},
		ScopesSupported:                   supportedScopes,
		ClaimsSupported:                   []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "at_hash", "sid", "given_name", "family_name", "birthdate", "gender", "birthplace", "birthcountry", "email", "preferred_username"},
		ACRValuesSupported:                idp.cfg.ACRValues,
		TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post"},
		CodeChallengeMethodsSupported:     []string{"S256"},
		PromptValuesSupported:             []string{"none", "login", "consent", "select_account"},
		AuthorizationResponseISSSupported: true,
		// Logout tokens carry sid (Back-Channel Logout 1.0 §2.1).
		BackchannelLogoutSupported:        true,
		BackchannelLogoutSessionSupported: true,
	}
	if idp.cfg.HasEndSession() {
		d.EndSessionEndpoint = idp.issuer + "/end_session"
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, d)
}

// writeJSON answers v; v is always one of this package's plain structs or
// maps, so encoding cannot fail.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

type indexIdP struct {
	ID, Name, Issuer, Discovery, Sessions string
	Levels                                []string
	EndSession                            bool
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	var list []indexIdP
	for _, idp := range s.idps {
		list = append(list, indexIdP{
			ID: idp.cfg.ID, Name: idp.cfg.Name, Issuer: idp.issuer,
			Discovery: idp.issuer + "/.well-known/openid-configuration", Sessions: idp.path + "/sessions",
			Levels: idp.cfg.ACRValues, EndSession: idp.cfg.HasEndSession(),
		})
	}
	var dps []dataprovider.Summary
	if s.dps != nil {
		dps = s.dps.Providers()
	}
	s.pages.Render(w, r, http.StatusOK, "index.html", web.Page{
		Title: "Fournisseurs d'identité de test",
		Body: struct {
			IdPs          []indexIdP
			Identities    int
			DataProviders []dataprovider.Summary
		}{list, len(s.identities), dps},
	})
}

// newRegistry builds the mock civil registry of the test identities,
// served at path.
func newRegistry(cfg *config.Providers, path string, ids []Identity) (*civilregistry.Server, error) {
	for _, m := range cfg.IdPs {
		if m.ID == "rnipp" {
			return nil, errors.New("providers: idp id \"rnipp\" is the civil registry's path; choose another id")
		}
	}
	people := make([]civilregistry.Person, 0, len(ids))
	for _, id := range ids {
		people = append(people, civilregistry.Person{ID: id.ID, Pivot: civilregistry.Pivot{
			GivenName: id.GivenName, FamilyName: id.FamilyName, Birthdate: id.Birthdate, Gender: id.Gender,
			Birthplace: id.Birthplace, Birthcountry: id.Birthcountry,
		}})
	}
	r, err := civilregistry.New(people, civilregistry.Options{
		Path: path, Secret: cfg.CivilRegistry.Secret, SlowDelay: cfg.CivilRegistry.SlowDelay.D(0),
	})
	if err != nil {
		return nil, fmt.Errorf("providers: %w", err)
	}
	return r, nil
}
