package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// TestE2ENegative drives refusals through the real stack: what the broker
// must never redirect, what it must send back to the SP, and callbacks it
// must not accept.
func TestE2ENegative(t *testing.T) {
	st := startStack(t, stackOptions{})
	demo := st.Clients[demoSPID]

	authorize := func(params map[string]string) string {
		q := url.Values{
			"client_id": {demo.ID}, "redirect_uri": {demo.RedirectURI}, "response_type": {"code"},
			"scope": {"openid identite_pivot"}, "state": {"st-" + randomString(t)}, "nonce": {"n-" + randomString(t)},
			"acr_values": {"eidas1"},
		}
		for k, v := range params {
			if v == "" {
				q.Del(k)
			} else {
				q.Set(k, v)
			}
		}
		return st.Broker + "/authorize?" + q.Encode()
	}

	t.Run("unknown client_id: error page, no redirect", func(t *testing.T) {
		p := newAgent(t).get(authorize(map[string]string{"client_id": "no-such-client"}))
		p.errorPage(t, http.StatusBadRequest, "S030001")
		// Support can find the refusal in the broker's log by the id shown.
		if id := p.correlationID(); id == "" || !st.waitLog("broker", id, 0) {
			t.Errorf("the broker log has no line with the page's correlation id %q", id)
		}
	})
	t.Run("unregistered redirect_uri: error page, no redirect", func(t *testing.T) {
		for _, ru := range []string{
			"http://localhost:1/evil",
			demo.RedirectURI + "/",                                       // a prefix match is no match
			st.Clients[otherSPID].RedirectURI,                            // another client's URI
			strings.ToUpper(demo.RedirectURI[:4]) + demo.RedirectURI[4:], // case
		} {
			p := newAgent(t).get(authorize(map[string]string{"redirect_uri": ru}))
			p.errorPage(t, http.StatusBadRequest, "S030001")
		}
	})
	t.Run("scope without openid: invalid_scope back to the SP", func(t *testing.T) {
		state := "st-" + randomString(t)
		u := newAgent(t).get(authorize(map[string]string{"scope": "identite_pivot email", "state": state})).
			redirect(t, demo.RedirectURI)
		wantQuery(t, "error response", u, map[string]string{"error": "invalid_scope", "state": state, "iss": st.Broker})
		if u.Query().Has("code") {
			t.Errorf("error response carries a code: %s", u)
		}
	})

	t.Run("PKCE: a wrong code_verifier is refused", func(t *testing.T) {
		r := newRP(t, st, demoSPID, oauth2.AuthStyleInHeader, "openid", "identite_pivot")
		code, _ := r.login(t, newAgent(t), "impots", "angela-dubois", loginHooks{})
		r.Verifier = oauth2.GenerateVerifier()
		if _, err := r.exchange(t, code); retrieveError(err) != "invalid_grant" {
			t.Errorf("token request with another verifier: %v, want invalid_grant", err)
		}
	})
	t.Run("logout to an unregistered post_logout_redirect_uri: error page, no redirect", func(t *testing.T) {
		a := newAgent(t)
		r := newRP(t, st, demoSPID, oauth2.AuthStyleInHeader, "openid")
		code, _ := r.login(t, a, "impots", "angela-dubois", loginHooks{})
		tok, err := r.exchange(t, code)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := tok.Extra("id_token").(string)
		for _, plr := range []string{"http://localhost:1/evil", st.Clients[otherSPID].PostLogoutURI} {
			q := url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {plr}, "state": {"s"}}
			a.get(st.Broker+"/session/end?"+q.Encode()).errorPage(t, http.StatusBadRequest, "S030010")
		}
		// The refused requests did not log the citizen out.
		a.get(newRP(t, st, demoSPID, oauth2.AuthStyleInHeader, "openid").authURL()).redirect(t, st.Broker+"/authorize/consent")
	})

	t.Run("IdP callback replayed", func(t *testing.T) {
		a := newAgent(t)
		r := newRP(t, st, demoSPID, oauth2.AuthStyleInHeader, "openid", "identite_pivot")
		ch := a.toChooser(t, st, r.authURL())
		login, idpAuth := a.chooseIdP(t, st, ch, "impots")
		cb := a.idpLogin(t, st, "impots", login, idpAuth, "angela-dubois")
		a.brokerCallback(t, st, cb)

		// The same browser reloads the callback: the trip is spent.
		again := a.get(cb.String())
		if again.status >= 500 {
			t.Fatalf("replayed callback: status %d, want a 4xx error page\nbody: %s", again.status, excerpt(again.body))
		}
		again.errorPage(t, http.StatusBadRequest, "S190002")
		// Another browser (no session) replays it: refused too.
		newAgent(t).get(cb.String()).errorPage(t, http.StatusBadRequest, "S190001")

		// The replays did not spoil the real login.
		final := a.consent(t, st, loadIdentity(t, "angela-dubois"))
		r.checkResponse(t, final)
		if _, err := r.exchange(t, final.Query().Get("code")); err != nil {
			t.Errorf("token request after the refused replays: %v", err)
		}
	})

	for _, tc := range []struct {
		name  string
		alter func(q url.Values)
	}{
		{"IdP callback with another IdP's iss (mix-up)", func(q url.Values) { q.Set("iss", st.IdPIssuer("laposte")) }},
		{"IdP callback with a foreign iss", func(q url.Values) { q.Set("iss", "http://localhost:1/evil") }},
		{"IdP callback without iss although the IdP advertises it", func(q url.Values) { q.Del("iss") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAgent(t)
			r := newRP(t, st, demoSPID, oauth2.AuthStyleInHeader, "openid", "identite_pivot")
			ch := a.toChooser(t, st, r.authURL())
			login, idpAuth := a.chooseIdP(t, st, ch, "impots")
			cb := a.idpLogin(t, st, "impots", login, idpAuth, "angela-dubois")

			forged := *cb
			q := forged.Query()
			tc.alter(q)
			forged.RawQuery = q.Encode()
			// Refused: back to the chooser with a banner, to pick another IdP.
			issRefusals := st.logCount("broker", "callback iss")
			a.get(forged.String()).redirect(t, st.Broker+"/authorize/choose")
			ch = a.get(st.Broker + "/authorize/choose").ok(t)
			if !ch.has("banner") {
				t.Errorf("chooser after a refused callback shows no #banner")
			}
			if !st.waitLog("broker", "callback iss", issRefusals) {
				t.Errorf("the broker log does not say the callback's iss was refused")
			}

			// The broker never redeemed the IdP's code: the IdP still
			// holds it unused (it answers about the missing PKCE
			// verifier, not about a code already used).
			if desc := idpTokenError(t, st, "impots", cb.Query().Get("code")); desc != "code_verifier is required" {
				t.Errorf("the IdP's code after the refused callback: %q, want it unused (\"code_verifier is required\"): the broker called the token endpoint", desc)
			}
			// The genuine callback is now refused too: the trip was spent.
			genuine := a.get(cb.String())
			if genuine.status != http.StatusBadRequest || genuine.header.Get("Location") != "" {
				t.Errorf("genuine callback after the refusal: %d (Location %q), want a 400 error page", genuine.status, genuine.header.Get("Location"))
			}

			// The citizen can go on with another IdP.
			login, idpAuth = a.chooseIdP(t, st, ch, "laposte")
			cb = a.idpLogin(t, st, "laposte", login, idpAuth, "angela-dubois")
			a.brokerCallback(t, st, cb)
			final := a.consent(t, st, loadIdentity(t, "angela-dubois"))
			r.checkResponse(t, final)
		})
	}
}

// idpTokenError redeems code at a mock IdP as the broker's client but
// without the PKCE verifier, and returns the error_description. The mock
// takes the code before checking the verifier, so the answer tells whether
// the code was still unused.
func idpTokenError(t *testing.T, st *stack, idp, code string) string {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {st.Broker + "/idp/callback"}}
	req, err := http.NewRequestWithContext(stepCtx(t), http.MethodPost, st.IdPIssuer(idp)+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(brokerClientAtIdPs, idpSecrets[idp])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatalf("IdP token answer: %v", err)
	}
	if resp.StatusCode != http.StatusBadRequest || e.Error != "invalid_grant" {
		t.Fatalf("IdP token answer: %d %s %q, want 400 invalid_grant", resp.StatusCode, e.Error, e.Description)
	}
	return e.Description
}
