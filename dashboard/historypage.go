package dashboard

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sesame-id/sesame/internal/history"
)

// historyView is the /historique page.
type historyView struct {
	base
	// Intro says what the page lists and how far back.
	Intro   string
	Entries []entryView
	// Next is the URL of the following page, "" on the last; Paged is
	// true past the first page.
	Next  string
	Paged bool
}

// entryView is one row of the history as the citizen reads it.
type entryView struct {
	ID    int64
	Kind  string
	Title string
	// When is the time in words (Paris time), ISO its machine form.
	When, ISO string
	Fields    []field
	// Data are the labels of the data passed on; DataLabel their heading.
	Data      []string
	DataLabel string
}

// field is one labelled detail of a row; Key names it for the page's ids.
type field struct{ Key, Label, Value string }

// history is the connection history of the last Retention, newest first,
// one page at a time.
func (a *App) history(w http.ResponseWriter, r *http.Request) {
	s, ok := a.requireSession(w, r)
	if !ok {
		return
	}
	after, ok := a.openCursor(s.Account, r.URL.Query().Get("after"))
	if !ok {
		a.fail(w, r, errBadCursor)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	page, err := a.store.List(ctx, history.Query{Account: s.Account, Since: a.now().Add(-a.opt.retention),
		After: after, Limit: min(a.cfg.PageSize, history.MaxLimit)})
	if err != nil {
		a.failWith(w, r, errStoreDown, fmt.Errorf("history: list: %w", err))
		return
	}
	lang := langOf(r)
	v := historyView{base: a.base(r, s), Paged: after != "",
		Intro: pick(lang, "Les connexions faites avec votre identité au cours des "+retentionWords(a.opt.retention, lang)+", et ce qui a été transmis, des plus récentes aux plus anciennes.",
			"The logins made with your identity over the "+retentionWords(a.opt.retention, lang)+", and what was sent, newest first.")}
	for _, e := range page.Entries {
		v.Entries = append(v.Entries, a.entryView(e, lang))
	}
	if page.Next != "" {
		v.Next = "/historique?after=" + url.QueryEscape(a.sealCursor(s.Account, page.Next))
	}
	a.render(w, r, http.StatusOK, "history.html", "history_title", v)
}

// maxCursor bounds the ?after= parameter before anything is done with it.
const maxCursor = 1024

// sealCursor wraps the store's cursor for the page's link, sealed and
// bound to the account: a cursor edited by hand, or taken from another
// person's page, never reaches the store, whatever its format.
func (a *App) sealCursor(account, next string) string {
	return base64.RawURLEncoding.EncodeToString(a.box.Seal([]byte(next), cursorAAD(account)))
}

// openCursor is sealCursor's inverse; "" is the first page. ok is false
// for anything this space did not make for this account.
func (a *App) openCursor(account, raw string) (string, bool) {
	if raw == "" {
		return "", true
	}
	if len(raw) > maxCursor {
		return "", false
	}
	sealed, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return "", false
	}
	next, err := a.box.Open(sealed, cursorAAD(account))
	if err != nil || len(next) == 0 {
		return "", false
	}
	return string(next), true
}

func cursorAAD(account string) []byte { return []byte("history cursor\x00" + account) }

