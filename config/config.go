// Package config holds Sésame's configuration types, loads them from one YAML
// file with ${ENV} expansion, and validates them so that every error names the
// file, the entry and the field.
package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole file. Each component reads its own section, so one file
// can describe the broker, the mock IdPs and the demo SP of a dev stack.
type Config struct {
	Broker    *Broker    `yaml:"broker"`
	Providers *Providers `yaml:"providers"`
	DemoSP    *DemoSP    `yaml:"demo_sp"`
	// Dashboard is the citizen space ("Mon espace Sésame").
	Dashboard *Dashboard `yaml:"dashboard"`
	// History and Mail are shared by the broker and the citizen space.
	History *History `yaml:"history"`
	Mail    *Mail    `yaml:"mail"`
	// Log sets how every component of the process writes its logs.
	Log Log `yaml:"log"`

	// File is the path the config was read from; it prefixes every error.
	File string `yaml:"-"`
	// pos is, while Parse validates, where each entry is written.
	pos *positions
}

// Log is the logging of a process.
type Log struct {
	// Format is "text" (the default, for a person at a terminal) or
	// "json": one JSON object per line, every line, audit events
	// included, for a log pipeline (what production wants).
	Format string `yaml:"format"`
}

// Broker configures the federation broker.
type Broker struct {
	Redis Redis `yaml:"redis"`
	// SubSecret keys the HMAC that derives pairwise subs. Changing it changes
	// every sub, so it is a long-lived secret, never generated at start.
	SubSecret string `yaml:"sub_secret"`
	// SessionKeys are base64 AES-256 keys for sealing stored values; the
	// first seals, all open, which is how the key rotates.
	SessionKeys []string `yaml:"session_keys"`
	// Theme is "dsfr" (State deployments) or "neutral".
	Theme string `yaml:"theme"`
	// Leeway is the clock skew accepted on upstream tokens.
	Leeway Duration `yaml:"leeway"`
	// MetricsListen serves Prometheus metrics on its own address, which
	// must not be public; empty: no metrics listener.
	MetricsListen string `yaml:"metrics_listen"`
	// Pprof adds Go's profiler (net/http/pprof, under /debug/pprof/) to
	// the metrics listener, for an operator to see where a broker's CPU
	// goes under real load. It reveals memory contents: never public.
	Pprof bool `yaml:"pprof"`
	// TrustedProxies are the CIDR ranges of the reverse proxies in front
	// of the broker. A request from one of them is counted, for the
	// per-IP limits, against the right-most X-Forwarded-For address that
	// is not itself a trusted proxy; from anywhere else X-Forwarded-For
	// is ignored, so it cannot be forged to dodge a limit.
	TrustedProxies []string `yaml:"trusted_proxies"`

	Platforms         []Platform `yaml:"platforms"`
	IdentityProviders []IdP      `yaml:"identity_providers"`
	// DataScopes is the catalogue of data scopes: what each data
	// provider serves, as the citizen is told on the information page.
	DataScopes []DataScope `yaml:"data_scopes"`
	// CitizenSpaceURL is the citizen space's base URL, for the links in
	// the connection e-mails ("ce n'était pas moi") and on the page of a
	// blocked account.
	CitizenSpaceURL string `yaml:"citizen_space_url"`
	// EIDAS is the eIDAS bridge (see eidas.go); absent: no bridge.
	EIDAS *EIDAS `yaml:"eidas"`
	// Risk is the suspicious-context rule; nil: off (see config/risk.go).
	Risk *Risk `yaml:"risk"`
	// CivilRegistry checks each identity against the civil registry
	// (RNIPP) before the sub is computed; nil: no check.
	CivilRegistry *CivilRegistry `yaml:"civil_registry"`
	// Pages are the operator's words on the legal pages (config/pages.go).
	Pages *Pages `yaml:"pages"`
}

// DataScope is one scope of the data-scope catalogue ("Revenu fiscal de
// référence (DGFiP)"). An SP is granted it like any other scope; the
// data provider it names receives it at introspection.
type DataScope struct {
	Scope string `yaml:"scope"`
	// Provider is the id of the data provider that serves it, registered
	// on each platform that grants the scope.
	Provider string `yaml:"provider"`
	// Claims are the fields of the provider's answer the scope covers.
	Claims  []string `yaml:"claims"`
	LabelFR string   `yaml:"label_fr"`
	LabelEN string   `yaml:"label_en"`
}

