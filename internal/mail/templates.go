package mail

import (
	"bytes"
	htmltemplate "html/template"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"

	// Minimal images (distroless, scratch) have no zoneinfo, and a wrong
	// hour in a security notice is worse than 450 kB.
	_ "time/tzdata"
)

// Connection is what the e-mail of a new connection says.
type Connection struct {
	To string
	// SPName is the service, IdPName the account used, ACR the level
	// (eidas1, eidas2, eidas3), Time when (shown in Paris time).
	SPName, IdPName, ACR string
	Time                 time.Time
	// Code is the connection code, also shown in the citizen's history.
	Code string
	// ReportURL is the "ce n'était pas moi" link (it carries the code);
	// SpaceURL the citizen space.
	ReportURL, SpaceURL string
	// Lang is the login's language, "fr" (the default) or "en": the
	// subject and the first part of the message are in it, the other
	// language follows.
	Lang string
}

// PreferencesChange is what the e-mail of a change of the allowed
// accounts says.
type PreferencesChange struct {
	To   string
	Time time.Time
	// Allowed and Blocked are the names of the accounts whose setting
	// changed.
	Allowed, Blocked []string
	// Future is "allow" or "deny" when the setting for accounts added
	// later changed, else empty.
	Future   string
	SpaceURL string
	// Lang is the citizen space's language, as Connection.Lang.
	Lang string
}

// Tags of the messages built here.
const (
	TagConnection  = "connection"
	TagPreferences = "preferences"
)

// paris is the time zone of the e-mails: the citizen reads French civil
// time, whatever the server's zone. The fixed CET fallback (an hour off in
// summer) is only for a build without time/tzdata and a system without
// zoneinfo.
var paris = func() *time.Location {
	if l, err := time.LoadLocation("Europe/Paris"); err == nil {
		return l
	}
	return time.FixedZone("CET", 3600)
}()

// ConnectionMessage is the e-mail that tells the citizen of a connection
// to a service: which service, with which account, when, at which level,
// its code, and where to report it if it was not them.
func ConnectionMessage(c Connection) Message {
	t := localTime(c.Time)
	fr, en := level(c.ACR)
	v := connectionView{
		Connection: c,
		WhenFR:     whenFR(t), WhenEN: whenEN(t),
		LevelFR: fr, LevelEN: en,
	}
	subject := "Connexion à " + oneLine(c.SPName) + " avec Sésame"
	if english(c.Lang) {
		subject = "Sign-in to " + oneLine(c.SPName) + " with Sésame"
	}
	return Message{
		To:      c.To,
		Subject: subject,
		Text:    bilingualText(connectionText, v, c.Lang),
		HTML:    bilingualHTML(connectionHTML, v, c.Lang, "Connexion avec Sésame", "Sign-in with Sésame"),
		Tag:     TagConnection,
	}
}

// PreferencesMessage is the e-mail that tells the citizen their allowed
// accounts changed, so that a change they did not make does not go
// unnoticed.
func PreferencesMessage(p PreferencesChange) Message {
	t := localTime(p.Time)
	v := preferencesView{
		PreferencesChange: p,
		WhenFR:            whenFR(t), WhenEN: whenEN(t),
		AllowedList: strings.Join(p.Allowed, ", "),
		BlockedList: strings.Join(p.Blocked, ", "),
	}
	switch p.Future {
	case "allow":
		v.FutureFR, v.FutureEN = "autorisés", "allowed"
	case "deny":
		v.FutureFR, v.FutureEN = "bloqués", "blocked"
	}
	subject := "Vos comptes autorisés ont changé – Sésame"
	if english(p.Lang) {
		subject = "Your allowed accounts changed – Sésame"
	}
	return Message{
		To:      p.To,
		Subject: subject,
		Text:    bilingualText(preferencesText, v, p.Lang),
		HTML:    bilingualHTML(preferencesHTML, v, p.Lang, "Vos comptes autorisés ont changé", "Your allowed accounts changed"),
		Tag:     TagPreferences,
	}
}

type connectionView struct {
	Connection
	WhenFR, WhenEN   string
	LevelFR, LevelEN string
}

type preferencesView struct {
	PreferencesChange
	WhenFR, WhenEN           string
	AllowedList, BlockedList string
	FutureFR, FutureEN       string
}

func localTime(t time.Time) time.Time {
	if t.IsZero() {
		t = time.Now()
	}
	return t.In(paris)
}

