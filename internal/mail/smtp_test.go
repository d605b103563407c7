package mail

import (
	"context"
	"errors"
	"net"
	netmail "net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/testsmtp"
)

const (
	testFrom = "Sésame <ne-pas-repondre@sesame.example>"
	testTo   = "alice.martin@example.fr"
)

// mailConfig is the config for the test server s, in mode tlsMode.
func mailConfig(s *testsmtp.Server, tlsMode string) config.Mail {
	return config.Mail{From: testFrom, SMTP: config.SMTP{
		Host: s.Host, Port: s.Port, TLS: tlsMode, TLSCAFile: s.CAFile,
		Timeout: config.Duration(5 * time.Second),
	}}
}

func newSMTP(t *testing.T, cfg config.Mail) *SMTPSender {
	t.Helper()
	s, err := NewSMTP(cfg)
	if err != nil {
		t.Fatalf("NewSMTP: %v", err)
	}
	return s
}

func testConnection() Connection {
	return Connection{
		To:      testTo,
		SPName:  "Agence nationale des titres sécurisés",
		IdPName: "impots.gouv.fr",
		ACR:     "eidas2",
		// 12:05 UTC in July is 14:05 in Paris (summer time, UTC+2).
		Time:      time.Date(2026, 7, 14, 12, 5, 0, 0, time.UTC),
		Code:      "K7Q-4MZ",
		ReportURL: "https://espace.sesame.example/signaler?code=K7Q-4MZ",
		SpaceURL:  "https://espace.sesame.example/",
	}
}

func sendCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSMTPConnectionMessage(t *testing.T) {
	srv := testsmtp.Start(t)
	s := newSMTP(t, mailConfig(srv, "none"))
	c := testConnection()
	if err := s.Send(sendCtx(t), ConnectionMessage(c)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := srv.Wait(t, 1, 5*time.Second)[0]
	if got.From != "ne-pas-repondre@sesame.example" || len(got.To) != 1 || got.To[0] != testTo {
		t.Errorf("envelope: from %q to %q", got.From, got.To)
	}
	p := got.MustParse(t)

	// The subject is in the login's language (French by default).
	if want := "Connexion à Agence nationale des titres sécurisés avec Sésame"; p.Subject != want {
		t.Errorf("subject = %q, want %q", p.Subject, want)
	}
	if raw := p.Header.Get("Subject"); !strings.HasPrefix(raw, "=?UTF-8?") && !strings.HasPrefix(raw, "=?utf-8?") {
		t.Errorf("raw subject %q is not an RFC 2047 UTF-8 encoded word", raw)
	}
	if p.From != testFrom || p.To != "<"+testTo+">" && p.To != testTo {
		t.Errorf("from %q, to %q", p.From, p.To)
	}
	if id := p.Header.Get("Message-Id"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@sesame.example>") {
		t.Errorf("Message-ID = %q, want <...@sesame.example>", id)
	}
	if d, err := netmail.ParseDate(p.Header.Get("Date")); err != nil || time.Since(d) > time.Minute {
		t.Errorf("Date %q: %v", p.Header.Get("Date"), err)
	}
	if ua := p.Header.Get("User-Agent") + p.Header.Get("X-Mailer"); ua != "" {
		t.Errorf("the library announces itself: %q", ua)
	}
	if a := p.Header.Get("Auto-Submitted"); a != "auto-generated" {
		t.Errorf("Auto-Submitted = %q", a)
	}

	if p.ContentType != "multipart/alternative" || len(p.Parts) != 2 ||
		p.Parts[0].ContentType != "text/plain" || p.Parts[1].ContentType != "text/html" {
		t.Fatalf("structure: %s %+v", p.ContentType, p.Parts)
	}
	for _, part := range p.Parts {
		if part.Charset != "utf-8" {
			t.Errorf("%s charset %q", part.ContentType, part.Charset)
		}
	}
	for _, want := range []string{
		"K7Q-4MZ", "Agence nationale des titres sécurisés", "impots.gouv.fr",
		"mardi 14 juillet 2026 à 14 h 05 (heure de Paris)", "Tuesday 14 July 2026 at 14:05 (Paris time)",
		"Niveau de garantie : substantiel", "Level of assurance: substantial",
		"Bonjour", "Hello", "Ce n'était pas moi ?", "Not you?",
		c.ReportURL, c.SpaceURL,
	} {
		if !strings.Contains(p.Text, want) {
			t.Errorf("text part lacks %q", want)
		}
	}
	if fr, en := strings.Index(p.Text, "Bonjour"), strings.Index(p.Text, "Hello"); fr > en {
		t.Error("English comes before French")
	}
	for _, want := range []string{"K7Q-4MZ", "impots.gouv.fr", "14 h 05", `href="` + c.ReportURL + `"`, `lang="en"`} {
		if !strings.Contains(p.HTML, want) {
			t.Errorf("HTML part lacks %q", want)
		}
	}
}

func TestSMTPStartTLSAuth(t *testing.T) {
	srv := testsmtp.Start(t, testsmtp.StartTLS(), testsmtp.Auth("sesame", "s3cret"))
	cfg := mailConfig(srv, "starttls")
	cfg.SMTP.Username, cfg.SMTP.Password = "sesame", "s3cret"
	if err := newSMTP(t, cfg).Send(sendCtx(t), ConnectionMessage(testConnection())); err != nil {
		t.Fatalf("Send over STARTTLS with AUTH: %v", err)
	}
	srv.Wait(t, 1, 5*time.Second)

	cfg.SMTP.Password = "wrong"
	err := newSMTP(t, cfg).Send(sendCtx(t), ConnectionMessage(testConnection()))
	var e *Error
	if !errors.As(err, &e) || e.Code != 535 || !Permanent(err) {
		t.Fatalf("wrong password: %v (%#v), want a permanent 535", err, e)
	}
	if strings.Contains(err.Error(), testTo) {
		t.Errorf("error holds the address: %v", err)
	}
}

func TestSMTPImplicitTLS(t *testing.T) {
	srv := testsmtp.Start(t, testsmtp.ImplicitTLS(), testsmtp.Auth("sesame", "s3cret"))
	cfg := mailConfig(srv, "tls")
	cfg.SMTP.Username, cfg.SMTP.Password = "sesame", "s3cret"
	if err := newSMTP(t, cfg).Send(sendCtx(t), ConnectionMessage(testConnection())); err != nil {
		t.Fatalf("Send over implicit TLS: %v", err)
	}
	srv.Wait(t, 1, 5*time.Second)
}

func TestSMTPVerifiesTheRelay(t *testing.T) {
	srv := testsmtp.Start(t, testsmtp.StartTLS())
	cfg := mailConfig(srv, "starttls")
	cfg.SMTP.TLSCAFile = "" // the system roots do not know the test CA
	err := newSMTP(t, cfg).Send(sendCtx(t), ConnectionMessage(testConnection()))
	if err == nil {
		t.Fatal("sent to a relay with an unknown certificate")
	}
	if Permanent(err) {
		t.Errorf("a TLS failure is classified permanent: %v", err)
	}
	if srv.Attempts() != 0 {
		t.Error("the message reached the relay")
	}
}

func TestSMTPStartTLSIsMandatory(t *testing.T) {
	srv := testsmtp.Start(t) // offers no STARTTLS
	cfg := mailConfig(srv, "starttls")
	err := newSMTP(t, cfg).Send(sendCtx(t), ConnectionMessage(testConnection()))
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("sent in clear to a relay without STARTTLS: %v", err)
	}
	if srv.Attempts() != 0 {
		t.Error("the message reached the relay")
	}
}

func TestSMTPReplyClasses(t *testing.T) {
	srv := testsmtp.Start(t)
	s := newSMTP(t, mailConfig(srv, "none"))
	for _, tc := range []struct {
		code      int
		permanent bool
	}{{451, false}, {421, false}, {550, true}, {554, true}} {
		srv.FailNext(1, tc.code)
		err := s.Send(sendCtx(t), ConnectionMessage(testConnection()))
		var e *Error
		if !errors.As(err, &e) || e.Code != tc.code || Permanent(err) != tc.permanent {
			t.Errorf("%d: %v (%#v), want permanent=%v", tc.code, err, e, tc.permanent)
		}
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages accepted", n)
	}
}

func TestSMTPNetworkErrorIsTemporary(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now
	s := newSMTP(t, config.Mail{From: testFrom, SMTP: config.SMTP{Host: "127.0.0.1", Port: port, TLS: "none"}})
	err = s.Send(sendCtx(t), ConnectionMessage(testConnection()))
	var e *Error
	if !errors.As(err, &e) || e.Code != 0 || Permanent(err) {
		t.Fatalf("connection refused: %v (%#v), want temporary without code", err, e)
	}
}

