// Package dataprovider runs the mock data providers ("fournisseurs de
// données"), the partners' side of "zéro justificatif": APIs that a service
// calls with the access token the broker gave it after a login.
//
// For each call a provider asks the broker whether the token is active, for
// whom and for which scopes (token introspection, RFC 7662, answered as a
// signed then encrypted JWT, RFC 9701), checks the DPoP proof of a
// DPoP-bound token (RFC 9449), finds the person in its own records from the
// pivot identity, and answers only the data the granted scopes cover.
//
// Two APIs exist, chosen by the provider's id: "dgfip" (revenu fiscal de
// référence and nombre de parts) and "cnaf" (quotient familial and
// composition familiale). Each provider is served under BaseURL/dp/<id>/,
// with its page, its public encryption keys (/jwks) and its API.
package dataprovider

import (
	"embed"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/web"
)

//go:embed templates/*.html
var templatesFS embed.FS

// Options are what the providers listener tells its data providers.
type Options struct {
	// BaseURL is the listener's public URL; a provider's URLs (the htu
	// of DPoP proofs among them) are BaseURL/dp/<id>/....
	BaseURL string
	// Log gets one line per API call; nil means slog.Default().
	Log *slog.Logger
	// Client calls the brokers; nil means a client with a 5 s timeout
	// that follows no redirect.
	Client *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server serves every data provider of a config under BaseURL/dp/<id>/.
type Server struct {
	providers []*provider
	handler   http.Handler
}

// provider is one data provider.
type provider struct {
	cfg config.MockDataProvider
	// url is the provider's public URL (BaseURL/dp/<id>), path its path
	// on the listener.
	url, path string
	keys      decryptionKeys
	brokers   []*broker
	data      *dataFile
	endpoints []*endpoint
	log       *slog.Logger
	now       func() time.Time
	jtis      *jtiCache
	pages     *web.Renderer
}

// New builds the data providers of cfgs. A provider without a keys file
// gets fresh keys, so the brokers must fetch its JWKS again after a
// restart, which they do on a kid they do not know.
func New(cfgs []config.MockDataProvider, o Options) (*Server, error) {
	base := strings.TrimSuffix(o.BaseURL, "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("dataprovider: base URL %q: expected an absolute http(s) URL", o.BaseURL)
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Client == nil {
		o.Client = newBrokerClient()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	pages, err := web.NewRenderer(web.ThemeNeutral, "Fournisseurs de données de test", templatesFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("dataprovider: %w", err)
	}
	s := &Server{}
	seen := map[string]bool{}
	for _, c := range cfgs {
		if !slices.Contains(config.MockDataProviderAPIs, c.ID) || seen[c.ID] {
			return nil, fmt.Errorf("dataprovider: id %q: expected one of %s, once each", c.ID, strings.Join(config.MockDataProviderAPIs, ", "))
		}
		seen[c.ID] = true
		if len(c.Issuers) == 0 || c.ClientID == "" || len(c.ClientSecret) < 32 {
			return nil, fmt.Errorf("dataprovider: %s: issuers, client_id and a client_secret of 32 characters or more are required", c.ID)
		}
		if c.Name == "" {
			c.Name = c.ID
		}
		p := &provider{
			cfg: c, url: base + "/dp/" + c.ID, path: strings.TrimSuffix(u.Path, "/") + "/dp/" + c.ID,
			log: o.Log, now: o.Now, jtis: newJTICache(), pages: pages,
		}
		if c.Keys == "" {
			p.keys, err = generateKeys()
		} else {
			p.keys, err = loadKeys(c.Keys)
		}
		if err != nil {
			return nil, fmt.Errorf("dataprovider: %s: keys: %w", c.ID, err)
		}
		if p.data, err = loadData(c.ID, c.Data); err != nil {
			return nil, fmt.Errorf("dataprovider: %s: data: %w", c.ID, err)
		}
		for _, iss := range c.Issuers {
			p.brokers = append(p.brokers, &broker{
				issuer: strings.TrimSuffix(iss, "/"), clientID: c.ClientID, secret: c.ClientSecret,
				keys: p.keys, client: o.Client, now: o.Now,
			})
		}
		p.endpoints = apis[c.ID]
		s.providers = append(s.providers, p)
	}
	s.handler = s.routes()
	return s, nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	for _, p := range s.providers {
		mux.HandleFunc("GET "+p.path+"/{$}", p.index)
		mux.HandleFunc("GET "+p.path+"/jwks", p.jwks)
		for _, e := range p.endpoints {
			mux.HandleFunc("GET "+p.path+e.Path, func(w http.ResponseWriter, r *http.Request) { p.serveAPI(e, w, r) })
		}
	}
	return mux
}

// ServeHTTP serves every provider's page, keys and API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Summary describes a provider for the providers' index page.
type Summary struct {
	ID, Name, URL, Path, JWKSURI, ClientID string
}

// Providers lists the data providers, in config order.
func (s *Server) Providers() []Summary {
	var out []Summary
	for _, p := range s.providers {
		out = append(out, Summary{ID: p.cfg.ID, Name: p.cfg.Name, URL: p.url + "/", Path: p.path + "/", JWKSURI: p.url + "/jwks", ClientID: p.cfg.ClientID})
	}
	return out
}

// jwks publishes the provider's public encryption keys, which the brokers
// encrypt introspection answers to. The cache is short: generated keys
// change at every start.
func (p *provider) jwks(w http.ResponseWriter, _ *http.Request) {
	body, err := json.Marshal(p.keys.public())
	if err != nil {
		http.Error(w, "jwks unavailable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=60")
	_, _ = w.Write(body)
}

// indexView is the provider page's data.
type indexView struct {
	Name, ID, ClientID, JWKSURI string
	Issuers                     []string
	Endpoints                   []endpointView
	People                      []personView
}

type endpointView struct {
	URL    string
	Scopes []scopeView
}

type scopeView struct{ Name, Label string }

type personView struct {
	Identite, Name, Holds string
}

func (p *provider) index(w http.ResponseWriter, r *http.Request) {
	v := indexView{Name: p.cfg.Name, ID: p.cfg.ID, ClientID: p.cfg.ClientID, JWKSURI: p.url + "/jwks", Issuers: p.cfg.Issuers, People: p.people()}
	for _, e := range p.endpoints {
		ev := endpointView{URL: p.url + e.Path}
		for _, sc := range e.Scopes {
			ev.Scopes = append(ev.Scopes, scopeView{sc, scopeLabels[sc]})
		}
		v.Endpoints = append(v.Endpoints, ev)
	}
	p.pages.Render(w, r, http.StatusOK, "dataprovider.html", web.Page{Title: p.cfg.Name, Body: v})
}

// people lists the records of the provider for its page; test data, so
// showing it is the point.
func (p *provider) people() []personView {
	var out []personView
	switch p.cfg.ID {
	case "dgfip":
		for _, c := range p.data.DGFiP.Contribuables {
			var years []string
			for _, y := range latestYears(c.Annees) {
				years = append(years, fmt.Sprintf("%d : RFR %d €, %g part(s)", y.Annee, y.RevenuFiscalDeReference, y.NombreDeParts))
			}
			out = append(out, personView{c.Identite, c.NomNaissance + " " + c.Prenoms, strings.Join(years, " ; ")})
		}
	case "cnaf":
		for _, h := range p.data.CNAF.Foyers {
			holds := fmt.Sprintf("dossier %s : QF %d € (%02d/%d), %d enfant(s)", h.NumeroAllocataire,
				h.QuotientFamilial.QuotientFamilial, h.QuotientFamilial.Mois, h.QuotientFamilial.Annee, len(h.Enfants))
			for _, a := range h.Allocataires {
				out = append(out, personView{a.Identite, a.NomNaissance + " " + a.Prenoms, holds})
			}
		}
	}
	return out
}