// level names an eIDAS level in words, as the citizen does not know the
// acr values; for another value it returns nothing, and the e-mail says no
// level rather than a code that means nothing to the citizen.
func level(acr string) (fr, en string) {
	switch acr {
	case "eidas1":
		return "faible", "low"
	case "eidas2":
		return "substantiel", "substantial"
	case "eidas3":
		return "élevé", "high"
	}
	return "", ""
}

var (
	daysFR   = [...]string{"dimanche", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"}
	monthsFR = [...]string{"janvier", "février", "mars", "avril", "mai", "juin", "juillet",
		"août", "septembre", "octobre", "novembre", "décembre"}
)

// whenFR writes t the French way, "lundi 2 mars 2026 à 9 h 05", by hand:
// the standard library only knows English names.
func whenFR(t time.Time) string {
	day := strconv.Itoa(t.Day())
	if t.Day() == 1 {
		day = "1er"
	}
	return daysFR[t.Weekday()] + " " + day + " " + monthsFR[t.Month()-1] + " " +
		strconv.Itoa(t.Year()) + " à " + strconv.Itoa(t.Hour()) + t.Format(" h 04")
}

// whenEN writes t as "Monday 2 March 2026 at 14:05".
func whenEN(t time.Time) string { return t.Format("Monday 2 January 2006 at 15:04") }

// english reports whether a message is for an English login; anything
// else is French, the default.
func english(lang string) bool { return lang == "en" || strings.HasPrefix(lang, "en-") }

// bilingualText is the message's text part: the login's language first,
// then the other one, each a template of t ("fr", "en").
func bilingualText(t *texttemplate.Template, v any, lang string) string {
	if english(lang) {
		return execText(t.Lookup("en"), v) + "\n-- Français --\n\n" + execText(t.Lookup("fr"), v)
	}
	return execText(t.Lookup("fr"), v) + "\n-- English --\n\n" + execText(t.Lookup("en"), v)
}

// bilingualHTML is the HTML part, in the same order, titled in the
// login's language.
func bilingualHTML(t *htmltemplate.Template, v any, lang, titleFR, titleEN string) string {
	first, second, title := "fr", "en", titleFR
	if english(lang) {
		first, second, title = "en", "fr", titleEN
	}
	var b strings.Builder
	b.WriteString(execHTML(htmlTop, struct{ Lang, Title string }{first, title}))
	b.WriteString(execHTML(t.Lookup(first), v))
	b.WriteString(`<hr style="border:0;border-top:1px solid #dddddd;margin:24px 0">` + "\n")
	b.WriteString(execHTML(t.Lookup(second), v))
	b.WriteString(execHTML(htmlBottom.Lookup(first), nil))
	return b.String()
}

// execText and execHTML panic on an error: the templates are fixed and
// their data plain strings, so an error is a bug the tests catch, not a
// condition to handle at each login.
func execText(t *texttemplate.Template, v any) string {
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		panic("mail: template " + t.Name() + ": " + err.Error())
	}
	return b.String()
}

func execHTML(t *htmltemplate.Template, v any) string {
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		panic("mail: template " + t.Name() + ": " + err.Error())
	}
	return b.String()
}

var connectionText = texttemplate.Must(texttemplate.New("connection.txt").Parse(
	`{{define "fr"}}Bonjour,

Vous venez de vous connecter à {{.SPName}} avec Sésame.

  Service : {{.SPName}}
  Compte utilisé : {{.IdPName}}
  Date : {{.WhenFR}} (heure de Paris)
{{if .LevelFR}}  Niveau de garantie : {{.LevelFR}}
{{end}}
  Code de connexion : {{.Code}}

Ce code figure aussi dans l'historique de votre espace Sésame.
{{if .ReportURL}}
Ce n'était pas moi ? Signalez-le : {{.ReportURL}}
{{end}}{{if .SpaceURL}}
Votre espace Sésame (historique, comptes autorisés) : {{.SpaceURL}}
{{end}}
Ce message est envoyé automatiquement, merci de ne pas y répondre.
{{end}}{{define "en"}}Hello,

You have just signed in to {{.SPName}} with Sésame.

  Service: {{.SPName}}
  Account used: {{.IdPName}}
  Date: {{.WhenEN}} (Paris time)
{{if .LevelEN}}  Level of assurance: {{.LevelEN}}
{{end}}
  Connection code: {{.Code}}

This code also appears in the history of your Sésame space.
{{if .ReportURL}}
Not you? Report it: {{.ReportURL}}
{{end}}{{if .SpaceURL}}
Your Sésame space (history, allowed accounts): {{.SpaceURL}}
{{end}}
This message is sent automatically, please do not reply.
{{end}}`))

