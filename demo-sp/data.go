package demosp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/web"
)

// "Zéro justificatif": right after the login, the demo SP calls the data
// providers (administrations) with the access token it got, and pre-fills
// its form with what they answer. The token lives 60 s, so the calls are
// made at the callback, and /me shows what the session kept.

const (
	// dataTimeout bounds each call to a data provider: one that hangs
	// costs the citizen these seconds at login, once, and never the page.
	dataTimeout = 5 * time.Second
	// maxData caps a data provider's answer: a few figures and names.
	maxData = 1 << 20
	// maxIntrospectionHeader caps the X-Sesame-Introspection header the
	// demo SP decodes: an introspection answer is well under a kilobyte.
	maxIntrospectionHeader = 16 << 10
)

// introspectionHeader is the dev-only header in which a mock data provider
// echoes, as base64url(JSON), the introspection answer it got from the
// broker, so that an integrator sees both ends of the exchange.
const introspectionHeader = "X-Sesame-Introspection"

// dataEndpoint is one API call of a data provider.
type dataEndpoint struct {
	path  string // under the provider's URL
	title string // what the citizen reads when it fails: a message key
	// scopes: the call is made when any of them was granted.
	scopes []string
	// fields reads a 200 answer into the form's fields, labelled in
	// lang.
	fields func(body []byte, lang string) ([]dataField, error)
}

// dataAPIs are the APIs the demo SP knows, by data provider id (the ids of
// config.DemoDataProviderIDs).
var dataAPIs = map[string][]dataEndpoint{
	"dgfip": {{
		path: "/api/impot/revenu-fiscal", title: "data.rfr_title",
		scopes: []string{"dgfip_rfr", "dgfip_nbpart"}, fields: dgfipFields,
	}},
	"cnaf": {{
		path: "/api/prestations/quotient-familial", title: "data.qf_title",
		scopes: []string{"cnaf_quotient_familial"}, fields: quotientFields,
	}, {
		path: "/api/prestations/composition-familiale", title: "data.compo_title",
		scopes: []string{"cnaf_composition_familiale"}, fields: compositionFields,
	}},
}

// dataProvider is a configured data provider.
type dataProvider struct {
	id, name, base string
}

// providerData is what /me shows of one data provider.
type providerData struct {
	ID, Name string
	// Calls are the endpoints the granted scopes allowed; none means no
	// scope of this provider was granted.
	Calls []dataCall
}

// dataCall is one call's outcome, kept in the session in no language:
// /me writes it in the page's (dataView).
type dataCall struct {
	// Path is the endpoint's, which names its title and how to read its
	// figures.
	Path   string
	URL    string
	Scheme string // Bearer or DPoP: how the token went
	Status int    // 0: no answer at all
	// Problem is the message key of the sentence the citizen reads when
	// the call gave no figures; it never holds upstream text.
	Problem string
	// For integrators: the JSON answer (indented) of a call that worked,
	// the OAuth error code of one that did not, and the introspection
	// answer the provider echoed. Raw is also what the fields are read
	// from.
	Raw              string
	ErrorCode        string
	Introspection    string
	IntrospectionBad bool
}

// providerView and callView are a providerData and its calls written in
// one language, as /me's template reads them.
type providerView struct {
	ID, Name string
	Calls    []callView
}

type callView struct {
	dataCall
	Title   string
	Problem string
	Fields  []dataField
}

// dataView writes the data fetched at login in lang.
func dataView(data []providerData, lang string) []providerView {
	out := make([]providerView, 0, len(data))
	for _, p := range data {
		v := providerView{ID: p.ID, Name: p.Name}
		for _, c := range p.Calls {
			cv := callView{dataCall: c}
			ep, _ := endpoint(p.ID, c.Path)
			cv.Title = msg(lang, ep.title)
			switch {
			case c.Problem == dataFailed:
				cv.Problem = msg(lang, c.Problem, c.Status)
			case c.Problem != "":
				cv.Problem = msg(lang, c.Problem)
			case ep.fields != nil:
				// Read when the call was made: it cannot fail now.
				cv.Fields, _ = ep.fields([]byte(c.Raw), lang)
			}
			v.Calls = append(v.Calls, cv)
		}
		out = append(out, v)
	}
	return out
}

