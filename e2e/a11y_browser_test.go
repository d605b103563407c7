package e2e

import (
	"context"
	_ "embed"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/sesame-id/sesame/internal/testsmtp"
)

// axeSource is axe-core's minified build, vendored from npm at the version
// in testdata/axe.VERSION (MPL-2.0, testdata/axe-core.LICENSE); `make axe`
// refreshes it.
//
//go:embed testdata/axe.min.js
var axeSource string

// viewport is a window size every page is checked at.
type viewport struct {
	name   string
	w, h   int64
	mobile bool
}

// a11yViewports are a desktop screen and a phone.
var a11yViewports = []viewport{
	{"desktop", desktopWidth, 800, false},
	{"mobile", mobileWidth, mobileHeight, true},
}

// a11yLangs are the languages every page is checked in, each with the
// Accept-Language of a browser set to it.
var a11yLangs = []struct{ lang, accept string }{
	{"fr", "fr-FR,fr;q=0.9"},
	{"en", "en-GB,en;q=0.9"},
}

// TestBrowserPages visits every page a citizen can meet, on the real
// processes (broker on both platforms, mock IdPs and eIDAS node, demo SP,
// citizen space), in a real headless chromium, in French and in English,
// at a desktop size and a phone's. Each page is screenshotted into the
// artifacts folder and checked by axe-core: a serious or critical
// violation fails the test, the counts of all are logged. Then a whole
// login with the keyboard alone, and the check that no page is wider than
// the phone's viewport.
func TestBrowserPages(t *testing.T) {
	chromium := findChromium(t)
	start := time.Now()
	smtp := testsmtp.Start(t)
	st := startStack(t, stackOptions{EIDAS: true, Citizen: &citizenOptions{SMTPHost: "127.0.0.1", SMTPPort: smtp.Port}})
	a := &a11yAudit{dir: artifactsDir(t)}
	browserCtx := startChromium(t, chromium)

	for _, l := range a11yLangs {
		t.Run(l.lang, func(t *testing.T) {
			for _, j := range a11yJourneys {
				t.Run(j.name, func(t *testing.T) {
					b := a11yTab(t, browserCtx, a.dir, l.accept)
					j.run(t, st, &a11yPages{audit: a, tab: b, lang: l.lang})
				})
			}
		})
	}
	t.Run("keyboard-login", func(t *testing.T) {
		keyboardLogin(t, st, a11yTab(t, browserCtx, a.dir, a11yLangs[0].accept))
	})
	// Every page above was measured at the phone's width.
	t.Run("mobile-width", func(t *testing.T) {
		if len(a.rows) == 0 {
			t.Fatal("no page was checked")
		}
		for _, r := range a.rows {
			if r.size == "mobile" && r.width > mobileWidth {
				t.Errorf("%s [%s] is %d px wide on a %d px phone (a horizontal scroll); reaching past the edge: %q", r.page, r.lang, r.width, mobileWidth, r.wide)
			}
		}
	})
	a.summary(t, time.Since(start))
}

// a11yJourney is a way through the pages, in a browser context of its own
// (its own cookies), checking each page it meets.
type a11yJourney struct {
	name string
	run  func(t *testing.T, st *stack, p *a11yPages)
}

// a11yJourneys are run in order in each language: the citizen space's
// journey blocks ameli for angela-dubois, which the last one meets.
var a11yJourneys = []a11yJourney{
	{"errors", journeyErrors},
	{"login", journeyLogin},
	{"plus", journeyPlus},
	{"consent", journeyConsent},
	{"eidas", journeyEIDAS},
	{"citizen-space", journeyCitizenSpace},
	{"blocked", journeyBlocked},
}

