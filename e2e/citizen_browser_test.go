package e2e

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sesame-id/sesame/internal/testsmtp"
)

// mobileWidth is the viewport of the mobile check: a common phone, in CSS
// pixels.
const mobileWidth, mobileHeight = 390, 844

// TestCitizenBrowser is the citizen space in a real headless chromium, on
// the real processes: the citizen logs in at the demo SP (Sésame button,
// chooser, mock IdP, information page), follows its link to the space,
// logs in there through another IdP, finds the demo SP's connection in
// the history, blocks the first IdP by clicking, and reads the page in
// English. Every page of the space is checked as a person with a screen
// reader or a phone meets it: one h1, the language said, every control
// labelled, nothing in the console, no horizontal scroll at 390 px.
func TestCitizenBrowser(t *testing.T) {
	chromium := findChromium(t)
	smtp := testsmtp.Start(t)
	st := startStack(t, stackOptions{Citizen: &citizenOptions{SMTPHost: "127.0.0.1", SMTPPort: smtp.Port}})
	artifacts := artifactsDir(t)
	browserCtx := startChromium(t, chromium)

	ctx, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	defer cancel()
	if err := firstRun(ctx, cancel); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	b := &tab{t: t, ctx: ctx, artifacts: artifacts}
	console := watchConsole(ctx)

	std := browserPlatform{Issuer: st.Broker, Button: "sesame-connect", ACR: "eidas1", Name: "Sésame",
		IdPs: []string{"impots", "ameli", "laposte"}}
	tabLogin(t, st, b, std, "impots", "angela-dubois", "citizen")
	checkConsole(t, console, "the demo SP, the broker and the IdP")

	// The demo SP's link leads to the history, which needs a login: the
	// landing page, whose button comes back to the history.
	if got := b.text("#citizen-space a"); got != "Voir mon historique dans mon espace Sésame" {
		t.Errorf("the demo SP's link to the space says %q", got)
	}
	b.do("follow the demo SP's link to the space",
		chromedp.Click(chromedp.CSS(`#citizen-space a`)), chromedp.WaitVisible(chromedp.ID("login")))
	b.at(st.Dashboard + "/")
	checkSpacePage(t, b, console, "citizen-landing", "fr", "Mon espace Sésame")

	// The space asks for prompt=login: the chooser again, despite the
	// broker's session. Another account of the same person.
	b.do("log in to the space", chromedp.Click(chromedp.ID("login")), chromedp.WaitVisible(chromedp.ID("idp-laposte")))
	b.at(st.Broker + "/authorize/choose")
	b.do("choose laposte", chromedp.Click(chromedp.ID("idp-laposte")), chromedp.WaitVisible(chromedp.ID("identity-angela-dubois")))
	b.at(st.IdPIssuer("laposte") + "/authorize")
	b.do("pick angela-dubois and log in",
		chromedp.Click(chromedp.CSS(`label[for="identity-angela-dubois"]`)),
		chromedp.Click(chromedp.CSS(`button[name="action"][value="login"]`)),
		chromedp.WaitVisible(chromedp.ID("continue")))
	b.at(st.Broker + "/authorize/consent")
	b.do("continue to the space", chromedp.Click(chromedp.ID("continue")), chromedp.WaitVisible(chromedp.ID("menu")))
	checkConsole(t, console, "the login to the space")
	b.at(st.Dashboard + "/historique")

	// The broker writes the history in batches: the demo SP's row is there
	// by now (a whole login went by), else after a reload or two. It names
	// the account used there, not the one of this login.
	const demoIdPs = `[...document.querySelectorAll('#history li[data-kind="connection"]')]
	  .filter(li => li.querySelector("h2").textContent.trim() === "Connexion à Démarche de démonstration")
	  .map(li => li.querySelector('[data-field="idp"]')?.textContent.trim() ?? "")`
	var idps []string
	for range 40 {
		if idps, _ = runValue(ctx, chromedp.Evaluate[[]string](demoIdPs)); len(idps) > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
		b.do("reload the history", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("menu")))
	}
	if len(idps) != 1 || idps[0] != "impots.gouv.fr" {
		t.Fatalf("the history shows the demo SP's connection through %q, want once through impots.gouv.fr", idps)
	}
	// The administrations that received data are named, never shown by
	// their client_id.
	providers, _ := runValue(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('[data-field="provider"]')].map(e => e.textContent.trim())`))
	if !slices.Contains(providers, "DGFiP") || !slices.Contains(providers, "CNAF") || slices.ContainsFunc(providers, func(p string) bool { return strings.HasPrefix(p, "dp-") }) {
		t.Errorf("the history names the data providers %q, want DGFiP and CNAF", providers)
	}
	checkSpacePage(t, b, console, "citizen-history", "fr", "Mon historique")

	b.do("open my accounts", chromedp.Click(chromedp.CSS(`#menu a[href="/comptes"]`)), chromedp.WaitVisible(chromedp.ID("save")))
	b.at(st.Dashboard + "/comptes")
	if got := b.text("#idp-laposte-current"); got == "" {
		t.Error("the accounts page does not mark laposte as the account of this login")
	}
	checkSpacePage(t, b, console, "citizen-accounts", "fr", "Mes comptes")

	// Block impots: the radio is drawn by the DSFR over its label, so the
	// citizen clicks the label, as in the IdP's identity list.
	b.do("block impots", chromedp.Click(chromedp.CSS(`label[for="idp-impots-block"]`)))
	if checked, err := runValue(ctx, chromedp.Evaluate[bool](`document.getElementById("idp-impots-block").checked`)); err != nil || !checked {
		t.Fatalf("the impots block radio is not checked (err %v)", err)
	}
	b.do("save", chromedp.Click(chromedp.ID("save")), chromedp.WaitVisible(chromedp.ID("saved")))
	if got := b.text("#saved"); !strings.Contains(got, "Compte impots.gouv.fr bloqué") {
		t.Errorf("the banner says %q, want the change", got)
	}
	if checked, _ := runValue(ctx, chromedp.Evaluate[bool](`document.getElementById("idp-impots-block").checked`)); !checked {
		t.Error("the page after saving does not show impots blocked")
	}
	checkSpacePage(t, b, console, "citizen-accounts-saved", "fr", "Mes comptes")

	// In English, through the link every page carries.
	if got := b.text("#lang-switch"); got != "English" {
		t.Errorf("the language link says %q, want English", got)
	}
	b.do("switch to English", chromedp.Click(chromedp.ID("lang-switch")), chromedp.WaitVisible(chromedp.ID("save")))
	b.at(st.Dashboard + "/comptes")
	checkSpacePage(t, b, console, "citizen-accounts-en", "en", "My accounts")
	if checked, _ := runValue(ctx, chromedp.Evaluate[bool](`document.getElementById("idp-impots-block").checked`)); !checked {
		t.Error("the English page does not show impots blocked: the choice was not saved")
	}
	if got := b.text("#lang-switch"); got != "Français" {
		t.Errorf("the English page's language link says %q, want Français", got)
	}

	// The choice of language stays (a cookie): the history in English,
	// its rows too.
	b.do("open my history in English", chromedp.Click(chromedp.CSS(`#menu a[href="/historique"]`)), chromedp.WaitVisible(chromedp.ID("history")))
	checkSpacePage(t, b, console, "citizen-history-en", "en", "My history")
	got := b.text("#history")
	for _, want := range []string{"Login to Démarche de démonstration", "Account impots.gouv.fr blocked", "Reference tax income (DGFiP)", "Date and time (Paris time)"} {
		if !strings.Contains(got, want) {
			t.Errorf("the English history lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Revenu fiscal") || strings.Contains(got, "Connexion à") {
		t.Errorf("the English history has French words:\n%s", got)
	}
}

// pageFacts are what checkSpacePage reads of a page.
type pageFacts struct {
	Lang  string   `json:"lang"`
	Title string   `json:"title"`
	H1    []string `json:"h1"`
	// Unlabelled are the form controls no label names: no <label for>
	// matching their id, no aria-label, and (buttons) no text.
	Unlabelled []string `json:"unlabelled"`
	// Dangling are the labels whose for= names no element, and the
	// aria-describedby or aria-labelledby naming none; Duplicate the ids
	// used twice (a label or a description would name the first only).
	Dangling  []string `json:"dangling"`
	Duplicate []string `json:"duplicate"`
	// Width is the page's scroll width, Viewport the layout viewport's
	// width; Wide the elements reaching past the viewport.
	Width    int      `json:"width"`
	Viewport int      `json:"viewport"`
	Wide     []string `json:"wide"`
}

// pageFactsJS reads pageFacts. Hidden inputs are no controls; a control
// aria-hidden or in a closed element is still checked, as a screen
// reader's forms list shows them all.
const pageFactsJS = `(() => {
  const desc = e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className && typeof e.className === "string" ? "." + e.className.trim().split(/\s+/).join(".") : "");
  const labelled = e => {
    if ((e.getAttribute("aria-label") || "").trim()) return true;
    if (e.id && document.querySelector('label[for="' + CSS.escape(e.id) + '"]')) return true;
    return e.tagName === "BUTTON" && e.textContent.trim() !== "";
  };
  const controls = [...document.querySelectorAll("input, select, textarea, button")].filter(e => e.type !== "hidden");
  const vw = document.documentElement.clientWidth;
  return {
    lang: document.documentElement.lang,
    title: document.title,
    h1: [...document.querySelectorAll("h1")].map(e => e.textContent.trim()),
    unlabelled: controls.filter(e => !labelled(e)).map(e => e.outerHTML),
    dangling: [
      ...[...document.querySelectorAll("label[for]")].filter(l => !document.getElementById(l.htmlFor)).map(l => l.outerHTML),
      ...[...document.querySelectorAll("[aria-describedby], [aria-labelledby]")].filter(e =>
        ((e.getAttribute("aria-describedby") || "") + " " + (e.getAttribute("aria-labelledby") || "")).trim().split(/\s+/).some(id => !document.getElementById(id))).map(desc),
    ],
    duplicate: [...new Set([...document.querySelectorAll("[id]")].map(e => e.id).filter((id, i, all) => all.indexOf(id) !== i))],
    width: document.documentElement.scrollWidth,
    viewport: vw,
    wide: [...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > vw + 0.5).slice(0, 8).map(desc),
  };
})()`

// checkSpacePage checks the page the tab shows, at the desktop size and
// at a phone's width, and screenshots both as <name>.png and
// <name>-390.png.
func checkSpacePage(t *testing.T, b *tab, console *consoleLog, name, lang, h1 string) {
	t.Helper()
	facts := func() pageFacts {
		t.Helper()
		f, err := runValue(b.ctx, chromedp.Evaluate[pageFacts](pageFactsJS))
		if err != nil {
			t.Fatalf("%s: read the page: %v", name, err)
		}
		return f
	}
	f := facts()
	if f.Lang != lang {
		t.Errorf("%s: <html lang=%q>, want %q", name, f.Lang, lang)
	}
	if len(f.H1) != 1 || f.H1[0] != h1 {
		t.Errorf("%s: h1 %q, want one, %q", name, f.H1, h1)
	}
	// The tab's title (what a screen reader says first) is the page's, in
	// its language.
	if !strings.HasPrefix(f.Title, h1+" – ") {
		t.Errorf("%s: title %q, want it to start with %q", name, f.Title, h1)
	}
	for _, c := range f.Unlabelled {
		t.Errorf("%s: a form control without a label: %s", name, c)
	}
	for _, l := range f.Dangling {
		t.Errorf("%s: a label or description of no element: %s", name, l)
	}
	for _, id := range f.Duplicate {
		t.Errorf("%s: id %q used twice", name, id)
	}
	b.screenshot(name + ".png")

	b.do(name+": phone viewport", chromedp.EmulateViewport(mobileWidth, mobileHeight, chromedp.EmulateMobile, chromedp.EmulatePortrait))
	m := facts()
	if m.Viewport != mobileWidth || m.Width > m.Viewport {
		t.Errorf("%s at %d px: the page is %d px wide in a %d px viewport (a horizontal scroll); too wide: %q",
			name, mobileWidth, m.Width, m.Viewport, m.Wide)
	}
	b.screenshot(name + "-390.png")
	// Back to the window's size. (ResetViewport leaves the phone's width:
	// its zero size keeps the last override's.)
	b.do(name+": desktop viewport", chromedp.EmulateViewport(desktopWidth, desktopHeight))

	checkConsole(t, console, name)
}

// checkConsole fails on the errors written to the console since the last
// check: a script's, or the browser's (a failed load, a CSP violation).
func checkConsole(t *testing.T, console *consoleLog, where string) {
	t.Helper()
	for _, msg := range console.take() {
		if msg.Type == chromedp.ConsoleError || msg.IsException() {
			t.Errorf("%s: console %s (%s)", where, msg, msg.URL)
		}
	}
}

// consoleLog keeps what the tab writes to its console (errors of the
// page, and the browser's own: a failed load, a CSP violation).
type consoleLog struct {
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
}

// watchConsole subscribes to the tab's console until ctx ends.
func watchConsole(ctx context.Context) *consoleLog {
	l := &consoleLog{}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			l.mu.Lock()
			l.msgs = append(l.msgs, m)
			l.mu.Unlock()
		}
	}()
	return l
}

// take returns the messages since the last take.
func (l *consoleLog) take() []chromedp.ConsoleMessage {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.msgs
	l.msgs = nil
	return out
}
