// Command go-client is a minimal service provider for Sésame, to copy
// from: it logs a citizen in and shows what it received. Only go-oidc,
// x/oauth2 and (for "+") go-jose, no Sésame code.
//
// Standard platform (eidas1), with the client_secret of `sesame sp new`:
//
//	go run ./examples/go-client -issuer http://localhost:8000 -client-id ID -client-secret SECRET
//
// "+" platform (eidas2, eidas3), with the private keys of `sesame sp new
// -plus`: PAR, PKCE, private_key_jwt, DPoP, and the JWE id_token and
// userinfo decrypted (plus.go):
//
//	go run ./examples/go-client -issuer http://localhost:8001 -client-id ID -keys ID.jwks.json -acr eidas3
//
// Then open http://localhost:9000. See docs/quickstart.md.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"log"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

func main() {
	var c Config
	flag.StringVar(&c.Issuer, "issuer", "http://localhost:8000", "the platform's issuer (http://localhost:8001 for \"+\")")
	flag.StringVar(&c.ClientID, "client-id", "", "the SP's client_id")
	flag.StringVar(&c.ClientSecret, "client-secret", "", "its client_secret (standard platform)")
	flag.StringVar(&c.KeysFile, "keys", "", `its private JWKS file ("+" platform): a sig key for private_key_jwt, an enc key for the JWE tokens`)
	flag.StringVar(&c.ACR, "acr", "eidas1", "the level asked: eidas1, or eidas2 or eidas3 on \"+\"")
	flag.StringVar(&c.Scope, "scope", "openid identite_pivot email", "the scopes asked")
	flag.StringVar(&c.RedirectURI, "redirect-uri", "http://localhost:9000/callback", "the registered redirect_uri; the client listens on its host")
	flag.Parse()
	if c.ClientID == "" {
		log.Fatal("go-client: -client-id is required (sesame sp new prints one)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	app, err := New(ctx, c)
	if err != nil {
		log.Fatal("go-client: ", err)
	}
	u, err := url.Parse(c.RedirectURI)
	if err != nil {
		log.Fatal("go-client: -redirect-uri: ", err)
	}
	log.Printf("go-client: open http://%s/ (client %s at %s, level %s)", u.Host, c.ClientID, c.Issuer, c.ACR)
	log.Fatal(http.ListenAndServe(u.Host, app))
}

// Config is what the client needs: its registration and the level.
type Config struct {
	Issuer, ClientID, ClientSecret, KeysFile string
	ACR, Scope, RedirectURI                  string
}

// App is the client: three pages, / and /login and /callback.
type App struct {
	cfg      Config
	provider *oidc.Provider
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	plus     *plus // nil on the standard platform

	mu     sync.Mutex
	logins map[string]pending // by state
}

// pending is a login under way: what the callback checks.
type pending struct {
	nonce, verifier string
	at              time.Time
}

// New discovers the platform and builds the client.
func New(ctx context.Context, c Config) (*App, error) {
	provider, err := oidc.NewProvider(ctx, c.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discovery of %s: %w", c.Issuer, err)
	}
	a := &App{
		cfg: c, provider: provider, logins: map[string]pending{},
		oauth: oauth2.Config{
			ClientID: c.ClientID, ClientSecret: c.ClientSecret, Endpoint: provider.Endpoint(),
			RedirectURL: c.RedirectURI, Scopes: strings.Fields(c.Scope),
		},
		verifier: provider.Verifier(&oidc.Config{ClientID: c.ClientID}),
	}
	a.oauth.Endpoint.AuthStyle = oauth2.AuthStyleInHeader // client_secret_basic
	if c.KeysFile != "" {
		if a.plus, err = newPlus(ctx, provider, c); err != nil {
			return nil, err
		}
		a.oauth.Endpoint.AuthStyle = oauth2.AuthStyleInParams // client_id in the form, no secret
	}
	return a, nil
}

func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/":
		page.Execute(w, map[string]any{"Issuer": a.cfg.Issuer, "ACR": a.cfg.ACR})
	case "/login":
		a.login(w, r)
	case "/callback":
		a.callback(w, r)
	default:
		http.NotFound(w, r)
	}
}