// journeyErrors: the pages of requests that cannot go anywhere.
func journeyErrors(t *testing.T, st *stack, p *a11yPages) {
	b := p.tab
	// An unknown SP: nothing may be sent to its redirect_uri.
	q := url.Values{"client_id": {"unknown-sp"}, "redirect_uri": {st.RP + "/nowhere"}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"s-0123456789"}, "nonce": {"n-0123456789abcdef"}, "acr_values": {"eidas1"}}
	p.open(st.Broker+"/authorize?"+q.Encode(), "main")
	p.wantCode("S030001")
	p.check("error-bad-request")
	p.open(st.Broker+"/no-such-page", "main")
	p.wantCode("S900404")
	p.check("error-not-found")
	// A step with no session: nothing names the SP.
	p.open(st.Broker+"/authorize/consent", "main")
	p.wantCode("S190001")
	if n := b.count(`main a[href*="error="]`); n != 0 {
		t.Errorf("the expired-session page offers %d links to an SP, want none", n)
	}
	p.check("error-session-expired")
}

// journeyLogin: the demo SP's login on the standard platform, with the
// IdP's cancel (the chooser's banner), a forged callback, a stale step,
// the Back button after the login, and the logouts.
func journeyLogin(t *testing.T, st *stack, p *a11yPages) {
	b := p.tab
	p.open(st.DemoSP+"/", "#sesame-connect")
	p.check("demo-home")
	b.do("click the Sésame button", chromedp.Click(chromedp.ID("sesame-connect")), chromedp.WaitVisible(chromedp.ID("idp-impots")))
	p.check("chooser")
	b.do("choose impots", chromedp.Click(chromedp.ID("idp-impots")), chromedp.WaitVisible(chromedp.ID("identity-angela-dubois")))
	p.check("idp-login")
	p.logDepth("idp-login", `button[name="action"][value="login"]`)
	b.do("cancel at the IdP", chromedp.Click(chromedp.CSS(`button[name="action"][value="cancel"]`)), chromedp.WaitVisible(chromedp.ID("banner")))
	b.at(st.Broker + "/authorize/choose")
	p.check("chooser-idp-error")

	b.do("choose impots again", chromedp.Click(chromedp.ID("idp-impots")), chromedp.WaitVisible(chromedp.ID("identity-angela-dubois")))
	// A callback with a state this browser never sent: refused, with the
	// way back to the demo SP.
	p.open(st.Broker+"/idp/callback?state=forged&code=forged&iss="+url.QueryEscape(st.IdPIssuer("impots")), "main")
	p.wantCode("S190003")
	p.wantWayBack(st, "Démarche de démonstration")
	p.check("error-bad-state")
	b.back("#identity-angela-dubois")
	b.do("log in at the IdP",
		chromedp.Click(chromedp.CSS(`label[for="identity-angela-dubois"]`)),
		chromedp.Click(chromedp.CSS(`button[name="action"][value="login"]`)),
		chromedp.WaitVisible(chromedp.ID("continue")))
	b.at(st.Broker + "/authorize/consent")
	p.check("information")
	// The chooser again, once the IdP answered: a stale step.
	p.open(st.Broker+"/authorize/choose", "main")
	p.wantCode("S190002")
	p.wantWayBack(st, "Démarche de démonstration")
	p.check("error-stale-step")
	b.back("#continue")
	b.do("continue to the demo SP", chromedp.Click(chromedp.ID("continue")), chromedp.WaitVisible(chromedp.ID("citizen-name")))
	b.at(st.DemoSP + "/me")
	p.check("demo-result")

	// The Back button once the code was sent: the broker sends the
	// browser back to the demo SP (with an error, never the spent code),
	// which sends the signed-in citizen back to their page.
	b.back("main")
	if loc := b.location(); !strings.HasPrefix(loc, st.DemoSP+"/me") {
		t.Errorf("the Back button after the login leads to %s, want the demo SP's /me", loc)
	}
	p.check("demo-back-after-login")

	// The broker's own logout, with no SP to return to: the confirmation,
	// then the end page.
	p.open(st.Broker+"/session/end", "#confirm-logout")
	p.check("logout-confirm")
	b.do("confirm the logout", chromedp.Click(chromedp.ID("confirm-logout")), chromedp.WaitVisible(chromedp.ID("logged-out")))
	p.check("logged-out")
	// The demo SP's logout, through the broker.
	p.open(st.DemoSP+"/me", "#logout")
	b.do("log out of the demo SP", chromedp.Click(chromedp.ID("logout")))
	b.waitAt(st.DemoSP + "/logged-out")
	p.check("demo-logged-out")
}

