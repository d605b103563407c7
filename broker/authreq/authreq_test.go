package authreq

import (
	"net/url"
	"strings"
	"testing"

	"github.com/sesame-id/sesame/broker/oidcerr"
	"github.com/sesame-id/sesame/config"
)

type reg map[string]*config.SP

func (r reg) Client(id string) (*config.SP, bool) { sp, ok := r[id]; return sp, ok }

var testReg = reg{"sp": {
	ClientID: "sp", RedirectURIs: []string{"https://sp.example/cb"},
	Scopes: []string{"openid", "profile", "email"},
}}

var std = Policy{ACRValues: []string{"eidas1"}, DefaultACR: "eidas1", NonceRequired: true}

func good() url.Values {
	return url.Values{
		"client_id": {"sp"}, "redirect_uri": {"https://sp.example/cb"}, "response_type": {"code"},
		"scope": {"openid profile"}, "state": {"st"}, "nonce": {"n-0123456789012345678901"},
		"acr_values": {"eidas1"},
	}
}

func TestParseValid(t *testing.T) {
	q := good()
	q.Set("scope", "email openid address profile")
	q.Set("code_challenge", strings.Repeat("a", 43))
	q.Set("code_challenge_method", "S256")
	q.Set("max_age", "0")
	q.Set("claims", `{"id_token":{"acr":{"essential":true,"value":"eidas1"},"amr":null}}`)
	q.Set("extra", "foobar")
	r, sp, err := Parse(q, testReg, std)
	if err != nil {
		t.Fatalf("valid request refused: %v", err)
	}
	if sp.ClientID != "sp" || r.ACR != "eidas1" || r.MaxAge != 0 || !r.ACREssential {
		t.Fatalf("parsed wrong: %+v", r)
	}
	if strings.Join(r.Scopes, " ") != "email openid profile" {
		t.Fatalf("scopes = %v; unregistered address must be dropped", r.Scopes)
	}
	if strings.Join(r.IDTokenClaims, ",") != "acr,amr" {
		t.Fatalf("id_token claims = %v", r.IDTokenClaims)
	}
	q = good()
	q.Del("acr_values")
	q.Set("nonce", strings.Repeat("n", 384))
	if r, _, err := Parse(q, testReg, std); err != nil || r.ACR != "eidas1" {
		t.Fatalf("default acr or long nonce: %v %v", r, err)
	}
}

func TestParseNoRedirect(t *testing.T) {
	cases := map[string]func(url.Values){
		"unknown client":    func(q url.Values) { q.Set("client_id", "nope") },
		"empty client":      func(q url.Values) { q.Set("client_id", "") },
		"huge client":       func(q url.Values) { q.Set("client_id", strings.Repeat("x", 10<<10)) },
		"repeated client":   func(q url.Values) { q.Add("client_id", "sp") },
		"trailing slash":    func(q url.Values) { q.Set("redirect_uri", "https://sp.example/cb/") },
		"case change":       func(q url.Values) { q.Set("redirect_uri", "https://SP.example/cb") },
		"added query":       func(q url.Values) { q.Set("redirect_uri", "https://sp.example/cb?x=1") },
		"fragment":          func(q url.Values) { q.Set("redirect_uri", "https://sp.example/cb#x") },
		"http":              func(q url.Values) { q.Set("redirect_uri", "http://sp.example/cb") },
		"userinfo":          func(q url.Values) { q.Set("redirect_uri", "https://sp.example@evil/cb") },
		"dot dot":           func(q url.Values) { q.Set("redirect_uri", "https://sp.example/cb/../x") },
		"javascript":        func(q url.Values) { q.Set("redirect_uri", "javascript:alert(1)") },
		"missing":           func(q url.Values) { q.Del("redirect_uri") },
		"repeated redirect": func(q url.Values) { q.Add("redirect_uri", "https://sp.example/cb") },
	}
	for name, mutate := range cases {
		q := good()
		mutate(q)
		_, _, err := Parse(q, testReg, std)
		if err == nil || !err.NoRedirect {
			t.Errorf("%s: got %v, want a no-redirect error", name, err)
		}
	}
}

