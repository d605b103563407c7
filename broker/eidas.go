package broker

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"

	"github.com/sesame-id/sesame/broker/eidas"
	"github.com/sesame-id/sesame/broker/session"
	"github.com/sesame-id/sesame/broker/upstream"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/store"
	"github.com/sesame-id/sesame/internal/web"
)

// The eIDAS bridge's steps for a citizen of another member state logging
// in at a French service (the connector direction). The flow sends the
// browser to the bridge's country page as to any IdP; the bridge hands
// the node a LightRequest and, once the node answers, sends the browser
// to the flow's callback like any IdP would. Between the two, the
// browser carries light tokens in auto-submitted forms.

// Pages of the bridge (S0200 7x).
var (
	errEIDASToken = web.Error{Code: "S020070", Status: http.StatusBadRequest,
		MessageFR: "La réponse du réseau européen eIDAS est invalide ou a expiré. Revenez sur le service et recommencez la connexion.",
		MessageEN: "The answer of the European eIDAS network is invalid or has expired. Go back to the service and sign in again."}
	errEIDASUnknown = web.Error{Code: "S020071", Status: http.StatusBadRequest,
		MessageFR: "Cette réponse du réseau européen eIDAS est inconnue ou a déjà servi. Revenez sur le service et recommencez la connexion.",
		MessageEN: "This answer of the European eIDAS network is unknown or was already used. Go back to the service and sign in again."}
	errEIDASCountry = web.Error{Code: "S020072", Status: http.StatusBadRequest, Retry: true,
		MessageFR: "Choisissez un des pays proposés.",
		MessageEN: "Choose one of the countries offered."}
)

type eidasCountryView struct {
	SPName, CSRF, State, Cancel string
	Countries                   []config.EIDASCountry
}

// eidasTrip finds the trip under way to the eIDAS bridge, bound to this
// browser's session by its state.
func (p *Platform) eidasTrip(w http.ResponseWriter, r *http.Request, state string) (*session.Session, *eidas.Connector, bool) {
	sess, ok := p.requireStep(w, r, session.StepUpstream)
	if !ok {
		return nil, nil, false
	}
	trip := sess.Trip
	if trip == nil || subtle.ConstantTimeCompare([]byte(session.Digest(state)), []byte(trip.State)) != 1 {
		p.stale(w, r, sess, errBadState, nil)
		return nil, nil, false
	}
	up, _ := p.reg(r.Context()).idp(trip.IdP)
	conn, ok := up.(*eidas.Connector)
	if !ok {
		p.stale(w, r, sess, errBadState, nil)
		return nil, nil, false
	}
	return sess, conn, true
}

// eidasCountryPage asks the citizen's country.
func (p *Platform) eidasCountryPage(w http.ResponseWriter, r *http.Request) {
	state := r.URL.Query().Get("state")
	sess, conn, ok := p.eidasTrip(w, r, state)
	if !ok {
		return
	}
	p.renderCountries(w, r, sess, conn, state, http.StatusOK)
}

func (p *Platform) renderCountries(w http.ResponseWriter, r *http.Request, sess *session.Session, conn *eidas.Connector, state string, status int) {
	sp, _ := p.reg(r.Context()).Client(sess.Request.ClientID)
	name := ""
	if sp != nil {
		name = sp.Name
	}
	v := eidasCountryView{SPName: name, CSRF: sess.CSRF, State: state, Cancel: accessDeniedURL(sess, p.cfg.Issuer), Countries: conn.Countries()}
	p.pages.Render(w, r, status, "eidas_country.html", web.Page{Title: p.t(r, "eidas.title"), Body: v})
}

// eidasSend puts the LightRequest for the chosen country in the node's
// cache and has the browser post its token to the node.
func (p *Platform) eidasSend(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		p.fail(w, r, errCSRF, err)
		return
	}
	state := r.PostForm.Get("state")
	sess, conn, ok := p.eidasTrip(w, r, state)
	if !ok || !p.checkCSRF(w, r, sess) {
		return
	}
	country := r.PostForm.Get("country")
	known := false
	for _, c := range conn.Countries() {
		known = known || c.Code == country
	}
	if !known {
		p.renderCountries(w, r, sess, conn, state, errEIDASCountry.Status)
		return
	}
	sp, _ := p.reg(r.Context()).Client(sess.Request.ClientID)
	name := ""
	if sp != nil {
		name = sp.Name
	}
	form, err := conn.Send(r.Context(), upstream.Trip{State: state, Nonce: sess.Trip.Nonce, ACR: sess.Trip.ACR}, country, sess.Request.Scopes, name)
	if err != nil {
		p.fail(w, r, storeError(err), err)
		return
	}
	p.postToNode(w, r, form)
}

// postToNode renders the auto-submitted form that carries a light token
// to the node, whose origin the page's CSP lets the form post to.
func (p *Platform) postToNode(w http.ResponseWriter, r *http.Request, form eidas.Form) {
	var actions []string
	if u, err := url.Parse(form.Action); err == nil {
		actions = []string{u.Scheme + "://" + u.Host}
	}
	w.Header().Set("Cache-Control", "no-store")
	p.pages.Render(w, r, http.StatusOK, "eidas_post.html", web.Page{Title: p.t(r, "eidas.post"), FormAction: actions, Body: form})
}

// eidasResponse receives the node's answer (a token POSTed by the
// browser, often from another site, so without the session cookie) and
// sends the browser on to the flow's callback, where the session is
// found and the answer checked against the trip.
func (p *Platform) eidasResponse(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil || len(r.PostForm["token"]) != 1 {
		p.fail(w, r, errEIDASToken, err)
		return
	}
	var conn *eidas.Connector
	for _, up := range p.reg(r.Context()).idps {
		if c, ok := up.(*eidas.Connector); ok {
			conn = c
			break
		}
	}
	if conn == nil {
		p.pages.RenderError(w, r, web.ErrNotFound)
		return
	}
	q, err := conn.Receive(r.Context(), r.PostForm.Get("token"))
	if err != nil {
		p.fail(w, r, lightError(err), err)
		return
	}
	redirect(w, r, "/idp/callback?"+q.Encode())
}

// lightError is the page of a light token or message the bridge
// refuses: a forged, stale or malformed one is the sender's fault (400),
// an unknown or replayed one too; only a store that cannot answer is
// ours (503).
func lightError(err error) web.Error {
	switch {
	case errors.Is(err, eidas.ErrUnknownMessage):
		return errEIDASUnknown
	case errors.Is(err, store.ErrUnavailable):
		return errStoreDown
	}
	return errEIDASToken
}
