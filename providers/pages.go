package providers

import (
	"html/template"
	"log/slog"
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
	// Lang is the page's language; Switch is the other one, offered by
	// the language switch (SwitchLabel, in that language).
	Lang, Switch, SwitchLabel string
	// RequestedACR is what the client asked; ACR is what will be asserted
	// unless a scenario says otherwise.
	RequestedACR string
	ACR          string
	Scopes       []string
	// Identities are all the test identities; CommonHTML are the short
	// form's, OthersHTML the rest of them, listed below, and
	// IdentityOptions the datalist of their ids: parts rendered apart
	// (see loginParts).
	Identities      []Identity
	CommonHTML      template.HTML
	OthersHTML      template.HTML
	IdentityOptions template.HTML
	// IdentityID is what was typed in the short form's identity field.
	IdentityID string
	Error      string
	// Presets are the short form's scenarios; PresetInvalid marks the
	// select when it was refused.
	Presets       []option
	PresetInvalid bool
	// ScenarioHTML holds the "Scénario de test" controls; ScenarioOpen
	// unfolds them, which happens only when one of them was refused.
	ScenarioHTML template.HTML
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
	s.renderLoginPage(w, r, idp, http.StatusBadRequest, tx, p, selected, scenarioMessage(err, p.Lang), form, invalid)
}

// scenarioMessage is a refused scenario field's sentence in lang.
func scenarioMessage(err error, lang string) string {
	se, ok := err.(*scenarioError)
	if !ok || lang != "en" || se.MessageEN == "" {
		return err.Error()
	}
	return "Test scenario, field " + se.Field + ": " + se.MessageEN
}