// entryView words one row: a title by kind, then its details.
func (a *App) entryView(e history.Entry, lang string) entryView {
	v := entryView{ID: e.ID, Kind: e.Kind, When: longTime(e.Time, lang), ISO: e.Time.UTC().Format(time.RFC3339)}
	service := e.SPName
	if service == "" {
		service = e.SP
	}
	v.Title = a.entryTitle(e, service, lang)
	add := func(key, label, value string) {
		if value != "" {
			v.Fields = append(v.Fields, field{Key: key, Label: t(lang, label), Value: value})
		}
	}
	add("service", "f_service", service)
	if e.Kind != history.KindPreferences {
		add("idp", "f_idp", a.entryIdP(e))
	}
	add("level", "f_level", levelWords(e.ACR, lang))
	add("platform", "f_platform", a.platformName(e.Platform))
	if e.Kind == history.KindData {
		add("provider", "f_provider", a.dataProviderName(e.DataProvider))
	}
	switch e.Kind {
	case history.KindConnection:
		add("code", "f_code", e.Code)
	case history.KindReport:
		add("code", "f_reported", e.Code)
	case history.KindBlocked:
		add("refusal", "f_refusal", e.Detail)
	}
	if e.Kind == history.KindConnection || e.Kind == history.KindData {
		v.Data, v.DataLabel = a.scopeLabels(e.Scopes, lang), t(lang, "f_data")
	}
	return v
}

// entryTitle is a row's heading.
func (a *App) entryTitle(e history.Entry, service, lang string) string {
	switch e.Kind {
	case history.KindConnection:
		return pick(lang, "Connexion à "+service, "Login to "+service)
	case history.KindData:
		return pick(lang, "Données transmises à "+service, "Data sent to "+service)
	case history.KindBlocked:
		return pick(lang, "Connexion refusée à "+service+" : compte bloqué", "Login to "+service+" refused: account blocked")
	case history.KindPreferences:
		return a.preferenceTitle(e, lang)
	case history.KindReport:
		return pick(lang, "Connexion signalée : « ce n'était pas moi »", "Login reported: \"it was not me\"")
	}
	return pick(lang, "Événement", "Event")
}

// preferenceTitle words a change of preferences from its Detail.
func (a *App) preferenceTitle(e history.Entry, lang string) string {
	name := a.entryIdP(e)
	switch verb, id, _ := strings.Cut(e.Detail, ":"); {
	case verb == "block":
		if name == "" {
			name = a.idpName(id)
		}
		return pick(lang, "Compte "+name+" bloqué", "Account "+name+" blocked")
	case verb == "allow":
		if name == "" {
			name = a.idpName(id)
		}
		return pick(lang, "Compte "+name+" autorisé", "Account "+name+" allowed")
	case e.Detail == "future:allow":
		return pick(lang, "Comptes ajoutés à l'avenir : autorisés", "Accounts added in the future: allowed")
	case e.Detail == "future:deny":
		return pick(lang, "Comptes ajoutés à l'avenir : bloqués", "Accounts added in the future: blocked")
	}
	return pick(lang, "Choix des comptes modifié", "Choice of accounts changed")
}

// entryIdP is the name of a row's account: as written with the row, else
// as configured now.
func (a *App) entryIdP(e history.Entry) string {
	if e.IdPName != "" {
		return e.IdPName
	}
	if e.IdP == "" {
		return ""
	}
	return a.idpName(e.IdP)
}

// levelWords is an eIDAS level in words; an unknown one as is.
func levelWords(acr, lang string) string {
	if l, ok := levelLabels[acr]; ok {
		return pick(lang, l.fr, l.en)
	}
	return acr
}

func (a *App) platformName(id string) string {
	if n := a.opt.platformNames[id]; n != "" {
		return n
	}
	return id
}

func (a *App) dataProviderName(id string) string {
	if n := a.opt.dpNames[id]; n != "" {
		return n
	}
	return id
}

// scopeLabels names the scopes passed on: identity scopes from our
// table, data scopes from the catalogue, anything else as is. openid
// passes nothing on but an identifier, and is left out.
func (a *App) scopeLabels(scopes []string, lang string) []string {
	var out []string
	for _, sc := range scopes {
		if sc == "openid" {
			continue
		}
		if l, ok := identityLabels[sc]; ok {
			out = append(out, pick(lang, l.fr, l.en))
		} else if d, ok := a.dataScopes[sc]; ok {
			out = append(out, pick(lang, d.LabelFR, d.LabelEN))
		} else {
			out = append(out, sc)
		}
	}
	return out
}
