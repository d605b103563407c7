// Package mail sends the citizen's e-mails: one per new connection at a
// service, and one per change of their preferences in the citizen space.
//
// A Sender delivers one message: SMTP (a maintained client library) in
// production, an in-memory Outbox, viewable in the browser, in
// development only (it shows addresses and codes to anyone who reaches
// it). A Queue in front of it never slows a login: it is bounded, sends in
// the background and retries temporary failures. ConnectionMessage and
// PreferencesMessage write the messages, in the citizen's language (the
// login's, or the citizen space's), then in the other one.
//
// No log line of this package holds an e-mail address (personal data):
// they carry the message's Tag and a short keyed hash of the address.
package mail

import "context"

// Message is one e-mail, in a text and an HTML part.
type Message struct {
	To      string
	Subject string
	Text    string
	HTML    string
	// Tag names the kind of message in logs and metrics ("connection",
	// "preferences"); it is never an address.
	Tag string
}

// Sender delivers one message, or fails with an error that says whether
// trying again may help (see Permanent).
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// Mailer is what the broker and the citizen space hold: it accepts a
// message to deliver later, and never blocks for long. Enqueue answers
// false when the message was dropped (queue full, or closed).
type Mailer interface {
	Enqueue(m Message) bool
}
