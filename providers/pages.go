package providers

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/web"
)

// Person-facing errors of the mock IdPs. Codes start with S7 so that a
// screenshot tells at once that the mock, not the broker, refused.
var (
	errBadClient = web.Error{
		Code: "S700401", Status: http.StatusBadRequest,
		MessageFR: "Le service qui vous a envoyé ici n'est pas connu de ce fournisseur d'identité de test (client_id absent ou inconnu).",
		MessageEN: "The service that sent you here is not known to this test identity provider (missing or unknown client_id).",
	}
	errBadRedirect = web.Error{
		Code: "S700402", Status: http.StatusBadRequest,
		MessageFR: "L'adresse de retour (redirect_uri) ne correspond à aucune adresse enregistrée pour ce service. Par sécurité, vous n'y êtes pas renvoyé.",
		MessageEN: "The return address (redirect_uri) matches none registered for this service. For your safety you are not sent there.",
	}
	errBadForm = web.Error{
		Code: "S700403", Status: http.StatusBadRequest,
		MessageFR: "Le formulaire envoyé est illisible. Recommencez la connexion depuis le service.",
		MessageEN: "The form sent could not be read. Start the login again from the service.",
	}
	errExpired = web.Error{
		Code: "S700410", Status: http.StatusBadRequest,
		MessageFR: "Cette demande de connexion a expiré ou a déjà été utilisée. Recommencez depuis le service.",
		MessageEN: "This login request has expired or was already used. Start again from the service.",
	}
	errBadLogoutRedirect = web.Error{
		Code: "S700420", Status: http.StatusBadRequest,
		MessageFR: "L'adresse de retour après déconnexion (post_logout_redirect_uri) n'est pas enregistrée pour ce service. Par sécurité, vous n'y êtes pas renvoyé.",
		MessageEN: "The post-logout return address (post_logout_redirect_uri) is not registered for this service. For your safety you are not sent there.",
	}
	errBadIDTokenHint = web.Error{
		Code: "S700421", Status: http.StatusBadRequest,
		MessageFR: "La demande de déconnexion porte un jeton (id_token_hint) que ce fournisseur d'identité n'a pas émis.",
		MessageEN: "The logout request carries a token (id_token_hint) this identity provider did not issue.",
	}
	errUnknownSession = web.Error{
		Code: "S700404", Status: http.StatusNotFound,
		MessageFR: "Aucune connexion en cours ne correspond (sid ou sub inconnu, ou session déjà terminée).",
		MessageEN: "No live login matches (unknown sid or sub, or the session has already ended).",
	}
	errBusy = web.Error{
		Code: "S700503", Status: http.StatusServiceUnavailable,
		MessageFR: "Le fournisseur d'identité de test est surchargé. Réessayez dans une minute.",
		MessageEN: "The test identity provider is overloaded. Try again in a minute.",
	}
)

// loginView is the login page's data.
type loginView struct {
	IdPName  string
	ClientID string
	Action   string
	Tx       string
	// RequestedACR is what the client asked; ACR is what will be asserted
	// unless a scenario says otherwise.
	RequestedACR string
	ACR          string
	Scopes       []string
	Identities   []Identity
	Selected     string
	Error        string
	// Scenario holds the "Scénario de test" controls; ScenarioOpen unfolds
	// them, which happens only when one of them was refused.
	Scenario     []scenarioControl
	ScenarioOpen bool
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, idp *mockIdP, status int, tx string, p pendingLogin, selected, msg string) {
	s.renderLoginPage(w, r, idp, status, tx, p, selected, msg, nil, "")
}

// renderScenarioError shows the login page again (400) with the refused
// scenario field marked and the tester's other choices kept, so the same
// transaction can be sent again once fixed.
func (s *Server) renderScenarioError(w http.ResponseWriter, r *http.Request, idp *mockIdP, tx string, p pendingLogin, selected string, form url.Values, err error) {
	invalid := ""
	if se, ok := err.(*scenarioError); ok {
		invalid = se.Field
	}
	s.renderLoginPage(w, r, idp, http.StatusBadRequest, tx, p, selected, err.Error(), form, invalid)
}

