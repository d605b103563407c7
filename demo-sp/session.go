package demosp

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/sesame-id/sesame/internal/web"
)

// session is a citizen logged in at the demo SP.
type session struct {
	Platform string // the platform it was made on, whose logout ends it
	IDToken  string // the signed id_token, kept for id_token_hint at logout
	Subject  string
	ACR      string
	AskedACR string
	AMR      []string
	AuthTime float64
	Claims   json.RawMessage
	UserInfo json.RawMessage
	// How the tokens came: encrypted (nil: in clear) and, for userinfo,
	// signed or plain JSON.
	IDTokenJWE  *jweInfo
	UserInfoJWE *jweInfo
	UserInfoJWT bool
	// Data is what the data providers answered at login, one entry per
	// configured provider.
	Data []providerData
}

// startSession stores the login under a fresh session id. Rotating the id at
// login means an id planted in the browser beforehand (session fixation)
// never becomes an authenticated one. A "+" session copies the broker's:
// 10 minutes, not sliding, and a cookie that dies with the browser.
func (a *App) startSession(w http.ResponseWriter, r *http.Request, p *platform, s session) {
	if old := cookieValue(r, sessionCookie); old != "" {
		a.sessions.delete(old)
	}
	sid := randomString(32)
	a.sessions.put(sid, s, p.sessionTTL)
	cookieTTL := p.sessionTTL
	if p.plus {
		cookieTTL = 0 // no Max-Age: a browser-session cookie
	}
	a.setCookie(w, sessionCookie, sid, cookieTTL)
}

func (a *App) currentSession(r *http.Request) (session, bool) {
	sid := cookieValue(r, sessionCookie)
	if sid == "" {
		return session{}, false
	}
	return a.sessions.get(sid)
}

// field is one labelled line of the identity shown on /me.
type field struct {
	Label string
	Value string
}

// pivotFields lists the claims shown on /me, in the order a French form
// would list them; their labels are the catalogue's claim.<claim>, the
// words an agent would use.
var pivotFields = []string{"given_name", "family_name", "preferred_username", "birthdate", "gender", "birthplace", "birthcountry", "email"}

func (a *App) me(w http.ResponseWriter, r *http.Request) {
	s, ok := a.currentSession(r)
	if !ok {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	// Userinfo is where FranceConnect-style providers put the identity; the
	// id_token is only a fallback for claims userinfo left out.
	merged := map[string]any{}
	_ = json.Unmarshal(s.Claims, &merged)
	var ui map[string]any
	_ = json.Unmarshal(s.UserInfo, &ui)
	for k, v := range ui {
		merged[k] = v
	}
	str := func(k string) string { v, _ := merged[k].(string); return v }

	lang := web.PreferredLang(r)
	var fields []field
	for _, claim := range pivotFields {
		v, present := merged[claim]
		if !present {
			continue
		}
		val, _ := v.(string)
		if claim == "gender" && (val == "male" || val == "female") {
			val = msg(lang, "gender."+val)
		}
		if claim == "birthplace" && val == "" {
			val = msg(lang, "birthplace.abroad")
		}
		fields = append(fields, field{Label: msg(lang, "claim."+claim), Value: val})
	}
	authTime := ""
	if s.AuthTime > 0 {
		authTime = time.Unix(int64(s.AuthTime), 0).UTC().Format(msg(lang, "me.auth_at"))
	}
	platformName := a.std.name
	if p, ok := a.platform(s.Platform); ok {
		platformName = p.name
	}
	userinfoForm := msg(lang, "me.ui_json")
	if s.UserInfoJWT {
		userinfoForm = msg(lang, "me.ui_jwt")
	}
	a.render(w, r, http.StatusOK, "me", web.Page{Title: msg(lang, "me.title"), Body: map[string]any{
		"Platform":     platformName,
		"PlatformHTML": template.HTML(`<strong id="platform">` + template.HTMLEscapeString(platformName) + `</strong>`),
		"IDTokenJWE":   s.IDTokenJWE,
		"UserInfoJWE":  s.UserInfoJWE,
		"UserInfoForm": userinfoForm,
		"Name":         strings.TrimSpace(str("given_name") + " " + str("family_name")),
		"Fields":       fields,
		"Subject":      s.Subject,
		"ACR":          s.ACR,
		"AskedACR":     s.AskedACR,
		"AMR":          strings.Join(s.AMR, ", "),
		"AuthTime":     authTime,
		"Claims":       pretty(s.Claims),
		"UserInfo":     pretty(s.UserInfo),
		"Data":         dataView(s.Data, lang),
		"SpaceURL":     a.cfg.CitizenSpaceURL,
	}})
}

func pretty(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return string(raw)
	}
	return b.String()
}
