package eidasnode

import (
	"net/http"
	"slices"
	"strings"

	"github.com/sesame-id/sesame/internal/eidas/light"
	"github.com/sesame-id/sesame/internal/web"
)

// spCountries are the countries whose mock SP can ask for a French
// citizen.
var spCountries = []string{"BE", "DE", "CB"}

// spAttributes are the attributes the mock SP page offers, the first four
// (the eIDAS minimum data set) ticked by default.
var spAttributes = []string{
	light.AttrPersonIdentifier, light.AttrCurrentFamilyName, light.AttrCurrentGivenName, light.AttrDateOfBirth,
	light.AttrPlaceOfBirth, light.AttrGender, light.AttrBirthName, light.AttrCurrentAddress,
}

// sentRequest is what the mock SP remembers of a request it sent, under
// its id, to check the answer.
type sentRequest struct {
	RelayState string
	SPCountry  string
	LoA        string
}

// shortName is an attribute definition's last segment (PersonIdentifier).
func shortName(def string) string { return def[strings.LastIndex(def, "/")+1:] }

type spFormView struct {
	Action     string
	Countries  []string
	Names      map[string]string
	LoAs       []string
	Attributes []spAttr
}

type spAttr struct {
	Definition, Name string
	Default          bool
}

func (n *Node) spForm(w http.ResponseWriter, r *http.Request) {
	v := spFormView{Action: n.path + "/sp", Countries: spCountries, Names: Countries,
		LoAs: []string{light.LoALow, light.LoASubstantial, light.LoAHigh}}
	for i, a := range spAttributes {
		v.Attributes = append(v.Attributes, spAttr{a, shortName(a), i < 4})
	}
	n.pages.Render(w, r, http.StatusOK, "sp.html", web.Page{Title: "Service étranger de test", Lang: web.PreferredLang(r), Body: v})
}

// spSubmit builds the foreign SP's LightRequest for a French citizen,
// stores it for the bridge and posts its token to the bridge.
func (n *Node) spSubmit(w http.ResponseWriter, r *http.Request) {
	if !n.form(w, r) {
		return
	}
	f := r.PostForm
	country, loa := f.Get("country"), f.Get("loa")
	if !slices.Contains(spCountries, country) || light.LoARank(loa) == 0 {
		n.fail(w, r, errBadForm, nil)
		return
	}
	req := &light.Request{
		ID: light.NewID(), Issuer: n.base + "/sp/" + country, CitizenCountryCode: "FR", SPCountryCode: country,
		LevelOfAssurance: loa, NameIDFormat: light.NameIDPersistent, SPType: light.SPTypePublic,
		ProviderName: "Demo SP " + country, RelayState: light.NewID()[1:33],
	}
	for _, a := range f["attribute"] {
		if !slices.Contains(spAttributes, a) {
			n.fail(w, r, errBadForm, nil)
			return
		}
		if !req.Requests(a) {
			req.RequestedAttributes = append(req.RequestedAttributes, light.Attribute{Definition: a})
		}
	}
	if len(req.RequestedAttributes) == 0 {
		n.fail(w, r, errBadForm, nil)
		return
	}
	if err := n.putJSON(r.Context(), "sent:"+req.ID, sentRequest{RelayState: req.RelayState, SPCountry: country, LoA: loa}, sentTTL); err != nil {
		n.fail(w, r, errUnavailable, err)
		return
	}
	if err := n.proxyReqCache.PutRequest(r.Context(), req); err != nil {
		n.storeFault(w, r, err)
		return
	}
	n.autopost(w, r, "Connexion avec une identité française", n.cfg.ProxyRequestURL, n.proxyReq.Make(req.ID, n.now()))
}

type resultView struct {
	Country    string
	Response   *light.Response
	Subject    string
	AskedLoA   string
	LoAOK      bool
	Attributes []resultAttr
	Again      string
}

type resultAttr struct {
	Name, Definition string
	Values           []string
}

// proxyResponse receives the bridge's answer for the mock foreign SP:
// takes the LightResponse once, checks it answers a request this SP sent,
// with its relayState, and shows what the foreign SP receives.
func (n *Node) proxyResponse(w http.ResponseWriter, r *http.Request) {
	if !n.form(w, r) {
		return
	}
	id, err := n.proxyResp.Parse(r.PostForm.Get("token"), n.now())
	if err != nil {
		n.fail(w, r, errBadToken, err)
		return
	}
	resp, err := n.proxyRespCache.TakeResponse(r.Context(), id)
	if err != nil {
		n.storeFault(w, r, err)
		return
	}
	var sent sentRequest
	if err := n.takeJSON(r.Context(), "sent:"+resp.InResponseToID, &sent); err != nil {
		n.fail(w, r, errUnknownRequest, err)
		return
	}
	if resp.RelayState != sent.RelayState {
		n.fail(w, r, errRelayState, nil)
		return
	}
	// The node, not the specific proxy service, prefixes identifiers with
	// the citizen's and the SP's countries.
	prefix := "FR/" + sent.SPCountry + "/"
	v := resultView{Country: sent.SPCountry, Response: resp, AskedLoA: sent.LoA, Again: n.path + "/sp",
		LoAOK: light.LoAAtLeast(resp.LevelOfAssurance, sent.LoA)}
	if resp.Subject != "" {
		v.Subject = prefix + resp.Subject
	}
	for _, a := range resp.Attributes {
		vals := a.Values
		if a.Definition == light.AttrPersonIdentifier {
			vals = make([]string, len(a.Values))
			for i, s := range a.Values {
				vals[i] = prefix + s
			}
		}
		v.Attributes = append(v.Attributes, resultAttr{shortName(a.Definition), a.Definition, vals})
	}
	n.pages.Render(w, r, http.StatusOK, "result.html", web.Page{Title: "Réponse reçue par le service étranger", Lang: web.PreferredLang(r), Body: v})
}
