package providers

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// getLang opens the login page with an Accept-Language header.
func (h *harness) getLang(u, acceptLanguage string) (*http.Response, string) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if acceptLanguage != "" {
		req.Header.Set("Accept-Language", acceptLanguage)
	}
	resp, err := h.browser.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, readBody(h.t, resp)
}

func TestSandboxShortFormFirst(t *testing.T) {
	t.Parallel()
	h := sharedHarness(t)
	_, page := h.get(h.authURL("laposte", url.Values{"acr_values": {"eidas2"}}))
	all := regexp.MustCompile(`name="identity" value="([^"]+)"`).FindAllStringSubmatch(page, -1)
	var ids []string
	for _, m := range all {
		ids = append(ids, m[1])
	}
	if !slices.Equal(ids[:5], commonIdentityIDs) {
		t.Errorf("the page starts with %v, want the common identities %v", ids[:5], commonIdentityIDs)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Errorf("identity %s listed twice", id)
		}
		seen[id] = true
	}
	if len(ids) != len(h.s.identities) {
		t.Errorf("%d identities listed, want %d", len(ids), len(h.s.identities))
	}
	// In the page's order: five identities, the id field, the scenario,
	// the button; then the long list and the detailed scenario.
	order := []string{
		`id="identity-angela-dubois"`, `id="identity-paul-invalide-lieu"`, `id="identity_id" name="identity_id"`,
		`id="preset" name="preset"`, `name="action" value="login">Se connecter</button>`,
		`id="toutes"`, `id="identity-jean-de-la-fontaine"`, `<details class="fr-mb-4w" id="scenario">`,
	}
	at := -1
	for _, want := range order {
		i := strings.Index(page, want)
		if i < 0 {
			t.Fatalf("page lacks %q", want)
		}
		if i < at {
			t.Errorf("%q comes before the element listed before it", want)
		}
		at = i
	}
	if !strings.Contains(page, `id="identity-angela-dubois" name="identity" value="angela-dubois" required checked>`) {
		t.Error("the first common identity is not checked by default")
	}
	if strings.Count(page, ` checked>`) != 1 {
		t.Errorf("%d identities checked, want 1", strings.Count(page, ` checked>`))
	}
	// Every identity id is offered to the id field.
	if n := strings.Count(page, `<option value="angela-dubois">`); n != 1 {
		t.Errorf("datalist offers angela-dubois %d times", n)
	}
	for _, p := range presets {
		if !strings.Contains(page, `<option value="`+p.Value+`">`+p.LabelFR+`</option>`) {
			t.Errorf("preset %q not offered", p.Value)
		}
	}
}

