package dataprovider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Timings and bounds of the conversation with a broker.
const (
	// brokerTimeout bounds each call to a broker: the service waiting
	// for the answer has a person waiting behind it.
	brokerTimeout = 5 * time.Second
	// discoveryTTL is how long a broker's discovery document is reused.
	discoveryTTL = 10 * time.Minute
	// jwksMinInterval is the least time between two fetches of a broker's
	// JWKS: an answer signed under an unknown kid makes the provider
	// fetch it again (the broker rotated its keys), but a flood of such
	// answers does not make it hammer the broker.
	jwksMinInterval = 10 * time.Second
	// answerMaxAge is how old an introspection answer's iat may be: it
	// was made for this very request, so anything older is a replay.
	answerMaxAge = 60 * time.Second
	// clockSkew is the leeway on the broker's clock.
	clockSkew = 10 * time.Second
	// maxAnswer and maxMetadata bound what is read from a broker.
	maxAnswer   = 64 << 10
	maxMetadata = 1 << 20
)

// The media type of a JWT introspection answer and the typ its JWS
// carries (RFC 9701 §4, §5).
const (
	introspectionJWT = "application/token-introspection+jwt"
	introspectionTyp = "token-introspection+jwt"
)

// errUnavailable marks a broker that could not give an answer at all
// (unreachable, broken discovery, an error status): the provider cannot
// tell whether the token is good, which is a 502, not a 401.
var errUnavailable = errors.New("broker unavailable")

// refusedError is an answer the provider does not trust (bad signature,
// wrong audience, stale, inconsistent): the token is treated as inactive
// at that broker, and the reason is logged.
type refusedError struct{ reason string }

func (e *refusedError) Error() string { return "answer refused: " + e.reason }

func refused(format string, args ...any) error {
	return &refusedError{reason: fmt.Sprintf(format, args...)}
}

func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUnavailable, fmt.Sprintf(format, args...))
}

// broker is one platform whose tokens a provider accepts, with its cached
// discovery document and JWKS.
type broker struct {
	issuer           string
	clientID, secret string
	keys             decryptionKeys
	client           *http.Client
	now              func() time.Time

	mu     sync.Mutex
	meta   *metadata
	metaAt time.Time
	// jwks are the broker's signing keys, fetched from jwksURI at jwksAt.
	jwks    []jose.JSONWebKey
	jwksURI string
	jwksAt  time.Time
}

