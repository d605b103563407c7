package mail

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/textproto"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
	gosmtp "github.com/wneessen/go-mail/smtp"

	"github.com/sesame-id/sesame/config"
)

// SMTPSender delivers messages through an SMTP relay, one connection per
// message: the volume is a few messages per login, and a connection kept
// open would need its own health checks and reconnects.
type SMTPSender struct {
	cfg  config.SMTP
	from *netmail.Address
	// domain names the Message-IDs: the sender's domain, not the host
	// name of the container that happens to send.
	domain string
	tls    *tls.Config
}

// NewSMTP returns a Sender for cfg.SMTP, sending from cfg.From. It reads
// cfg.SMTP.TLSCAFile now, so a bad file fails at start-up rather than at
// the first login. Defaults are those of config validation (starttls, port
// by mode, 10 s timeout), so an unvalidated config behaves the same.
func NewSMTP(cfg config.Mail) (*SMTPSender, error) {
	s := &SMTPSender{cfg: cfg.SMTP}
	c := &s.cfg
	if c.Host == "" {
		return nil, errors.New("mail: smtp.host is required")
	}
	if c.TLS == "" {
		c.TLS = "starttls"
	}
	switch c.TLS {
	case "starttls", "tls":
	case "none":
		// Credentials and citizens' addresses in clear are only
		// acceptable on the machine itself.
		if ip := net.ParseIP(c.Host); c.Host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("mail: smtp.tls none is only for a relay on loopback, not %s", c.Host)
		}
	default:
		return nil, fmt.Errorf("mail: smtp.tls %q: expected starttls, tls or none", c.TLS)
	}
	if c.Port == 0 {
		c.Port = map[string]int{"starttls": 587, "tls": 465, "none": 25}[c.TLS]
	}
	c.Timeout = config.Duration(c.Timeout.D(10 * time.Second))

	from, err := netmail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("mail: from %q: %w", cfg.From, err)
	}
	s.from = from
	s.domain = from.Address[strings.LastIndexByte(from.Address, '@')+1:]

	if c.TLS != "none" {
		s.tls = &tls.Config{ServerName: c.Host, MinVersion: tls.VersionTLS12}
		if c.TLSCAFile != "" {
			pem, err := os.ReadFile(c.TLSCAFile)
			if err != nil {
				return nil, fmt.Errorf("mail: smtp.tls_ca_file: %w", err)
			}
			// The private CA is added to the system's, not in place of
			// them: a relay moved to a public certificate keeps working.
			roots, err := x509.SystemCertPool()
			if err != nil {
				roots = x509.NewCertPool()
			}
			if !roots.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("mail: smtp.tls_ca_file %s: no PEM certificate", c.TLSCAFile)
			}
			s.tls.RootCAs = roots
		}
	}
	// Build a client once so that an option go-mail refuses fails here.
	if _, _, err := s.client(context.Background()); err != nil {
		return nil, err
	}
	return s, nil
}

// client makes a go-mail client for one delivery. A fresh one each time,
// because go-mail keeps the AUTH state (and, in some paths, the chosen
// mechanism) in the Client, which concurrent deliveries would share.
//
// go-mail only honours a context while dialling; once connected, a hung
// relay holds the delivery until the timeout. So the connection is dialled
// here and closed when ctx ends, which is what lets Queue.Close keep to its
// deadline. The returned stop releases that watch.
func (s *SMTPSender) client(ctx context.Context) (cl *gomail.Client, stop func(), err error) {
	c := &s.cfg
	var mu sync.Mutex
	var stops []func() bool
	stop = func() {
		mu.Lock()
		defer mu.Unlock()
		for _, f := range stops {
			f()
		}
	}
	dial := func(dctx context.Context, network, addr string) (net.Conn, error) {
		d := &net.Dialer{}
		var conn net.Conn
		var err error
		if c.TLS == "tls" {
			// With a dial function, go-mail leaves implicit TLS to it.
			conn, err = (&tls.Dialer{NetDialer: d, Config: s.tls}).DialContext(dctx, network, addr)
		} else {
			conn, err = d.DialContext(dctx, network, addr)
		}
		if err != nil {
			return nil, err
		}
		mu.Lock()
		stops = append(stops, context.AfterFunc(ctx, func() { _ = conn.Close() }))
		mu.Unlock()
		return conn, nil
	}
	opts := []gomail.Option{
		gomail.WithPort(c.Port),
		gomail.WithTimeout(time.Duration(c.Timeout)),
		gomail.WithDialContextFunc(dial),
	}
	switch c.TLS {
	case "starttls":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory), gomail.WithTLSConfig(s.tls))
	case "tls":
		// WithSSL still matters: it stops go-mail from trying STARTTLS
		// inside the TLS connection.
		opts = append(opts, gomail.WithSSL(), gomail.WithTLSConfig(s.tls))
	case "none":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if c.Username != "" {
		opts = append(opts, gomail.WithSMTPAuthCustom(&plainOrLogin{
			user: c.Username, pass: c.Password, host: c.Host, clear: c.TLS == "none",
		}))
	}
	cl, err = gomail.NewClient(c.Host, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("mail: smtp client for %s: %w", c.Host, err)
	}
	return cl, stop, nil
}