// login sends the browser to the platform with a fresh state, nonce and
// PKCE verifier; on "+" the request goes by PAR first.
func (a *App) login(w http.ResponseWriter, r *http.Request) {
	state, nonce, verifier := rand.Text(), rand.Text(), oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce),
		oauth2.SetAuthURLParam("acr_values", a.cfg.ACR)}
	target := a.oauth.AuthCodeURL(state, opts...)
	if a.plus != nil {
		var err error
		if target, err = a.plus.push(r.Context(), target); err != nil {
			http.Error(w, "pushed authorization request: "+err.Error(), http.StatusBadGateway)
			return
		}
	}
	a.mu.Lock()
	a.logins[state] = pending{nonce: nonce, verifier: verifier, at: time.Now()}
	a.mu.Unlock()
	// The state is also bound to this browser, so that a code sent to
	// another browser is refused.
	http.SetCookie(w, &http.Cookie{Name: "go_client_state", Value: state, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: 900})
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// callback checks what came back, redeems the code, verifies the
// id_token, fetches userinfo and shows both.
func (a *App) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("iss") != a.cfg.Issuer { // RFC 9207: the answer is from our platform
		http.Error(w, "iss is not the issuer", http.StatusBadRequest)
		return
	}
	if e := q.Get("error"); e != "" {
		http.Error(w, "login refused: "+e+": "+q.Get("error_description"), http.StatusForbidden)
		return
	}
	cookie, err := r.Cookie("go_client_state")
	a.mu.Lock()
	p, ok := a.logins[q.Get("state")]
	delete(a.logins, q.Get("state"))
	a.mu.Unlock()
	if err != nil || cookie.Value != q.Get("state") || !ok || time.Since(p.at) > 15*time.Minute {
		http.Error(w, "unknown or stale state: start again at /", http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	res, err := a.finish(ctx, q.Get("code"), p)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	page.Execute(w, res)
}

// result is what the page shows after a login.
type result struct {
	Issuer, ACR       string
	IDToken, UserInfo map[string]any
	// Encrypted describes the JWE headers on "+".
	Encrypted []string
}

func (a *App) finish(ctx context.Context, code string, p pending) (*result, error) {
	opts := []oauth2.AuthCodeOption{oauth2.VerifierOption(p.verifier)}
	if a.plus != nil {
		ctx = a.plus.context(ctx) // DPoP proofs on the token call
		opts = append(opts, a.plus.clientAssertion()...)
	}
	tok, err := a.oauth.Exchange(ctx, code, opts...)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	res := &result{Issuer: a.cfg.Issuer, ACR: a.cfg.ACR}
	if a.plus != nil {
		var hdr string
		if raw, hdr, err = a.plus.decrypt(raw); err != nil {
			return nil, fmt.Errorf("id_token: %w", err)
		}
		res.Encrypted = append(res.Encrypted, "id_token: "+hdr)
	}
	idt, err := a.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("id_token: %w", err)
	}
	if idt.Nonce != p.nonce {
		return nil, errors.New("id_token: wrong nonce")
	}
	if err := idt.Claims(&res.IDToken); err != nil {
		return nil, fmt.Errorf("id_token: %w", err)
	}
	if res.IDToken["acr"] != a.cfg.ACR {
		// Sésame never answers below the level asked; a client checks anyway.
		return nil, fmt.Errorf("id_token: acr %v, asked %s", res.IDToken["acr"], a.cfg.ACR)
	}
	if a.plus != nil {
		var hdr string
		if res.UserInfo, hdr, err = a.plus.userInfo(ctx, tok.AccessToken); err != nil {
			return nil, fmt.Errorf("userinfo: %w", err)
		}
		res.Encrypted = append(res.Encrypted, "userinfo: "+hdr)
	} else {
		info, err := a.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return nil, fmt.Errorf("userinfo: %w", err)
		}
		if err := info.Claims(&res.UserInfo); err != nil {
			return nil, fmt.Errorf("userinfo: %w", err)
		}
	}
	if res.UserInfo["sub"] != idt.Subject {
		return nil, errors.New("userinfo: another sub than the id_token's")
	}
	return res, nil
}

var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"json": func(v any) string { b, _ := json.MarshalIndent(v, "", "  "); return string(b) },
}).Parse(`<!doctype html><html lang="fr"><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>go-client</title>
{{if .IDToken}}<h1 id="citizen">{{.UserInfo.given_name}} {{.UserInfo.family_name}}</h1>
<p>sub <code id="sub">{{.IDToken.sub}}</code>, acr <code id="acr">{{.IDToken.acr}}</code></p>
{{range .Encrypted}}<p class="jwe">{{.}}</p>{{end}}
<h2>id_token</h2><pre>{{json .IDToken}}</pre><h2>userinfo</h2><pre>{{json .UserInfo}}</pre>
<p><a href="/">Recommencer</a></p>
{{else}}<h1>go-client</h1><p>{{.Issuer}}, niveau {{.ACR}}</p><p><a id="login" href="/login">Se connecter avec Sésame</a></p>{{end}}`))
