package testsmtp

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/smtp"
	"net/textproto"
	"os"
	"strings"
	"testing"
	"time"
)

// The server is tested with the standard library's client, so its
// behaviour does not depend on the client the mail package uses.

const raw = "From: =?utf-8?q?S=C3=A9same?= <noreply@example.test>\r\n" +
	"To: alice@example.test\r\n" +
	"Subject: =?utf-8?q?Connexion_=C3=A0_l'ANTS?=\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/alternative; boundary=\"b1\"\r\n" +
	"\r\n" +
	"--b1\r\n" +
	"Content-Type: text/plain; charset=UTF-8\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"D=C3=A9j=C3=A0 une ligne tr=C3=A8s longue qui est coup=C3=A9e par un saut =\r\n" +
	"doux.\r\n" +
	"--b1\r\n" +
	"Content-Type: text/html; charset=utf-8\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"PHA+RMOpasOgPC9w\r\nPg==\r\n" +
	"--b1--\r\n"

func send(t *testing.T, s *Server, c *smtp.Client) error {
	t.Helper()
	if err := c.Mail("noreply@example.test"); err != nil {
		return err
	}
	if err := c.Rcpt("alice@example.test"); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(raw)); err != nil {
		return err
	}
	return w.Close()
}

func dial(t *testing.T, s *Server) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func code(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

func TestCaptureAndParse(t *testing.T) {
	s := Start(t)
	if err := send(t, s, dial(t, s)); err != nil {
		t.Fatal(err)
	}
	msgs := s.Wait(t, 1, 5*time.Second)
	m := msgs[0]
	if m.From != "noreply@example.test" || len(m.To) != 1 || m.To[0] != "alice@example.test" {
		t.Errorf("envelope = %q %q", m.From, m.To)
	}
	p := m.MustParse(t)
	if p.Subject != "Connexion à l'ANTS" || p.From != "Sésame <noreply@example.test>" {
		t.Errorf("subject %q from %q", p.Subject, p.From)
	}
	if p.ContentType != "multipart/alternative" || len(p.Parts) != 2 {
		t.Fatalf("content type %q, %d parts", p.ContentType, len(p.Parts))
	}
	if want := "Déjà une ligne très longue qui est coupée par un saut doux."; p.Text != want {
		t.Errorf("text = %q, want %q", p.Text, want)
	}
	if p.HTML != "<p>Déjà</p>" {
		t.Errorf("html = %q", p.HTML)
	}
	if p.Parts[0].Charset != "utf-8" || p.Parts[1].Encoding != "base64" {
		t.Errorf("parts = %+v", p.Parts)
	}
	if s.Attempts() != 1 {
		t.Errorf("attempts = %d", s.Attempts())
	}
}

func TestFail(t *testing.T) {
	s := Start(t, Fail(2, 451))
	c := dial(t, s)
	for i := range 2 {
		if err := send(t, s, c); code(err) != 451 {
			t.Fatalf("try %d: %v, want 451", i, err)
		}
	}
	if err := send(t, s, c); err != nil {
		t.Fatalf("third try: %v", err)
	}
	s.FailNext(1, 550)
	if err := send(t, s, c); code(err) != 550 {
		t.Fatalf("after FailNext: %v, want 550", err)
	}
	if n, a := len(s.Messages()), s.Attempts(); n != 1 || a != 4 {
		t.Errorf("%d messages, %d attempts; want 1, 4", n, a)
	}
}

func TestStartTLSAndAuth(t *testing.T) {
	s := Start(t, StartTLS(), Auth("sesame", "s3cret"))
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in CAFile")
	}
	conf := &tls.Config{ServerName: s.Host, RootCAs: roots}
	c := dial(t, s)
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("AUTH offered before TLS")
	}
	if err := c.StartTLS(conf); err != nil {
		t.Fatalf("STARTTLS with the CA: %v", err)
	}
	if ok, mechs := c.Extension("AUTH"); !ok || !strings.Contains(mechs, "PLAIN") || !strings.Contains(mechs, "LOGIN") {
		t.Errorf("AUTH after TLS: %v %q", ok, mechs)
	}
	if err := send(t, s, c); code(err) != 502 {
		t.Errorf("MAIL before AUTH: %v, want 502", err)
	}
	if err := c.Auth(smtp.PlainAuth("", "sesame", "wrong", s.Host)); code(err) != 535 {
		t.Errorf("wrong password: %v, want 535", err)
	}
	// net/smtp hangs up after a failed AUTH.
	c = dial(t, s)
	if err := c.StartTLS(conf); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(smtp.PlainAuth("", "sesame", "s3cret", s.Host)); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	if err := send(t, s, c); err != nil {
		t.Fatal(err)
	}
	s.Wait(t, 1, 5*time.Second)
}

func TestStartTLSUnknownCA(t *testing.T) {
	s := Start(t, StartTLS())
	c := dial(t, s)
	if err := c.StartTLS(&tls.Config{ServerName: s.Host}); err == nil {
		t.Fatal("STARTTLS verified without the private CA")
	}
}

// A test that ends before the server accepted anything must not hang in
// its cleanup (the listener may not be registered with go-smtp yet).
func TestStopsRightAway(t *testing.T) {
	for range 50 {
		t.Run("", func(t *testing.T) { Start(t) })
	}
}
