package demosp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Platform ids, as posted in the login form's platform field.
const (
	platformStd  = "std"
	platformPlus = "plus"
)

// Client authentication methods the demo SP can use at the token endpoint.
const (
	authSecretBasic   = "client_secret_basic"
	authPrivateKeyJWT = "private_key_jwt"
)

// platform is one of the broker's platforms as the demo SP is registered
// there: its own issuer, client, levels and, on "+", its stricter rules.
type platform struct {
	id   string // std or plus
	name string // what the citizen reads: Sésame or Sésame+
	// plus insists on encrypted id_tokens and userinfo, signed ES256 only.
	plus bool

	issuer, clientID, clientSecret string
	// authMethod is private_key_jwt or client_secret_basic; empty (the
	// standard platform) picks a secret method from the discovery document.
	authMethod string
	scopes     []string
	defaultACR string
	sessionTTL time.Duration
	// par sends the authorization request by PAR (RFC 9126) and dpop binds
	// the code and token to the demo SP's DPoP key (RFC 9449); both are
	// for "+" only, the standard platform's flow never changes.
	par, dpop bool
	// calls is the HTTP client for the platform's PAR, token and userinfo
	// endpoints: on a DPoP platform its transport adds the proofs.
	calls *http.Client
	// data is the HTTP client for the data providers: the same DPoP key
	// as calls (the token is bound to it), a shorter timeout, and no
	// redirects.
	data *http.Client

	mu   sync.Mutex
	disc *discovery
}

// errProviderLacks marks a provider whose metadata lacks something the
// platform's configuration requires (PAR, DPoP with ES256).
var errProviderLacks = errors.New("the provider does not offer what this platform is configured to require")

// dpopAlg is the algorithm of the demo SP's DPoP key.
const dpopAlg = "ES256"

// discovery is what the demo SP learned from an issuer's metadata.
type discovery struct {
	oauth       *oauth2.Config
	verifier    *oidc.IDTokenVerifier
	keySet      *oidc.RemoteKeySet // the issuer's jwks_uri, for signed userinfo
	tokenURL    string
	parURL      string // pushed_authorization_request_endpoint; set when p.par
	userinfoURL string
	endSession  string
	issRequired bool
}

func newPlatform(id, issuer, clientID, secret, authMethod string, scopes []string, acr string) (*platform, error) {
	p := &platform{
		id: id, name: "Sésame", plus: id == platformPlus,
		issuer: issuer, clientID: clientID, clientSecret: secret,
		authMethod: authMethod, scopes: scopes, defaultACR: acr, sessionTTL: sessionTTL,
	}
	where := "demosp: "
	if p.plus {
		where = "demosp: plus: "
		p.name, p.sessionTTL = "Sésame+", plusSessionTTL
		if p.authMethod == "" {
			p.authMethod = authPrivateKeyJWT
		}
		if p.defaultACR == "" {
			p.defaultACR = "eidas2"
		}
		switch p.authMethod {
		case authPrivateKeyJWT:
		case authSecretBasic:
			if secret == "" {
				return nil, errors.New(where + "client_secret is required with client_secret_basic")
			}
		default:
			return nil, fmt.Errorf("%sauth_method %q: expected %s or %s", where, p.authMethod, authPrivateKeyJWT, authSecretBasic)
		}
	}
	// The issuer is kept as written: go-oidc and the iss checks compare it
	// byte for byte with the discovery document and the tokens.
	if p.issuer == "" || p.clientID == "" {
		return nil, errors.New(where + "issuer and client_id are required")
	}
	if !slices.Contains(p.scopes, oidc.ScopeOpenID) {
		return nil, errors.New(where + "scopes must contain openid")
	}
	if p.defaultACR == "" {
		p.defaultACR = levels[0]
	}
	if levelRank(p.defaultACR) < 0 {
		return nil, errors.New(where + "acr_values must be one of " + strings.Join(levels, ", "))
	}
	return p, nil
}

// sigAlgs are the signatures accepted on the platform's id_tokens and
// userinfo: ES256 only on "+", as FranceConnect+ does.
func (p *platform) sigAlgs() []string {
	if p.plus {
		return []string{oidc.ES256}
	}
	return []string{oidc.ES256, oidc.RS256}
}

// discover fetches the issuer's metadata on first need and keeps it once it
// succeeded; a failure is not cached, so the next request tries again. The
// lock also stops a burst of requests from all hitting a broker that is
// starting up.
func (a *App) discover(r *http.Request, p *platform) (*discovery, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.disc != nil {
		return p.disc, nil
	}
	prov, err := oidc.NewProvider(a.ctx(r), p.issuer)
	if err != nil {
		return nil, err
	}
	var meta struct {
		JWKSURI     string   `json:"jwks_uri"`
		EndSession  string   `json:"end_session_endpoint"`
		ISSResponse bool     `json:"authorization_response_iss_parameter_supported"`
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
		PAR         string   `json:"pushed_authorization_request_endpoint"`
		DPoPAlgs    []string `json:"dpop_signing_alg_values_supported"`
	}
	if err := prov.Claims(&meta); err != nil {
		return nil, err
	}
	if meta.JWKSURI == "" {
		return nil, errors.New("the provider advertises no jwks_uri")
	}
	// A provider without what the demo SP is configured to require is
	// refused outright: falling back to a plain redirect or a bearer token
	// would hide the very protection the configuration asks for.
	if p.par && meta.PAR == "" {
		return nil, fmt.Errorf("%w: demo_sp.plus.par is set but %s advertises no pushed_authorization_request_endpoint", errProviderLacks, p.issuer)
	}
	if p.dpop && !slices.Contains(meta.DPoPAlgs, dpopAlg) {
		return nil, fmt.Errorf("%w: demo_sp.plus.dpop is set but %s does not list %s in dpop_signing_alg_values_supported", errProviderLacks, p.issuer, dpopAlg)
	}
	ep := prov.Endpoint()
	secret := p.clientSecret
	switch {
	case p.authMethod == authPrivateKeyJWT:
		// The assertion goes in the body with client_id; no secret at all.
		ep.AuthStyle, secret = oauth2.AuthStyleInParams, ""
	case p.authMethod == authSecretBasic:
		ep.AuthStyle = oauth2.AuthStyleInHeader
	// x/oauth2's auto-detection retries a failed exchange with the other
	// method; a spent authorization code cannot be retried, so pick the
	// method the provider says it accepts.
	case slices.Contains(meta.AuthMethods, "client_secret_basic"):
		ep.AuthStyle = oauth2.AuthStyleInHeader
	case slices.Contains(meta.AuthMethods, "client_secret_post"):
		ep.AuthStyle = oauth2.AuthStyleInParams
	}
	// One key set per issuer, cached by go-oidc, verifies both the id_token
	// and a signed userinfo. Its context only carries the HTTP client.
	keySet := oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), a.client), meta.JWKSURI)
	p.disc = &discovery{
		oauth: &oauth2.Config{
			ClientID:     p.clientID,
			ClientSecret: secret,
			Endpoint:     ep,
			RedirectURL:  a.cfg.BaseURL + "/callback",
			Scopes:       p.scopes,
		},
		verifier: oidc.NewVerifier(p.issuer, keySet, &oidc.Config{
			ClientID:             p.clientID,
			SupportedSigningAlgs: p.sigAlgs(),
		}),
		keySet:      keySet,
		tokenURL:    ep.TokenURL,
		parURL:      meta.PAR,
		userinfoURL: prov.UserInfoEndpoint(),
		endSession:  meta.EndSession,
		issRequired: meta.ISSResponse,
	}
	return p.disc, nil
}
