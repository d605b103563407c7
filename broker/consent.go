package broker

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sesame-id/sesame/broker/identity"
	"github.com/sesame-id/sesame/broker/oidcerr"
	"github.com/sesame-id/sesame/broker/session"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/audit"
	"github.com/sesame-id/sesame/internal/cog"
	"github.com/sesame-id/sesame/internal/store"
	"github.com/sesame-id/sesame/internal/web"
)

// grant is what a code, then an access token, carries: the SP's request
// bound to the identity it may see. Stored sealed, under the code's hash.
type grant struct {
	ClientID       string            `json:"cid"`
	RedirectURI    string            `json:"ru"`
	Nonce          string            `json:"nonce,omitempty"`
	CodeChallenge  string            `json:"cc,omitempty"`
	Scopes         []string          `json:"scp"`
	IDTokenClaims  []string          `json:"idc,omitempty"`
	UserinfoClaims []string          `json:"uic,omitempty"`
	Sub            string            `json:"sub"`
	ACR            string            `json:"acr"`
	AMR            []string          `json:"amr,omitempty"`
	AuthTime       time.Time         `json:"at"`
	Identity       identity.Identity `json:"id"`
	SID            string            `json:"sid,omitempty"`
	// JKT binds the code (from PAR or dpop_jkt), then the access token,
	// to a DPoP key: its RFC 7638 thumbprint (cnf.jkt).
	JKT string `json:"jkt,omitempty"`
	// LoginID joins the audit events of the login that made the code.
	LoginID string `json:"lid,omitempty"`
	// IdP is the account used. Account is the person's account id, set
	// only for the citizen space (config.SP.CitizenSpace), which gets
	// both as claims.
	IdP     string `json:"idp,omitempty"`
	Account string `json:"acct,omitempty"`
	// IssuedAt, Expiry and JTI are the access token's, set when it is
	// issued, for introspection.
	IssuedAt time.Time `json:"iat,omitzero"`
	Expiry   time.Time `json:"exp,omitzero"`
	JTI      string    `json:"jti,omitempty"`
}

type consentView struct {
	// Consent asks for a ticked box (a private SP with identity consent);
	// otherwise the page only informs.
	Consent bool
	Missing bool
	SPName  string
	Name    string
	// IdPName and IdPLogo are the account used.
	IdPName, IdPLogo string
	// Claims are the data the SP will receive, each with its label and
	// its value, for the citizen to check.
	Claims []claimLine
	// Data are the data scopes' labels: what the administrations that
	// hold it will pass on to the service, from the catalogue.
	Data   []string
	CSRF   string
	Cancel string
}

// claimLine is one datum the SP will receive: "Prénoms : Angela Claire
// Louise".
type claimLine struct{ Claim, Label, Value string }

// claimOrder is the order a French form lists the identity in.
var claimOrder = []string{"given_name", "family_name", "preferred_username", "birthdate", "gender", "birthplace", "birthcountry", "email"}

// consentPage is step 5: tell the citizen what the SP will receive.
func (p *Platform) consentPage(w http.ResponseWriter, r *http.Request) {
	sess, ok := p.requireStep(w, r, session.StepAuthenticated)
	if !ok {
		return
	}
	p.renderConsent(w, r, sess, http.StatusOK, false)
}

// needsConsent is FranceConnect's rule: private SPs with identity consent
// get a checkbox; every other SP, and an openid-only request, an
// information page.
func needsConsent(sp *config.SP, scopes []string) bool {
	return sp.Type == "private" && sp.IdentityConsent && slices.ContainsFunc(scopes, func(s string) bool { return s != "openid" })
}