// journeyPlus: the "+" chooser (msa greyed out at eidas3), and the cancel
// link back to the demo SP, which shows the error it got.
func journeyPlus(t *testing.T, st *stack, p *a11yPages) {
	b := p.tab
	p.open(st.DemoSP+"/", "#sesame-plus-connect")
	b.do("choose eidas3", chromedp.Click(chromedp.CSS(`label[for="acr-plus-eidas3"]`)))
	b.do("click the Sésame+ button", chromedp.Click(chromedp.ID("sesame-plus-connect")), chromedp.WaitVisible(chromedp.ID("idp-france-identite")))
	b.at(st.Plus + "/authorize/choose")
	p.check("chooser-plus")
	b.do("cancel", chromedp.Click(chromedp.CSS(`main a[href*="error=access_denied"]`)))
	b.waitAt(st.DemoSP + "/callback")
	p.check("demo-provider-error")
}

// journeyConsent: a private SP with identity consent asks for a ticked
// box; continuing without it shows the error beside the box.
func journeyConsent(t *testing.T, st *stack, p *a11yPages) {
	b := p.tab
	c := st.Clients[privateSPID]
	q := url.Values{"client_id": {c.ID}, "redirect_uri": {c.RedirectURI}, "response_type": {"code"},
		"scope": {"openid identite_pivot email"}, "state": {"state-a11y-0123"}, "nonce": {"nonce-a11y-0123456789abcdef"}, "acr_values": {"eidas1"}}
	p.open(st.Broker+"/authorize?"+q.Encode(), "#idp-laposte")
	b.do("choose laposte", chromedp.Click(chromedp.ID("idp-laposte")), chromedp.WaitVisible(chromedp.ID("identity-angela-dubois")))
	b.do("log in at the IdP",
		chromedp.Click(chromedp.CSS(`label[for="identity-angela-dubois"]`)),
		chromedp.Click(chromedp.CSS(`button[name="action"][value="login"]`)),
		chromedp.WaitVisible(chromedp.ID("consent")))
	p.check("consent")
	// The browser would not send the form without the box ticked
	// (required): the server's answer to one that does.
	b.do("continue without ticking the box",
		chromedp.Evaluate[chromedp.Void](`document.getElementById("consent").form.noValidate = true`),
		chromedp.Click(chromedp.ID("continue")), chromedp.WaitVisible(chromedp.ID("consent-error")))
	p.check("consent-missing")
}

// journeyEIDAS: the eIDAS bridge's country page.
func journeyEIDAS(t *testing.T, st *stack, p *a11yPages) {
	b := p.tab
	p.open(st.DemoSP+"/", "#sesame-connect")
	b.do("click the Sésame button", chromedp.Click(chromedp.ID("sesame-connect")), chromedp.WaitVisible(chromedp.ID("idp-eidas")))
	b.do("choose the European identity", chromedp.Click(chromedp.ID("idp-eidas")), chromedp.WaitVisible(chromedp.ID("countries")))
	p.check("eidas-country")
}

