package providers

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/url"
	"sync"
	"sync/atomic"
)

// The login page is 30 KB, most of it the list of test identities and the
// scenario controls, the same at every login. Rendering them anew cost
// more than the rest of the mock IdP's work for a login; they are rendered
// once instead (per language, and for the scenario per IdP and levels) and
// inserted in login.html as template.HTML. A page that differs (a refused
// form, another identity selected) renders its parts on the spot, with the
// same templates, so the output is the same either way.

//go:embed templates/parts/*.html
var partsFS embed.FS

// loginParts renders and caches the parts of the login page.
type loginParts struct {
	t *template.Template
	// idents are the identities' parts per language, built at start.
	idents map[string]identityParts
	// scenario caches the default scenario controls, by scenarioKey.
	scenario      sync.Map
	scenarioCount atomic.Int64
}

// identityParts are the identity lists of the page in one language, with
// the first of the short form's identities selected.
type identityParts struct {
	selected        string
	common, others  template.HTML
	identityOptions template.HTML
}

// scenarioKey names what the default scenario controls depend on.
type scenarioKey struct {
	idp            *mockIdP
	lang, acr, ask string
}

func newLoginParts(identities []Identity) (*loginParts, error) {
	t, err := template.ParseFS(partsFS, "templates/parts/*.html")
	if err != nil {
		return nil, fmt.Errorf("providers: login page parts: %w", err)
	}
	lp := &loginParts{t: t, idents: map[string]identityParts{}}
	common, others := splitIdentities(identities)
	options, err := lp.render("identity-options", identities)
	if err != nil {
		return nil, err
	}
	for _, lang := range []string{"fr", "en"} {
		ip := identityParts{identityOptions: options}
		if len(common) > 0 {
			ip.selected = common[0].ID
		}
		if ip.common, err = lp.render("identities", identityRows(common, lang, ip.selected, true)); err != nil {
			return nil, err
		}
		if ip.others, err = lp.render("identities", identityRows(others, lang, ip.selected, false)); err != nil {
			return nil, err
		}
		lp.idents[lang] = ip
	}
	return lp, nil
}

// render executes one part. Its data are built by this package, so an
// error is a bug in the part's template.
func (lp *loginParts) render(name string, data any) (template.HTML, error) {
	var b bytes.Buffer
	if err := lp.t.ExecuteTemplate(&b, name, data); err != nil {
		return "", fmt.Errorf("providers: login page part %s: %w", name, err)
	}
	return template.HTML(b.String()), nil // the output of html/template, escaped in its context
}

// fill sets the parts of v, the login page of p at idp in v.Lang with
// selected checked (""; the first of the short form), and form's refused
// scenario (invalid names its field) kept.
func (lp *loginParts) fill(v *loginView, identities []Identity, idp *mockIdP, p pendingLogin, selected string, form url.Values, invalid string) error {
	ip, ok := lp.idents[v.Lang]
	if !ok {
		return fmt.Errorf("providers: login page parts: no language %q", v.Lang)
	}
	v.IdentityOptions = ip.identityOptions
	if selected == "" || selected == ip.selected {
		v.CommonHTML, v.OthersHTML = ip.common, ip.others
	} else {
		common, others := splitIdentities(identities)
		var err error
		if v.CommonHTML, err = lp.render("identities", identityRows(common, v.Lang, selected, true)); err != nil {
			return err
		}
		if v.OthersHTML, err = lp.render("identities", identityRows(others, v.Lang, selected, false)); err != nil {
			return err
		}
	}
	if len(form) > 0 || invalid != "" {
		var err error
		v.ScenarioHTML, err = lp.render("scenario", scenarioControls(idp, p, form, invalid, v.Lang))
		return err
	}
	// Without a form, the controls depend only on these.
	k := scenarioKey{idp: idp, lang: v.Lang, acr: p.ACR, ask: lowestKnownACR(p.RequestedACR)}
	if h, ok := lp.scenario.Load(k); ok {
		v.ScenarioHTML = h.(template.HTML)
		return nil
	}
	h, err := lp.render("scenario", scenarioControls(idp, p, nil, "", v.Lang))
	if err != nil {
		return err
	}
	// p.ACR is one of the IdP's levels, so the cache stays small; bound it
	// all the same against a configuration with unusual values.
	if lp.scenarioCount.Add(1) <= maxScenarioParts {
		lp.scenario.Store(k, h)
	}
	v.ScenarioHTML = h
	return nil
}

// maxScenarioParts bounds the scenario cache: IdPs × 2 languages × their
// levels × the levels asked is a few dozen.
const maxScenarioParts = 1024