// Send delivers m. ctx bounds the whole delivery (the connection is closed
// when it ends), and each step is also bounded by the configured timeout.
// The error is an *Error: see Permanent.
func (s *SMTPSender) Send(ctx context.Context, m Message) error {
	msg, err := s.message(m)
	if err != nil {
		return &Error{Permanent: true, msg: "mail: " + redact(err.Error(), m.To), err: err}
	}
	cl, stop, err := s.client(ctx)
	if err != nil {
		return &Error{msg: redact(err.Error(), m.To), err: err}
	}
	err = cl.DialAndSendWithContext(ctx, msg)
	stop()
	if err != nil && msg.IsDelivered() {
		// Only the QUIT after the accepted DATA failed: the relay has
		// the message, and trying again would send it twice.
		return nil
	}
	if err != nil {
		return classify(err, fmt.Sprintf("mail: send via %s:%d", s.cfg.Host, s.cfg.Port), m.To)
	}
	return nil
}

// message builds the MIME message: multipart/alternative (text first, the
// fallback, then HTML), UTF-8, quoted-printable, encoded-word subject.
func (s *SMTPSender) message(m Message) (*gomail.Msg, error) {
	// The default User-Agent names the library and its version: nothing
	// the citizen needs, something an attacker likes.
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(s.from)
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("recipient: %w", err)
	}
	msg.Subject(oneLine(m.Subject))
	msg.SetMessageIDWithValue(rand.Text() + "@" + s.domain)
	msg.SetDateWithValue(time.Now())
	// RFC 3834: no out-of-office reply to an automatic message.
	msg.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

// oneLine keeps a subject on one header line whatever a template or a
// service name holds.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }), " ")
}

// Error is a failed delivery. Its text never holds the recipient's
// address (the relay's reply and go-mail's errors often do), so it can be
// logged as is.
type Error struct {
	// Code is the SMTP reply code when the relay refused (421, 451, 535,
	// 550...), 0 when it did not answer (network, TLS, timeout).
	Code int
	// Permanent says that trying again will not help: a 5xx reply, or a
	// message that cannot be built (a malformed address).
	Permanent bool
	msg       string
	err       error
}

// Error says what failed, with the relay's reply, the address redacted.
func (e *Error) Error() string { return e.msg }

// Unwrap returns the cause. Beware: its text may hold the address.
func (e *Error) Unwrap() error { return e.err }

// Permanent reports whether err says a delivery will never succeed (a 5xx
// reply, a malformed address), so that the queue drops the message rather
// than retrying. Any other error — a 4xx reply, the network, TLS, a
// timeout — is temporary.
func Permanent(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Permanent
	}
	return false
}

// classify wraps a go-mail error with its SMTP code and whether it is
// permanent. The code is read from go-mail's SendError (MAIL, RCPT, DATA
// replies) or from the textproto.Error under its dial errors (greeting,
// STARTTLS, AUTH replies).
func classify(err error, context, to string) *Error {
	code := 0
	var se *gomail.SendError
	var te *textproto.Error
	switch {
	case errors.As(err, &se) && se.ErrorCode() != 0:
		code = se.ErrorCode()
	case errors.As(err, &te):
		code = te.Code
	}
	return &Error{
		Code:      code,
		Permanent: code >= 500 && code < 600,
		msg:       context + ": " + redact(err.Error(), to),
		err:       err,
	}
}

// redact replaces the address in s, in any case, by "<destinataire>".
func redact(s, addr string) string {
	addr = strings.TrimSpace(addr)
	if a, err := netmail.ParseAddress(addr); err == nil {
		addr = a.Address
	}
	if addr == "" {
		return s
	}
	// EqualFold on equal-length windows rather than ToLower on the
	// whole: lower-casing may change byte lengths outside ASCII.
	var b strings.Builder
	last := 0
	for i := 0; i+len(addr) <= len(s); {
		if strings.EqualFold(s[i:i+len(addr)], addr) {
			b.WriteString(s[last:i])
			b.WriteString("<destinataire>")
			i += len(addr)
			last = i
		} else {
			i++
		}
	}
	b.WriteString(s[last:])
	return b.String()
}

// plainOrLogin is SMTP AUTH with PLAIN, or LOGIN when the relay only
// offers that, and nothing else: go-mail's auto-discovery would also pick
// CRAM-MD5 or SCRAM, which we neither configure nor test.
type plainOrLogin struct {
	user, pass, host string
	// clear allows AUTH without TLS (tls: none, loopback only); otherwise
	// go-mail's mechanisms refuse to send the password in clear.
	clear  bool
	chosen gosmtp.Auth
}

func (a *plainOrLogin) Start(si *gosmtp.ServerInfo) (string, []byte, error) {
	switch {
	case slices.Contains(si.Auth, "PLAIN"):
		a.chosen = gosmtp.PlainAuth("", a.user, a.pass, a.host, a.clear)
	case slices.Contains(si.Auth, "LOGIN"):
		a.chosen = gosmtp.LoginAuth(a.user, a.pass, a.host, a.clear)
	default:
		return "", nil, fmt.Errorf("relay offers AUTH %q, neither PLAIN nor LOGIN", strings.Join(si.Auth, " "))
	}
	return a.chosen.Start(si)
}

func (a *plainOrLogin) Next(fromServer []byte, more bool) ([]byte, error) {
	return a.chosen.Next(fromServer, more)
}
