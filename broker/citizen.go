package broker

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/sesame-id/sesame/broker/authreq"
	"github.com/sesame-id/sesame/broker/eidas"
	"github.com/sesame-id/sesame/broker/session"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/audit"
	"github.com/sesame-id/sesame/internal/history"
	"github.com/sesame-id/sesame/internal/mail"
	"github.com/sesame-id/sesame/internal/web"
)

// What the broker does for the citizen space: it refuses a login through
// an account the citizen blocked, and e-mails the citizen at each new
// connection. The history itself is fed through the audit seam.

// errIdPBlocked is the page of a login through a blocked account. It
// sends the citizen back to the chooser, and to the citizen space to undo
// the choice.
var errIdPBlocked = web.Error{Code: "S020040", Status: http.StatusForbidden, Retry: true, BackURL: "/authorize/choose",
	MessageFR: "Vous avez désactivé ce compte dans votre espace Sésame : personne ne peut se connecter avec lui en votre nom. Choisissez un autre compte, ou réactivez celui-ci dans votre espace Sésame, rubrique « Mes comptes ».",
	MessageEN: "You switched this account off in your Sésame space: nobody can log in with it as you. Choose another account, or switch it back on in your Sésame space, under \"My accounts\".",
	LinkFR:    "Gérer mes comptes dans mon espace Sésame", LinkEN: "Manage my accounts in my Sésame space"}

// errPreferencesDown is the page when the citizen's choices cannot be
// read: the login is not let through, since the citizen may have
// blocked the account precisely to stop it.
var errPreferencesDown = web.Error{Code: "S020041", Status: http.StatusServiceUnavailable, Retry: true, BackURL: "/authorize/choose",
	MessageFR: "Nous ne pouvons pas vérifier pour le moment les comptes que vous autorisez. Réessayez dans quelques instants.",
	MessageEN: "We cannot check the accounts you allow right now. Try again in a few moments."}

// preferencesTimeout bounds the read of a citizen's preferences.
const preferencesTimeout = 2 * time.Second

// allowed reports whether the citizen (acct) allows logins through idp.
// Without a history store, every account is allowed.
func (p *Platform) allowed(ctx context.Context, acct, idp string) (bool, error) {
	if p.history == nil {
		return true, nil
	}
	ctx, cancel := context.WithTimeout(ctx, preferencesTimeout)
	defer cancel()
	prefs, found, err := p.history.Preferences(ctx, acct)
	if err != nil || !found {
		return err == nil, err
	}
	return prefs.Allows(idp), nil
}

// ssoAllowed applies the citizen's preferences to a session about to be
// reused: an account blocked since the session began serves no SP. A
// store that cannot answer refuses the reuse too (a new login then reads
// the preferences again, and says so).
func (p *Platform) ssoAllowed(r *http.Request, login *session.Login, req *authreq.Request, loginID string) bool {
	if p.history == nil {
		return true
	}
	acct := p.account(login.Identity)
	ok, err := p.allowed(r.Context(), acct, login.IdP)
	if err != nil {
		p.log.WarnContext(r.Context(), "preferences unreadable: session not reused", "err", err)
		return false
	}
	if !ok {
		p.record(r, audit.Event{Name: audit.IdPBlocked, Step: audit.IdPBlockedStep, Outcome: errIdPBlocked.Code, LoginID: loginID,
			SP: req.ClientID, IdP: login.IdP, ACRAsked: req.ACR, ACR: login.ACR, Account: acct})
	}
	return ok
}

// blockedPage is errIdPBlocked with the link to the citizen space.
func (p *Platform) blockedPage() web.Error {
	e := errIdPBlocked
	if p.spaceURL != "" {
		e.Link = p.spaceURL + "/comptes"
	}
	return e
}

// connectionCodeAlphabet has no 0/O or 1/I/L, for a code read aloud to
// support or typed from an e-mail.
const connectionCodeAlphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"

// newConnectionCode makes the code of one connection: 10 symbols (about
// 49 bits), shown as XXXXX-XXXXX.
func newConnectionCode() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	out := make([]byte, 0, 11)
	for i, c := range b {
		if i == 5 {
			out = append(out, '-')
		}
		// 256 is not a multiple of 31: the bias is under 1%, harmless
		// for a code whose strength is its length.
		out = append(out, connectionCodeAlphabet[int(c)%len(connectionCodeAlphabet)])
	}
	return string(out)
}

// notifyConnection queues the e-mail of a new connection, when the IdP
// gave an address and its logins are notified. It never waits for mail.
func (p *Platform) notifyConnection(r *http.Request, sp *config.SP, login *session.Login, acr, code string) {
	if p.mailer == nil || login.Identity.Email == "" {
		return
	}
	idp, ok := p.reg(r.Context()).idp(login.IdP)
	if !ok || !idp.Config().Notifies() {
		return
	}
	c := mail.Connection{
		To: login.Identity.Email, SPName: sp.Name, IdPName: idp.Config().Name, ACR: acr,
		Time: time.Now(), Code: code, Lang: web.PreferredLang(r),
	}
	if p.spaceURL != "" {
		c.SpaceURL = p.spaceURL + "/"
		c.ReportURL = p.spaceURL + "/signalement?code=" + url.QueryEscape(code)
	}
	if !p.mailer.Enqueue(mail.ConnectionMessage(c)) {
		p.log.WarnContext(r.Context(), "connection e-mail dropped: mail queue full", "idp", login.IdP)
	}
}

// HistoryNames gives the history the names of the SPs and IdPs of cfg,
// as the citizen reads them in their space. Set them again after a
// reload (Reloader's onApply), so that a new SP's rows carry its name.
func HistoryNames(cfg *config.Broker) *Names {
	n := &Names{}
	n.Set(cfg)
	return n
}

// Names is history.Names over a broker config that a reload may replace.
type Names struct{ cur atomic.Pointer[names] }

var _ history.Names = (*Names)(nil)

// Set replaces the names with those of cfg.
func (n *Names) Set(cfg *config.Broker) {
	v := names{sps: map[string]string{}, idps: map[string]string{}}
	for _, idp := range cfg.IdentityProviders {
		v.idps[idp.ID] = idp.Name
	}
	for _, pl := range cfg.Platforms {
		for _, sp := range pl.ServiceProviders {
			v.sps[pl.ID+"\x00"+sp.ClientID] = sp.Name
		}
		if cfg.EIDAS != nil && cfg.EIDAS.Proxy != nil {
			v.sps[pl.ID+"\x00"+eidas.ProxyClientID] = eidas.ProxyClientName
		}
	}
	n.cur.Store(&v)
}

// SPName implements history.Names.
func (n *Names) SPName(platform, clientID string) string {
	return n.cur.Load().sps[platform+"\x00"+clientID]
}

// IdPName implements history.Names.
func (n *Names) IdPName(id string) string { return n.cur.Load().idps[id] }

type names struct{ sps, idps map[string]string }
