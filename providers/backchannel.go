package providers

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/sesame-id/sesame/internal/keys"
	"github.com/sesame-id/sesame/internal/web"
)

// IdP-initiated logout toward the clients (OpenID Connect Back-Channel
// Logout 1.0): the sessions page lists an IdP's live logins, and ending one
// posts a logout token to its client's backchannel_logout_uri. The mock has
// no SSO, so a login has exactly one client, which gets exactly one token.
// RP-initiated logout (end_session) sends none: the spec lets the OP skip
// the RP that asked, which already knows.

const (
	// backchannelEvent is the events member that makes a JWT a logout
	// token (§2.4).
	backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"
	// logoutTokenTTL is how long a logout token is valid.
	logoutTokenTTL = 2 * time.Minute
	// backchannelTimeout bounds each post to a client, answer included.
	backchannelTimeout = 5 * time.Second
	// maxSends is how many sends each IdP's sessions page remembers.
	maxSends = 20
	// maxListed bounds the logins the sessions page lists, newest first;
	// a load test may leave thousands.
	maxListed = 200
	// maxRPAnswer is how much of a client's answer is read (and dropped)
	// so that the connection can be reused.
	maxRPAnswer = 64 << 10
)

// newBackchannelClient posts logout tokens: 5 s for the whole exchange and
// no redirect followed, so the status recorded is the endpoint's own.
func newBackchannelClient() *http.Client {
	return &http.Client{
		Timeout:       backchannelTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// logoutClaims is a logout token's payload (§2.4): sub and sid as in the
// login's id_token, the events claim, and never a nonce unless a test
// scenario wants one.
type logoutClaims struct {
	Issuer   string `json:"iss"`
	Audience string `json:"aud"`
	IssuedAt int64  `json:"iat"`
	Expiry   int64  `json:"exp"`
	JTI      string `json:"jti"`
	Subject  string `json:"sub"`
	SID      string `json:"sid"`
	// Events is nil only with scenario_bcl=no_events.
	Events map[string]struct{} `json:"events,omitempty"`
	// Nonce is set only with scenario_bcl=nonce: §2.4 forbids it, so that
	// a logout token cannot pass for an id_token.
	Nonce string `json:"nonce,omitempty"`
}

// bclScenario makes one send of logout tokens faulty on purpose, for the
// client's hostile tests. The zero value sends a correct token.
type bclScenario string

const (
	fieldBCL = "scenario_bcl"

	bclReplay   bclScenario = "replay"
	bclWrongKey bclScenario = "wrong_key"
	bclNonce    bclScenario = "nonce"
	bclNoEvents bclScenario = "no_events"
	bclWrongAud bclScenario = "wrong_aud"
	bclExpired  bclScenario = "expired"

	// wrongAudience is the aud of scenario_bcl=wrong_aud.
	wrongAudience = "another-client"
	// expiredBy is how long ago a scenario_bcl=expired token expired; it
	// was issued logoutTokenTTL earlier still.
	expiredBy = 10 * time.Minute
)

// bclScenarios lists the values of scenario_bcl with the sessions page's
// labels, in the page's order.
var bclScenarios = []struct {
	Value bclScenario
	Label string
}{
	{"", "Jeton correct (normal)"},
	{bclReplay, "Rejeu : le même jeton deux fois"},
	{bclWrongKey, "Clé non publiée, sous le kid de la clé publiée"},
	{bclNonce, "Avec un claim nonce (interdit)"},
	{bclNoEvents, "Sans claim events"},
	{bclWrongAud, "Autre destinataire (aud " + wrongAudience + ")"},
	{bclExpired, "Expiré depuis 10 min"},
}

// ends reports whether the send ends the login at the IdP. A faulty token
// leaves it live, so that a correct one can follow once the client has
// refused the faulty one; a replay is two correct tokens, so it ends it.
func (sc bclScenario) ends() bool { return sc == "" || sc == bclReplay }

func (sc bclScenario) label() string {
	if sc == "" {
		return "normal"
	}
	return string(sc)
}

// bclScenarioFromForm reads scenario_bcl. As on the login form, any other
// scenario_* field, a repeated one or an unknown value is refused, so a
// typo never silently sends a correct token.
func bclScenarioFromForm(f url.Values) (bclScenario, error) {
	for _, name := range slices.Sorted(maps.Keys(f)) {
		if strings.HasPrefix(name, "scenario_") && name != fieldBCL {
			return "", badField(name, "champ inconnu ; le seul champ de scénario admis ici est %s.", fieldBCL)
		}
	}
	if len(f[fieldBCL]) > 1 {
		return "", badField(fieldBCL, "envoyé plusieurs fois ; envoyez-le une fois au plus.")
	}
	v := bclScenario(strings.TrimSpace(f.Get(fieldBCL)))
	var values []string
	for _, o := range bclScenarios {
		if o.Value == v {
			return v, nil
		}
		if o.Value != "" {
			values = append(values, string(o.Value))
		}
	}
	return "", badField(fieldBCL, "%s n'est pas proposé ; attendu l'un de %s, ou rien pour un jeton correct.", quoted(string(v)), strings.Join(values, ", "))
}

// logoutToken signs the logout token of one login, as the scenario wants
// it, with the key and algorithm of the IdP's id_tokens.
func (idp *mockIdP) logoutToken(now time.Time, sid string, l loginRecord, sc bclScenario) (string, error) {
	c := logoutClaims{
		Issuer: idp.issuer, Audience: l.ClientID, IssuedAt: now.Unix(), Expiry: now.Add(logoutTokenTTL).Unix(),
		JTI: newSecret(), Subject: l.Subject, SID: sid,
		Events: map[string]struct{}{backchannelEvent: {}},
	}
	var signer keys.Signer = idp.keys
	switch sc {
	case bclWrongKey:
		rogue, err := newRogueSigner(idp.keys, jose.ES256, true)
		if err != nil {
			return "", err
		}
		signer = rogue
	case bclNonce:
		c.Nonce = newSecret()
	case bclNoEvents:
		c.Events = nil
	case bclWrongAud:
		c.Audience = wrongAudience
	case bclExpired:
		c.IssuedAt = now.Add(-expiredBy - logoutTokenTTL).Unix()
		c.Expiry = now.Add(-expiredBy).Unix()
	}
	return signer.SignJWT(jose.ES256, "logout+jwt", c)
}

// bclSend is one send of logout tokens, as the sessions page shows it.
type bclSend struct {
	At         time.Time
	SID        string
	ClientID   string
	IdentityID string
	Scenario   bclScenario
	// Ended tells whether the send ended the login at the IdP.
	Ended bool
	// Statuses are the client's answers, one per token posted (two for a
	// replay); Failure says why no (further) answer came, or why nothing
	// was posted.
	Statuses []int
	Failure  string
}

// Result sums the client's answers up: "200", "200 puis 400", "pas de
// réponse : …".
func (b bclSend) Result() string {
	var parts []string
	for _, st := range b.Statuses {
		parts = append(parts, fmt.Sprint(st))
	}
	if b.Failure != "" {
		parts = append(parts, b.Failure)
	}
	return strings.Join(parts, " puis ")
}

// sendLog keeps an IdP's last maxSends sends.
type sendLog struct {
	mu    sync.Mutex
	sends []bclSend
}

func (l *sendLog) add(s bclSend) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sends = append(l.sends, s)
	if len(l.sends) > maxSends {
		l.sends = slices.Clone(l.sends[len(l.sends)-maxSends:])
	}
}

// recent returns the sends, newest first.
func (l *sendLog) recent() []bclSend {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.sends)
	slices.Reverse(out)
	return out
}