// endpoint is the endpoint of provider id at path.
func endpoint(id, path string) (dataEndpoint, bool) {
	for _, ep := range dataAPIs[id] {
		if ep.path == path {
			return ep, true
		}
	}
	return dataEndpoint{}, false
}

// dataField is one read-only field of the pre-filled form.
type dataField struct {
	ID, Label, Value string
}

// The sentences of a call that gave no figures, as message keys: each says
// what happened and what the citizen can do; none repeats what the
// provider said.
const (
	dataNotFound     = "data.not_found"
	dataUnauthorized = "data.unauthorized"
	dataForbidden    = "data.forbidden"
	dataBadGateway   = "data.bad_gateway"
	dataUnreachable  = "data.unreachable"
	dataRedirect     = "data.redirect"
	dataTooLarge     = "data.too_large"
	dataUnreadable   = "data.unreadable"
	dataEmpty        = "data.empty"
	// dataFailed is any other status, which the sentence gives.
	dataFailed = "data.failed"
)

// newDataProviders checks the configured data providers against the APIs
// the demo SP knows.
func newDataProviders(cfg []config.DemoDataProvider) ([]dataProvider, error) {
	var out []dataProvider
	for _, c := range cfg {
		if _, ok := dataAPIs[c.ID]; !ok {
			return nil, fmt.Errorf("demosp: data provider %q: the demo SP knows the API of dgfip and cnaf only", c.ID)
		}
		base := strings.TrimSuffix(c.URL, "/")
		if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || strings.ContainsAny(base, "?#") {
			return nil, fmt.Errorf("demosp: data provider %q: url must be an absolute http(s) URL without query or fragment", c.ID)
		}
		name := c.Name
		if name == "" {
			name = c.ID
		}
		out = append(out, dataProvider{id: c.ID, name: name, base: base})
	}
	return out, nil
}