// journeyCitizenSpace: the citizen space's pages, logged in through the
// broker; ameli is blocked for the citizen on the way.
func journeyCitizenSpace(t *testing.T, st *stack, p *a11yPages) {
	b := p.tab
	p.open(st.Dashboard+"/", "#login")
	p.check("citizen-home")
	p.open(st.Dashboard+"/signalement", "main")
	p.check("citizen-report")
	p.open(st.Dashboard+"/", "#login")
	b.do("log in to the space", chromedp.Click(chromedp.ID("login")), chromedp.WaitVisible(chromedp.ID("idp-laposte")))
	b.do("choose laposte", chromedp.Click(chromedp.ID("idp-laposte")), chromedp.WaitVisible(chromedp.ID("identity-angela-dubois")))
	b.do("log in at the IdP",
		chromedp.Click(chromedp.CSS(`label[for="identity-angela-dubois"]`)),
		chromedp.Click(chromedp.CSS(`button[name="action"][value="login"]`)),
		chromedp.WaitVisible(chromedp.ID("continue")))
	b.do("continue to the space", chromedp.Click(chromedp.ID("continue")), chromedp.WaitVisible(chromedp.ID("menu")))
	b.at(st.Dashboard + "/")
	p.check("citizen-home-signed-in")
	b.do("open my history", chromedp.Click(chromedp.CSS(`#menu a[href="/historique"]`)), chromedp.WaitVisible(chromedp.ID("intro")))
	p.check("citizen-history")
	b.do("open my accounts", chromedp.Click(chromedp.CSS(`#menu a[href="/comptes"]`)), chromedp.WaitVisible(chromedp.ID("save")))
	p.check("citizen-accounts")
	b.do("block ameli", chromedp.Click(chromedp.CSS(`label[for="idp-ameli-block"]`)))
	b.do("save", chromedp.Click(chromedp.ID("save")), chromedp.WaitVisible(chromedp.ID("saved")))
	p.check("citizen-accounts-saved")
}

// journeyBlocked: a login through the account the citizen blocked.
func journeyBlocked(t *testing.T, st *stack, p *a11yPages) {
	b := p.tab
	p.open(st.DemoSP+"/", "#sesame-connect")
	b.do("click the Sésame button", chromedp.Click(chromedp.ID("sesame-connect")), chromedp.WaitVisible(chromedp.ID("idp-ameli")))
	b.do("choose ameli", chromedp.Click(chromedp.ID("idp-ameli")), chromedp.WaitVisible(chromedp.ID("identity-angela-dubois")))
	b.do("log in at the IdP",
		chromedp.Click(chromedp.CSS(`label[for="identity-angela-dubois"]`)),
		chromedp.Click(chromedp.CSS(`button[name="action"][value="login"]`)))
	b.waitAt(st.Broker + "/idp/callback")
	p.wantCode("S020040")
	p.check("error-blocked")
}

// keyboardLogin completes a login at the demo SP with the keyboard alone:
// Tab to each control, Enter on buttons, the arrows and Space in the
// identity list; no click. Each control reached must show where the focus
// is.
func keyboardLogin(t *testing.T, st *stack, b *tab) {
	who := loadIdentity(t, "jean-de-la-fontaine")
	b.do("open the demo SP", chromedp.Navigate(st.DemoSP+"/"), chromedp.WaitVisible(chromedp.ID("sesame-connect")))
	b.tabTo("#sesame-connect")
	b.do("Enter on the Sésame button", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("idp-impots")))
	b.at(st.Broker + "/authorize/choose")
	b.tabTo("#idp-impots")
	b.do("Enter on impots", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("identity-"+who["id"])))
	b.at(st.IdPIssuer("impots") + "/authorize")
	// Tab enters the list on its checked identity; the arrows move the
	// choice, Space ticks it.
	b.tabTo(`input[name="identity"]`)
	for range 40 {
		if id, _ := runValue(b.ctx, chromedp.Evaluate[string](`document.activeElement.id`)); id == "identity-"+who["id"] {
			break
		}
		b.do("ArrowDown in the identity list", chromedp.KeyEvent(kb.ArrowDown))
	}
	b.do("Space on "+who["id"], chromedp.KeyEvent(" "))
	if checked, err := runValue(b.ctx, chromedp.Evaluate[bool](`document.getElementById("identity-`+who["id"]+`").checked`)); err != nil || !checked {
		t.Fatalf("identity %s is not selected by the keyboard (err %v)", who["id"], err)
	}
	b.tabTo(`button[name="action"][value="login"]`)
	b.do("Enter on Se connecter", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("continue")))
	b.at(st.Broker + "/authorize/consent")
	b.tabTo("#continue")
	b.do("Enter on Continuer", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("citizen-name")))
	b.at(st.DemoSP + "/me")
	if got := b.text("#citizen-name"); !strings.Contains(got, who["given_name"]) || !strings.Contains(got, who["family_name"]) {
		t.Errorf("the demo SP shows %q after the keyboard login, want %s", got, who.Name())
	}
}

