package broker

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/sesame-id/sesame/broker/acr"
	"github.com/sesame-id/sesame/broker/authreq"
	"github.com/sesame-id/sesame/broker/eidas"
	"github.com/sesame-id/sesame/broker/identity"
	"github.com/sesame-id/sesame/broker/session"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/cog"
	"github.com/sesame-id/sesame/internal/eidas/light"
	"github.com/sesame-id/sesame/internal/web"
)

// The eIDAS bridge's steps for a French citizen logging in at a service
// of another member state (the proxy direction). The node hands the
// bridge a foreign SP's LightRequest; the bridge turns it into an
// authorization request of its own client, eidas-proxy, pushed in
// process to the platform of the level asked; the citizen logs in as at
// any French service (chooser, IdP, registry, preferences, information
// page); the code comes back to the bridge, which redeems it in process
// and answers the node a LightResponse.

// proxyTTL bounds a proxy login, from the node's request to the answer.
const proxyTTL = 15 * time.Minute

// proxyTrip is what the bridge keeps of a foreign SP's request while the
// citizen logs in, sealed under the state of its authorization request.
type proxyTrip struct {
	Request  []byte `json:"req"`
	Verifier string `json:"v"`
}

// proxyCookie binds a proxy login to the browser that started it, so a
// code cannot be carried to another browser to answer its request.
func (p *Platform) proxyCookie() string { return p.cfg.Cookie + "_eidas" }

var errEIDASProxyBinding = web.Error{Code: "S020073", Status: http.StatusBadRequest,
	MessageFR: "Cette connexion pour un service européen n'a pas été commencée dans ce navigateur, ou a expiré. Revenez sur le service européen et recommencez.",
	MessageEN: "This sign-in for a European service was not started in this browser, or has expired. Go back to the European service and start again."}

// proxyRequest receives the node's LightRequest and starts the login on
// the platform of the level it asks for.
func (p *Platform) proxyRequest(w http.ResponseWriter, r *http.Request) {
	if p.eidas == nil || p.eidas.Proxy == nil {
		p.pages.RenderError(w, r, web.ErrNotFound)
		return
	}
	proxy, err := eidas.NewProxy(*p.eidas, p.kv)
	if err != nil {
		p.fail(w, r, web.ErrInternal, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil || len(r.PostForm["token"]) != 1 {
		p.fail(w, r, errEIDASToken, err)
		return
	}
	req, err := proxy.Receive(r.Context(), r.PostForm.Get("token"))
	if err != nil {
		p.fail(w, r, lightError(err), err)
		return
	}
	level, err := eidas.Level(req)
	var target *Platform
	if err == nil {
		if target = p.proxyPlatform(level); target == nil {
			err = errors.New("no platform serves level " + level)
		}
	}
	if err == nil && req.CitizenCountryCode != "" && req.CitizenCountryCode != "FR" {
		err = errors.New("the citizen's country is not FR")
	}
	if err == nil && !eidasCountry(req.SPCountryCode) {
		err = errors.New("the SP's country is missing or invalid")
	}
	if err != nil {
		p.log.InfoContext(r.Context(), "eidas proxy request refused", "err", err)
		p.answerNode(w, r, proxy, eidas.Failure(req, "invalid_request", "the request cannot be served"))
		return
	}
	to, err := target.pushProxyLogin(r, req, level)
	if err != nil {
		p.fail(w, r, storeError(err), err)
		return
	}
	redirect(w, r, to)
}

// proxyPlatform is the platform of this process that serves a level: the
// first whose levels include it and that has the proxy's client.
func (p *Platform) proxyPlatform(level string) *Platform {
	for _, q := range p.peers {
		if slices.Contains(q.cfg.ACRValues, level) {
			if _, ok := q.current.Load().Client(eidas.ProxyClientID); ok {
				return q
			}
		}
	}
	return nil
}

// pushProxyLogin pushes the authorization request of the proxy's client
// (PAR, in process), keeps the foreign request under its state, and
// returns where the browser goes: this platform's /eidas/proxy/start,
// which binds the login to the browser.
func (p *Platform) pushProxyLogin(r *http.Request, lr *light.Request, level string) (string, error) {
	ctx := p.withRegistry(r.Context())
	raw, err := light.MarshalRequest(lr)
	if err != nil {
		return "", err
	}
	state, verifier := session.NewID(), oauth2.GenerateVerifier()
	scopes := eidas.ScopesFor(lr.RequestedAttributes)
	sp, _ := p.reg(ctx).Client(eidas.ProxyClientID)
	granted := slices.DeleteFunc(scopes, func(s string) bool { return !slices.Contains(sp.Scopes, s) })
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"client_id": {eidas.ProxyClientID}, "response_type": {"code"}, "redirect_uri": {p.cfg.Issuer + "/eidas/proxy/callback"},
		"scope": {strings.Join(granted, " ")}, "state": {state}, "nonce": {session.NewID()}, "acr_values": {level},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	req, _, oerr := authreq.Parse(q, p.reg(ctx), p.authPolicy(ctx, true))
	if oerr == nil {
		oerr = p.checkSPPolicy(sp, req)
	}
	if oerr != nil {
		return "", oerr
	}
	uri := requestURIPrefix + session.NewID()
	par, err := p.sessions.Record("par", uri, &pushed{Request: req}, parTTL)
	if err != nil {
		return "", err
	}
	trip, err := p.sessions.Record("eidas-proxy", state, &proxyTrip{Request: raw, Verifier: verifier}, proxyTTL)
	if err != nil {
		return "", err
	}
	if err := p.sessions.Write(ctx, par, trip); err != nil {
		return "", err
	}
	return p.cfg.Issuer + "/eidas/proxy/start?" + url.Values{"state": {state}, "request_uri": {uri}}.Encode(), nil
}

// proxyStart binds the proxy login to this browser, then sends it to
// the authorization endpoint with the pushed request.
func (p *Platform) proxyStart(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state, uri := q.Get("state"), q.Get("request_uri")
	if state == "" || len(state) > 128 || uri == "" || len(uri) > 256 {
		p.fail(w, r, errEIDASProxyBinding, nil)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: p.proxyCookie(), Value: state, Path: "/eidas/proxy/", MaxAge: int(proxyTTL.Seconds()),
		HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode})
	redirect(w, r, "/authorize?"+url.Values{"client_id": {eidas.ProxyClientID}, "request_uri": {uri}}.Encode())
}

// proxyCallback receives the code of the proxy's client, redeems it in
// process and answers the node.
func (p *Platform) proxyCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	c, err := r.Cookie(p.proxyCookie())
	if err != nil || state == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		p.fail(w, r, errEIDASProxyBinding, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: p.proxyCookie(), Value: "", Path: "/eidas/proxy/", MaxAge: -1, HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode})
	var trip proxyTrip
	if err := p.sessions.TakeRecord(r.Context(), "eidas-proxy", state, &trip); err != nil {
		if errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrCorrupt) {
			p.fail(w, r, errEIDASProxyBinding, err)
			return
		}
		p.fail(w, r, storeError(err), err)
		return
	}
	lr, err := light.ParseRequest(trip.Request)
	if err != nil {
		p.fail(w, r, web.ErrInternal, err)
		return
	}
	proxy, err := eidas.NewProxy(*p.eidas, p.kv)
	if err != nil {
		p.fail(w, r, web.ErrInternal, err)
		return
	}
	if code := q.Get("error"); code != "" {
		p.answerNode(w, r, proxy, eidas.Failure(lr, safeCode(code), "the login did not complete"))
		return
	}
	var g grant
	if err := p.sessions.TakeRecord(r.Context(), "code", q.Get("code"), &g); err != nil {
		p.answerNode(w, r, proxy, eidas.Failure(lr, "invalid_grant", "the login's code is invalid or expired"))
		return
	}
	sp, _ := p.reg(r.Context()).Client(eidas.ProxyClientID)
	if sp == nil || checkGrant(&g, sp, url.Values{"redirect_uri": {p.cfg.Issuer + "/eidas/proxy/callback"}, "code_verifier": {trip.Verifier}}) != nil {
		p.answerNode(w, r, proxy, eidas.Failure(lr, "invalid_grant", "the login's code is not this request's"))
		return
	}
	if asked, _ := eidas.Level(lr); !acr.AtLeast(g.ACR, asked) {
		p.answerNode(w, r, proxy, eidas.Failure(lr, "unmet_authentication_requirements", "the level asked was not reached"))
		return
	}
	sub := identity.Sub(p.subSecret, eidas.ProxySector+lr.SPCountryCode, g.Identity.Hash())
	attrs := eidas.Attributes(lr.RequestedAttributes, sub, g.Identity, placeLabel)
	p.answerNode(w, r, proxy, eidas.Success(lr, sub, g.ACR, attrs))
}