func TestSMTPBadAddressIsPermanent(t *testing.T) {
	srv := testsmtp.Start(t)
	s := newSMTP(t, mailConfig(srv, "none"))
	m := ConnectionMessage(testConnection())
	m.To = "not an address"
	if err := s.Send(sendCtx(t), m); !Permanent(err) {
		t.Fatalf("bad address: %v, want permanent", err)
	}
}

func TestNewSMTPRefuses(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]config.Mail{
		"no host":           {From: testFrom},
		"none off loopback": {From: testFrom, SMTP: config.SMTP{Host: "smtp.example.fr", TLS: "none"}},
		"unknown tls":       {From: testFrom, SMTP: config.SMTP{Host: "smtp.example.fr", TLS: "ssl"}},
		"bad from":          {From: "Sésame", SMTP: config.SMTP{Host: "smtp.example.fr"}},
		"missing CA":        {From: testFrom, SMTP: config.SMTP{Host: "smtp.example.fr", TLSCAFile: bad + ".missing"}},
		"not a CA":          {From: testFrom, SMTP: config.SMTP{Host: "smtp.example.fr", TLSCAFile: bad}},
	} {
		if _, err := NewSMTP(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRedact(t *testing.T) {
	got := redact("550 5.1.1 <Alice.Martin@Example.FR>: no such user, affected recipient(s): alice.martin@example.fr", testTo)
	if strings.Contains(strings.ToLower(got), testTo) {
		t.Errorf("redact left the address: %q", got)
	}
	if want := "550 5.1.1 <<destinataire>>: no such user, affected recipient(s): <destinataire>"; got != want {
		t.Errorf("redact = %q, want %q", got, want)
	}
}

// Cancelling the context stops a delivery stuck on a hung relay, not only
// the dial: that is what lets Queue.Close keep to its deadline.
func TestSMTPSendHonoursContext(t *testing.T) {
	s := newSMTP(t, hungRelay(t)) // 3 s timeout
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Send(ctx, ConnectionMessage(testConnection()))
	if err == nil {
		t.Fatal("sent to a relay that never answers")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Send returned after %v, its context ended after 100ms", d)
	}
}

func TestSMTPAuthLoginOnly(t *testing.T) {
	srv := testsmtp.Start(t, testsmtp.StartTLS(), testsmtp.Auth("sesame", "s3cret"), testsmtp.AuthMechanisms("LOGIN"))
	cfg := mailConfig(srv, "starttls")
	cfg.SMTP.Username, cfg.SMTP.Password = "sesame", "s3cret"
	if err := newSMTP(t, cfg).Send(sendCtx(t), ConnectionMessage(testConnection())); err != nil {
		t.Fatalf("Send with AUTH LOGIN: %v", err)
	}
	srv.Wait(t, 1, 5*time.Second)
}

func TestSMTPAuthNoUsableMechanism(t *testing.T) {
	srv := testsmtp.Start(t, testsmtp.StartTLS(), testsmtp.Auth("sesame", "s3cret"), testsmtp.AuthMechanisms("CRAM-MD5"))
	cfg := mailConfig(srv, "starttls")
	cfg.SMTP.Username, cfg.SMTP.Password = "sesame", "s3cret"
	err := newSMTP(t, cfg).Send(sendCtx(t), ConnectionMessage(testConnection()))
	if err == nil || !strings.Contains(err.Error(), "neither PLAIN nor LOGIN") {
		t.Fatalf("Send with only CRAM-MD5 offered: %v", err)
	}
}

// tls: none is for a relay on loopback, where AUTH in clear is accepted.
func TestSMTPAuthInClearOnLoopback(t *testing.T) {
	srv := testsmtp.Start(t, testsmtp.Auth("sesame", "s3cret"))
	cfg := mailConfig(srv, "none")
	cfg.SMTP.Username, cfg.SMTP.Password = "sesame", "s3cret"
	if err := newSMTP(t, cfg).Send(sendCtx(t), ConnectionMessage(testConnection())); err != nil {
		t.Fatalf("Send: %v", err)
	}
	srv.Wait(t, 1, 5*time.Second)
}