// IdentityScopes are the scopes of the pivot identity and its claims
// (every claim is also a scope of its own, as on FranceConnect).
var IdentityScopes = []string{"openid", "profile", "birth", "identite_pivot", "email", "given_name", "family_name",
	"birthdate", "gender", "birthplace", "birthcountry", "preferred_username"}

// DataProvider is an administration that holds data about citizens (a
// "fournisseur de données"), registered on a platform: it introspects
// the platform's access tokens (RFC 7662) and gets only the scopes it
// serves, a sub pairwise for itself, and the pivot identity its scopes
// allow.
type DataProvider struct {
	ID           string `yaml:"id"`
	Name         string `yaml:"name"`
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	// TokenEndpointAuthMethods authenticate it at introspection (default:
	// the secret methods with a secret, private_key_jwt without).
	TokenEndpointAuthMethods []string `yaml:"token_endpoint_auth_methods"`
	// JWKSURI or JWKS hold its public keys: encryption of introspection
	// answers, and private_key_jwt.
	JWKSURI string `yaml:"jwks_uri"`
	JWKS    string `yaml:"jwks"`
	// Scopes are the data scopes it serves, and the identity scopes it
	// may receive to reconcile the citizen with its records.
	Scopes []string `yaml:"scopes"`
	// Sector keys its pairwise subs (default "dp:" + id).
	Sector string `yaml:"sector"`
	// IntrospectionSignedResponseAlg, when set, makes every introspection
	// answer a JWT (RFC 9701) signed with it (ES256, or RS256 on
	// standard); without it, the answer is a JWT only when asked with
	// Accept. A JWT answer is then encrypted when the encryption fields
	// are set. On "+" both are mandatory: ES256 and A256GCM by default.
	IntrospectionSignedResponseAlg    string `yaml:"introspection_signed_response_alg"`
	IntrospectionEncryptedResponseAlg string `yaml:"introspection_encrypted_response_alg"`
	IntrospectionEncryptedResponseEnc string `yaml:"introspection_encrypted_response_enc"`
	Active                            *bool  `yaml:"active"`
}

// IsActive reports whether the data provider may introspect; absent
// means yes.
func (d DataProvider) IsActive() bool { return d.Active == nil || *d.Active }

// Redis selects the Redis store; when URL and Addrs are both empty the
// broker uses the embedded in-memory store.
type Redis struct {
	URL        string   `yaml:"url"`
	Addrs      []string `yaml:"addrs"`
	MasterName string   `yaml:"master_name"`
	Username   string   `yaml:"username"`
	Password   string   `yaml:"password"`
	DB         int      `yaml:"db"`
	Timeout    Duration `yaml:"timeout"`
	// TLSCAFile is a PEM file of the CAs trusted for a rediss:// URL, or
	// for addrs with tls, for a Redis whose certificate a private CA
	// issued; empty: the system roots.
	TLSCAFile string `yaml:"tls_ca_file"`
	// TLS speaks TLS to addrs: Cluster nodes, or Sentinels and the
	// masters they name, all on TLS ports. A URL says it by its scheme
	// (rediss://) instead.
	TLS bool `yaml:"tls"`
}

// Enabled reports whether a Redis address is configured.
func (r Redis) Enabled() bool { return r.URL != "" || len(r.Addrs) > 0 }