func (p *Platform) renderConsent(w http.ResponseWriter, r *http.Request, sess *session.Session, status int, missing bool) {
	reg := p.reg(r.Context())
	sp, _ := reg.Client(sess.Request.ClientID)
	v := consentView{SPName: sp.Name, CSRF: sess.CSRF, Cancel: accessDeniedURL(sess, p.cfg.Issuer),
		Consent: needsConsent(sp, sess.Request.Scopes), Missing: missing, IdPName: sess.Login.IdP, IdPLogo: defaultLogo}
	if up, ok := reg.idp(sess.Login.IdP); ok {
		v.IdPName = up.Config().Name
		if l := up.Config().LogoAsset(); l != "" {
			v.IdPLogo = l
		}
	}
	v.Name = sess.Login.Identity.GivenName + " " + sess.Login.Identity.FamilyName
	lang := web.PreferredLang(r)
	v.Claims = claimLines(sess.Request.Scopes, sess.Login.Identity, lang)
	for _, sc := range sess.Request.Scopes {
		if d, ok := reg.dataScopes[sc]; ok {
			v.Data = append(v.Data, web.Text{FR: d.LabelFR, EN: d.LabelEN}.In(lang))
		}
	}
	p.pages.Render(w, r, status, "consent.html", web.Page{Title: p.t(r, "consent.title"), Body: v})
}

// claimLines lists the identity claims the scopes release (the claims
// userinfo gives, scopeClaims), labelled and written for the citizen.
func claimLines(scopes []string, id identity.Identity, lang string) []claimLine {
	released := map[string]bool{}
	for _, s := range scopes {
		for _, c := range scopeClaims[s] {
			released[c] = true
		}
	}
	values := claimValues(id)
	var out []claimLine
	for _, c := range claimOrder {
		if !released[c] || (values[c] == "" && c != "birthplace") {
			continue
		}
		out = append(out, claimLine{Claim: c, Label: messages.T(lang, "claim."+c), Value: claimText(c, id, lang)})
	}
	return out
}

// claimText writes a claim's value as the citizen reads it: a date in
// words, the sex, the commune and country named rather than their COG
// codes (the code stays beside the commune, as on a civil-status form).
func claimText(claim string, id identity.Identity, lang string) string {
	v := claimValues(id)[claim]
	born, dated := time.Parse(time.DateOnly, id.Birthdate)
	switch claim {
	case "birthdate":
		if dated == nil {
			return longDate(born, lang)
		}
	case "gender":
		if v == "female" || v == "male" {
			return messages.T(lang, "gender."+v)
		}
	case "birthplace":
		if v == "" {
			return messages.T(lang, "birthplace.abroad")
		}
		if id.Foreign() {
			return v
		}
		if dated == nil {
			if name := cog.CommuneName(v, born); name != "" {
				return name + " (" + v + ")"
			}
		}
	case "birthcountry":
		if name := countryName(v, lang); name != "" {
			return name
		}
	}
	return v
}

var monthsFR = [...]string{"janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"}

// longDate writes a date in words: "12 mars 1962", "12 March 1962".
func longDate(t time.Time, lang string) string {
	if lang == web.LangEN {
		return t.Format("2 January 2006")
	}
	day := strconv.Itoa(t.Day())
	if t.Day() == 1 {
		day = "1er"
	}
	return day + " " + monthsFR[t.Month()-1] + " " + strconv.Itoa(t.Year())
}

// consent issues the code once the citizen continues.
func (p *Platform) consent(w http.ResponseWriter, r *http.Request) {
	sess, ok := p.requireStep(w, r, session.StepAuthenticated, session.StepDone)
	if !ok {
		return
	}
	if !p.checkCSRF(w, r, sess) {
		return
	}
	if sess.Step == session.StepDone {
		// The same form posted again once its code was made (a double
		// click): the browser goes to that code, and no other exists.
		p.followCode(w, r, sess)
		return
	}
	if sp, ok := p.reg(r.Context()).Client(sess.Request.ClientID); ok && needsConsent(sp, sess.Request.Scopes) && r.PostForm.Get("consent") != "yes" {
		p.renderConsent(w, r, sess, http.StatusBadRequest, true)
		return
	}
	p.issueCode(w, r, sess, true)
}