// The HTML is kept to what mail clients render: inline styles, no script,
// no external resource, one column.
var htmlTop = htmltemplate.Must(htmltemplate.New("top").Parse(`<!doctype html>
<html lang="{{.Lang}}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{{.Title}}</title></head>
<body style="margin:0;padding:16px;background:#f6f6f6;font-family:Arial,Helvetica,sans-serif;color:#161616;line-height:1.5">
<div style="max-width:600px;margin:0 auto;background:#ffffff;padding:24px;border-top:4px solid #000091">
<p style="margin:0 0 16px;font-size:20px;font-weight:bold;color:#000091">Sésame</p>
`))

var htmlBottom = htmltemplate.Must(htmltemplate.New("bottom").Parse(
	`{{define "fr"}}<p style="margin:24px 0 0;font-size:13px;color:#666666"><span lang="fr">Ce message est envoyé automatiquement, merci de ne pas y répondre.</span><br>
<span lang="en">This message is sent automatically, please do not reply.</span></p>
</div>
</body>
</html>
{{end}}{{define "en"}}<p style="margin:24px 0 0;font-size:13px;color:#666666"><span lang="en">This message is sent automatically, please do not reply.</span><br>
<span lang="fr">Ce message est envoyé automatiquement, merci de ne pas y répondre.</span></p>
</div>
</body>
</html>
{{end}}`))

var connectionHTML = htmltemplate.Must(htmltemplate.New("connection.html").Parse(
	`{{define "fr"}}<div lang="fr">
<h1 style="font-size:20px;margin:0 0 16px">Connexion à {{.SPName}}</h1>
<p>Bonjour,</p>
<p>Vous venez de vous connecter à <strong>{{.SPName}}</strong> avec Sésame.</p>
<table role="presentation" style="border-collapse:collapse">
<tr><td style="padding:2px 12px 2px 0">Service</td><td><strong>{{.SPName}}</strong></td></tr>
<tr><td style="padding:2px 12px 2px 0">Compte utilisé</td><td><strong>{{.IdPName}}</strong></td></tr>
<tr><td style="padding:2px 12px 2px 0">Date</td><td><strong>{{.WhenFR}}</strong> (heure de Paris)</td></tr>
{{if .LevelFR}}<tr><td style="padding:2px 12px 2px 0">Niveau de garantie</td><td><strong>{{.LevelFR}}</strong></td></tr>
{{end}}</table>
<p style="margin:16px 0 4px">Code de connexion :</p>
<p style="margin:0 0 16px;font-family:'Courier New',monospace;font-size:28px;font-weight:bold;letter-spacing:2px">{{.Code}}</p>
<p>Ce code figure aussi dans l'historique de votre espace Sésame.</p>
{{if .ReportURL}}<p><strong>Ce n'était pas moi ?</strong> <a href="{{.ReportURL}}" style="color:#000091">Signalez-le</a></p>
{{end}}{{if .SpaceURL}}<p><a href="{{.SpaceURL}}" style="color:#000091">Votre espace Sésame</a> (historique, comptes autorisés)</p>
{{end}}</div>
{{end}}{{define "en"}}<div lang="en">
<h2 style="font-size:18px;margin:0 0 16px">Sign-in to {{.SPName}}</h2>
<p>Hello,</p>
<p>You have just signed in to <strong>{{.SPName}}</strong> with Sésame.</p>
<table role="presentation" style="border-collapse:collapse">
<tr><td style="padding:2px 12px 2px 0">Service</td><td><strong>{{.SPName}}</strong></td></tr>
<tr><td style="padding:2px 12px 2px 0">Account used</td><td><strong>{{.IdPName}}</strong></td></tr>
<tr><td style="padding:2px 12px 2px 0">Date</td><td><strong>{{.WhenEN}}</strong> (Paris time)</td></tr>
{{if .LevelEN}}<tr><td style="padding:2px 12px 2px 0">Level of assurance</td><td><strong>{{.LevelEN}}</strong></td></tr>
{{end}}</table>
<p style="margin:16px 0 4px">Connection code: <strong style="font-family:'Courier New',monospace">{{.Code}}</strong></p>
<p>This code also appears in the history of your Sésame space.</p>
{{if .ReportURL}}<p><strong>Not you?</strong> <a href="{{.ReportURL}}" style="color:#000091">Report it</a></p>
{{end}}{{if .SpaceURL}}<p><a href="{{.SpaceURL}}" style="color:#000091">Your Sésame space</a> (history, allowed accounts)</p>
{{end}}</div>
{{end}}`))

