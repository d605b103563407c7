package broker_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sesame-id/sesame/broker"
	"github.com/sesame-id/sesame/broker/authreq"
	"github.com/sesame-id/sesame/broker/identity"
	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/audit"
	"github.com/sesame-id/sesame/internal/history"
	"github.com/sesame-id/sesame/internal/history/sqlite"
	"github.com/sesame-id/sesame/internal/mail"
	"github.com/sesame-id/sesame/internal/testredis"
)

// benchLogin measures one whole login as the SP and browser see it:
// authorize, chooser, IdP login, callback, information page, token and
// userinfo, all over loopback HTTP.
func benchLogin(b *testing.B, opts ...teststack.Option) {
	benchLoginOn(b, teststack.New(b, opts...))
}

// benchLoginOn is benchLogin on a stack already built.
func benchLoginOn(b *testing.B, s *teststack.Stack) {
	params := teststack.AuthParams()
	b.ResetTimer()
	for b.Loop() {
		s.Browser = teststack.NewBrowser()
		u := s.Login(b, params, "impots", "angela-dubois")
		status, out := s.Token(b, url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {teststack.SPRedirect}}, true)
		if status != 200 {
			b.Fatalf("token: %d %v", status, out)
		}
		if got := s.UserinfoStatus(b, "Bearer "+out["access_token"].(string)); got != 200 {
			b.Fatalf("userinfo: %d", got)
		}
	}
}

func BenchmarkLoginMemory(b *testing.B) { benchLogin(b) }

func BenchmarkLoginRedis(b *testing.B) {
	r := testredis.Start(b)
	benchLogin(b, func(c *config.Config) { c.Broker.Redis.URL = r.URL() })
}

func BenchmarkParseAuthorize(b *testing.B) {
	reg := registry{"sp": &config.SP{ClientID: "sp", RedirectURIs: []string{"https://sp.example/cb"}, Scopes: []string{"openid", "profile"}}}
	q := url.Values{
		"client_id": {"sp"}, "redirect_uri": {"https://sp.example/cb"}, "response_type": {"code"},
		"scope": {"openid profile"}, "state": {"state"}, "nonce": {"nonce-0123456789012345678"}, "acr_values": {"eidas1"},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"},
	}
	pol := authreq.Policy{ACRValues: []string{"eidas1"}, DefaultACR: "eidas1", NonceRequired: true}
	for b.Loop() {
		if _, _, err := authreq.Parse(q, reg, pol); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPairwiseSub(b *testing.B) {
	p := identity.Pivot{GivenName: "Angela Claire Louise", FamilyName: "Dubois", Birthdate: "1962-08-24", Gender: "female", Birthplace: "75107", Birthcountry: "99100"}
	secret := []byte("0123456789abcdef0123456789abcdef")
	for b.Loop() {
		_ = identity.Sub(secret, "sector", p.Hash())
	}
}

type registry map[string]*config.SP

func (r registry) Client(id string) (*config.SP, bool) { sp, ok := r[id]; return sp, ok }

// BenchmarkLoginPlus is BenchmarkLoginMemory on a "+" platform: ES256,
// private_key_jwt, and id_token and userinfo encrypted (ECDH-ES, A256GCM).
func BenchmarkLoginPlus(b *testing.B) {
	sp := newPlusSP(b)
	s := teststack.New(b, teststack.Plus(sp.jwks(b, sp.ec)))
	params := plusParams("eidas2")
	b.ResetTimer()
	for b.Loop() {
		s.Browser = teststack.NewBrowser()
		u := s.Login(b, params, "laposte", "angela-dubois")
		status, out := s.Token(b, assertionForm(u.Query().Get("code"), sp.assertion(b, s.BrokerURL+"/token", nil, nil, "")), false)
		if status != 200 {
			b.Fatalf("token: %d %v", status, out)
		}
		req, _ := http.NewRequest(http.MethodGet, s.BrokerURL+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+out["access_token"].(string))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("userinfo: %v %v", err, resp)
		}
		resp.Body.Close()
	}
}

// BenchmarkLoginFAPI is a whole "+" login with its FAPI 2.0 profile:
// PAR with private_key_jwt and a DPoP proof, the browser's part, the
// token with a DPoP proof (token bound to the key), userinfo with a proof.
func BenchmarkLoginFAPI(b *testing.B) {
	c := newFAPI(b)
	b.ResetTimer()
	for b.Loop() {
		c.Browser = teststack.NewBrowser()
		code := c.login(b, c.key)
		status, out := c.redeemDPoP(b, code, c.key)
		if status != 200 {
			b.Fatalf("token: %d %v", status, out)
		}
		at := out["access_token"].(string)
		if st, ch := c.userinfoWith(b, "DPoP "+at, c.proof(b, c.key, http.MethodGet, "/userinfo", at)); st != 200 {
			b.Fatalf("userinfo: %d %s", st, ch)
		}
	}
}

// BenchmarkIntrospect is one data provider's introspection of an active
// token: the JSON answer, and the JWT signed (ES256) then encrypted
// (ECDH-ES, A256GCM) to the provider's key.
func BenchmarkIntrospect(b *testing.B) {
	for _, c := range []struct {
		name string
		enc  string
	}{{"json", ""}, {"jwt-signed-encrypted", "ECDH-ES"}} {
		b.Run(c.name, func(b *testing.B) {
			s := teststack.New(b, withData(func(dp *config.DataProvider) {
				if c.enc != "" {
					dp.IntrospectionSignedResponseAlg, dp.IntrospectionEncryptedResponseAlg = "ES256", c.enc
				}
			}))
			p := teststack.AuthParams()
			p.Set("scope", "openid identite_pivot dgfip_rfr")
			u := s.Login(b, p, "impots", "angela-dubois")
			_, out := s.Token(b, url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {teststack.SPRedirect}}, true)
			body := url.Values{"token": {out["access_token"].(string)}}.Encode()
			b.ResetTimer()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, s.BrokerURL+"/introspect", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(dpID, dpSecret)
				rec := httptest.NewRecorder()
				s.Platform.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("introspect: %d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}

// BenchmarkLoginCitizen is BenchmarkLoginMemory with the citizen space's
// parts on: the history fed through the audit seam (a real SQLite file,
// in batches), the preferences read at the callback, and the connection
// e-mail queued to the development outbox.
func BenchmarkLoginCitizen(b *testing.B) {
	h, err := sqlite.Open(filepath.Join(b.TempDir(), "history.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	q := mail.NewQueue(mail.NewOutbox(), 1000, 1, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer q.Close(context.Background())
	feeder := history.NewFeeder(h, broker.HistoryNames(&config.Broker{}), history.FeederConfig{}, nil)
	defer feeder.Close(context.Background())
	s := teststack.NewWith(b, []broker.Option{broker.WithHistory(h), broker.WithMailer(q),
		broker.WithAudit(audit.Sinks{audit.Log{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))}, feeder})})
	benchLoginOn(b, s)
	b.StopTimer()
	if st := feeder.Stats(); st.Dropped > 0 || st.Failed > 0 {
		b.Fatalf("history rows lost: %+v", st)
	}
}