// endLogins serves POST /<idp>/sessions/end: sid= ends that login, sub= all
// logins of that sub. Each one's client gets a logout token; then 303 back
// to the sessions page, which shows what the client answered. A client
// that is down or slow costs at most 5 s and never fails the page.
func (s *Server) endLogins(idp *mockIdP, w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		s.pages.RenderError(w, r, errBadForm)
		return
	}
	f := r.PostForm
	sc, err := bclScenarioFromForm(f)
	if err != nil {
		s.renderSessions(w, r, idp, http.StatusBadRequest, err.Error())
		return
	}
	if len(f["sid"]) > 1 || len(f["sub"]) > 1 {
		s.renderSessions(w, r, idp, http.StatusBadRequest, "sid et sub s'envoient une fois au plus.")
		return
	}
	sid, sub := f.Get("sid"), f.Get("sub")
	if (sid == "") == (sub == "") {
		s.renderSessions(w, r, idp, http.StatusBadRequest, "Envoyez sid (une connexion) ou sub (toutes les connexions de cette personne), pas les deux.")
		return
	}
	var sids []string
	if sid != "" {
		if _, ok := idp.logins.get(sid); ok {
			sids = append(sids, sid)
		}
	} else {
		for k, l := range idp.logins.live() {
			if l.Subject == sub {
				sids = append(sids, k)
			}
		}
	}
	// The send outlives a tester who closes the tab, but keeps the
	// request's correlation id for the log.
	ctx := context.WithoutCancel(r.Context())
	var wg sync.WaitGroup
	found := false
	for _, sid := range sids {
		var l loginRecord
		var ok bool
		if sc.ends() {
			// take, not get: of two racing ends, one sends.
			l, ok = idp.logins.take(sid)
		} else {
			l, ok = idp.logins.get(sid)
		}
		if !ok {
			continue
		}
		found = true
		wg.Go(func() { s.sendLogout(ctx, idp, sid, l, sc) })
	}
	wg.Wait()
	if !found {
		s.pages.RenderError(w, r, errUnknownSession)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, idp.path+"/sessions", http.StatusSeeOther)
}

