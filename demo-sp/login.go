package demosp

import (
	"net/http"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/sesame-id/sesame/internal/web"
)

// maxForm bounds the login and logout forms, which hold one short field.
const maxForm = 4 << 10

// levelOption is one choice of the level form on the home page.
type levelOption struct {
	Value    string
	Label    string
	Selected bool
}

var levelLabels = map[string]string{
	"eidas1": "eidas1 : faible (FranceConnect)",
	"eidas2": "eidas2 : substantiel (FranceConnect+)",
	"eidas3": "eidas3 : élevé (FranceConnect+)",
}

func (a *App) home(w http.ResponseWriter, r *http.Request) {
	opts := make([]levelOption, len(levels))
	for i, l := range levels {
		opts[i] = levelOption{Value: l, Label: levelLabels[l], Selected: l == a.defaultACR}
	}
	_, loggedIn := a.currentSession(r)
	a.render(w, r, http.StatusOK, "home", web.Page{Title: "Accueil", Body: map[string]any{
		"Levels":   opts,
		"LoggedIn": loggedIn,
		"Issuer":   a.cfg.Issuer,
		"ClientID": a.cfg.ClientID,
		"Scopes":   a.cfg.Scopes,
	}})
}

// amrClaims asks for the amr claim in the id_token (OIDC Core §5.5).
const amrClaims = `{"id_token":{"amr":{"essential":true}}}`

// login starts an authorization code flow. Every secret of the flow (state,
// nonce, PKCE verifier) stays on the server; the browser only holds a random
// handle to it, so nothing in the cookie can be replayed elsewhere.
func (a *App) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		a.fail(w, r, errBadForm)
		return
	}
	acr := r.PostForm.Get("acr_values")
	if acr == "" {
		acr = a.defaultACR
	}
	if levelRank(acr) < 0 {
		a.fail(w, r, errBadLevel)
		return
	}
	d, err := a.discover(r)
	if err != nil {
		a.failUpstream(w, r, errUnavailable, err)
		return
	}
	tx := pending{
		State:    randomString(32),
		Nonce:    randomString(32),
		Verifier: oauth2.GenerateVerifier(),
		ACR:      acr,
	}
	handle := randomString(32)
	a.txs.put(handle, tx, txTTL)
	a.setCookie(w, txCookie, handle, txTTL)
	dest := d.oauth.AuthCodeURL(tx.State,
		oidc.Nonce(tx.Nonce),
		oauth2.S256ChallengeOption(tx.Verifier),
		oauth2.SetAuthURLParam("acr_values", acr),
		// amr is released only when asked for through claims, as on
		// FranceConnect; the demo shows it.
		oauth2.SetAuthURLParam("claims", amrClaims),
	)
	http.Redirect(w, r, dest, http.StatusSeeOther)
}