var preferencesText = texttemplate.Must(texttemplate.New("preferences.txt").Parse(
	`{{define "fr"}}Bonjour,

Les comptes que vous autorisez à vous connecter avec Sésame ont été modifiés dans votre espace Sésame, le {{.WhenFR}} (heure de Paris).
{{if .AllowedList}}
  Comptes désormais autorisés : {{.AllowedList}}{{end}}{{if .BlockedList}}
  Comptes désormais bloqués : {{.BlockedList}}{{end}}{{if .FutureFR}}
  Comptes ajoutés à l'avenir : {{.FutureFR}} par défaut{{end}}

Si ce n'était pas vous, connectez-vous à votre espace Sésame pour vérifier et rétablir vos réglages{{if .SpaceURL}} : {{.SpaceURL}}{{end}}
Changez aussi le mot de passe des comptes avec lesquels vous vous connectez.

Ce message est envoyé automatiquement, merci de ne pas y répondre.
{{end}}{{define "en"}}Hello,

The accounts you allow to sign in with Sésame were changed in your Sésame space on {{.WhenEN}} (Paris time).
{{if .AllowedList}}
  Accounts now allowed: {{.AllowedList}}{{end}}{{if .BlockedList}}
  Accounts now blocked: {{.BlockedList}}{{end}}{{if .FutureEN}}
  Accounts added later: {{.FutureEN}} by default{{end}}

If it was not you, log in to your Sésame space to check and restore your settings{{if .SpaceURL}}: {{.SpaceURL}}{{end}}
Also change the password of the accounts you sign in with.

This message is sent automatically, please do not reply.
{{end}}`))

var preferencesHTML = htmltemplate.Must(htmltemplate.New("preferences.html").Parse(
	`{{define "fr"}}<div lang="fr">
<h1 style="font-size:20px;margin:0 0 16px">Vos comptes autorisés ont changé</h1>
<p>Bonjour,</p>
<p>Les comptes que vous autorisez à vous connecter avec Sésame ont été modifiés dans votre espace Sésame, le <strong>{{.WhenFR}}</strong> (heure de Paris).</p>
{{if or .Allowed .Blocked .FutureFR}}<ul>
{{if .Allowed}}<li>Comptes désormais autorisés : {{range $i, $n := .Allowed}}{{if $i}}, {{end}}<strong>{{$n}}</strong>{{end}}</li>
{{end}}{{if .Blocked}}<li>Comptes désormais bloqués : {{range $i, $n := .Blocked}}{{if $i}}, {{end}}<strong>{{$n}}</strong>{{end}}</li>
{{end}}{{if .FutureFR}}<li>Comptes ajoutés à l'avenir : <strong>{{.FutureFR}}</strong> par défaut</li>
{{end}}</ul>
{{end}}<p><strong>Si ce n'était pas vous</strong>, connectez-vous à {{if .SpaceURL}}<a href="{{.SpaceURL}}" style="color:#000091">votre espace Sésame</a>{{else}}votre espace Sésame{{end}} pour vérifier et rétablir vos réglages. Changez aussi le mot de passe des comptes avec lesquels vous vous connectez.</p>
</div>
{{end}}{{define "en"}}<div lang="en">
<h2 style="font-size:18px;margin:0 0 16px">Your allowed accounts changed</h2>
<p>Hello,</p>
<p>The accounts you allow to sign in with Sésame were changed in your Sésame space on <strong>{{.WhenEN}}</strong> (Paris time).</p>
{{if or .Allowed .Blocked .FutureEN}}<ul>
{{if .Allowed}}<li>Accounts now allowed: {{range $i, $n := .Allowed}}{{if $i}}, {{end}}<strong>{{$n}}</strong>{{end}}</li>
{{end}}{{if .Blocked}}<li>Accounts now blocked: {{range $i, $n := .Blocked}}{{if $i}}, {{end}}<strong>{{$n}}</strong>{{end}}</li>
{{end}}{{if .FutureEN}}<li>Accounts added later: <strong>{{.FutureEN}}</strong> by default</li>
{{end}}</ul>
{{end}}<p><strong>If it was not you</strong>, log in to {{if .SpaceURL}}<a href="{{.SpaceURL}}" style="color:#000091">your Sésame space</a>{{else}}your Sésame space{{end}} to check and restore your settings. Also change the password of the accounts you sign in with.</p>
</div>
{{end}}`))
