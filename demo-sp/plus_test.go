package demosp

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// loginOn runs POST /login with both form fields and follows the fake OP's
// authorize; it returns the callback URL the OP sent the browser to.
func loginOn(t *testing.T, b *browser, sp, platform, acr string) string {
	t.Helper()
	p := b.post(sp+"/login", url.Values{"platform": {platform}, "acr_values": {acr}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("login on %s: %d\n%s", platform, p.status, p.body)
	}
	auth := b.get(p.location)
	if auth.status != http.StatusSeeOther || !strings.HasPrefix(auth.location, sp+"/callback?") {
		t.Fatalf("authorize answered %d to %q", auth.status, auth.location)
	}
	return auth.location
}

// cell returns the inner HTML of the element with the given id on a page.
func cell(body, id string) string {
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*>(.*?)</t[dh]>`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

func TestPlusLogin(t *testing.T) {
	for _, alg := range []jose.KeyAlgorithm{jose.ECDH_ES, jose.RSA_OAEP_256} {
		t.Run(string(alg), func(t *testing.T) {
			op := newFakeOP(t, jose.ES256)
			// The standard issuer is unreachable: the "+" flow must not need it.
			_, sp := startPlus(t, "http://127.0.0.1:1", op, alg)
			b := newBrowser(t)
			cb := b.get(loginOn(t, b, sp.URL, "plus", "eidas3"))
			if cb.status != http.StatusSeeOther || cb.location != "/me" {
				t.Fatalf("callback: %d %q\n%s", cb.status, cb.location, cb.body)
			}
			op.mu.Lock()
			n, aErr := len(op.assertions), op.assertionErr
			op.mu.Unlock()
			if aErr != nil || n != 1 {
				t.Fatalf("the fake OP saw %d good assertion(s), refusal: %v", n, aErr)
			}
			// A "+" session cookie dies with the browser, as the broker's does.
			for _, sc := range cb.header.Values("Set-Cookie") {
				if strings.HasPrefix(sc, sessionCookie+"=") && strings.Contains(sc, "Max-Age") {
					t.Errorf("the \"+\" session cookie outlives the browser: %s", sc)
				}
			}

			me := b.get(sp.URL + "/me")
			me.body = html.UnescapeString(me.body) // html/template writes + as &#43;
			for _, want := range []string{
				`<strong id="platform">Sésame+</strong>`,
				`<span id="citizen-name">Angela Claire Louise DUBOIS</span>`,
				`<code id="sub">` + fakeSub + `</code>`,
				`<code id="acr">eidas3</code>`,
				`<code id="acr-asked">eidas3</code>`,
				`<code id="amr">pwd</code>`,
				"1962-08-24", "angela.dubois@example.fr",
			} {
				if !strings.Contains(me.body, want) {
					t.Errorf("/me lacks %q", want)
				}
			}
			for _, id := range []string{"id-token-jwe", "userinfo-jwe"} {
				c := cell(me.body, id)
				if !strings.Contains(c, "<code>"+string(alg)+"</code>") || !strings.Contains(c, "<code>A256GCM</code>") {
					t.Errorf("/me #%s does not show %s/A256GCM: %q", id, alg, c)
				}
			}

			// Logout goes through the "+" platform's end_session, as the
			// "+" client, with the signed id_token (the JWE's content).
			out := b.post(sp.URL+"/logout", nil)
			if out.status != http.StatusSeeOther || !strings.HasPrefix(out.location, op.issuer()+"/session/end?") {
				t.Fatalf("logout: %d %q", out.status, out.location)
			}
			end, _ := url.Parse(out.location)
			q := end.Query()
			if q.Get("client_id") != "demo-sp-plus" || q.Get("post_logout_redirect_uri") != sp.URL+"/logged-out" {
				t.Errorf("end_session parameters: %v", q)
			}
			hint, err := jwt.ParseSigned(q.Get("id_token_hint"), []jose.SignatureAlgorithm{jose.ES256})
			if err != nil {
				t.Fatalf("id_token_hint is not a signed JWT: %v", err)
			}
			var c jwt.Claims
			if err := hint.Claims(op.signer.PublicJWKS(), &c); err != nil || c.Subject != fakeSub || c.Issuer != op.issuer() {
				t.Errorf("id_token_hint: %v %+v", err, c)
			}
		})
	}
}

// TestPlusAssertion checks the private_key_jwt in detail, beyond the fake
// OP's own checks: kid of the published signing key, claims, lifetime, a
// fresh jti each time, and no secret on the wire.
func TestPlusAssertion(t *testing.T) {
	op := newFakeOP(t, jose.ES256)
	_, sp := startPlus(t, "http://127.0.0.1:1", op, jose.ECDH_ES)
	var sigKID string
	for _, k := range publishedKeys(t, sp.URL).Keys {
		if k.Use == "sig" {
			sigKID = k.KeyID
		}
	}
	for range 2 {
		b := newBrowser(t)
		if p := b.get(loginOn(t, b, sp.URL, "plus", "eidas2")); p.status != http.StatusSeeOther {
			t.Fatalf("callback: %d\n%s", p.status, p.body)
		}
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	if op.assertionErr != nil || len(op.assertions) != 2 {
		t.Fatalf("assertions: %d good, refusal: %v", len(op.assertions), op.assertionErr)
	}
	for _, a := range op.assertions {
		c := a.Claims
		switch {
		case a.Header.Algorithm != "ES256" || a.Header.KeyID != sigKID:
			t.Errorf("header alg %q kid %q, want ES256 and %q", a.Header.Algorithm, a.Header.KeyID, sigKID)
		case c.Issuer != "demo-sp-plus" || c.Subject != "demo-sp-plus":
			t.Errorf("iss %q sub %q", c.Issuer, c.Subject)
		case len(c.Audience) != 1 || c.Audience[0] != op.issuer()+"/token":
			t.Errorf("aud %v", c.Audience)
		case c.Expiry.Time().Sub(c.IssuedAt.Time()) != time.Minute:
			t.Errorf("lifetime %v, want 60s", c.Expiry.Time().Sub(c.IssuedAt.Time()))
		case len(c.ID) < 22:
			t.Errorf("weak jti %q", c.ID)
		}
	}
	if op.assertions[0].Claims.ID == op.assertions[1].Claims.ID {
		t.Error("two token requests used the same jti")
	}
	f := op.lastToken
	if f.Has("client_secret") || f.Get("client_id") != "demo-sp-plus" ||
		f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		t.Errorf("token request form: %v", f)
	}
}

// TestFakeOPRefusesBadAssertions proves the fake OP's assertion check is not
// vacuous, so TestPlusLogin passing means something.
func TestFakeOPRefusesBadAssertions(t *testing.T) {
	op := newFakeOP(t, jose.ES256)
	app, _ := startPlus(t, "http://127.0.0.1:1", op, jose.ECDH_ES)
	now := time.Now()
	tokenURL := op.issuer() + "/token"
	good, err := app.keys.clientAssertion("demo-sp-plus", tokenURL, now)
	if err != nil {
		t.Fatal(err)
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	if _, err := op.checkAssertion(good, now); err != nil {
		t.Fatalf("a good assertion was refused: %v", err)
	}
	if _, err := op.checkAssertion(good, now); err == nil {
		t.Error("a replayed jti was accepted")
	}
	bad := map[string]func() string{
		"wrong aud": func() string { s, _ := app.keys.clientAssertion("demo-sp-plus", op.issuer(), now); return s },
		"wrong iss": func() string { s, _ := app.keys.clientAssertion("demo-sp", tokenURL, now); return s },
		"expired": func() string {
			s, _ := app.keys.clientAssertion("demo-sp-plus", tokenURL, now.Add(-2*time.Minute))
			return s
		},
		"another key under the SP's kid": func() string {
			other, err := generateKeys()
			if err != nil {
				t.Fatal(err)
			}
			other.sign.KeyID = app.keys.sign.KeyID
			s, _ := other.clientAssertion("demo-sp-plus", tokenURL, now)
			return s
		},
	}
	for name, mk := range bad {
		if _, err := op.checkAssertion(mk(), now); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestPlusRefusals(t *testing.T) {
	cases := []struct {
		name   string
		alg    jose.SignatureAlgorithm // the fake's signing alg; "" means ES256
		setup  func(op *fakeOP)
		status int
		code   string
	}{
		{"id_token in clear", "", func(op *fakeOP) { op.plainIDToken = true }, http.StatusBadGateway, errNotEncrypted.Code},
		{"id_token JWE for a stranger's key and kid", "", func(op *fakeOP) { op.foreignKey = "kid" }, http.StatusBadGateway, errDecrypt.Code},
		{"id_token JWE for a stranger's key under the SP's kid", "", func(op *fakeOP) { op.foreignKey = "samekid" }, http.StatusBadGateway, errDecrypt.Code},
		{"id_token JWE with an alg that is not the key's", "", func(op *fakeOP) { op.encAlg, op.wrongKeyAlg = jose.RSA_OAEP_256, jose.RSA_OAEP }, http.StatusBadGateway, errDecrypt.Code},
		{"JWE holding unsigned claims", "", func(op *fakeOP) { op.encryptUnsigned = true }, http.StatusBadGateway, errIDToken.Code},
		{"id_token signed RS256", jose.RS256, func(*fakeOP) {}, http.StatusBadGateway, errIDToken.Code},
		{"acr below the level asked", "", func(op *fakeOP) { op.acr = "eidas2" }, http.StatusForbidden, codeACRTooLow},
		{"userinfo signed but in clear", "", func(op *fakeOP) { op.plainUserinfo = true }, http.StatusBadGateway, errNotEncrypted.Code},
		{"userinfo as plain JSON", "", func(op *fakeOP) { op.jsonUserinfo = true }, http.StatusBadGateway, errNotEncrypted.Code},
		{"userinfo JWE for another client", "", func(op *fakeOP) { op.userinfoAud = "other-sp" }, http.StatusBadGateway, errUserInfo.Code},
		{"userinfo JWE without iss", "", func(op *fakeOP) { op.userinfoNoISS = true }, http.StatusBadGateway, errUserInfo.Code},
		{"userinfo JWE about someone else", "", func(op *fakeOP) { op.userinfoSub = "someone-else" }, http.StatusBadGateway, errUserInfo.Code},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			alg := c.alg
			if alg == "" {
				alg = jose.ES256
			}
			op := newFakeOP(t, alg)
			_, sp := startPlus(t, "http://127.0.0.1:1", op, jose.ECDH_ES)
			op.set(c.setup)
			b := newBrowser(t)
			p := b.get(loginOn(t, b, sp.URL, "plus", "eidas3"))
			wantError(t, p, c.status, c.code)
			if b.cookie(sp.URL, sessionCookie) != nil {
				t.Error("a refused login opened a session")
			}
			if me := b.get(sp.URL + "/me"); me.status != http.StatusSeeOther {
				t.Errorf("/me after a refused login: %d", me.status)
			}
		})
	}
}

// TestStandardAcceptsJWE: the standard platform does not require encryption
// but must not break if the broker encrypts for an SP that registered keys.
func TestStandardAcceptsJWE(t *testing.T) {
	op := newFakeOP(t, jose.ES256)
	_, sp := startSP(t, op.issuer())
	op.set(func(op *fakeOP) {
		op.encrypt, op.signUserinfo, op.spJWKS, op.encAlg = true, true, sp.URL+"/jwks", jose.RSA_OAEP_256
	})
	b := newBrowser(t)
	if p := b.get(login(t, b, sp.URL, "eidas1")); p.status != http.StatusSeeOther || p.location != "/me" {
		t.Fatalf("callback: %d %q\n%s", p.status, p.location, p.body)
	}
	me := b.get(sp.URL + "/me")
	if !strings.Contains(me.body, `<strong id="platform">Sésame</strong>`) {
		t.Error("/me does not name the standard platform")
	}
	for _, id := range []string{"id-token-jwe", "userinfo-jwe"} {
		if c := cell(me.body, id); !strings.Contains(c, "<code>RSA-OAEP-256</code>") {
			t.Errorf("/me #%s: %q", id, c)
		}
	}
}

func TestPlatformRouting(t *testing.T) {
	std, plus := newFakeOP(t, jose.ES256), newFakeOP(t, jose.ES256)
	_, sp := startPlus(t, std.issuer(), plus, jose.ECDH_ES)

	home := newBrowser(t).get(sp.URL + "/")
	home.body = html.UnescapeString(home.body)
	for _, want := range []string{
		`name="platform" value="std"`, `name="platform" value="plus"`, `id="sesame-connect"`, `id="sesame-plus-connect"`,
		`id="acr-std-eidas1" name="acr_values" value="eidas1" checked`,
		`id="acr-plus-eidas2" name="acr_values" value="eidas2"`,
		`id="acr-plus-eidas3" name="acr_values" value="eidas3" checked`,
		`for="acr-plus-eidas3"`, "Sésame+",
	} {
		if !strings.Contains(home.body, want) {
			t.Errorf("home page lacks %q", want)
		}
	}

	for _, c := range []struct {
		form             url.Values
		issuer, clientID string
		acr              string
	}{
		{url.Values{"platform": {"std"}, "acr_values": {"eidas1"}}, std.issuer(), "demo-sp", "eidas1"},
		{url.Values{"acr_values": {"eidas1"}}, std.issuer(), "demo-sp", "eidas1"}, // no platform: standard
		{url.Values{"platform": {"plus"}, "acr_values": {"eidas2"}}, plus.issuer(), "demo-sp-plus", "eidas2"},
		{url.Values{"platform": {"plus"}}, plus.issuer(), "demo-sp-plus", "eidas3"}, // the configured level
		{url.Values{"platform": {"plus"}, "acr_values": {"eidas1"}}, plus.issuer(), "demo-sp-plus", "eidas1"},
	} {
		p := newBrowser(t).post(sp.URL+"/login", c.form)
		loc, _ := url.Parse(p.location)
		if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, c.issuer+"/authorize?") {
			t.Errorf("%v: %d to %q, want %s", c.form, p.status, p.location, c.issuer)
			continue
		}
		q := loc.Query()
		if c.issuer == plus.issuer() {
			// "+" pushes its parameters (PAR): read them where they went.
			q = plus.pushedParams(t, q)
		}
		if q.Get("client_id") != c.clientID || q.Get("acr_values") != c.acr || q.Get("redirect_uri") != sp.URL+"/callback" {
			t.Errorf("%v: client_id %q acr %q redirect_uri %q", c.form, q.Get("client_id"), q.Get("acr_values"), q.Get("redirect_uri"))
		}
	}
	wantError(t, newBrowser(t).post(sp.URL+"/login", url.Values{"platform": {"gold"}}), http.StatusBadRequest, errBadPlatform.Code)
	_, stdOnly := startSP(t, std.issuer())
	wantError(t, newBrowser(t).post(stdOnly.URL+"/login", url.Values{"platform": {"plus"}}), http.StatusBadRequest, errBadPlatform.Code)

	// Mix-up: a "+" transaction answered with the standard issuer's iss.
	b := newBrowser(t)
	cb, _ := url.Parse(loginOn(t, b, sp.URL, "plus", "eidas3"))
	q := cb.Query()
	q.Set("iss", std.issuer())
	cb.RawQuery = q.Encode()
	wantError(t, b.get(cb.String()), http.StatusBadRequest, errIssuer.Code)

	// A standard login on the same SP, and its logout at the standard issuer.
	b = newBrowser(t)
	if p := b.get(loginOn(t, b, sp.URL, "std", "eidas1")); p.status != http.StatusSeeOther || p.location != "/me" {
		t.Fatalf("standard callback: %d %q\n%s", p.status, p.location, p.body)
	}
	if me := b.get(sp.URL + "/me"); !strings.Contains(me.body, `<strong id="platform">Sésame</strong>`) || !strings.Contains(cell(me.body, "id-token-jwe"), "non chiffré") {
		t.Errorf("/me after a standard login:\n%s", me.body)
	}
	out := b.post(sp.URL+"/logout", nil)
	end, _ := url.Parse(out.location)
	if !strings.HasPrefix(out.location, std.issuer()+"/session/end?") || end.Query().Get("client_id") != "demo-sp" {
		t.Errorf("standard logout went to %q", out.location)
	}
}