func TestSandboxLanguage(t *testing.T) {
	t.Parallel()
	h := sharedHarness(t)
	french := []string{`<html lang="fr">`, ">Se connecter</button>", "Cas nominal", "Née le 31/12/1990, Marseille (13055), France (99100) · Accents ; née à Marseille un 31 décembre",
		"Né le 17/03/1960, États-Unis (99404)", ">English</button>", "Connexion normale"}
	english := []string{`<html lang="en">`, ">Log in</button>", "Nominal case", "Born 31 December 1990, Marseille (13055), France (99100) · Accents; born in Marseille on 31 December",
		"Born 17 March 1960, United States (99404)", ">Français</button>", "Normal login", "Level asserted (acr)", "Normal behaviour: eidas1"}
	check := func(name, page string, want, not []string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(page, w) {
				t.Errorf("%s: page lacks %q", name, w)
			}
		}
		for _, n := range not {
			if strings.Contains(page, n) {
				t.Errorf("%s: page has %q", name, n)
			}
		}
	}
	for name, tc := range map[string]struct {
		params       url.Values
		accept       string
		want, absent []string
	}{
		"nothing":                {nil, "", french, english},
		"Accept-Language en":     {nil, "en-GB,en;q=0.9", english, french},
		"Accept-Language fr":     {nil, "fr-FR,fr;q=0.9,en;q=0.5", french, english},
		"ui_locales en":          {url.Values{"ui_locales": {"en"}}, "", english, french},
		"ui_locales over accept": {url.Values{"ui_locales": {"fr-FR en"}}, "en", french, english},
		"ui_locales unknown":     {url.Values{"ui_locales": {"de"}}, "en", english, french},
	} {
		t.Run(name, func(t *testing.T) {
			resp, page := h.withT(t).getLang(h.authURL("impots", tc.params), tc.accept)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			check(name, page, tc.want, tc.absent)
		})
	}

	// The switch shows the same login in the other language, and the
	// login goes on from there, in that language.
	_, page := h.get(h.authURL("impots", nil))
	f := parseLoginForm(t, h.srv.URL, page)
	resp, page := h.postForm(f.action, url.Values{"tx": {f.tx}, "lang": {"en"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("switch: status %d", resp.StatusCode)
	}
	check("switched to en", page, english, french)
	if parseLoginForm(t, h.srv.URL, page).tx != f.tx {
		t.Error("the switch started another transaction")
	}
	resp, page = h.postForm(f.action, url.Values{"tx": {f.tx}, "action": {"login"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "Pick a test identity from the list.") {
		t.Errorf("no choice after the switch: %d, English message missing", resp.StatusCode)
	}
	resp, page = h.postForm(f.action, url.Values{"tx": {f.tx}, "lang": {"fr"}})
	check("switched back", page, french, english)
	resp, page = h.postForm(f.action, url.Values{"tx": {f.tx}, "identity": {"angela-dubois"}, "action": {"login"}})
	if q := redirectTarget(t, resp, page).Query(); q.Get("code") == "" {
		t.Fatalf("no code after the switches: %v", q)
	}
	// A stale transaction is still the expired page, whatever the switch.
	resp, _ = h.postForm(f.action, url.Values{"tx": {f.tx}, "lang": {"en"}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("switch on a spent transaction: %d", resp.StatusCode)
	}
}

func TestSandboxPresets(t *testing.T) {
	t.Parallel()
	h := sharedHarness(t)
	run := h.scenarioLogin("laposte", "eidas2", "angela-dubois", url.Values{"preset": {"access_denied"}})
	if q := run.back.Query(); q.Get("error") != "access_denied" || q.Get("code") != "" {
		t.Errorf("preset access_denied: %v", q)
	}
	run = h.scenarioLogin("laposte", "eidas2", "angela-dubois", url.Values{"preset": {"low_acr"}})
	_, raw := run.tokens()
	idt, err := run.verify(raw)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		ACR string `json:"acr"`
	}
	if err := idt.Claims(&c); err != nil || c.ACR != "eidas1" {
		t.Errorf("preset low_acr: acr %q (%v), want eidas1", c.ACR, err)
	}
	run = h.scenarioLogin("laposte", "eidas2", "angela-dubois", url.Values{"preset": {"bad_cog"}})
	at, _ := run.tokens()
	if ui := run.userinfo(at); ui["birthplace"] != badBirthplace {
		t.Errorf("preset bad_cog: birthplace %v", ui["birthplace"])
	}
	// The same value in the long form is no contradiction.
	run = h.scenarioLogin("laposte", "eidas2", "angela-dubois", url.Values{"preset": {"access_denied"}, fieldError: {"access_denied"}})
	if q := run.back.Query(); q.Get("error") != "access_denied" {
		t.Errorf("preset and the same field: %v", q)
	}

	for name, tc := range map[string]struct {
		form  url.Values
		field string
	}{
		"unknown preset":  {url.Values{"preset": {"<b>boom</b>"}}, "preset"},
		"repeated preset": {url.Values{"preset": {"low_acr", "wrong_key"}}, "preset"},
		"contradiction":   {url.Values{"preset": {"access_denied"}, fieldError: {"server_error"}}, fieldError},
		"with a conflict": {url.Values{"preset": {"access_denied"}, fieldACR: {"eidas3"}}, fieldACR},
	} {
		t.Run(name, func(t *testing.T) {
			h := h.withT(t)
			_, page := h.get(h.authURL("laposte", nil))
			f := parseLoginForm(t, h.srv.URL, page)
			form := url.Values{"tx": {f.tx}, "identity": {"angela-dubois"}, "action": {"login"}}
			for k, v := range tc.form {
				form[k] = v
			}
			resp, page := h.postForm(f.action, form)
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Fatalf("status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			if !strings.Contains(page, "champ "+tc.field) || strings.Contains(page, "<b>boom") {
				t.Errorf("the message does not name %s (or echoes markup)", tc.field)
			}
			if !strings.Contains(page, `id="`+tc.field+`" name="`+tc.field+`" aria-describedby="login-error" aria-invalid="true"`) {
				t.Errorf("%s is not marked invalid", tc.field)
			}
			// The transaction survives: the form sent again without the
			// fault logs in.
			resp, page = h.postForm(f.action, url.Values{"tx": {f.tx}, "identity": {"angela-dubois"}, "action": {"login"}})
			if q := redirectTarget(t, resp, page).Query(); q.Get("code") == "" {
				t.Errorf("no code after the fix: %v", q)
			}
		})
	}
}

func TestSandboxIdentityID(t *testing.T) {
	t.Parallel()
	h := sharedHarness(t)
	// Typed, it wins over the radio checked by default.
	run := h.scenarioLogin("impots", "eidas1", "angela-dubois", url.Values{"identity_id": {" yuki-tanaka "}})
	at, _ := run.tokens()
	if ui := run.userinfo(at); ui["given_name"] != "Yuki" {
		t.Errorf("identity_id yuki-tanaka: userinfo %v", ui)
	}
	// Without radio at all, too.
	_, page := h.get(h.authURL("impots", nil))
	f := parseLoginForm(t, h.srv.URL, page)
	resp, page := h.postForm(f.action, url.Values{"tx": {f.tx}, "identity_id": {"nobody-<x>"}, "action": {"login"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "Aucune identité de test n&#39;a l&#39;identifiant &#34;nobody-&lt;x&gt;&#34;") {
		t.Fatalf("unknown id: status %d\n%s", resp.StatusCode, page)
	}
	if !strings.Contains(page, `value="nobody-&lt;x&gt;"`) {
		t.Error("the typed id is not kept in the field")
	}
	resp, page = h.postForm(f.action, url.Values{"tx": {f.tx}, "identity_id": {"klaus-mueller"}, "action": {"login"}})
	if q := redirectTarget(t, resp, page).Query(); q.Get("code") == "" {
		t.Errorf("no code after the fix: %v", q)
	}
}

func TestIdentityNotesEN(t *testing.T) {
	ids, err := loadConfiguredIdentities("")
	if err != nil {
		t.Fatal(err)
	}
	for id, note := range notesEN {
		if !slices.ContainsFunc(ids, func(x Identity) bool { return x.ID == id }) {
			t.Errorf("identities_en.csv: %s is not a built-in identity", id)
		}
		if strings.TrimSpace(note) == "" {
			t.Errorf("identities_en.csv: %s has an empty note", id)
		}
	}
	// An identity without an English note shows its French one.
	if got := identityHint(Identity{ID: "x", Birthdate: "2000-01-02", Birthcountry: "99100", Note: "Seulement en français"}, "en"); got != "Born 2 January 2000, France (99100) · Seulement en français" {
		t.Errorf("hint = %q", got)
	}
}

func TestSplitIdentities(t *testing.T) {
	mk := func(ids ...string) []Identity {
		var out []Identity
		for _, id := range ids {
			out = append(out, Identity{ID: id})
		}
		return out
	}
	idsOf := func(l []Identity) (out []string) {
		for _, i := range l {
			out = append(out, i.ID)
		}
		return out
	}
	// A file without the common identities offers its first five.
	c, o := splitIdentities(mk("a", "b", "c", "d", "e", "f", "g"))
	if !slices.Equal(idsOf(c), []string{"a", "b", "c", "d", "e"}) || !slices.Equal(idsOf(o), []string{"f", "g"}) {
		t.Errorf("got %v / %v", idsOf(c), idsOf(o))
	}
	c, o = splitIdentities(mk("a", "b"))
	if len(c) != 2 || len(o) != 0 {
		t.Errorf("short file: %v / %v", idsOf(c), idsOf(o))
	}
	c, o = splitIdentities(mk(append([]string{"z"}, commonIdentityIDs...)...))
	if !slices.Equal(idsOf(c), commonIdentityIDs) || !slices.Equal(idsOf(o), []string{"z"}) {
		t.Errorf("built-in order: %v / %v", idsOf(c), idsOf(o))
	}
}

// A refused scenario field is explained in the page's language.
func TestSandboxScenarioErrorInEnglish(t *testing.T) {
	t.Parallel()
	h := sharedHarness(t)
	for name, tc := range map[string]struct {
		form url.Values
		want string
	}{
		"amr":      {url.Values{fieldAMR: {"pwd none"}}, `Test scenario, field scenario_amr: &#34;none&#34; is not an amr value`},
		"delay":    {url.Values{fieldTokenDelay: {"61s"}}, `Test scenario, field scenario_token_delay: &#34;61s&#34;: 60 s at most`},
		"conflict": {url.Values{fieldError: {"server_error"}, fieldWrongKey: {"forged"}}, `field scenario_wrong_key: no effect with scenario_error`},
		"preset":   {url.Values{"preset": {"nope"}}, `field preset: &#34;nope&#34; is not offered`},
	} {
		t.Run(name, func(t *testing.T) {
			h := h.withT(t)
			_, page := h.get(h.authURL("laposte", url.Values{"ui_locales": {"en"}}))
			f := parseLoginForm(t, h.srv.URL, page)
			form := url.Values{"tx": {f.tx}, "identity": {"angela-dubois"}, "action": {"login"}}
			for k, v := range tc.form {
				form[k] = v
			}
			resp, page := h.postForm(f.action, form)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, tc.want) || strings.Contains(page, "Scénario de test, champ") {
				t.Errorf("status %d; want %q in the English page:\n%s", resp.StatusCode, tc.want, page[strings.Index(page, "<main"):][:600])
			}
		})
	}
}