func (s *Server) renderLoginPage(w http.ResponseWriter, r *http.Request, idp *mockIdP, status int, tx string, p pendingLogin, selected, msg string, form url.Values, invalid string) {
	lang := pageLang(p.Lang)
	v := loginView{
		IdPName: idp.cfg.Name, ClientID: p.ClientID, Action: idp.path + "/authorize", Tx: tx,
		Lang: lang, Switch: "en", SwitchLabel: "English",
		RequestedACR: p.RequestedACR, ACR: p.ACR, Scopes: p.Scopes,
		Identities: s.identities,
		IdentityID: strings.TrimSpace(form.Get(fieldIdentityID)), Error: msg,
		PresetInvalid: invalid == fieldPreset,
		// The short form's preset is not in the long form: a refused
		// preset keeps the long form folded.
		ScenarioOpen: invalid != "" && invalid != fieldPreset,
	}
	if err := s.parts.fill(&v, s.identities, idp, p, selected, form, invalid); err != nil {
		slog.ErrorContext(r.Context(), "providers: login page", "err", err)
		s.pages.RenderError(w, r, web.ErrInternal)
		return
	}
	if lang == "en" {
		v.Switch, v.SwitchLabel = "fr", "Français"
	}
	for _, pr := range presets {
		v.Presets = append(v.Presets, option{Value: pr.Value, Label: tr(lang, pr.LabelFR, pr.LabelEN),
			Selected: pr.Value != "" && pr.Value == strings.TrimSpace(form.Get(fieldPreset))})
	}
	s.pages.Render(w, r, status, "login.html", web.Page{
		Title: tr(lang, "Connexion – ", "Log in – ") + idp.cfg.Name,
		Lang:  lang,
		Body:  v,
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

// scenarioControls builds the section for this login in lang, keeping
// the values of form (a refused submission) selected.
func scenarioControls(idp *mockIdP, p pendingLogin, form url.Values, invalid, lang string) []scenarioControl {
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

	t := func(fr, en string) string { return tr(lang, fr, en) }
	acrOpts := []option{{Value: "", Label: t("Comportement normal : ", "Normal behaviour: ") + p.ACR}}
	asked := lowestKnownACR(p.RequestedACR)
	for _, l := range config.KnownACR {
		label := l
		var notes []string
		if asked != "" && slices.Index(config.KnownACR, l) < slices.Index(config.KnownACR, asked) {
			notes = append(notes, t("inférieur au niveau demandé", "below the level asked"))
		}
		if !slices.Contains(idp.cfg.ACRValues, l) {
			notes = append(notes, t("hors des niveaux de ce fournisseur", "outside this provider's levels"))
		}
		if len(notes) > 0 {
			label += " (" + strings.Join(notes, ", ") + ")"
		}
		acrOpts = append(acrOpts, option{Value: l, Label: label})
	}
	acr := sel(fieldACR,
		optionGroup{Options: acrOpts},
		optionGroup{Label: t("Synonymes eIDAS", "eIDAS synonyms"), Options: opts(
			"http://eidas.europa.eu/LoA/low", "http://eidas.europa.eu/LoA/low (eidas1)",
			"http://eidas.europa.eu/LoA/substantial", "http://eidas.europa.eu/LoA/substantial (eidas2)",
			"http://eidas.europa.eu/LoA/high", "http://eidas.europa.eu/LoA/high (eidas3)")},
		optionGroup{Label: t("Hors norme", "Non-standard"), Options: opts(
			acrNone, t("Aucun : claim acr absent", "None: no acr claim"),
			"eidas9", t("eidas9 : valeur inconnue", "eidas9: unknown value"))},
	)
	acr.Label = t("Niveau attesté (acr)", "Level asserted (acr)")
	acr.Hint = t("Le niveau écrit dans l'id_token, quel que soit le niveau demandé et même hors des niveaux de ce fournisseur.",
		"The level written in the id_token, whatever was asked and even outside this provider's levels.")

	amr := scenarioControl{Name: fieldAMR, Text: true, Value: strings.TrimSpace(form.Get(fieldAMR)), Invalid: fieldAMR == invalid,
		Label: t("Méthodes d'authentification (amr)", "Authentication methods (amr)"),
		Hint: t("Vide : pwd (normal). Plusieurs valeurs séparées par des espaces ou des virgules, p. ex. « mfa otp ». « none » : claim amr absent.",
			"Empty: pwd (normal). Several values separated by spaces or commas, e.g. \"mfa otp\". \"none\": no amr claim.")}

	var errOpts []option
	for _, e := range scenarioErrors {
		errOpts = append(errOpts, option{Value: e, Label: e})
	}
	errc := sel(fieldError, optionGroup{Options: append([]option{{Value: "", Label: t("Aucune : un code d'autorisation (normal)", "None: an authorization code (normal)")}}, errOpts...)})
	errc.Label = t("Répondre par une erreur", "Answer with an error")
	errc.Hint = t("Renvoie error (avec state, iss et error_description) au lieu d'un code, comme un refus ou une panne du fournisseur.",
		"Sends error (with state, iss and error_description) instead of a code, as a refusal or an outage of the provider would.")

	delay := sel(fieldTokenDelay, optionGroup{Options: opts(
		"", t("Aucun : réponse immédiate (normal)", "None: immediate answer (normal)"),
		"2s", "2 s", "5s", "5 s",
		"7s", t("7 s (au-delà du délai de 6 s du courtier par défaut)", "7 s (beyond the broker's default 6 s timeout)"),
		"10s", "10 s", "30s", "30 s", "60s", "60 s (maximum)")})
	delay.Label = t("Ralentir l'appel au jeton (token)", "Slow down the token call")
	delay.Hint = t("Le point d'accès token attend ce délai avant de répondre. Un client automatisé peut envoyer toute durée jusqu'à 60 s (p. ex. 1500ms).",
		"The token endpoint waits this long before answering. A scripted client may send any duration up to 60 s (e.g. 1500ms).")

	key := sel(fieldWrongKey, optionGroup{Options: opts(
		"", t("Non : clé publiée (normal)", "No: the published key (normal)"),
		wrongKeyForged, t("Clé non publiée, sous le kid de la clé publiée (falsification)", "Unpublished key, under the published key's kid (forgery)"),
		wrongKeyUnknownKid, t("Clé non publiée, avec un kid inconnu", "Unpublished key, with an unknown kid"))})
	key.Label = t("Signer l'id_token avec une mauvaise clé", "Sign the id_token with a wrong key")
	key.Hint = t("La signature ne se vérifie pas avec le JWKS de ce fournisseur.", "The signature does not verify with this provider's JWKS.")

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
		optionGroup{Options: opts("", t("Aucun (normal)", "None (normal)"))},
		optionGroup{Label: t("Identité (userinfo)", "Identity (userinfo)"), Options: uiOpts},
		optionGroup{Label: "id_token", Options: idtOpts},
		optionGroup{Label: "sub", Options: opts(
			"sub", t("sub (id_token et userinfo)", "sub (id_token and userinfo)"),
			"userinfo:sub", t("sub de userinfo seulement", "userinfo's sub only"),
			"id_token:sub", t("sub de l'id_token seulement", "the id_token's sub only"))},
	)
	drop.Label = t("Omettre un claim", "Leave a claim out")
	drop.Hint = t("Le claim est retiré de l'id_token et de userinfo, là où il figure.", "The claim is removed from the id_token and from userinfo, wherever it is.")

	cog := sel(fieldBadCOG, optionGroup{Options: opts(
		"", t("Non : codes de l'identité choisie (normal)", "No: the chosen identity's codes (normal)"),
		badCOGBirthplace, t("Lieu de naissance ", "Birthplace ")+badBirthplace+t(" (4 caractères)", " (4 characters)"),
		badCOGBirthcountry, t("Pays de naissance ", "Birth country ")+badBirthcountry+t(" (4 caractères)", " (4 characters)"))})
	cog.Label = t("Envoyer un code COG invalide", "Send an invalid COG code")
	cog.Hint = t("Remplace le code dans userinfo. Les identités marquées « COG INVALIDE » en portent déjà un.",
		"Replaces the code in userinfo. The identities marked \"INVALID COG\" carry one already.")

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
