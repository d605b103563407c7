package demosp

import (
	"errors"
	"html/template"
	"net/http"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/sesame-id/sesame/internal/web"
)

// maxForm bounds the login and logout forms, which hold two short fields.
const maxForm = 4 << 10

// The login form (POST /login) has two fields, documented on the home page
// and relied upon by the e2e and browser tests:
//
//	platform    std (default) or plus
//	acr_values  eidas1, eidas2 or eidas3 (default: the platform's
//	            configured level)
//
// Any known level is accepted on either platform, so that a tester can
// watch the broker refuse a level outside the platform's set.
const (
	fieldPlatform = "platform"
	fieldACR      = "acr_values"
)

// levelOption is one choice of a platform's level group on the home page.
type levelOption struct {
	Value    string
	Label    string
	Selected bool
	// Refused marks a level the platform refuses: offered to show the
	// error the broker sends back.
	Refused bool
}

// platformForm is one login form of the home page: one per platform, each
// with its own button, as FranceConnect and FranceConnect+ have.
type platformForm struct {
	ID, Name, Issuer, ClientID, AuthMethod string
	Scopes                                 []string
	Plus                                   bool
	Levels                                 []levelOption
	// Button is Sésame's own button (web.Button), with its "Qu'est-ce que
	// Sésame ?" link to the broker's page.
	Button template.HTML
}

// platformLevels are the levels each platform offers, as the broker's
// reference defines them (standard: eidas1; "+": eidas2 and eidas3), plus
// one refused level on "+" to show the error the SP gets back.
func platformLevels(p *platform, lang string) []levelOption {
	var out []levelOption
	add := func(l string, refused bool) {
		out = append(out, levelOption{Value: l, Label: msg(lang, "level."+l), Selected: l == p.defaultACR, Refused: refused})
	}
	if !p.plus {
		add("eidas1", false)
		if p.defaultACR != "eidas1" {
			add(p.defaultACR, false) // a configured level is always offered
		}
		return out
	}
	add("eidas2", false)
	add("eidas3", false)
	if p.defaultACR == "eidas1" {
		add("eidas1", false)
	} else {
		add("eidas1", true)
	}
	return out
}

func (a *App) home(w http.ResponseWriter, r *http.Request) {
	lang := web.PreferredLang(r)
	var forms []platformForm
	for _, p := range a.platforms() {
		method := p.authMethod
		if method == "" {
			method = "client_secret_basic / client_secret_post"
		}
		id := "sesame-connect"
		if p.plus {
			id = "sesame-plus-connect"
		}
		forms = append(forms, platformForm{
			ID: p.id, Name: p.name, Issuer: p.issuer, ClientID: p.clientID, AuthMethod: method,
			Scopes: p.scopes, Plus: p.plus, Levels: platformLevels(p, lang),
			Button: web.Button{Plus: p.plus, Lang: lang, ID: id, AboutURL: strings.TrimSuffix(a.std.issuer, "/") + "/sesame"}.HTML(),
		})
	}
	_, loggedIn := a.currentSession(r)
	a.render(w, r, http.StatusOK, "home", web.Page{Title: msg(lang, "home.title"), Stylesheets: []string{web.ButtonStylesheet}, Body: map[string]any{
		"Platforms": forms,
		"HasPlus":   a.plus != nil,
		"LoggedIn":  loggedIn,
		"BaseURL":   a.cfg.BaseURL,
		"SpaceURL":  a.cfg.CitizenSpaceURL,
	}})
}

// amrClaims asks for the amr claim in the id_token (OIDC Core §5.5).
const amrClaims = `{"id_token":{"amr":{"essential":true}}}`

// login starts an authorization code flow on the chosen platform. Every
// secret of the flow (state, nonce, PKCE verifier) stays on the server; the
// browser only holds a random handle to it, so nothing in the cookie can be
// replayed elsewhere.
func (a *App) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		a.fail(w, r, errBadForm)
		return
	}
	p, ok := a.platform(r.PostForm.Get(fieldPlatform))
	if !ok {
		a.fail(w, r, errBadPlatform)
		return
	}
	acr := r.PostForm.Get(fieldACR)
	if acr == "" {
		acr = p.defaultACR
	}
	if levelRank(acr) < 0 {
		a.fail(w, r, errBadLevel)
		return
	}
	d, err := a.discover(r, p)
	if errors.Is(err, errProviderLacks) {
		a.failUpstream(w, r, errProviderUnfit, err)
		return
	}
	if err != nil {
		a.failUpstream(w, r, errUnavailable, err)
		return
	}
	tx := pending{
		Platform: p.id,
		State:    randomString(32),
		Nonce:    randomString(32),
		Verifier: oauth2.GenerateVerifier(),
		ACR:      acr,
	}
	dest := d.oauth.AuthCodeURL(tx.State,
		oidc.Nonce(tx.Nonce),
		oauth2.S256ChallengeOption(tx.Verifier),
		oauth2.SetAuthURLParam("acr_values", acr),
		// amr is released only when asked for through claims, as on
		// FranceConnect; the demo shows it.
		oauth2.SetAuthURLParam("claims", amrClaims),
		// The broker's pages in the language of the demo's.
		oauth2.SetAuthURLParam("ui_locales", web.PreferredLang(r)),
	)
	if p.par {
		// Pushed before the transaction is stored: a refused push leaves
		// nothing behind.
		if dest, err = a.pushAuthorization(r.Context(), p, d, dest); err != nil {
			var refused *parRefused
			if errors.As(err, &refused) {
				a.failProvider(w, r, refused.Code)
				return
			}
			a.failUpstream(w, r, errPushed, err)
			return
		}
	}
	handle := randomString(32)
	a.txs.put(handle, tx, txTTL)
	a.setCookie(w, txCookie, handle, txTTL)
	http.Redirect(w, r, dest, http.StatusSeeOther)
}