// answerNode puts a LightResponse for the node and has the browser post
// its token there.
func (p *Platform) answerNode(w http.ResponseWriter, r *http.Request, proxy *eidas.Proxy, resp *light.Response) {
	form, err := proxy.Answer(r.Context(), resp)
	if err != nil {
		p.fail(w, r, storeError(err), err)
		return
	}
	p.postToNode(w, r, form)
}

// proxyClient is the proxy's own client on a platform: public sector,
// its codes redeemed in process, never through the eIDAS bridge itself
// (a foreign identity does not go back abroad as a French one).
func proxyClient(cfg config.Platform, idps []config.IdP, e *config.EIDAS) *config.SP {
	sp := &config.SP{
		ClientID: eidas.ProxyClientID, Name: eidas.ProxyClientName, Sector: "eidas-proxy",
		RedirectURIs: []string{cfg.Issuer + "/eidas/proxy/callback"}, Type: "public",
		Scopes:                   []string{"openid", "profile", "birth", "family_name", "given_name", "birthdate", "gender", "birthplace", "birthcountry", "preferred_username"},
		IDTokenSignedResponseAlg: "ES256",
	}
	if len(e.Proxy.Scopes) > 0 {
		sp.Scopes = e.Proxy.Scopes
	}
	for _, idp := range idps {
		if idp.IsEIDAS() {
			sp.IdPsDenied = append(sp.IdPsDenied, idp.ID)
		}
	}
	return sp
}

// eidasCountry checks an ISO 3166-1 alpha-2 code as the node writes it.
func eidasCountry(c string) bool {
	return len(c) == 2 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z'
}

// placeLabel labels a COG code for the eIDAS PlaceOfBirth: the commune
// as it was named on the date of birth, or the country.
func placeLabel(code, date string) string {
	if strings.HasPrefix(code, "99") {
		return cog.CountryName(code)
	}
	d, err := time.Parse(time.DateOnly, date)
	if err != nil {
		return ""
	}
	return cog.CommuneName(code, d)
}
