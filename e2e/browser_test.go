package e2e

import (
	"context"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browserStepTimeout bounds every browser action.
const browserStepTimeout = 30 * time.Second

// The browser window's size: a desktop screen.
const desktopWidth, desktopHeight = 1280, 1024

// findChromium returns Debian's chromium. Without it the test fails in CI
// (or with SESAME_REQUIRE_CHROMIUM=1) and is skipped elsewhere.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "chromium not found on PATH (looked for chromium and chromium-browser); run `make deps` (apt-get install chromium)"
	if os.Getenv("CI") != "" || os.Getenv("SESAME_REQUIRE_CHROMIUM") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// artifactsDir is the folder of the browser tests' screenshots, made if
// need be: $SESAME_ARTIFACTS/screenshots when CI names a folder it keeps,
// else artifacts/screenshots at the repository's root (git-ignored).
func artifactsDir(t *testing.T) string {
	t.Helper()
	root := os.Getenv("SESAME_ARTIFACTS")
	if root == "" {
		root = filepath.Join(moduleRoot, "artifacts")
	}
	artifacts, err := filepath.Abs(filepath.Join(root, "screenshots"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots: %s", artifacts)
	return artifacts
}

// startChromium starts headless chromium for the test and returns its
// first tab's context; each login opens its own browser context in it.
func startChromium(t *testing.T, chromium string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		// A French citizen's browser: the pages are shown in French.
		chromedp.Flag("lang", "fr-FR"),
		chromedp.Flag("accept-lang", "fr-FR,fr"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(desktopWidth, desktopHeight),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)
	// The first Run starts chromium; its context must outlive the test, so
	// it is bounded by a watchdog rather than a timeout context.
	if err := firstRun(browserCtx, cancelBrowser); err != nil {
		t.Fatalf("start chromium %s: %v", chromium, err)
	}
	return browserCtx
}

// TestBrowserLogin clicks through a login in a real headless chromium:
// demo SP → chooser → mock IdP → information page → demo SP showing the
// citizen's name, once per IdP, each in a fresh browser context.
func TestBrowserLogin(t *testing.T) {
	chromium := findChromium(t)
	st := startStack(t, stackOptions{})
	artifacts := artifactsDir(t)
	browserCtx := startChromium(t, chromium)

	std := browserPlatform{Issuer: st.Broker, Button: "sesame-connect", ACR: "eidas1", Name: "Sésame",
		IdPs: []string{"impots", "ameli", "laposte"}}
	for _, tc := range []struct{ idp, identity string }{
		{"impots", "angela-dubois"},
		{"laposte", "jean-de-la-fontaine"},
		{"ameli", "carmen-garcia-lopez"},
	} {
		t.Run(tc.idp, func(t *testing.T) {
			browserLogin(t, st, browserCtx, artifacts, std, tc.idp, tc.identity, tc.idp)
		})
	}
	// "+" at eidas3: the level's radio, the "+" button, the "+" chooser
	// (msa greyed out), France Identité, and the demo SP showing Sésame+.
	plus := browserPlatform{Issuer: st.Plus, Button: "sesame-plus-connect", Radio: "acr-plus-eidas3", ACR: "eidas3", Name: "Sésame+",
		IdPs: plusIdPs, Greyed: []string{"msa"}}
	t.Run("plus/eidas3/france-identite", func(t *testing.T) {
		browserLogin(t, st, browserCtx, artifacts, plus, "france-identite", "helene-lefevre", "plus")
	})
}

// browserPlatform is how a login on one platform looks in the browser.
type browserPlatform struct {
	Issuer string
	// Radio is the level's radio on the demo SP's home page ("" keeps the
	// default); Button the platform's connect button.
	Radio, Button string
	// ACR is the level the demo SP must show; Name its #platform.
	ACR, Name string
	// IdPs the chooser lists, Greyed those shown disabled.
	IdPs, Greyed []string
}

// firstRun opens the context's tab, cancelling it if chromium does not
// answer within browserStepTimeout.
func firstRun(ctx context.Context, cancel context.CancelFunc) error {
	timer := time.AfterFunc(browserStepTimeout, cancel)
	defer timer.Stop()
	if err := chromedp.Do(ctx); err != nil {
		if ctx.Err() != nil {
			return errors.Join(err, errors.New("no answer within "+browserStepTimeout.String()))
		}
		return err
	}
	return nil
}

// browserLogin clicks through one login on pf, in a new browser context
// (cookies do not leak between logins).
func browserLogin(t *testing.T, st *stack, browserCtx context.Context, artifacts string, pf browserPlatform, idp, identityID, shot string) {
	ctx, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	defer cancel()
	if err := firstRun(ctx, cancel); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	tabLogin(t, st, &tab{t: t, ctx: ctx, artifacts: artifacts}, pf, idp, identityID, shot)
}

// tab is one browser tab of a test, with the steps the browser tests
// take in it, each bounded by browserStepTimeout and fatal on failure.
type tab struct {
	t         *testing.T
	ctx       context.Context
	artifacts string
}

// do runs actions, saying what failed and where the browser was.
func (b *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	sctx, scancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer scancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		b.t.Fatalf("%s: %v (page: %s)", what, err, loc)
	}
}

// text is the text of the element sel, trimmed.
func (b *tab) text(sel string) string {
	b.t.Helper()
	sctx, scancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer scancel()
	s, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("read %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// at checks that the browser is at base (its query aside).
func (b *tab) at(base string) {
	b.t.Helper()
	sctx, scancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer scancel()
	loc, err := chromedp.Run(sctx, chromedp.Location())
	if err != nil {
		b.t.Fatalf("location: %v", err)
	}
	u, err := url.Parse(loc)
	if err != nil || u.Scheme+"://"+u.Host+u.Path != base {
		b.t.Fatalf("browser is at %s, want %s", loc, base)
	}
}

// screenshot writes the whole page to the artifacts folder as name.
func (b *tab) screenshot(name string) {
	b.t.Helper()
	sctx, scancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer scancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(b.artifacts, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

// tabLogin clicks through one login on pf in the tab b, from the demo
// SP's home page to its /me; screenshots are named chooser-<shot>.png and
// me-<shot>.png.
func tabLogin(t *testing.T, st *stack, b *tab, pf browserPlatform, idp, identityID, shot string) {
	who := loadIdentity(t, identityID)
	ctx, do, text, at, screenshot := b.ctx, b.do, b.text, b.at, b.screenshot

	do("open the demo SP", chromedp.Navigate(st.DemoSP+"/"), chromedp.WaitVisible(chromedp.ID(pf.Button)))
	if pf.Radio != "" {
		do("choose the level "+pf.ACR, chromedp.Click(chromedp.CSS(`label[for="`+pf.Radio+`"]`)))
		checked, err := runValue(ctx, chromedp.Evaluate[bool](`document.getElementById("`+pf.Radio+`").checked`))
		if err != nil || !checked {
			t.Fatalf("level radio %s is not checked (err %v)", pf.Radio, err)
		}
	}
	do("click the "+pf.Name+" button", chromedp.Click(chromedp.ID(pf.Button)), chromedp.WaitVisible(chromedp.ID("idp-"+idp)))
	at(pf.Issuer + "/authorize/choose")
	for _, other := range pf.IdPs {
		do("chooser lists "+other, chromedp.WaitVisible(chromedp.ID("idp-"+other)))
		disabled, err := runValue(ctx, chromedp.Evaluate[bool](`document.getElementById("idp-`+other+`").disabled`))
		if want := slices.Contains(pf.Greyed, other); err != nil || disabled != want {
			t.Errorf("chooser: #idp-%s disabled = %v (err %v), want %v", other, disabled, err, want)
		}
	}
	// The badge says the level in words, never an acr value; the level
	// asked is its data-acr.
	if got, err := runValue(ctx, chromedp.Evaluate[string](`document.getElementById("acr").dataset.acr`)); err != nil || got != pf.ACR {
		t.Errorf("chooser badge data-acr %q (err %v), want %s", got, err, pf.ACR)
	}
	if got := text("#acr"); strings.Contains(strings.ToLower(got), "eidas") {
		t.Errorf("chooser badge shows the acr value: %q", got)
	}
	screenshot("chooser-" + shot + ".png")

	do("choose "+idp, chromedp.Click(chromedp.ID("idp-"+idp)), chromedp.WaitVisible(chromedp.ID("identity-"+identityID)))
	at(st.IdPIssuer(idp) + "/authorize")
	do("pick "+identityID, chromedp.Click(chromedp.CSS(`label[for="identity-`+identityID+`"]`)))
	checked, err := runValue(ctx, chromedp.Evaluate[bool](`document.getElementById("identity-`+identityID+`").checked`))
	if err != nil || !checked {
		t.Fatalf("identity %s is not selected (err %v)", identityID, err)
	}
	do("log in at the IdP",
		chromedp.Click(chromedp.CSS(`button[name="action"][value="login"]`)),
		chromedp.WaitVisible(chromedp.ID("continue")),
	)
	at(pf.Issuer + "/authorize/consent")
	if got := text("#citizen"); got != who.Name() {
		t.Errorf("information page greets %q, want %q", got, who.Name())
	}

	do("continue to the SP", chromedp.Click(chromedp.ID("continue")), chromedp.WaitVisible(chromedp.ID("citizen-name")))
	at(st.DemoSP + "/me")
	name := text("#citizen-name")
	if !strings.Contains(name, who["given_name"]) || !strings.Contains(name, who["family_name"]) {
		t.Errorf("demo SP shows %q, want the given names %q and family name %q", name, who["given_name"], who["family_name"])
	}
	if got := text("#acr"); got != pf.ACR {
		t.Errorf("demo SP shows acr %q, want %s", got, pf.ACR)
	}
	if got := text("#acr-asked"); got != pf.ACR {
		t.Errorf("demo SP shows the level asked %q, want %s", got, pf.ACR)
	}
	if got := text("#platform"); !strings.Contains(got, pf.Name) || (pf.Name == "Sésame" && strings.Contains(got, "Sésame+")) {
		t.Errorf("demo SP shows platform %q, want %s", got, pf.Name)
	}
	if sub := text("#sub"); len(sub) != 66 || !strings.HasSuffix(sub, "v1") {
		t.Errorf("demo SP shows sub %q, want a pairwise sub", sub)
	}
	if pf.Name == "Sésame+" {
		for _, sel := range []string{"#id-token-jwe", "#userinfo-jwe"} {
			if got := spaceRE.ReplaceAllString(strings.ReplaceAll(text(sel), "\u00a0", " "), " "); !jweShown.MatchString(got) {
				t.Errorf("demo SP %s = %q, want a JWE with enc A256GCM", sel, got)
			}
		}
	}
	screenshot("me-" + shot + ".png")
}

func runValue[T any](ctx context.Context, a chromedp.Action[T]) (T, error) {
	sctx, cancel := context.WithTimeout(ctx, browserStepTimeout)
	defer cancel()
	return chromedp.Run(sctx, a)
}
