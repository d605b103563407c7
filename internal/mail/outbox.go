package mail

import (
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// OutboxSize is how many messages an Outbox keeps: the most recent.
const OutboxSize = 200

// Outbox is the development Sender: it keeps the last OutboxSize messages
// in memory and shows them in the browser (Handler), so a developer sees
// the citizen's e-mails without a relay.
//
// Never use it in production: it holds citizens' addresses and connection
// codes in memory and shows them to whoever reaches the handler, with no
// authentication. The broker only builds one when mail.smtp has no host,
// and mail.outbox_listen should stay on loopback.
type Outbox struct {
	mu   sync.Mutex
	msgs []OutboxMessage // oldest first
	next int
}

// OutboxMessage is a message kept by an Outbox.
type OutboxMessage struct {
	Message
	// ID numbers the messages of one Outbox from 1.
	ID   int
	Time time.Time
}

var _ Sender = (*Outbox)(nil)

// NewOutbox returns an empty Outbox.
func NewOutbox() *Outbox { return &Outbox{} }

// Send keeps m, forgetting the oldest message beyond OutboxSize. It never
// fails.
func (o *Outbox) Send(_ context.Context, m Message) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.next++
	o.msgs = append(o.msgs, OutboxMessage{Message: m, ID: o.next, Time: time.Now()})
	if n := len(o.msgs); n > OutboxSize {
		// Copy rather than reslice, so the array does not grow forever.
		o.msgs = append([]OutboxMessage(nil), o.msgs[n-OutboxSize:]...)
	}
	return nil
}

// Messages returns the messages kept, newest first.
func (o *Outbox) Messages() []OutboxMessage {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]OutboxMessage, len(o.msgs))
	for i, m := range o.msgs {
		out[len(out)-1-i] = m
	}
	return out
}

// Message returns the message numbered id.
func (o *Outbox) Message(id int) (OutboxMessage, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, m := range o.msgs {
		if m.ID == id {
			return m, true
		}
	}
	return OutboxMessage{}, false
}

// outboxCSP: the pages run no script and load nothing. Inline styles are
// allowed for the page's own style and for the e-mail's HTML, which the
// srcdoc iframe renders under this same policy (an about:srcdoc document
// inherits it), on top of the iframe's sandbox.
const outboxCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the outbox: GET / lists the messages, newest first;
// GET /messages/{id} shows one, its text and its HTML part; GET
// /messages.json lists them for scripts (e2e tests read the connection
// code there). Mount it on its own listener (mail.outbox_listen), or under
// a prefix with http.StripPrefix.
func (o *Outbox) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		outboxPage(w, http.StatusOK, outboxList, o.Messages())
	})
	mux.HandleFunc("GET /messages/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		m, ok := o.Message(id)
		if err != nil || !ok {
			outboxPage(w, http.StatusNotFound, outboxMissing, nil)
			return
		}
		outboxPage(w, http.StatusOK, outboxShow, m)
	})
	mux.HandleFunc("GET /messages.json", func(w http.ResponseWriter, r *http.Request) {
		outboxHeaders(w)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(o.Messages())
	})
	return mux
}

func outboxHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", outboxCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

func outboxPage(w http.ResponseWriter, status int, t *template.Template, data any) {
	outboxHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	// An error here is the client gone away; the status is already sent.
	_ = t.Execute(w, data)
}

// outboxFormat is how the outbox shows times: the developer's local time.
func outboxFormat(t time.Time) string { return t.Format("02/01/2006 15:04:05") }

var outboxFuncs = template.FuncMap{
	"when": outboxFormat,
	"iso":  func(t time.Time) string { return t.Format(time.RFC3339) },
}

const outboxLayout = `{{define "top"}}<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}} – Boîte d'envoi de développement – Sésame</title>
<style>
body{font-family:system-ui,sans-serif;margin:1rem auto;max-width:60rem;padding:0 1rem;color:#161616;line-height:1.5}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #ccc;padding:.4rem;text-align:left;vertical-align:top}
a{color:#000091}
a:focus{outline:2px solid #0a76f6;outline-offset:2px}
pre{white-space:pre-wrap;background:#f6f6f6;padding:1rem;border:1px solid #ccc}
iframe{width:100%;height:40rem;border:1px solid #ccc;background:#fff}
.note{background:#fff4e5;border-left:4px solid #b34000;padding:.5rem 1rem}
</style>
</head>
<body>
<p class="note">Environnement de développement : ces messages n'ont pas été envoyés.</p>
<main>
{{end}}
{{define "bottom"}}</main>
</body>
</html>
{{end}}`

var (
	outboxList = template.Must(template.Must(template.New("list").Funcs(outboxFuncs).Parse(outboxLayout)).Parse(
		`{{template "top" "Messages"}}
<h1>Boîte d'envoi de développement</h1>
{{if .}}<table>
<caption>{{len .}} message(s), du plus récent au plus ancien (au plus ` + strconv.Itoa(OutboxSize) + `)</caption>
<thead><tr><th scope="col">Date</th><th scope="col">Destinataire</th><th scope="col">Objet</th><th scope="col">Type</th></tr></thead>
<tbody>
{{range .}}<tr>
<td><time datetime="{{iso .Time}}">{{when .Time}}</time></td>
<td>{{.To}}</td>
<td><a href="messages/{{.ID}}">{{if .Subject}}{{.Subject}}{{else}}(sans objet){{end}}</a></td>
<td>{{.Tag}}</td>
</tr>
{{end}}</tbody>
</table>
{{else}}<p>Aucun message pour l'instant.</p>
{{end}}{{template "bottom"}}`))

	outboxShow = template.Must(template.Must(template.New("show").Funcs(outboxFuncs).Parse(outboxLayout)).Parse(
		`{{template "top" .Subject}}
<p><a href="../">Retour à la liste</a></p>
<h1>{{if .Subject}}{{.Subject}}{{else}}(sans objet){{end}}</h1>
<dl>
<dt>Destinataire</dt><dd>{{.To}}</dd>
<dt>Date</dt><dd><time datetime="{{iso .Time}}">{{when .Time}}</time></dd>
<dt>Type</dt><dd>{{.Tag}}</dd>
</dl>
<h2>Version texte</h2>
<pre>{{.Text}}</pre>
<h2>Version HTML</h2>
{{if .HTML}}<iframe sandbox srcdoc="{{.HTML}}" title="Version HTML du message" referrerpolicy="no-referrer"></iframe>
{{else}}<p>Ce message n'a pas de version HTML.</p>
{{end}}{{template "bottom"}}`))

	outboxMissing = template.Must(template.Must(template.New("missing").Funcs(outboxFuncs).Parse(outboxLayout)).Parse(
		`{{template "top" "Message introuvable"}}
<h1>Message introuvable</h1>
<p>Ce message n'existe pas, ou il est trop ancien : la boîte garde les ` + strconv.Itoa(OutboxSize) + ` derniers.</p>
<p><a href="../">Retour à la liste</a></p>
{{template "bottom"}}`))
)
