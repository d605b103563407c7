// Package testsmtp runs an in-process SMTP server for tests.
//
// A Server listens on 127.0.0.1 on a free port, captures every delivered
// message (envelope and raw data) and stops when the test ends. Options let
// a test make it refuse the next transactions (451 temporary, 550
// permanent), require AUTH, and speak STARTTLS or implicit TLS with a
// certificate from a throw-away CA whose PEM it writes to a file, so the
// client under test can be configured exactly as in production (tls_ca_file)
// instead of skipping verification.
package testsmtp

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one message the server accepted.
type Message struct {
	// From and To are the envelope (MAIL FROM, RCPT TO), not the headers.
	From string
	To   []string
	// Data is the message as received, headers and body, CRLF line ends.
	Data []byte
}

// Option configures a Server.
type Option func(*config)

type config struct {
	failN, failCode int
	user, pass      string
	mechs           []string
	tlsMode         tlsMode
}

type tlsMode int

const (
	plain tlsMode = iota
	startTLS
	implicitTLS
)

// Fail makes the server refuse the first n transactions with code: 451
// (temporary) or 550 (permanent); any 4xx or 5xx works.
func Fail(n, code int) Option {
	return func(c *config) { c.failN, c.failCode = n, code }
}

// Auth makes the server offer AUTH PLAIN and LOGIN and refuse MAIL before
// a successful login with this username and password (535 otherwise).
func Auth(username, password string) Option {
	return func(c *config) { c.user, c.pass = username, password }
}

// AuthMechanisms sets the mechanisms Auth offers, in order (default PLAIN
// then LOGIN), to test a client against a relay that offers only LOGIN.
func AuthMechanisms(mechs ...string) Option {
	return func(c *config) { c.mechs = mechs }
}

// StartTLS makes the server offer STARTTLS with a certificate for
// 127.0.0.1 and localhost from a fresh CA (see Server.CAFile). With Auth,
// AUTH is only offered once TLS is up, as a real relay does.
func StartTLS() Option {
	return func(c *config) { c.tlsMode = startTLS }
}

// ImplicitTLS makes the server speak TLS from the first byte (SMTPS, the
// client's "tls" mode), with the same certificate as StartTLS.
func ImplicitTLS() Option {
	return func(c *config) { c.tlsMode = implicitTLS }
}

// Server is a running SMTP server owned by one test.
type Server struct {
	// Addr is host:port; Host and Port are its parts.
	Addr string
	Host string
	Port int
	// CAFile is the PEM file of the CA that issued the server certificate
	// (with StartTLS or ImplicitTLS; empty otherwise).
	CAFile string

	srv   *smtp.Server
	user  string
	pass  string
	mechs []string

	mu       sync.Mutex
	cond     *sync.Cond
	msgs     []Message
	attempts int
	failN    int
	failCode int
	closed   bool
}

// Start starts a server on 127.0.0.1:0 and stops it at t.Cleanup.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.mechs == nil {
		c.mechs = []string{sasl.Plain, sasl.Login}
	}
	s := &Server{user: c.user, pass: c.pass, mechs: c.mechs, failN: c.failN, failCode: c.failCode}
	s.cond = sync.NewCond(&s.mu)

	var tlsConf *tls.Config
	if c.tlsMode != plain {
		var err error
		tlsConf, s.CAFile, err = makeTLS(t.TempDir())
		if err != nil {
			t.Fatalf("testsmtp: %v", err)
		}
	}

	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &session{s: s}, nil
	}))
	srv.Domain = "localhost"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.MaxMessageBytes = 1 << 20
	srv.MaxRecipients = 10
	// Without TLS there is no other way to test AUTH; with TLS, keep the
	// production rule (no credentials in clear).
	srv.AllowInsecureAuth = c.tlsMode == plain
	srv.ErrorLog = &testLogger{s: s, t: t}
	if c.tlsMode == startTLS {
		srv.TLSConfig = tlsConf
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testsmtp: listen: %v", err)
	}
	if c.tlsMode == implicitTLS {
		l = tls.NewListener(l, tlsConf)
	}
	s.srv = srv
	s.Addr = l.Addr().String()
	host, port, _ := net.SplitHostPort(s.Addr)
	s.Host = host
	s.Port, _ = strconv.Atoi(port)

	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			t.Errorf("testsmtp: serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		s.mu.Lock()
		s.closed = true
		s.cond.Broadcast()
		s.mu.Unlock()
		_ = srv.Close()
		// go-smtp only closes the listeners Serve has registered; if the
		// test ends before that goroutine ran, Serve would block in
		// Accept forever. Serve returns quietly once Close was called.
		_ = l.Close()
		<-done
	})
	return s
}