// maxTabs bounds the Tab presses to reach one control: a page whose
// control needs more is itself a finding.
const maxTabs = 60

// tabTo presses Tab until the focus is on an element matching sel, and
// checks that the focus can be seen there (an outline or a shadow).
func (b *tab) tabTo(sel string) {
	b.t.Helper()
	js := fmt.Sprintf(`(() => { const e = document.activeElement; if (!e || !e.matches(%q)) return ""; const s = getComputedStyle(e);
	  return (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== "none" ? "visible" : "invisible"; })()`, sel)
	var path []string
	for i := 0; i < maxTabs; i++ {
		b.do("Tab", chromedp.KeyEvent(kb.Tab))
		got, err := runValue(b.ctx, chromedp.Evaluate[string](js))
		if err != nil {
			b.t.Fatalf("read the focus: %v", err)
		}
		switch got {
		case "visible":
			b.t.Logf("keyboard: %s reached after %d Tab", sel, i+1)
			return
		case "invisible":
			b.t.Errorf("keyboard: %s has the focus but shows no focus ring (outline or shadow)", sel)
			return
		}
		el, _ := runValue(b.ctx, chromedp.Evaluate[string](`(e => e ? e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") : "none")(document.activeElement)`))
		path = append(path, el)
	}
	b.t.Fatalf("keyboard: %s not reached after %d Tab; the focus went through %s", sel, maxTabs, strings.Join(path, ", "))
}

// back is the browser's Back button: history.back(), then the page that
// shows sel, once the location has changed and the page is loaded.
// chromedp's NavigateBack waits for a load event it does not always see,
// and after some history navigations its DOM queries hang though the page
// is there: the page is then reloaded, which asks the server again as the
// Back button did (every page of the flow is no-store, so the browser
// asked it, and the test checks where the answer led).
func (b *tab) back(sel string) {
	b.t.Helper()
	from := b.location()
	b.do("Back from "+from, chromedp.Evaluate[chromedp.Void](`history.back()`))
	ready := fmt.Sprintf(`location.href !== %q && document.readyState === "complete" && !!document.querySelector(%q)`, from, sel)
	deadline := time.Now().Add(browserStepTimeout)
	for {
		if ok, _ := runValue(b.ctx, chromedp.Evaluate[bool](ready)); ok {
			break
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("Back from %s: no page with %s within %v (at %s)", from, sel, browserStepTimeout, b.location())
		}
		time.Sleep(20 * time.Millisecond)
	}
	sctx, cancel := context.WithTimeout(b.ctx, 1500*time.Millisecond)
	defer cancel()
	if err := chromedp.Do(sctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		b.do("Back from "+from+": reload "+b.location(), chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(sel)))
	}
}

// waitAt waits until the browser has loaded a page at base (its query
// aside): after a click that leaves the page, where no element of the
// next page is known beforehand.
func (b *tab) waitAt(base string) {
	b.t.Helper()
	js := fmt.Sprintf(`location.origin + location.pathname === %q && document.readyState === "complete"`, base)
	deadline := time.Now().Add(browserStepTimeout)
	for {
		if ok, _ := runValue(b.ctx, chromedp.Evaluate[bool](js)); ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("the browser is at %s, want %s within %v", b.location(), base, browserStepTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// location is the tab's URL.
func (b *tab) location() string {
	b.t.Helper()
	loc, err := runValue(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatalf("location: %v", err)
	}
	return loc
}

// count is the number of elements matching sel.
func (b *tab) count(sel string) int {
	b.t.Helper()
	n, err := runValue(b.ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
	if err != nil {
		b.t.Fatalf("count %s: %v", sel, err)
	}
	return n
}

// a11yTab opens a tab in a new browser context (no cookies shared with
// the other journeys) whose requests say Accept-Language: accept.
func a11yTab(t *testing.T, browserCtx context.Context, dir, accept string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := firstRun(ctx, cancel); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	b := &tab{t: t, ctx: ctx, artifacts: dir}
	ua, err := runValue(ctx, chromedp.Evaluate[string](`navigator.userAgent`))
	if err != nil {
		t.Fatalf("user agent: %v", err)
	}
	b.do("Accept-Language "+accept, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: ua, AcceptLanguage: accept})
		return err
	}))
	return b
}

