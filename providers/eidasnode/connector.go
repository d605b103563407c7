package eidasnode

import (
	"net/http"
	"slices"
	"time"

	"github.com/sesame-id/sesame/internal/eidas/light"
	"github.com/sesame-id/sesame/internal/web"
)

// pendingLogin is a LightRequest waiting on the demo IdP page, under a
// fresh random id the page's form carries.
type pendingLogin struct {
	Request     *light.Request
	ResponseURL string
}

// responseURL is where the bridge that issued req wants its answer.
func (n *Node) responseURL(req *light.Request) (string, bool) {
	if u, ok := n.cfg.ConnectorResponseURLs[req.Issuer]; ok {
		return u, true
	}
	u, ok := n.cfg.ConnectorResponseURLs["*"]
	return u, ok
}

// connectorRequest receives the bridge's token (foreign citizen → French
// SP), takes the LightRequest once and shows the citizen country's demo
// IdP.
func (n *Node) connectorRequest(w http.ResponseWriter, r *http.Request) {
	if !n.form(w, r) {
		return
	}
	id, err := n.connReq.Parse(r.PostForm.Get("token"), n.now())
	if err != nil {
		n.fail(w, r, errBadToken, err)
		return
	}
	req, err := n.connReqCache.TakeRequest(r.Context(), id)
	if err != nil {
		n.storeFault(w, r, err)
		return
	}
	respURL, ok := n.responseURL(req)
	if !ok {
		n.fail(w, r, errNoConnector, nil)
		return
	}
	login := light.NewID()
	if err := n.putJSON(r.Context(), "login:"+login, pendingLogin{Request: req, ResponseURL: respURL}, loginTTL); err != nil {
		n.fail(w, r, errUnavailable, err)
		return
	}
	n.renderIdP(w, r, login, req)
}

type idpView struct {
	Action, Login, Country, CountryName string
	Citizens                            []Citizen
	Request                             *light.Request
	LoAs                                []string
	Scenarios                           []Scenario
}

func (n *Node) renderIdP(w http.ResponseWriter, r *http.Request, login string, req *light.Request) {
	name := Countries[req.CitizenCountryCode]
	if name == "" {
		name = req.CitizenCountryCode
	}
	n.pages.Render(w, r, http.StatusOK, "idp.html", web.Page{
		Title: "Fournisseur d'identité de test – " + name, Lang: web.PreferredLang(r),
		Body: idpView{
			Action: n.path + "/idp", Login: login, Country: req.CitizenCountryCode, CountryName: name,
			Citizens: citizens[req.CitizenCountryCode], Request: req,
			LoAs: []string{light.LoALow, light.LoASubstantial, light.LoAHigh}, Scenarios: Scenarios,
		},
	})
}

// idpSubmit answers the pending request as the chosen scenario says:
// stores the LightResponse and posts its token to the bridge.
func (n *Node) idpSubmit(w http.ResponseWriter, r *http.Request) {
	if !n.form(w, r) {
		return
	}
	f := r.PostForm
	scenario := Scenario(f.Get("scenario"))
	if !slices.Contains(Scenarios, scenario) {
		n.fail(w, r, errBadForm, nil)
		return
	}
	loa := f.Get("loa")
	if loa != "" && light.LoARank(loa) == 0 {
		n.fail(w, r, errBadForm, nil)
		return
	}
	login := f.Get("login")
	if light.ValidID(login) != nil {
		n.fail(w, r, errBadForm, nil)
		return
	}
	var p pendingLogin
	if err := n.takeJSON(r.Context(), "login:"+login, &p); err != nil {
		n.fail(w, r, errLoginGone, err)
		return
	}
	req := p.Request
	resp := &light.Response{
		ID: light.NewID(), InResponseToID: req.ID, Issuer: n.base + "/ConnectorResponse",
		IPAddress: clientIP(r), RelayState: req.RelayState,
	}
	if scenario == ScenarioCancelled || scenario == ScenarioAuthnFailed {
		resp.Status = light.Status{Failure: true, StatusCode: light.StatusRequester, SubStatusCode: light.SubStatusRequestDenied,
			StatusMessage: "The citizen cancelled the authentication"}
		if scenario == ScenarioAuthnFailed {
			resp.Status = light.Status{Failure: true, StatusCode: light.StatusResponder, SubStatusCode: light.SubStatusAuthnFailed,
				StatusMessage: "Authentication failed at the foreign identity provider"}
		}
	} else {
		c, ok := findCitizen(req.CitizenCountryCode, f.Get("citizen"))
		if !ok {
			// The login is consumed: the tester starts again, as at a
			// real IdP after a bad submission.
			n.fail(w, r, errBadForm, nil)
			return
		}
		if loa == "" {
			loa = req.LevelOfAssurance
		}
		if scenario == ScenarioLoATooLow {
			loa = lowerLoA(req.LevelOfAssurance)
		}
		resp.Subject = c.PersonIdentifier
		resp.SubjectNameIDFormat = light.NameIDPersistent
		resp.LevelOfAssurance = loa
		resp.Status = light.Status{StatusCode: light.StatusSuccess}
		resp.Attributes = c.attributes(req)
	}
	switch scenario {
	case ScenarioUnknownRequest:
		resp.InResponseToID = light.NewID()
	case ScenarioWrongRelayState:
		resp.RelayState = "tampered-" + light.NewID()[1:17]
	}
	if err := n.connRespCache.PutResponse(r.Context(), resp); err != nil {
		n.storeFault(w, r, err)
		return
	}
	tok, at := n.connResp, n.now()
	switch scenario {
	case ScenarioBadDigest:
		tok.Secret += "-not-the-shared-secret"
	case ScenarioExpiredToken:
		at = at.Add(-time.Hour)
	}
	n.autopost(w, r, "Retour au service", p.ResponseURL, tok.Make(resp.ID, at))
}

// lowerLoA is the notified level just below loa, or a non-notified one
// below low.
func lowerLoA(loa string) string {
	switch loa {
	case light.LoAHigh:
		return light.LoASubstantial
	case light.LoASubstantial:
		return light.LoALow
	}
	return belowLow
}