// newDataClient is the client of a platform's data calls: bounded in time,
// and never following a redirect, which could take the token elsewhere. On
// a DPoP platform rt is the transport holding the key the token is bound
// to, which adds a fresh proof to each request.
func newDataClient(rt http.RoundTripper) *http.Client {
	return &http.Client{
		Timeout:   dataTimeout,
		Transport: rt,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// grantedScopes are the token's scopes: the token response's scope, or the
// scopes asked for when it has none (RFC 6749 §5.1).
func grantedScopes(tok *oauth2.Token, asked []string) []string {
	if s, ok := tok.Extra("scope").(string); ok {
		return strings.Fields(s)
	}
	return asked
}

// fetchData calls, all at once, every endpoint of every data provider that
// the granted scopes allow, and returns what /me will show.
func (a *App) fetchData(ctx context.Context, p *platform, tok *oauth2.Token) []providerData {
	granted := grantedScopes(tok, p.scopes)
	out := make([]providerData, len(a.data))
	var wg sync.WaitGroup
	for i, dp := range a.data {
		var eps []dataEndpoint
		for _, ep := range dataAPIs[dp.id] {
			if slices.ContainsFunc(ep.scopes, func(s string) bool { return slices.Contains(granted, s) }) {
				eps = append(eps, ep)
			}
		}
		// Sized before any call starts: each goroutine owns one element.
		out[i] = providerData{ID: dp.id, Name: dp.name, Calls: make([]dataCall, len(eps))}
		for j, ep := range eps {
			wg.Go(func() { out[i].Calls[j] = a.callData(ctx, p, dp, ep, tok.AccessToken) })
		}
	}
	wg.Wait()
	return out
}

// callData makes one call and turns its answer into fields or a sentence.
func (a *App) callData(ctx context.Context, p *platform, dp dataProvider, ep dataEndpoint, token string) dataCall {
	c := dataCall{Path: ep.path, URL: dp.base + ep.path, Scheme: "Bearer"}
	if p.dpop {
		c.Scheme = "DPoP"
	}
	start := time.Now()
	resp, body, err := getData(ctx, p, c.URL, c.Scheme, token)
	if resp != nil {
		c.Status = resp.StatusCode
	}
	level, attrs := slog.LevelInfo, []any{
		"provider", dp.id, "url", c.URL, "status", c.Status,
		"duration_ms", time.Since(start).Milliseconds(), "correlation_id", web.CorrelationID(ctx),
	}
	if err != nil || c.Status != http.StatusOK {
		level = slog.LevelWarn
	}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	slog.Log(ctx, level, "demo-sp: data provider call", attrs...)

	switch {
	case errors.Is(err, errDataTooLarge):
		c.Problem = dataTooLarge
		return c
	case err != nil:
		c.Problem = dataUnreachable
		return c
	}
	c.Introspection, c.IntrospectionBad = decodeIntrospection(resp.Header.Values(introspectionHeader))
	switch s := resp.StatusCode; {
	case s == http.StatusOK:
	case s == http.StatusNotFound:
		c.Problem = dataNotFound
	case s == http.StatusUnauthorized:
		c.Problem = dataUnauthorized
	case s == http.StatusForbidden:
		c.Problem = dataForbidden
	case s == http.StatusBadGateway:
		c.Problem = dataBadGateway
	case s >= 300 && s < 400:
		c.Problem = dataRedirect
	default:
		c.Problem = dataFailed
	}
	if c.Problem != "" {
		c.ErrorCode = errorCode(body)
		return c
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		c.Problem = dataUnreadable
		return c
	}
	fields, err := ep.fields(body, web.LangFR)
	if err != nil {
		c.Problem = dataUnreadable
		return c
	}
	c.Raw = pretty(body)
	if len(fields) == 0 {
		c.Problem = dataEmpty
	}
	return c
}

var errDataTooLarge = errors.New("data provider answer over 1 MiB")

// getData sends one GET with the token in the Authorization header, never
// in the URL. On a DPoP platform the scheme is DPoP, which tells the
// transport to sign a proof for this method and URL with the token's hash
// (RFC 9449 §7); a 401 asking for a nonce is tried once more with it.
func getData(ctx context.Context, p *platform, u, scheme, token string) (*http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, dataTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, nil, err
		}
		req.Header.Set("Authorization", scheme+" "+token)
		req.Header.Set("Accept", "application/json")
		resp, err := p.data.Do(req)
		if err != nil {
			return nil, nil, err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxData+1))
		resp.Body.Close()
		if err != nil {
			return resp, nil, err
		}
		if len(body) > maxData {
			return resp, nil, errDataTooLarge
		}
		if p.dpop && attempt == 0 && resourceUseNonce(resp) {
			continue
		}
		return resp, body, nil
	}
}

// errorCodeRE matches an OAuth error code (RFC 6749 §5.2 allows a little
// more; a data provider's codes are these).
var errorCodeRE = regexp.MustCompile(`^[a-z_]{1,64}$`)

// errorCode returns the error code of a JSON error answer, for
// integrators; anything else of the answer (a description, a stack trace)
// is upstream text and stays out of the page.
func errorCode(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || !errorCodeRE.MatchString(e.Error) {
		return ""
	}
	return e.Error
}

// decodeIntrospection decodes the X-Sesame-Introspection header: one
// base64url (padded or not) JSON value. bad reports a header that was
// there but unreadable.
func decodeIntrospection(values []string) (text string, bad bool) {
	switch {
	case len(values) == 0:
		return "", false
	case len(values) > 1 || len(values[0]) > maxIntrospectionHeader:
		return "", true
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(values[0]), "="))
	if err != nil || !json.Valid(raw) {
		return "", true
	}
	return pretty(raw), false
}

// taxYear is one year of the DGFiP's answer; a figure is absent when its
// scope was not granted.
type taxYear struct {
	Annee int          `json:"annee"`
	RFR   *json.Number `json:"revenu_fiscal_de_reference"`
	Parts *json.Number `json:"nombre_de_parts"`
}