// a11yPages checks the pages of one journey in one language.
type a11yPages struct {
	audit *a11yAudit
	tab   *tab
	lang  string
}

// open navigates to u and waits for sel.
func (p *a11yPages) open(u, sel string) {
	p.tab.t.Helper()
	p.tab.do("open "+u, chromedp.Navigate(u), chromedp.WaitVisible(chromedp.CSS(sel)))
}

// wantCode checks that the page is the error page of code.
func (p *a11yPages) wantCode(code string) {
	p.tab.t.Helper()
	if got := p.tab.text("main"); !strings.Contains(got, code) {
		p.tab.t.Errorf("page %s: want the error %s, the page says:\n%s", p.tab.location(), code, got)
	}
}

// wantWayBack checks that the error page offers one way back to the demo
// SP, named sp, through the OIDC error path (access_denied, state, iss).
func (p *a11yPages) wantWayBack(st *stack, sp string) {
	p.tab.t.Helper()
	links, err := runValue(p.tab.ctx, chromedp.Evaluate[[][2]string](`[...document.querySelectorAll('main a[href*="error="]')].map(a => [a.href, a.textContent.trim()])`))
	if err != nil {
		p.tab.t.Fatalf("read the links: %v", err)
	}
	if len(links) != 1 {
		p.tab.t.Errorf("page %s offers %d ways back to the SP (%q), want one", p.tab.location(), len(links), links)
		return
	}
	u, err := url.Parse(links[0][0])
	if err != nil || u.Scheme+"://"+u.Host+u.Path != st.DemoSP+"/callback" || u.Query().Get("error") != "access_denied" ||
		u.Query().Get("state") == "" || u.Query().Get("iss") != st.Broker || u.Query().Has("code") {
		p.tab.t.Errorf("the way back leads to %s, want the demo SP's callback with access_denied, its state and iss %s", links[0][0], st.Broker)
	}
	if want := map[string]string{"fr": "Revenir sur " + sp, "en": "Back to " + sp}[p.lang]; links[0][1] != want {
		p.tab.t.Errorf("the way back says %q, want %q", links[0][1], want)
	}
}

// check screenshots the page at each viewport and runs axe-core there.
func (p *a11yPages) check(page string) {
	p.tab.t.Helper()
	for _, vp := range a11yViewports {
		p.audit.checkAt(p.tab, p.lang, page, vp)
	}
	p.tab.do(page+": back to the desktop size", emulateViewport(a11yViewports[0]))
}

// logDepth logs how far down the phone's page the element sel sits, in
// pixels and screens: a measure (the sandbox's restructured IdP page is
// to bring "Se connecter" up), not a verdict.
func (p *a11yPages) logDepth(page, sel string) {
	b := p.tab
	b.t.Helper()
	phone := a11yViewports[1]
	b.do(page+": phone viewport", emulateViewport(phone))
	top, err := runValue(b.ctx, chromedp.Evaluate[float64](fmt.Sprintf(`document.querySelector(%q).getBoundingClientRect().top + window.scrollY`, sel)))
	if err != nil {
		b.t.Fatalf("%s: find %s: %v", page, sel, err)
	}
	b.t.Logf("a11y: %s [%s, mobile]: %s is %.0f px down the page (%.1f screens of %d px)", page, p.lang, sel, top, top/float64(phone.h), phone.h)
	b.do(page+": back to the desktop size", emulateViewport(a11yViewports[0]))
}