// FailNext makes the server refuse the next n transactions with code
// (451, 550...), replacing what Fail or an earlier FailNext set.
func (s *Server) FailNext(n, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failCode = n, code
}

// Messages returns the messages accepted so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Attempts counts the transactions that reached DATA, accepted or refused
// by Fail: what tells a test how many times a client tried.
func (s *Server) Attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts
}

// Wait waits until at least n messages were accepted and returns them; it
// fails the test after timeout.
func (s *Server) Wait(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	// sync.Cond has no timeout: a timer wakes the waiter up instead.
	expired := false
	timer := time.AfterFunc(timeout, func() {
		s.mu.Lock()
		expired = true
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer timer.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.msgs) < n && !expired && !s.closed {
		s.cond.Wait()
	}
	if len(s.msgs) < n {
		t.Fatalf("testsmtp: %d message(s) after %v, want %d", len(s.msgs), timeout, n)
	}
	return append([]Message(nil), s.msgs...)
}

// session is one SMTP connection's transaction state.
type session struct {
	s      *Server
	authed bool
	from   string
	to     []string
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) AuthMechanisms() []string {
	if ss.s.user == "" {
		return nil
	}
	return ss.s.mechs
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if user != ss.s.user || pass != ss.s.pass {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}
	if !slices.Contains(ss.s.mechs, mech) {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// Mail refuses an unauthenticated sender when Auth is set, as a relay
// does (502 5.7.0, go-smtp's ErrAuthRequired).
func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.user != "" && !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.from, ss.to = from, nil
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

// Data refuses the transaction when Fail asks, after reading the whole
// message, so the client goes through every step before the refusal, as
// with a relay whose content check or queue says no.
func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("testsmtp: read data: %w", err)
	}
	s := ss.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts++
	if s.failN > 0 {
		s.failN--
		return &smtp.SMTPError{
			Code:         s.failCode,
			EnhancedCode: smtp.EnhancedCode{s.failCode / 100, 0, 0},
			Message:      "testsmtp: refused as asked",
		}
	}
	s.msgs = append(s.msgs, Message{From: ss.from, To: ss.to, Data: data})
	s.cond.Broadcast()
	return nil
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }

// loginServer is the server side of AUTH LOGIN, which go-sasl only
// implements as a client: prompt for the username, then the password.
type loginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

func (l *loginServer) Next(resp []byte) (challenge []byte, done bool, err error) {
	switch l.step {
	case 0:
		l.step++
		if len(resp) > 0 { // initial response: the username
			l.user = string(resp)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.user = string(resp)
		l.step++
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(resp))
	}
}

// testLogger sends go-smtp's connection errors to the test log while the
// test runs (t.Logf panics after it ended).
type testLogger struct {
	s *Server
	t testing.TB
}

func (l *testLogger) Printf(format string, v ...any) {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if !l.s.closed {
		l.t.Logf("testsmtp: "+format, v...)
	}
}

func (l *testLogger) Println(v ...any) { l.Printf("%s", fmt.Sprintln(v...)) }

// makeTLS makes a CA and a server certificate for 127.0.0.1 and localhost,
// and writes the CA to dir/ca.pem.
func makeTLS(dir string) (*tls.Config, string, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", fmt.Errorf("CA key: %w", err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "testsmtp CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, "", fmt.Errorf("CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, "", fmt.Errorf("CA certificate: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", fmt.Errorf("server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, "", fmt.Errorf("server certificate: %w", err)
	}
	var pemBuf bytes.Buffer
	if err := pem.Encode(&pemBuf, &pem.Block{Type: "CERTIFICATE", Bytes: caDER}); err != nil {
		return nil, "", fmt.Errorf("CA PEM: %w", err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pemBuf.Bytes(), 0o600); err != nil {
		return nil, "", fmt.Errorf("write CA: %w", err)
	}
	conf := &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS12,
	}
	return conf, caFile, nil
}