func TestParseRedirectErrors(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(url.Values)
		code   string
		state  string
	}{
		{"no state", func(q url.Values) { q.Del("state") }, oidcerr.InvalidRequest, ""},
		{"state CRLF", func(q url.Values) { q.Set("state", "a\r\nb") }, oidcerr.InvalidRequest, ""},
		{"state NUL", func(q url.Values) { q.Set("state", "a\x00") }, oidcerr.InvalidRequest, ""},
		{"state 4KB", func(q url.Values) { q.Set("state", strings.Repeat("s", 4096)) }, oidcerr.InvalidRequest, ""},
		{"no response_type", func(q url.Values) { q.Del("response_type") }, oidcerr.InvalidRequest, "st"},
		{"token", func(q url.Values) { q.Set("response_type", "token") }, oidcerr.UnsupportedResponseType, "st"},
		{"no openid", func(q url.Values) { q.Set("scope", "profile") }, oidcerr.InvalidScope, "st"},
		{"no nonce", func(q url.Values) { q.Del("nonce") }, oidcerr.InvalidRequest, "st"},
		{"prompt none login", func(q url.Values) { q.Set("prompt", "none login") }, oidcerr.InvalidRequest, "st"},
		{"prompt bogus", func(q url.Values) { q.Set("prompt", "bogus") }, oidcerr.InvalidRequest, "st"},
		{"max_age -1", func(q url.Values) { q.Set("max_age", "-1") }, oidcerr.InvalidRequest, "st"},
		{"max_age abc", func(q url.Values) { q.Set("max_age", "abc") }, oidcerr.InvalidRequest, "st"},
		{"max_age 1e99", func(q url.Values) { q.Set("max_age", "1e99") }, oidcerr.InvalidRequest, "st"},
		{"acr 5KB", func(q url.Values) { q.Set("acr_values", strings.Repeat("eidas9 ", 800)) }, oidcerr.InvalidRequest, "st"},
		{"acr outside", func(q url.Values) { q.Set("acr_values", "eidas2") }, oidcerr.InvalidRequest, "st"},
		{"claims junk", func(q url.Values) { q.Set("claims", "{") }, oidcerr.InvalidRequest, "st"},
		{"claims deep", func(q url.Values) { q.Set("claims", strings.Repeat("[", 10000)) }, oidcerr.InvalidRequest, "st"},
		{"claims huge", func(q url.Values) { q.Set("claims", `{"id_token":{"x":"`+strings.Repeat("a", 1<<20)+`"}}`) }, oidcerr.InvalidRequest, "st"},
		{"plain pkce", func(q url.Values) {
			q.Set("code_challenge", strings.Repeat("a", 43))
			q.Set("code_challenge_method", "plain")
		}, oidcerr.InvalidRequest, "st"},
		{"pkce no method", func(q url.Values) { q.Set("code_challenge", strings.Repeat("a", 43)) }, oidcerr.InvalidRequest, "st"},
		{"pkce short", func(q url.Values) {
			q.Set("code_challenge", "abc")
			q.Set("code_challenge_method", "S256")
		}, oidcerr.InvalidRequest, "st"},
		{"pkce alphabet", func(q url.Values) {
			q.Set("code_challenge", strings.Repeat("a", 42)+"!")
			q.Set("code_challenge_method", "S256")
		}, oidcerr.InvalidRequest, "st"},
		{"request object", func(q url.Values) { q.Set("request", "eyJ") }, oidcerr.RequestNotSupported, "st"},
		{"request_uri", func(q url.Values) { q.Set("request_uri", "http://169.254.169.254/") }, oidcerr.RequestURINotSupported, "st"},
		{"duplicate scope", func(q url.Values) { q.Add("scope", "openid") }, oidcerr.InvalidRequest, "st"},
		{"html ui_locales", func(q url.Values) { q.Set("ui_locales", strings.Repeat("<b>", 200)) }, oidcerr.InvalidRequest, "st"},
		{"form_post", func(q url.Values) { q.Set("response_mode", "form_post") }, oidcerr.InvalidRequest, "st"},
	}
	for _, c := range cases {
		q := good()
		c.mutate(q)
		r, _, err := Parse(q, testReg, std)
		if err == nil || err.NoRedirect || err.Code != c.code {
			t.Errorf("%s: got %v, want redirectable %s", c.name, err, c.code)
			continue
		}
		if r == nil || r.RedirectURI != "https://sp.example/cb" || r.State != c.state {
			t.Errorf("%s: redirect target/state not kept: %+v", c.name, r)
		}
		u := err.RedirectURL(r.RedirectURI, r.State, "https://iss")
		if strings.ContainsAny(u, "\r\n\t<>") {
			t.Errorf("%s: unsafe redirect %q", c.name, u)
		}
	}
}

func TestNonceOptionalPolicy(t *testing.T) {
	q := good()
	q.Del("nonce")
	pol := std
	pol.NonceRequired = false
	if _, _, err := Parse(q, testReg, pol); err != nil {
		t.Fatalf("nonce optional policy refused a request without nonce: %v", err)
	}
}

// FuzzParse feeds arbitrary query strings: Parse must never panic, and any
// error it returns must be safe to put in a redirect.
func FuzzParse(f *testing.F) {
	f.Add(good().Encode())
	f.Add("client_id=sp&redirect_uri=https%3A%2F%2Fsp.example%2Fcb&state=%0d%0a&claims=%5B%5B%5B")
	f.Add("client_id=sp&redirect_uri=https%3A%2F%2Fsp.example%2Fcb&state=x&response_type=code&scope=openid&nonce=n&max_age=1e99&prompt=none+login")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		r, _, oerr := Parse(q, testReg, std)
		if oerr == nil {
			if r.RedirectURI != "https://sp.example/cb" {
				t.Fatalf("accepted unregistered redirect_uri %q", r.RedirectURI)
			}
			return
		}
		if strings.ContainsAny(oerr.RedirectURL("https://sp.example/cb", "s", "https://iss"), "\r\n\t") {
			t.Fatalf("unsafe error %q", oerr.Description)
		}
	})
}