func emulateViewport(vp viewport) chromedp.Action[chromedp.Void] {
	if vp.mobile {
		return chromedp.EmulateViewport(vp.w, vp.h, chromedp.EmulateMobile, chromedp.EmulatePortrait)
	}
	return chromedp.EmulateViewport(vp.w, vp.h)
}

// a11yAudit gathers every page's findings for the summary.
type a11yAudit struct {
	dir  string
	rows []a11yRow
	// shots, axe: the time spent screenshotting and in axe-core.
	shots, axe time.Duration
}

// a11yRow is one page, in one language, at one size.
type a11yRow struct {
	lang, page, size string
	// byImpact counts axe's violated rules by impact, nodes the elements.
	byImpact, nodes map[string]int
	passes          int
	// width is the document's scroll width, inner the window's; wide
	// the elements reaching past the viewport's width, when the page is
	// wider.
	width, inner int
	wide         []string
	htmlLang     string
}

// axeReport is what axeJS returns.
type axeReport struct {
	Violations []struct {
		ID      string   `json:"id"`
		Impact  string   `json:"impact"`
		Help    string   `json:"help"`
		Count   int      `json:"count"`
		Targets []string `json:"targets"`
	} `json:"violations"`
	Passes int `json:"passes"`
}

// axeJS runs every axe-core rule on the document (the page's own words
// only: the screenshot tool adds nothing to the DOM).
const axeJS = `(async () => {
  const r = await axe.run(document, {resultTypes: ["violations"]});
  return {
    violations: r.violations.map(v => ({id: v.id, impact: v.impact || "", help: v.help, count: v.nodes.length,
      targets: v.nodes.slice(0, 5).map(n => n.target.flat(Infinity).join(" "))})),
    passes: r.passes.length,
  };
})()`

// widthJS measures the page against the window, and lists the elements
// reaching past limit, the viewport's width (a page too wide for a phone
// makes the mobile browser widen its window to the page: innerWidth is
// then no limit).
const widthJS = `((limit) => {
  const vw = window.innerWidth;
  const desc = e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (typeof e.className === "string" && e.className.trim() ? "." + e.className.trim().split(/\s+/).join(".") : "");
  const width = document.documentElement.scrollWidth;
  return {width, inner: vw, lang: document.documentElement.lang,
    wide: width > limit ? wide(limit).slice(0, 8).map(e => e.id || !e.parentElement ? desc(e) : desc(e.parentElement) + " > " + desc(e)) : []};
  // The outermost elements past limit, leaving out those a scrolling
  // or clipping box holds.
  function wide(limit) {
    const clipped = e => { for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) if (getComputedStyle(a).overflowX !== "visible") return true; return false; };
    const past = [...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > limit + 0.5 && !clipped(e));
    return past.filter(e => !past.includes(e.parentElement));
  }
})`

type widthFacts struct {
	Width int      `json:"width"`
	Inner int      `json:"inner"`
	Lang  string   `json:"lang"`
	Wide  []string `json:"wide"`
}

