package e2e

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/providers"
)

// loginScreen is what TestSandboxPageOnAPhone reads of the mock IdP's
// login page.
type loginScreen struct {
	Lang string `json:"lang"`
	// Button is the bottom of the first "Se connecter" button, Height the
	// viewport's height: the button is on the first screen when Button
	// <= Height, without scrolling.
	Button float64 `json:"button"`
	Label  string  `json:"label"`
	Height float64 `json:"height"`
	// Width is the page's scroll width, Viewport the viewport's.
	Width    int `json:"width"`
	Viewport int `json:"viewport"`
}

const loginScreenJS = `(() => {
  const b = document.querySelector('button[name="action"][value="login"]');
  return {
    lang: document.documentElement.lang,
    button: b ? b.getBoundingClientRect().bottom + window.scrollY : 1e9,
    label: b ? b.textContent.trim() : "",
    height: window.innerHeight,
    width: document.documentElement.scrollWidth,
    viewport: document.documentElement.clientWidth,
  };
})()`

// TestSandboxPageOnAPhone opens a mock IdP's login page (the sandbox of
// docs/quickstart.md) on a 390 x 844 phone, in French and in English:
// "Se connecter" is on the first screen, the page is no wider than the
// phone, the language switch works, and a login from the short form
// reaches the client.
func TestSandboxPageOnAPhone(t *testing.T) {
	chromium := findChromium(t)
	artifacts := artifactsDir(t)

	var mu sync.Mutex
	var back []url.Values
	client := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/cb" {
			mu.Lock()
			back = append(back, r.URL.Query())
			mu.Unlock()
		}
		_, _ = w.Write([]byte("<!doctype html><title>client</title><p id=back>back at the client</p>"))
	}))
	defer client.Close()
	var idps http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { idps.ServeHTTP(w, r) }))
	defer srv.Close()
	const secret = "e2e-only-sandbox-secret-0123456789abcdef"
	cfg := &config.Providers{BaseURL: srv.URL, IdPs: []config.MockIdP{{
		ID: "laposte", Name: "L'Identité Numérique La Poste (mock)", ACRValues: []string{"eidas1", "eidas2", "eidas3"},
		Clients: []config.MockClient{{ClientID: "sesame", ClientSecret: secret, RedirectURIs: []string{client.URL + "/cb"}}},
	}}}
	s, err := providers.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	idps = s
	authURL := func(extra url.Values) string {
		q := url.Values{"client_id": {"sesame"}, "redirect_uri": {client.URL + "/cb"}, "response_type": {"code"},
			"scope": {"openid profile birth email"}, "state": {"st"}, "nonce": {"nonce-0123456789"}, "acr_values": {"eidas2"}}
		for k, v := range extra {
			q[k] = v
		}
		return srv.URL + "/laposte/authorize?" + q.Encode()
	}

	browserCtx := startChromium(t, chromium)
	ctx, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	defer cancel()
	if err := firstRun(ctx, cancel); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	b := &tab{t: t, ctx: ctx, artifacts: artifacts}
	b.do("phone viewport", chromedp.EmulateViewport(mobileWidth, mobileHeight, chromedp.EmulateMobile, chromedp.EmulatePortrait))
	screen := func(name, lang, label string) {
		t.Helper()
		got, err := runValue(ctx, chromedp.Evaluate[loginScreen](loginScreenJS))
		if err != nil {
			t.Fatalf("%s: read the page: %v", name, err)
		}
		if got.Lang != lang || got.Label != label {
			t.Errorf("%s: lang %q, button %q; want %q, %q", name, got.Lang, got.Label, lang, label)
		}
		if got.Button > got.Height {
			t.Errorf("%s: %q ends at %.0f px, below the first screen (%.0f px)", name, label, got.Button, got.Height)
		}
		if got.Viewport != mobileWidth || got.Width > got.Viewport {
			t.Errorf("%s: the page is %d px wide in a %d px viewport", name, got.Width, got.Viewport)
		}
		b.screenshot("sandbox-login-" + name + "-390.png")
		// And the first screen alone, what the phone shows on arrival.
		png, err := runValue(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("%s: first screen: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(artifacts, "sandbox-login-"+name+"-390-first-screen.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	b.do("open the login page", chromedp.Navigate(authURL(nil)), chromedp.WaitVisible(chromedp.ID("identity-angela-dubois")))
	screen("fr", "fr", "Se connecter")
	// The English page is the one whose switch goes back to French.
	b.do("switch to English", chromedp.Click(chromedp.ID("lang-switch")), chromedp.WaitVisible(chromedp.CSS(`#lang-switch[value="fr"]`)))
	screen("en-switch", "en", "Log in")
	b.do("open it with ui_locales=en", chromedp.Navigate(authURL(url.Values{"ui_locales": {"en"}})), chromedp.WaitVisible(chromedp.ID("identity-angela-dubois")))
	screen("en", "en", "Log in")

	// From the short form: a common identity and a scenario, then the
	// first button.
	b.do("pick Klaus Müller", chromedp.Click(chromedp.CSS(`label[for="identity-klaus-mueller"]`)))
	b.do("choose a scenario", chromedp.SetValue(chromedp.ID("preset"), "access_denied"))
	b.do("log in", chromedp.Click(chromedp.CSS(`button[name="action"][value="login"]`)), chromedp.WaitVisible(chromedp.ID("back")))
	mu.Lock()
	defer mu.Unlock()
	if len(back) != 1 || back[0].Get("error") != "access_denied" || back[0].Get("state") != "st" {
		t.Fatalf("the client got %v, want one access_denied with state st", back)
	}
}