// issueCode stores a one-time code for the SP and sends the browser back
// with code, state and iss. The session keeps the login (SSO, logout) but
// drops the request, so the step cannot be replayed. With single, the
// session moves on only if nobody moved it since it was read: of parallel
// POSTs of one consent page, one makes the code and the others send the
// browser to that same code.
func (p *Platform) issueCode(w http.ResponseWriter, r *http.Request, sess *session.Session, single bool) {
	req, login := sess.Request, sess.Login
	// The registry may have been reloaded since /authorize: an SP
	// switched off, or a redirect_uri the operator removed (a domain
	// lost, say), gets no code, though the request was valid then.
	sp, ok := p.reg(r.Context()).Client(req.ClientID)
	if !ok || !sp.IsActive() || !slices.Contains(sp.RedirectURIs, req.RedirectURI) {
		p.fail(w, r, errBadClient, nil)
		return
	}
	g := grant{
		ClientID: req.ClientID, RedirectURI: req.RedirectURI, Nonce: req.Nonce, CodeChallenge: req.CodeChallenge,
		Scopes: req.Scopes, IDTokenClaims: req.IDTokenClaims, UserinfoClaims: req.UserinfoClaims,
		Sub: identity.Sub(p.subSecret, sp.Sector, login.Identity.Hash()),
		ACR: login.ACR, AMR: login.AMR, AuthTime: login.AuthTime,
		Identity: login.Identity, JKT: req.DPoPJKT, LoginID: sess.LoginID, IdP: login.IdP,
	}
	acct := p.account(login.Identity)
	if sp.CitizenSpace {
		g.Account = acct
	}
	if sess.Reused {
		g.ACR = req.ACR
	}
	g.SID = sess.SID
	// A new connection is one SP's first code in this session: it gets
	// the e-mail, once.
	newConnection := !slices.Contains(sess.Clients, req.ClientID)
	if newConnection {
		sess.Clients = append(sess.Clients, req.ClientID)
	}
	code := session.NewID()
	rec, err := p.sessions.Record("code", code, &g, p.cfg.CodeTTL.D(30*time.Second))
	if err != nil {
		p.authorizeError(w, r, req, oidcerr.New(oidcerr.ServerError, "internal error").WithCause(err), true)
		return
	}
	// The code and the session moved past this step, in one round trip.
	to := p.successURL(req.RedirectURI, code, req.State)
	sess.Lang = loginLang(sess)
	sess.Request, sess.Step = nil, session.StepDone
	sess.Issued, sess.IssuedAt = code, time.Now().UTC()
	sess.Served = &session.Served{ClientID: req.ClientID, RedirectURI: req.RedirectURI, State: req.State}
	if !single {
		if err := p.sessions.Commit(r.Context(), sess, []store.Entry{rec}); err != nil {
			p.authorizeError(w, r, req, storeOAuthError(err), true)
			return
		}
	} else if won, err := p.sessions.Advance(r.Context(), sess, []store.Entry{rec}); err != nil {
		p.authorizeError(w, r, req, storeOAuthError(err), true)
		return
	} else if !won {
		winner, err := p.sessions.Load(r.Context(), sess.ID)
		if err != nil {
			p.fail(w, r, storeError(err), err)
			return
		}
		p.followCode(w, r, winner)
		return
	}
	connCode := newConnectionCode()
	p.record(r, audit.Event{Name: audit.CodeIssued, Step: audit.CodeIssuedStep, Outcome: "ok", LoginID: g.LoginID,
		SP: g.ClientID, IdP: login.IdP, Scopes: g.Scopes, Claims: claimNames(&g), ACRAsked: req.ACR, ACR: g.ACR, Account: acct, Code: connCode})
	if newConnection {
		p.notifyConnection(r, sp, login, g.ACR, connCode)
	}
	p.setCookie(w, sess.ID)
	redirect(w, r, to)
}

// followCode answers the loser of a race on the consent step: the code it
// made is known to nobody and dies with its TTL; the browser goes to the
// winner's, while that code can still be redeemed.
func (p *Platform) followCode(w http.ResponseWriter, r *http.Request, sess *session.Session) {
	switch {
	case sess.Step == session.StepDone && sess.Issued != "" && sess.Served != nil && time.Since(sess.IssuedAt) < p.cfg.CodeTTL.D(30*time.Second):
		to := sess.Issued
		if !strings.Contains(to, "?") {
			// The code alone, as this broker keeps it; an older one kept
			// the whole redirect.
			to = p.successURL(sess.Served.RedirectURI, to, sess.Served.State)
		}
		redirect(w, r, to)
	default:
		p.stale(w, r, sess, errBadStep, nil)
	}
}