func (s *Server) renderLoginPage(w http.ResponseWriter, r *http.Request, idp *mockIdP, status int, tx string, p pendingLogin, selected, msg string, form url.Values, invalid string) {
	s.pages.Render(w, r, status, "login.html", web.Page{
		Title: "Connexion – " + idp.cfg.Name,
		Body: loginView{
			IdPName: idp.cfg.Name, ClientID: p.ClientID, Action: idp.path + "/authorize", Tx: tx,
			RequestedACR: p.RequestedACR, ACR: p.ACR, Scopes: p.Scopes,
			Identities: s.identities, Selected: selected, Error: msg,
			Scenario: scenarioControls(idp, p, form, invalid), ScenarioOpen: invalid != "",
		},
	})
}

// scenarioControl is one labelled select (or, with Text, a text input) of
// the "Scénario de test" section. The first option of every select is the
// normal behaviour, with the empty value, so the page's defaults change
// nothing.
type scenarioControl struct {
	Name, Label, Hint string
	Groups            []optionGroup
	Text              bool
	Value             string
	Invalid           bool
}

type optionGroup struct {
	Label   string // empty: options outside any optgroup
	Options []option
}

type option struct {
	Value, Label string
	Selected     bool
}

// scenarioControls builds the section for this login, keeping the values
// of form (a refused submission) selected.
func scenarioControls(idp *mockIdP, p pendingLogin, form url.Values, invalid string) []scenarioControl {
	sel := func(field string, groups ...optionGroup) scenarioControl {
		c := scenarioControl{Name: field, Groups: groups, Invalid: field == invalid}
		for gi := range c.Groups {
			for oi := range c.Groups[gi].Options {
				o := &c.Groups[gi].Options[oi]
				o.Selected = o.Value != "" && o.Value == strings.TrimSpace(form.Get(field))
			}
		}
		return c
	}
	opts := func(pairs ...string) []option {
		var out []option
		for i := 0; i+1 < len(pairs); i += 2 {
			out = append(out, option{Value: pairs[i], Label: pairs[i+1]})
		}
		return out
	}

	acrOpts := []option{{Value: "", Label: "Comportement normal : " + p.ACR}}
	asked := lowestKnownACR(p.RequestedACR)
	for _, l := range config.KnownACR {
		label := l
		var notes []string
		if asked != "" && slices.Index(config.KnownACR, l) < slices.Index(config.KnownACR, asked) {
			notes = append(notes, "inférieur au niveau demandé")
		}
		if !slices.Contains(idp.cfg.ACRValues, l) {
			notes = append(notes, "hors des niveaux de ce fournisseur")
		}
		if len(notes) > 0 {
			label += " (" + strings.Join(notes, ", ") + ")"
		}
		acrOpts = append(acrOpts, option{Value: l, Label: label})
	}
	acr := sel(fieldACR,
		optionGroup{Options: acrOpts},
		optionGroup{Label: "Synonymes eIDAS", Options: opts(
			"http://eidas.europa.eu/LoA/low", "http://eidas.europa.eu/LoA/low (eidas1)",
			"http://eidas.europa.eu/LoA/substantial", "http://eidas.europa.eu/LoA/substantial (eidas2)",
			"http://eidas.europa.eu/LoA/high", "http://eidas.europa.eu/LoA/high (eidas3)")},
		optionGroup{Label: "Hors norme", Options: opts(
			acrNone, "Aucun : claim acr absent",
			"eidas9", "eidas9 : valeur inconnue")},
	)
	acr.Label = "Niveau attesté (acr)"
	acr.Hint = "Le niveau écrit dans l'id_token, quel que soit le niveau demandé et même hors des niveaux de ce fournisseur."

	amr := scenarioControl{Name: fieldAMR, Text: true, Value: strings.TrimSpace(form.Get(fieldAMR)), Invalid: fieldAMR == invalid,
		Label: "Méthodes d'authentification (amr)",
		Hint:  "Vide : pwd (normal). Plusieurs valeurs séparées par des espaces ou des virgules, p. ex. « mfa otp ». « none » : claim amr absent."}

	var errOpts []option
	for _, e := range scenarioErrors {
		errOpts = append(errOpts, option{Value: e, Label: e})
	}
	errc := sel(fieldError, optionGroup{Options: append([]option{{Value: "", Label: "Aucune : un code d'autorisation (normal)"}}, errOpts...)})
	errc.Label = "Répondre par une erreur"
	errc.Hint = "Renvoie error (avec state, iss et error_description) au lieu d'un code, comme un refus ou une panne du fournisseur."

	delay := sel(fieldTokenDelay, optionGroup{Options: opts(
		"", "Aucun : réponse immédiate (normal)",
		"2s", "2 s", "5s", "5 s",
		"7s", "7 s (au-delà du délai de 6 s du courtier par défaut)",
		"10s", "10 s", "30s", "30 s", "60s", "60 s (maximum)")})
	delay.Label = "Ralentir l'appel au jeton (token)"
	delay.Hint = "Le point d'accès token attend ce délai avant de répondre. Un client automatisé peut envoyer toute durée jusqu'à 60 s (p. ex. 1500ms)."

	key := sel(fieldWrongKey, optionGroup{Options: opts(
		"", "Non : clé publiée (normal)",
		wrongKeyForged, "Clé non publiée, sous le kid de la clé publiée (falsification)",
		wrongKeyUnknownKid, "Clé non publiée, avec un kid inconnu")})
	key.Label = "Signer l'id_token avec une mauvaise clé"
	key.Hint = "La signature ne se vérifie pas avec le JWKS de ce fournisseur."

	var idtOpts, uiOpts []option
	for _, c := range userinfoDroppable {
		if c == "sub" {
			continue
		}
		uiOpts = append(uiOpts, option{Value: c, Label: c})
	}
	for _, c := range idTokenDroppable {
		if c == "sub" {
			continue
		}
		idtOpts = append(idtOpts, option{Value: c, Label: c})
	}
	drop := sel(fieldDropClaim,
		optionGroup{Options: opts("", "Aucun (normal)")},
		optionGroup{Label: "Identité (userinfo)", Options: uiOpts},
		optionGroup{Label: "id_token", Options: idtOpts},
		optionGroup{Label: "sub", Options: opts(
			"sub", "sub (id_token et userinfo)",
			"userinfo:sub", "sub de userinfo seulement",
			"id_token:sub", "sub de l'id_token seulement")},
	)
	drop.Label = "Omettre un claim"
	drop.Hint = "Le claim est retiré de l'id_token et de userinfo, là où il figure."

	cog := sel(fieldBadCOG, optionGroup{Options: opts(
		"", "Non : codes de l'identité choisie (normal)",
		badCOGBirthplace, "Lieu de naissance "+badBirthplace+" (4 caractères)",
		badCOGBirthcountry, "Pays de naissance "+badBirthcountry+" (4 caractères)")})
	cog.Label = "Envoyer un code COG invalide"
	cog.Hint = "Remplace le code dans userinfo. Les identités marquées « COG INVALIDE » en portent déjà un."

	return []scenarioControl{acr, amr, errc, delay, key, drop, cog}
}

// lowestKnownACR is the lowest eidas level in a space-separated acr_values,
// the level a broker following FranceConnect's rule asks for.
func lowestKnownACR(requested string) string {
	best := -1
	for _, a := range strings.Fields(requested) {
		if i := slices.Index(config.KnownACR, a); i >= 0 && (best < 0 || i < best) {
			best = i
		}
	}
	if best < 0 {
		return ""
	}
	return config.KnownACR[best]
}