// Platform is one assurance product (standard or plus): its own issuer,
// listener, keys, SP registry, cookie and session namespace.
type Platform struct {
	ID     string `yaml:"id"`
	Listen string `yaml:"listen"`
	Issuer string `yaml:"issuer"`
	// ACRValues are the levels this platform accepts; DefaultACR applies when
	// an SP asks for none it knows.
	ACRValues  []string `yaml:"acr_values"`
	DefaultACR string   `yaml:"default_acr"`
	// Level is "standard" (eIDAS low, like FranceConnect) or "plus"
	// (substantial and high, like FranceConnect+). Plus means ES256 only,
	// id_tokens and userinfo encrypted to the SP's key, and a session of
	// fixed length that dies with the browser.
	Level string `yaml:"level"`
	// SSOLevels are the levels a session may be reused at by another SP
	// without a new authentication (FC: eidas1 on standard, eidas2 on
	// plus, an eidas3 session being reused as eidas2).
	SSOLevels []string `yaml:"sso_levels"`
	// ACRError is the error code for a level outside the platform:
	// "invalid_request" (registered, the default) or FranceConnect's
	// "invalid_acr" for compatibility.
	ACRError string `yaml:"acr_error"`
	// Nonce is "required" (FranceConnect's rule) or "optional" (what the
	// OpenID conformance suite expects of a plain OP).
	Nonce string `yaml:"nonce"`
	// SigningKeys are files holding private JWKs, all current (the first
	// key of an alg signs); empty, with no SigningKeysDir, means keys
	// generated at start, which suits one dev process but not replicas.
	SigningKeys []string `yaml:"signing_keys"`
	Cookie      string   `yaml:"cookie"`
	Namespace   string   `yaml:"namespace"`

	// SigningKeysDir is a key directory (`sesame keys init`, `sesame keys
	// rotate`): a manifest.json giving each key's state (next, current,
	// retired) and times, beside the key files. It replaces SigningKeys.
	SigningKeysDir string `yaml:"signing_keys_dir"`
	// SigningKeysReload is how often the broker reads the keys again
	// (default 30s); SIGHUP reloads them at once.
	SigningKeysReload Duration `yaml:"signing_keys_reload"`
	// JWKSMaxAge is the Cache-Control max-age of /jwks (default 60s). A
	// rotation's lead time must exceed it plus SigningKeysReload.
	JWKSMaxAge Duration `yaml:"jwks_max_age"`
	// HSM is the PKCS#11 token holding the manifest's hsm_label keys.
	HSM *HSM `yaml:"hsm"`

	SessionTTL     Duration `yaml:"session_ttl"`
	CodeTTL        Duration `yaml:"code_ttl"`
	AccessTokenTTL Duration `yaml:"access_token_ttl"`
	IDTokenTTL     Duration `yaml:"id_token_ttl"`
	// TripTTL bounds how long a citizen may stay at the IdP's login page:
	// a callback whose trip is older is refused (default 15m).
	TripTTL Duration `yaml:"trip_ttl"`

	// FAPI holds the parts of the FAPI 2.0 Security Profile, each a
	// policy of the platform, all on by default on "+" and off on
	// standard, where SPs that know none of it keep working.
	FAPI FAPI `yaml:"fapi"`

	// RateLimits cap, per minute, token requests per client and login
	// attempts (trips to an IdP) per client IP; 0 means no limit.
	RateLimits RateLimits `yaml:"rate_limits"`

	// IdentityProviders lists the ids of the IdPs offered on this platform,
	// in chooser order.
	IdentityProviders []string `yaml:"identity_providers"`
	ServiceProviders  []SP     `yaml:"service_providers"`
	// DataProviders may introspect this platform's access tokens.
	DataProviders []DataProvider `yaml:"data_providers"`
}

// HSM is a PKCS#11 token a platform signs with. Its keys never leave it:
// the broker asks it to sign and reads the public keys from it. Only a
// binary built with -tags pkcs11 (the sesame-hsm image) can use one.
type HSM struct {
	// Module is the path of the vendor's PKCS#11 library.
	Module string `yaml:"module"`
	// TokenLabel selects the token.
	TokenLabel string `yaml:"token_label"`
	// PINEnv names the environment variable holding the user PIN, so that
	// the PIN is never written in the file.
	PINEnv string `yaml:"pin_env"`
}