// checkAt checks the page at one viewport.
func (a *a11yAudit) checkAt(b *tab, lang, page string, vp viewport) {
	t := b.t
	t.Helper()
	b.do(page+": "+vp.name+" viewport", emulateViewport(vp))
	began := time.Now()
	b.screenshot(fmt.Sprintf("%s-%s-%s.png", page, lang, vp.name))
	a.shots += time.Since(began)
	began = time.Now()
	if kind, err := runValue(b.ctx, chromedp.Evaluate[string](`typeof window.axe`)); err != nil || kind == "undefined" {
		if _, err := runValue(b.ctx, chromedp.Evaluate[chromedp.Void](axeSource)); err != nil {
			t.Fatalf("%s: inject axe-core: %v", page, err)
		}
	}
	rep, err := runValue(b.ctx, chromedp.Evaluate[axeReport](axeJS, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: run axe-core: %v", page, err)
	}
	a.axe += time.Since(began)
	w, err := runValue(b.ctx, chromedp.Evaluate[widthFacts](fmt.Sprintf("%s(%d)", widthJS, vp.w)))
	if err != nil {
		t.Fatalf("%s: measure the page: %v", page, err)
	}
	row := a11yRow{lang: lang, page: page, size: vp.name, byImpact: map[string]int{}, nodes: map[string]int{}, passes: rep.Passes,
		width: w.Width, inner: w.Inner, wide: w.Wide, htmlLang: w.Lang}
	for _, v := range rep.Violations {
		row.byImpact[v.Impact]++
		row.nodes[v.Impact] += v.Count
		if v.Impact == "serious" || v.Impact == "critical" {
			t.Errorf("axe: %s [%s, %s]: %s (%s): %s; %d element(s): %s", page, lang, vp.name, v.ID, v.Impact, v.Help, v.Count, strings.Join(v.Targets, " | "))
		} else {
			t.Logf("axe: %s [%s, %s]: %s (%s): %s; %d element(s): %s", page, lang, vp.name, v.ID, v.Impact, v.Help, v.Count, strings.Join(v.Targets, " | "))
		}
	}
	t.Logf("axe: %s [%s, %s]: %s; %d rules passed; %d px wide in a %d px window; <html lang=%q>",
		page, lang, vp.name, row.counts(), rep.Passes, w.Width, w.Inner, w.Lang)
	a.rows = append(a.rows, row)
}

// impacts are axe-core's, worst first.
var impacts = []string{"critical", "serious", "moderate", "minor"}

// counts says the violations of a row by impact: rules (elements).
func (r a11yRow) counts() string {
	var parts []string
	for _, i := range impacts {
		parts = append(parts, fmt.Sprintf("%d %s (%d el.)", r.byImpact[i], i, r.nodes[i]))
	}
	return strings.Join(parts, ", ")
}

// summary logs the totals the lead quotes: pages, screenshots, violations
// by impact, the pages not in the language asked, and the time taken.
func (a *a11yAudit) summary(t *testing.T, took time.Duration) {
	total, nodes := map[string]int{}, map[string]int{}
	pages := map[string]bool{}
	var notInLang []string
	for _, r := range a.rows {
		pages[r.page] = true
		for _, i := range impacts {
			total[i] += r.byImpact[i]
			nodes[i] += r.nodes[i]
		}
		if r.size == "desktop" && r.htmlLang != r.lang {
			notInLang = append(notInLang, r.page+" ["+r.lang+"]: lang="+r.htmlLang)
		}
	}
	names := make([]string, 0, len(pages))
	for p := range pages {
		names = append(names, p)
	}
	slices.Sort(names)
	var parts []string
	for _, i := range impacts {
		parts = append(parts, fmt.Sprintf("%s %d (%d el.)", i, total[i], nodes[i]))
	}
	shots, _ := os.ReadDir(a.dir)
	t.Logf("a11y: %d pages (%s) × %d languages × %d sizes = %d checks in %v", len(names), strings.Join(names, ", "),
		len(a11yLangs), len(a11yViewports), len(a.rows), took.Round(time.Second))
	t.Logf("a11y: axe-core %s violations: %s", strings.TrimSpace(axeVersion()), strings.Join(parts, ", "))
	t.Logf("a11y: screenshots in %s (%d files); %v taking them, %v in axe-core", a.dir, len(shots), a.shots.Round(time.Second), a.axe.Round(time.Second))
	if len(notInLang) > 0 {
		t.Logf("a11y: pages whose <html lang> is not the language asked (translation pending): %s", strings.Join(notInLang, "; "))
	}
}

// axeVersion is the vendored axe-core's version.
func axeVersion() string {
	v, err := os.ReadFile("testdata/axe.VERSION")
	if err != nil {
		return "(unknown version)"
	}
	return string(v)
}