// sendLogout posts the login's logout token to its client and records the
// answer; a replay posts the same token twice.
func (s *Server) sendLogout(ctx context.Context, idp *mockIdP, sid string, l loginRecord, sc bclScenario) {
	rec := bclSend{At: s.now(), SID: sid, ClientID: l.ClientID, IdentityID: l.IdentityID, Scenario: sc, Ended: sc.ends()}
	defer func() { idp.sends.add(rec) }()
	log := slog.With("idp", idp.cfg.ID, "client_id", l.ClientID, "scenario", sc.label(), "correlation_id", web.CorrelationID(ctx))
	client := idp.clients[l.ClientID]
	if client.BackchannelLogoutURI == "" {
		rec.Failure = "rien envoyé : ce client n'a pas de backchannel_logout_uri"
		log.InfoContext(ctx, "providers: login ended; no back-channel logout (client has no backchannel_logout_uri)")
		return
	}
	token, err := idp.logoutToken(s.now(), sid, l, sc)
	if err != nil {
		rec.Failure = "rien envoyé : le jeton n'a pas pu être signé"
		log.ErrorContext(ctx, "providers: sign logout token", "err", err)
		return
	}
	posts := 1
	if sc == bclReplay {
		posts = 2
	}
	for range posts {
		status, err := s.postLogoutToken(ctx, client.BackchannelLogoutURI, token)
		if err != nil {
			rec.Failure = "pas de réponse : " + err.Error()
			log.WarnContext(ctx, "providers: back-channel logout not delivered", "err", err)
			return
		}
		rec.Statuses = append(rec.Statuses, status)
		log.InfoContext(ctx, "providers: back-channel logout sent", "status", status)
	}
}

func (s *Server) postLogoutToken(ctx context.Context, uri, token string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, backchannelTimeout)
	defer cancel()
	body := strings.NewReader(url.Values{"logout_token": {token}}.Encode())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, uri, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.backchannel.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxRPAnswer))
	return resp.StatusCode, nil
}

// sessionsView is the sessions page's data.
type sessionsView struct {
	IdPName string
	Action  string
	Logins  []sessionRow
	// More counts the live logins past maxListed, not listed.
	More      int
	Sends     []sendRow
	Scenarios []option
	Error     string
}

type sessionRow struct {
	SID, Identity, ClientID, AuthTime string
	// NoURI marks a client without backchannel_logout_uri.
	NoURI bool
	// LastSend is the client's answer to the last faulty token sent for
	// this login, which is still live, and the scenario: "400 (nonce)".
	LastSend string
}

type sendRow struct {
	At, SID, Identity, ClientID, Scenario, Result string
	Ended                                         bool
}

const pageTime = "02/01/2006 15:04:05"

// sessions serves GET /<idp>/sessions.
func (s *Server) sessions(idp *mockIdP, w http.ResponseWriter, r *http.Request) {
	s.renderSessions(w, r, idp, http.StatusOK, "")
}

func (s *Server) renderSessions(w http.ResponseWriter, r *http.Request, idp *mockIdP, status int, msg string) {
	type live struct {
		sid string
		loginRecord
	}
	var logins []live
	for sid, l := range idp.logins.live() {
		logins = append(logins, live{sid, l})
	}
	slices.SortFunc(logins, func(a, b live) int {
		return cmp.Or(b.AuthTime.Compare(a.AuthTime), strings.Compare(a.sid, b.sid))
	})
	sends := idp.sends.recent()
	v := sessionsView{IdPName: idp.cfg.Name, Action: idp.path + "/sessions/end", Error: msg}
	if len(logins) > maxListed {
		v.More = len(logins) - maxListed
		logins = logins[:maxListed]
	}
	for _, l := range logins {
		row := sessionRow{
			SID: l.sid, Identity: s.identityName(l.IdentityID), ClientID: l.ClientID,
			AuthTime: l.AuthTime.Format(pageTime), NoURI: idp.clients[l.ClientID].BackchannelLogoutURI == "",
		}
		if i := slices.IndexFunc(sends, func(b bclSend) bool { return b.SID == l.sid }); i >= 0 {
			row.LastSend = sends[i].Result() + " (" + sends[i].Scenario.label() + ")"
		}
		v.Logins = append(v.Logins, row)
	}
	for _, b := range sends {
		v.Sends = append(v.Sends, sendRow{
			At: b.At.Format(pageTime), SID: b.SID, Identity: s.identityName(b.IdentityID), ClientID: b.ClientID,
			Scenario: b.Scenario.label(), Result: b.Result(), Ended: b.Ended,
		})
	}
	for _, o := range bclScenarios {
		v.Scenarios = append(v.Scenarios, option{Value: string(o.Value), Label: o.Label})
	}
	s.pages.Render(w, r, status, "sessions.html", web.Page{Title: "Sessions – " + idp.cfg.Name, Body: v})
}

func (s *Server) identityName(id string) string {
	if p, ok := s.byID[id]; ok {
		return p.GivenName + " " + p.FamilyName
	}
	return id
}