// FAPI is the FAPI 2.0 Security Profile of a platform. An unset field
// takes the platform's default: on for "+", off for standard.
type FAPI struct {
	// RequirePAR refuses authorization requests not pushed first
	// (RFC 9126 require_pushed_authorization_requests).
	RequirePAR *bool `yaml:"require_par"`
	// RequirePKCE refuses authorization requests without a S256
	// code_challenge.
	RequirePKCE *bool `yaml:"require_pkce"`
	// RequireDPoP refuses token requests without a DPoP proof, so every
	// access token is bound to its holder's key (RFC 9449).
	RequireDPoP *bool `yaml:"require_dpop"`
	// PrivateKeyJWTOnly refuses client secrets: confidential clients
	// authenticate with private_key_jwt.
	PrivateKeyJWTOnly *bool `yaml:"private_key_jwt_only"`
	// DPoPNonce makes DPoP proofs carry a nonce from the server
	// (RFC 9449 §8; off by default on both platforms).
	DPoPNonce *bool `yaml:"dpop_nonce"`
}

func orDefault(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

// RequiresPAR reports whether the platform refuses requests not pushed.
func (pl *Platform) RequiresPAR() bool { return orDefault(pl.FAPI.RequirePAR, pl.IsPlus()) }

// RequiresPKCE reports whether the platform refuses requests without PKCE.
func (pl *Platform) RequiresPKCE() bool { return orDefault(pl.FAPI.RequirePKCE, pl.IsPlus()) }

// RequiresDPoP reports whether access tokens must be DPoP-bound.
func (pl *Platform) RequiresDPoP() bool { return orDefault(pl.FAPI.RequireDPoP, pl.IsPlus()) }

// PrivateKeyJWTOnly reports whether client secrets are refused.
func (pl *Platform) PrivateKeyJWTOnly() bool {
	return orDefault(pl.FAPI.PrivateKeyJWTOnly, pl.IsPlus())
}

// DPoPNonces reports whether DPoP proofs need a server nonce.
func (pl *Platform) DPoPNonces() bool { return orDefault(pl.FAPI.DPoPNonce, false) }

// RateLimits are per-minute limits; 0 switches one off. Token requests
// are limited so that nobody but the client itself can spend its budget:
// its own authenticated requests count against TokenPerClient, a
// stranger's failed ones only against the stranger's source and against
// further failures for that client.
type RateLimits struct {
	// TokenPerClient caps the token requests of an authenticated client.
	TokenPerClient int `yaml:"token_per_client"`
	// TokenFailuresPerIP caps failed client authentications from one
	// source; over it the source is refused before authentication.
	TokenFailuresPerIP int `yaml:"token_failures_per_ip"`
	// TokenFailuresPerClient caps failed authentications naming one
	// client: over it, failing requests for that client get 429 and a
	// warning is logged, while the client's own good credentials pass.
	TokenFailuresPerClient int `yaml:"token_failures_per_client"`
	// LoginsPerIP caps trips to an IdP per client IP.
	LoginsPerIP int `yaml:"logins_per_ip"`
	// AuthorizePerIP caps authorization requests per client IP.
	AuthorizePerIP int `yaml:"authorize_per_ip"`
}

// SP is a service provider registered on a platform.
type SP struct {
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	Name         string `yaml:"name"`
	// Sector groups SPs that share pairwise subs (FranceConnect's entityId).
	Sector                 string   `yaml:"sector"`
	RedirectURIs           []string `yaml:"redirect_uris"`
	PostLogoutRedirectURIs []string `yaml:"post_logout_redirect_uris"`
	Scopes                 []string `yaml:"scopes"`
	// IDTokenSignedResponseAlg is ES256 (default) or RS256.
	IDTokenSignedResponseAlg string `yaml:"id_token_signed_response_alg"`
	// UserinfoSignedResponseAlg, when set, makes /userinfo answer a signed JWT.
	UserinfoSignedResponseAlg string `yaml:"userinfo_signed_response_alg"`
	// TokenEndpointAuthMethods are those the SP may use; default both
	// client_secret_basic and client_secret_post.
	TokenEndpointAuthMethods []string `yaml:"token_endpoint_auth_methods"`
	Active                   *bool    `yaml:"active"`

	// Type is "public" (an administration) or "private"; a private SP
	// with IdentityConsent shows a consent page with a checkbox.
	Type            string `yaml:"type"`
	IdentityConsent bool   `yaml:"identity_consent"`

	// JWKSURI or JWKS (inline: a YAML mapping or its JSON text) hold the
	// SP's public keys: for encrypting its tokens and for private_key_jwt.
	JWKSURI string     `yaml:"jwks_uri"`
	JWKS    InlineJWKS `yaml:"jwks"`
	// Encryption of id_tokens and userinfo (mandatory on plus): alg is
	// ECDH-ES, RSA-OAEP or RSA-OAEP-256 (empty: chosen from the SP's key),
	// enc is A256GCM.
	IDTokenEncryptedResponseAlg  string `yaml:"id_token_encrypted_response_alg"`
	IDTokenEncryptedResponseEnc  string `yaml:"id_token_encrypted_response_enc"`
	UserinfoEncryptedResponseAlg string `yaml:"userinfo_encrypted_response_alg"`
	UserinfoEncryptedResponseEnc string `yaml:"userinfo_encrypted_response_enc"`

	// IdPsAllowed, when set, is the only IdPs the SP may use; IdPsDenied
	// are never offered to it.
	IdPsAllowed []string `yaml:"idps_allowed"`
	IdPsDenied  []string `yaml:"idps_denied"`
	// IdPHints are the IdPs the SP may name in idp_hint to skip the chooser.
	IdPHints []string `yaml:"idp_hints"`
	// Prompts are the prompt values the SP may send (default: all).
	Prompts []string `yaml:"prompts"`
	// Claims are the claims the SP may ask for through the claims
	// parameter beyond its scopes (amr).
	Claims []string `yaml:"claims"`
	// BackchannelLogoutURI receives a logout token when a session in
	// which the SP got a code ends (OIDC Back-Channel Logout 1.0).
	BackchannelLogoutURI string `yaml:"backchannel_logout_uri"`
	// CitizenSpace marks the citizen space's own registration: its
	// id_token and userinfo carry sesame_account (the account id its
	// history is kept under) and idp_id (the account used), which no
	// other SP receives.
	CitizenSpace bool `yaml:"citizen_space"`
}

// Encrypts reports whether the SP's id_tokens and userinfo are encrypted.
func (s SP) Encrypts() bool { return s.IDTokenEncryptedResponseEnc != "" }

// IsActive reports whether the SP may log users in; absent means yes.
func (s SP) IsActive() bool { return s.Active == nil || *s.Active }

// IdP is an upstream identity provider the broker logs users in with. Any
// standard OIDC provider fits: discovery URL, client credentials and levels.
type IdP struct {
	ID string `yaml:"id"`
	// Kind is "oidc" (the default) or "eidas" (the eIDAS bridge).
	Kind   string `yaml:"kind"`
	Name   string `yaml:"name"`
	Issuer string `yaml:"issuer"`
	// DiscoveryURL overrides issuer + /.well-known/openid-configuration.
	DiscoveryURL string   `yaml:"discovery_url"`
	ClientID     string   `yaml:"client_id"`
	ClientSecret string   `yaml:"client_secret"`
	ACRValues    []string `yaml:"acr_values"`
	// ACRMap translates the IdP's own acr values (Keycloak's "1", a URN)
	// to Sésame's levels.
	ACRMap map[string]string `yaml:"acr_map"`
	// ACRIfMissing is the level assumed when the IdP asserts no acr at
	// all, as plain OIDC providers do. Only eidas1 may be assumed: a
	// substantial or high level must always be asserted.
	ACRIfMissing string   `yaml:"acr_if_missing"`
	Scopes       []string `yaml:"scopes"`
	Active       *bool    `yaml:"active"`
	Display      *bool    `yaml:"display"`
	Timeout      Duration `yaml:"timeout"`
	// CircuitFailures outages in a row (default 5) take the IdP off the
	// chooser for CircuitCooldown (default 30s); then one login probes it.
	CircuitFailures int      `yaml:"circuit_failures"`
	CircuitCooldown Duration `yaml:"circuit_cooldown"`
	// CircuitProbeTimeout (default 10s, at most the cool-down) is how
	// long the probing login holds its slot; an abandoned one frees it
	// then, not a cool-down later.
	CircuitProbeTimeout Duration `yaml:"circuit_probe_timeout"`
	// NotifyEmail sends the citizen an e-mail at each new connection made
	// with this IdP, when it gives an address (default true).
	NotifyEmail *bool `yaml:"notify_email"`
	// CivilRegistry checks this IdP's identities against the broker's
	// civil registry (default true; see ChecksCivilRegistry).
	CivilRegistry *bool `yaml:"civil_registry"`
	// Logo is the chooser's logo: one of the broker's static files
	// ("idp/impots.svg" or "/static/idp/impots.svg"); empty: a generic one.
	Logo string `yaml:"logo"`
}

// Notifies reports whether logins through the IdP are notified by e-mail.
func (i IdP) Notifies() bool { return i.NotifyEmail == nil || *i.NotifyEmail }

// IsActive reports whether the IdP can be chosen; an inactive one is greyed out.
func (i IdP) IsActive() bool { return i.Active == nil || *i.Active }

// IsDisplayed reports whether the IdP appears on the chooser at all.
func (i IdP) IsDisplayed() bool { return i.Display == nil || *i.Display }

// Providers configures the mock identity providers.
type Providers struct {
	Listen string `yaml:"listen"`
	// BaseURL is the public URL of the listener; each mock IdP's issuer is
	// BaseURL + "/" + id.
	BaseURL string `yaml:"base_url"`
	// Identities is a CSV file of test identities; empty means the built-in set.
	Identities string    `yaml:"identities"`
	IdPs       []MockIdP `yaml:"idps"`
	// DataProviders are the mock data providers ("fournisseurs de
	// données"), each served under BaseURL/dp/<id>/.
	DataProviders []MockDataProvider `yaml:"data_providers"`
	// EIDASNode is the mock eIDAS node, served under BaseURL/eidas-node/
	// when present (see eidasnode.go).
	EIDASNode *EIDASNode `yaml:"eidas_node"`
	// CivilRegistry, when set, serves the mock civil registry (RNIPP)
	// under BaseURL/rnipp/.
	CivilRegistry *MockCivilRegistry `yaml:"civil_registry"`
	// Pprof serves Go's profiler under BaseURL/debug/pprof/, for load
	// tests of the mocks themselves (sesame bench -profile). The mocks
	// are never deployed in production; leave it off anywhere public.
	Pprof bool `yaml:"pprof"`
}

// MockDataProviderAPIs are the APIs the mock data providers know; a data
// provider's id chooses its API.
var MockDataProviderAPIs = []string{"dgfip", "cnaf"}

// MockDataProvider is one mock data provider: an API a service calls with
// the access token the broker gave it. It introspects the token at the
// broker (RFC 7662, JWT answer per RFC 9701), finds the person in its
// records and answers what the granted scopes cover.
type MockDataProvider struct {
	// ID is one of MockDataProviderAPIs ("dgfip", "cnaf"): it chooses the
	// API and the path, BaseURL/dp/<id>/.
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// Issuers are the broker platforms whose tokens the provider accepts.
	// It introspects at each in turn, through each one's discovery, until
	// one says the token is active.
	Issuers []string `yaml:"issuers"`
	// ClientID and ClientSecret are the provider's registration at the
	// brokers (client_secret_basic at the introspection endpoint).
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	// Keys is a file of the provider's private JWKs (ECDH-ES or
	// RSA-OAEP-256), the keys the brokers encrypt their introspection
	// answers to, published at BaseURL/dp/<id>/jwks; empty: generated at
	// start.
	Keys string `yaml:"keys"`
	// Data is the provider's records, a JSON file; empty: the built-in set.
	Data string `yaml:"data"`
}

// MockIdP is one mock identity provider.
type MockIdP struct {
	ID        string       `yaml:"id"`
	Name      string       `yaml:"name"`
	ACRValues []string     `yaml:"acr_values"`
	Clients   []MockClient `yaml:"clients"`
	// EndSession switches the end_session endpoint on (default) or off, to
	// test brokers against IdPs without one.
	EndSession *bool `yaml:"end_session"`
}

// HasEndSession reports whether the mock IdP advertises end_session.
func (m MockIdP) HasEndSession() bool { return m.EndSession == nil || *m.EndSession }

// MockClient is a relying party registered at a mock IdP (normally the broker).
type MockClient struct {
	ClientID               string   `yaml:"client_id"`
	ClientSecret           string   `yaml:"client_secret"`
	RedirectURIs           []string `yaml:"redirect_uris"`
	PostLogoutRedirectURIs []string `yaml:"post_logout_redirect_uris"`
	// BackchannelLogoutURI receives the mock IdP's logout tokens (OIDC
	// Back-Channel Logout 1.0) when a tester ends one of the client's
	// logins at the IdP (GET /<idp>/sessions); empty: none are sent.
	BackchannelLogoutURI string `yaml:"backchannel_logout_uri"`
}

// DemoSP configures the demo service provider.
type DemoSP struct {
	Listen string `yaml:"listen"`
	// BaseURL is the demo SP's public URL; its callback is BaseURL/callback.
	BaseURL      string   `yaml:"base_url"`
	Issuer       string   `yaml:"issuer"`
	ClientID     string   `yaml:"client_id"`
	ClientSecret string   `yaml:"client_secret"`
	Scopes       []string `yaml:"scopes"`
	ACRValues    string   `yaml:"acr_values"`
	// Plus, when set, lets the demo SP log in on the "+" platform too.
	Plus *DemoSPPlatform `yaml:"plus"`
	// Keys is a file of the demo SP's private JWKs (decryption and
	// private_key_jwt), published at BaseURL/jwks; empty: generated at start.
	Keys string `yaml:"keys"`
	// DataProviders are the administrations the demo SP calls, right after
	// the login, with the access token it got, to pre-fill its form ("zéro
	// justificatif"): only the endpoints the granted data scopes cover.
	DataProviders []DemoDataProvider `yaml:"data_providers"`
	// CitizenSpaceURL, when set, is linked from the demo SP's pages: there
	// the citizen sees this login in their history.
	CitizenSpaceURL string `yaml:"citizen_space_url"`
}

// DemoDataProvider is a data provider as the demo SP calls it.
type DemoDataProvider struct {
	// ID says which API the provider serves, and so which endpoints the
	// demo SP calls under URL: dgfip or cnaf (see DemoDataProviderIDs).
	ID string `yaml:"id"`
	// Name is what the citizen reads as the source of a figure ("Source :
	// DGFiP").
	Name string `yaml:"name"`
	// URL is the provider's base URL, e.g. http://localhost:8100/dp/dgfip;
	// the endpoints' paths are added to it.
	URL string `yaml:"url"`
}

// DemoDataProviderIDs are the data providers whose API the demo SP knows.
var DemoDataProviderIDs = []string{"dgfip", "cnaf"}

// DemoSPPlatform is the demo SP's registration on another platform.
type DemoSPPlatform struct {
	Issuer       string   `yaml:"issuer"`
	ClientID     string   `yaml:"client_id"`
	ClientSecret string   `yaml:"client_secret"`
	Scopes       []string `yaml:"scopes"`
	ACRValues    string   `yaml:"acr_values"`
	// AuthMethod is client_secret_basic or private_key_jwt.
	AuthMethod string `yaml:"auth_method"`
	// PAR sends the authorization request to the platform's pushed
	// authorization request endpoint (RFC 9126), authenticated as the
	// client, and the browser only a request_uri: the parameters can then
	// be neither read nor altered on the way, which is what the "+"
	// platform requires. Discovery must advertise the endpoint.
	PAR bool `yaml:"par"`
	// DPoP binds the code and the access token to a key the demo SP holds
	// (RFC 9449): a proof signed with it goes with every call to the
	// platform, so a stolen code or token is useless elsewhere. The key is
	// generated at each start and never published.
	DPoP bool `yaml:"dpop"`
}

// Duration is a time.Duration written as "30s" or "10m" in YAML.
type Duration time.Duration

// UnmarshalYAML parses Go duration syntax so the file reads naturally.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		// A TypeError, not a plain error: the decoder then goes on with
		// the rest of the file instead of giving up on it.
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a duration like 30s or 10m", n.Line, s)}}
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the value as UnmarshalYAML reads it ("30s"), so a
// config written back to a file loads again.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns the value as a time.Duration, or def when unset.
func (d Duration) D(def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return time.Duration(d)
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// Load reads, expands and validates one config file.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, raw)
}

// Parse expands ${VAR} and ${VAR:-default} references, decodes strictly
// (unknown fields are errors, so typos do not silently disable a setting) and
// validates. name is used in error messages. Every problem of the file is
// reported at once, in a *Problems (see ErrInvalid): unset variables,
// unknown fields with the nearest known one, values of the wrong shape,
// then what validation finds in the rest, each with its line.
func Parse(name string, raw []byte) (*Config, error) {
	expanded, lm, unset := expandEnv(raw)
	ps := newPositions(lm)
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(expanded)).Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		ps.unset(unset)
		ps.found = append(ps.found, syntaxProblem(err, lm))
		return nil, &Problems{File: name, Items: ps.found}
	}
	c := &Config{}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		checkStructure(doc.Content[0], reflect.TypeFor[Config](), ps)
	}
	structural := len(ps.found) > 0
	ps.unset(unset)
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	err := dec.Decode(c)
	var te *yaml.TypeError
	switch {
	case err == nil || errors.Is(err, io.EOF):
	case errors.As(err, &te) && structural && !ps.aborted:
		// The structure check said it all, in better words; the decoder
		// filled in the rest, which is validated below.
	case structural:
		return nil, &Problems{File: name, Items: ps.found}
	case te != nil:
		// The structure check missed what the decoder refused: pass its
		// words on, without the Go types.
		for _, msg := range te.Errors {
			ps.found = append(ps.found, syntaxProblem(errors.New(msg), lm))
		}
		return nil, &Problems{File: name, Items: ps.found}
	default:
		ps.found = append(ps.found, syntaxProblem(err, lm))
		return nil, &Problems{File: name, Items: ps.found}
	}
	c.File = name
	c.pos = ps
	err = c.Validate()
	c.pos = nil
	if p := (*Problems)(nil); errors.As(err, &p) {
		// In file order, as an operator goes through it; problems of the
		// whole file (no line) first.
		slices.SortStableFunc(p.Items, func(a, b Problem) int {
			return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
		})
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// unsetVar is a ${VAR} without a default whose variable is not set, at
// these byte offsets of the file and of the expanded text.
type unsetVar struct {
	name        string
	offset, exp int
}

// expandEnv replaces ${VAR} and ${VAR:-default}, keeping where each
// replacement went so positions can be given in the file's lines. An
// unset variable without a default becomes empty, and is reported.
func expandEnv(raw []byte) ([]byte, *lineMap, []unsetVar) {
	lm := &lineMap{raw: raw}
	var out []byte
	var missing []unsetVar
	last := 0
	for _, m := range envRef.FindAllSubmatchIndex(raw, -1) {
		out = append(out, raw[last:m[0]]...)
		name := string(raw[m[2]:m[3]])
		v, ok := os.LookupEnv(name)
		if !ok {
			if m[4] >= 0 {
				v = string(raw[m[6]:m[7]])
			} else {
				missing = append(missing, unsetVar{name, m[0], len(out)})
			}
		}
		lm.subs = append(lm.subs, subst{rawStart: m[0], rawEnd: m[1], expStart: len(out), expEnd: len(out) + len(v)})
		out = append(out, v...)
		last = m[1]
	}
	if lm.subs == nil {
		lm.exp = raw
		return raw, lm, nil
	}
	out = append(out, raw[last:]...)
	lm.exp = out
	return out, lm, missing
}

// yamlErrLine is the line the YAML parser gives in its messages.
var yamlErrLine = regexp.MustCompile(`^(?:yaml: )?(?:unmarshal errors:\s*)?line (\d+): `)

// syntaxProblem is a parser or decoder message as a problem, at its line
// in the file, without Go type names.
func syntaxProblem(err error, lm *lineMap) Problem {
	msg := strings.TrimSpace(err.Error())
	q := Problem{}
	if m := yamlErrLine.FindStringSubmatch(msg); m != nil {
		if n, convErr := strconv.Atoi(m[1]); convErr == nil {
			q.Line = lm.pos(n, 1).line
		}
	}
	q.Message = cleanDecodeError(errors.New(msg))
	return q
}

// ErrInvalid marks validation failures.
var ErrInvalid = errors.New("invalid configuration")