// dgfipFields reads the tax figures of the last two years answered.
func dgfipFields(body []byte, lang string) ([]dataField, error) {
	var v struct {
		Annees []taxYear `json:"annees"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, err
	}
	years := v.Annees
	slices.SortStableFunc(years, func(a, b taxYear) int { return b.Annee - a.Annee })
	if len(years) > 2 {
		years = years[:2]
	}
	var out []dataField
	for _, y := range years {
		if y.RFR != nil {
			out = append(out, dataField{
				ID: fmt.Sprintf("dgfip-rfr-%d", y.Annee), Label: msg(lang, "data.rfr", y.Annee),
				Value: frenchNumber(*y.RFR) + "\u00a0€",
			})
		}
		if y.Parts != nil {
			out = append(out, dataField{
				ID: fmt.Sprintf("dgfip-nbpart-%d", y.Annee), Label: msg(lang, "data.nbpart", y.Annee),
				Value: frenchNumber(*y.Parts),
			})
		}
	}
	return out, nil
}

var frenchMonths = []string{"janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"}

// monthName is a month's name in lang.
func monthName(m int, lang string) string {
	if lang == web.LangEN {
		return time.Month(m).String()
	}
	return frenchMonths[m-1]
}

// quotientFields reads the family quotient and the month it is for.
func quotientFields(body []byte, lang string) ([]dataField, error) {
	var v struct {
		QF    *json.Number `json:"quotient_familial"`
		Mois  int          `json:"mois"`
		Annee int          `json:"annee"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, err
	}
	if v.QF == nil {
		return nil, nil
	}
	label := msg(lang, "data.qf")
	if v.Mois >= 1 && v.Mois <= 12 && v.Annee > 0 {
		label = msg(lang, "data.qf_month", monthName(v.Mois, lang), v.Annee)
	}
	return []dataField{{ID: "cnaf-qf", Label: label, Value: frenchNumber(*v.QF)}}, nil
}

// person is one member of the household, as the CNAF answers it.
type person struct {
	Nom           string  `json:"nom_naissance"`
	Prenoms       prenoms `json:"prenoms"`
	DateNaissance string  `json:"date_naissance"`
	Sexe          string  `json:"sexe"`
}

// prenoms is a string or a list of strings.
type prenoms string

func (p *prenoms) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*p = prenoms(one)
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*p = prenoms(strings.Join(many, " "))
	return nil
}

// compositionFields reads the household: the beneficiaries, then the
// children.
func compositionFields(body []byte, lang string) ([]dataField, error) {
	var v struct {
		Allocataires []person `json:"allocataires"`
		Enfants      []person `json:"enfants"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, err
	}
	var out []dataField
	for i, p := range v.Allocataires {
		out = append(out, dataField{ID: fmt.Sprintf("cnaf-allocataire-%d", i+1), Label: msg(lang, "data.allocataire", i+1), Value: p.text(lang)})
	}
	for i, p := range v.Enfants {
		out = append(out, dataField{ID: fmt.Sprintf("cnaf-enfant-%d", i+1), Label: msg(lang, "data.enfant", i+1), Value: p.text(lang)})
	}
	if len(out) > 0 && len(v.Enfants) == 0 {
		out = append(out, dataField{ID: "cnaf-enfants", Label: msg(lang, "data.enfants"), Value: msg(lang, "data.none")})
	}
	return out, nil
}

// text is how a form writes a person: "Angela DUBOIS, née le 24/08/1962";
// without a known sex, "date de naissance 24/08/1962" (no point médian).
func (p person) text(lang string) string {
	s := strings.TrimSpace(strings.TrimSpace(string(p.Prenoms)) + " " + strings.TrimSpace(p.Nom))
	if p.DateNaissance == "" {
		return s
	}
	born := "data.born"
	switch strings.ToLower(p.Sexe) {
	case "f", "female", "féminin":
		born = "data.born_f"
	case "m", "male", "masculin":
		born = "data.born_m"
	}
	date := p.DateNaissance
	if t, err := time.Parse(time.DateOnly, date); err == nil {
		date = t.Format("02/01/2006")
	}
	return s + ", " + msg(lang, born, date)
}

// frenchNumber writes a JSON number the French way: thousands apart by a
// narrow no-break space, a decimal comma ("32 500", "2,5").
func frenchNumber(n json.Number) string {
	s := n.String()
	if strings.ContainsAny(s, "eE") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return s
		}
		s = strconv.FormatFloat(f, 'f', -1, 64)
	}
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	whole, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	for i, d := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteString("\u202f")
		}
		b.WriteRune(d)
	}
	out := sign + b.String()
	if hasFrac {
		out += "," + frac
	}
	return out
}