// metadata is what a provider reads of a broker's discovery document.
type metadata struct {
	Issuer                string `json:"issuer"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
	JWKSURI               string `json:"jwks_uri"`
}

// grant is what an active token's introspection tells the provider.
type grant struct {
	issuer string
	// scopes are the token's scopes that the broker released to this
	// provider.
	scopes []string
	// clientID is the service the token was issued to.
	clientID string
	// dpop tells a DPoP-bound token, and jkt its key's thumbprint.
	dpop bool
	jkt  string
	// pivot is nil when the answer lacks part of the pivot identity.
	pivot *pivot
	// raw is the verified token_introspection, shown to integrators (see
	// IntrospectionHeader).
	raw json.RawMessage
}

// tokenIntrospection is the token_introspection claim (RFC 9701 §5,
// RFC 7662 §2.2, plus the pivot identity). Pointers tell a missing claim
// from an empty one.
type tokenIntrospection struct {
	Active    *bool            `json:"active"`
	Scope     string           `json:"scope"`
	ClientID  string           `json:"client_id"`
	Issuer    string           `json:"iss"`
	Expiry    *jwt.NumericDate `json:"exp"`
	TokenType string           `json:"token_type"`
	Cnf       *struct {
		JKT string `json:"jkt"`
	} `json:"cnf"`
	GivenName    *string `json:"given_name"`
	FamilyName   *string `json:"family_name"`
	Birthdate    *string `json:"birthdate"`
	Gender       *string `json:"gender"`
	Birthplace   *string `json:"birthplace"`
	Birthcountry *string `json:"birthcountry"`
}

// introspect asks the broker about token. It returns the grant of an
// active token, nil for an inactive one, a *refusedError for an answer
// that does not verify, and an error wrapping errUnavailable when the
// broker gave no usable answer.
func (b *broker) introspect(ctx context.Context, token string) (*grant, error) {
	meta, err := b.metadata(ctx)
	if err != nil {
		return nil, err
	}
	form := url.Values{"token": {token}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, meta.IntrospectionEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, unavailable("introspection request: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", introspectionJWT)
	// RFC 6749 §2.3.1: client_secret_basic form-encodes both parts.
	req.SetBasicAuth(url.QueryEscape(b.clientID), url.QueryEscape(b.secret))
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, unavailable("introspection: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, unavailable("introspection: reading the answer: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		// An invalid token is answered active:false with a 200; a 400 or
		// 401 means the broker refused this provider itself (its
		// credentials, its registration), which no service can fix.
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		return nil, unavailable("introspection answered %d %.64q", resp.StatusCode, e.Error)
	}
	if len(body) > maxAnswer {
		return nil, refused("answer over %d bytes", maxAnswer)
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch ct {
	case introspectionJWT:
		return b.verify(ctx, meta, strings.TrimSpace(string(body)))
	case "application/json":
		// A broker may answer an inactive token in plain JSON; it is
		// believed, since it can only make the provider refuse. A plain
		// answer saying active is not: anyone on the path could write it.
		var plain struct {
			Active *bool `json:"active"`
		}
		if err := json.Unmarshal(body, &plain); err != nil || plain.Active == nil {
			return nil, refused("a JSON answer without a boolean active")
		}
		if !*plain.Active {
			return nil, nil
		}
		return nil, refused("an unsigned JSON answer says active; only a signed and encrypted JWT is trusted")
	default:
		return nil, refused("content type %.64q, want %s", ct, introspectionJWT)
	}
}

// verify opens a JWT introspection answer: a JWE for this provider's key
// wrapping a JWS of the broker (ES256, typ token-introspection+jwt) whose
// iss is the broker, aud this provider and iat fresh.
func (b *broker) verify(ctx context.Context, meta *metadata, raw string) (*grant, error) {
	inner, err := b.keys.decrypt(raw)
	if err != nil {
		return nil, refused("%v", err)
	}
	tok, err := jwt.ParseSigned(inner, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, refused("the JWE does not hold a JWS signed ES256: %v", err)
	}
	if len(tok.Headers) != 1 {
		return nil, refused("JWS with %d signatures", len(tok.Headers))
	}
	h := tok.Headers[0]
	// RFC 9701 §5: typ token-introspection+jwt, which keeps another JWT
	// of the broker (an id_token, a logout token) from passing for an
	// answer. The "application/" prefix may be written (RFC 7515 §4.1.9).
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	if !strings.EqualFold(strings.TrimPrefix(strings.ToLower(typ), "application/"), introspectionTyp) {
		return nil, refused("JWS typ %q, want %s", typ, introspectionTyp)
	}
	key, err := b.signingKey(ctx, meta.JWKSURI, h.KeyID)
	if err != nil {
		return nil, err
	}
	var std jwt.Claims
	var ext struct {
		TokenIntrospection json.RawMessage `json:"token_introspection"`
	}
	if err := tok.Claims(key.Key, &std, &ext); err != nil {
		return nil, refused("JWS signature or claims: %v", err)
	}
	now := b.now()
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: b.issuer, AnyAudience: jwt.Audience{b.clientID}, Time: now}, clockSkew); err != nil {
		return nil, refused("iss %q, aud %v: %v", std.Issuer, []string(std.Audience), err)
	}
	if std.IssuedAt == nil {
		return nil, refused("no iat")
	}
	if age := now.Sub(std.IssuedAt.Time()); age > answerMaxAge {
		return nil, refused("iat is %s old, more than %s", age.Round(time.Second), answerMaxAge)
	}
	if len(ext.TokenIntrospection) == 0 {
		return nil, refused("no token_introspection claim")
	}
	var ti tokenIntrospection
	if err := json.Unmarshal(ext.TokenIntrospection, &ti); err != nil {
		return nil, refused("token_introspection: %v", err)
	}
	g, err := b.grant(&ti, now)
	if g != nil {
		g.raw = ext.TokenIntrospection
	}
	return g, err
}

// grant checks that an introspection says something consistent about an
// active token and turns it into a grant.
func (b *broker) grant(ti *tokenIntrospection, now time.Time) (*grant, error) {
	switch {
	case ti.Active == nil:
		return nil, refused("token_introspection has no boolean active")
	case !*ti.Active:
		return nil, nil
	case ti.Issuer != b.issuer:
		return nil, refused("token_introspection iss %q is not the broker", ti.Issuer)
	case ti.Expiry == nil:
		return nil, refused("active token without exp")
	case !now.Before(ti.Expiry.Time()):
		return nil, refused("active token expired at %s", ti.Expiry.Time().UTC().Format(time.RFC3339))
	}
	g := &grant{issuer: b.issuer, scopes: strings.Fields(ti.Scope), clientID: ti.ClientID}
	switch {
	case strings.EqualFold(ti.TokenType, "Bearer"):
	case strings.EqualFold(ti.TokenType, "DPoP"):
		g.dpop = true
	default:
		return nil, refused("token_type %q, want Bearer or DPoP", ti.TokenType)
	}
	if ti.Cnf != nil {
		g.jkt = ti.Cnf.JKT
	}
	// A bound token is a DPoP token and the other way round: an answer
	// that says otherwise cannot be acted on safely.
	if g.dpop != (g.jkt != "") {
		return nil, refused("token_type %s with cnf.jkt %q", ti.TokenType, g.jkt)
	}
	if p := []*string{ti.GivenName, ti.FamilyName, ti.Birthdate, ti.Gender, ti.Birthplace, ti.Birthcountry}; !containsNil(p) {
		g.pivot = &pivot{
			GivenName: *ti.GivenName, FamilyName: *ti.FamilyName, Birthdate: *ti.Birthdate,
			Gender: *ti.Gender, Birthplace: *ti.Birthplace, Birthcountry: *ti.Birthcountry,
		}
	}
	return g, nil
}

func containsNil(ps []*string) bool {
	for _, p := range ps {
		if p == nil {
			return true
		}
	}
	return false
}

// metadata returns the broker's discovery document, fetched at most once
// per discoveryTTL. Its issuer must be the configured one exactly (OpenID
// Connect Discovery §4.3), or a broker could speak for another.
func (b *broker) metadata(ctx context.Context) (*metadata, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if b.meta != nil && now.Sub(b.metaAt) < discoveryTTL {
		return b.meta, nil
	}
	var m metadata
	if err := b.getJSON(ctx, b.issuer+"/.well-known/openid-configuration", &m); err != nil {
		return nil, unavailable("discovery: %v", err)
	}
	if m.Issuer != b.issuer {
		return nil, unavailable("discovery: issuer %q is not %q", m.Issuer, b.issuer)
	}
	for name, v := range map[string]string{"introspection_endpoint": m.IntrospectionEndpoint, "jwks_uri": m.JWKSURI} {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, unavailable("discovery: %s %q is not an absolute URL", name, v)
		}
	}
	b.meta, b.metaAt = &m, now
	return b.meta, nil
}

// signingKey returns the broker's ES256 key of kid, fetching the JWKS
// when the kid is unknown, at most once per jwksMinInterval.
func (b *broker) signingKey(ctx context.Context, jwksURI, kid string) (jose.JSONWebKey, error) {
	if kid == "" {
		return jose.JSONWebKey{}, refused("JWS without kid")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if jwksURI != b.jwksURI {
		b.jwks, b.jwksURI, b.jwksAt = nil, jwksURI, time.Time{}
	}
	if k, ok := findKey(b.jwks, kid); ok {
		return k, nil
	}
	now := b.now()
	if !b.jwksAt.IsZero() && now.Sub(b.jwksAt) < jwksMinInterval {
		return jose.JSONWebKey{}, refused("kid %q is not in the broker's JWKS (fetched %s ago, at most once per %s)", kid, now.Sub(b.jwksAt).Round(time.Second), jwksMinInterval)
	}
	b.jwksAt = now
	var set jose.JSONWebKeySet
	if err := b.getJSON(ctx, jwksURI, &set); err != nil {
		return jose.JSONWebKey{}, unavailable("jwks: %v", err)
	}
	var keys []jose.JSONWebKey
	for _, k := range set.Keys {
		if k.KeyID != "" && k.IsPublic() && k.Valid() && (k.Use == "" || k.Use == "sig") && (k.Algorithm == "" || k.Algorithm == string(jose.ES256)) {
			keys = append(keys, k)
		}
	}
	b.jwks = keys
	if k, ok := findKey(b.jwks, kid); ok {
		return k, nil
	}
	return jose.JSONWebKey{}, refused("kid %q is not in the broker's JWKS", kid)
}

func findKey(keys []jose.JSONWebKey, kid string) (jose.JSONWebKey, bool) {
	for _, k := range keys {
		if k.KeyID == kid {
			return k, true
		}
	}
	return jose.JSONWebKey{}, false
}

// getJSON fetches a broker document: 200 and JSON, or an error.
func (b *broker) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := b.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxMetadata)).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %v", u, err)
	}
	return nil
}

// newBrokerClient is the HTTP client for brokers: bounded in time, and
// never following a redirect, which would send the provider's
// credentials somewhere discovery did not name.
func newBrokerClient() *http.Client {
	return &http.Client{
		Timeout:       brokerTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
