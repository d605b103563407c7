package demosp

import (
	"html/template"
	"log/slog"
	"net/http"

	"github.com/sesame-id/sesame/internal/web"
)

// Error codes of the demo SP are "S8" + five digits: stable, so a citizen or
// a tester can quote them, and apart from the codes of the other components.
var (
	errNotFound = web.ErrNotFound

	errBadForm = web.Error{
		Code: "S800015", Status: http.StatusBadRequest, Retry: true, BackURL: "/",
		MessageFR: "Le formulaire envoyé est illisible. Recommencez depuis l'accueil.",
		MessageEN: "The form sent could not be read. Start again from the home page.",
	}
	errBadLevel = web.Error{
		Code: "S800001", Status: http.StatusBadRequest, Retry: true, BackURL: "/",
		MessageFR: "Le niveau de garantie choisi n'est pas reconnu. Choisissez eidas1, eidas2 ou eidas3.",
		MessageEN: "The assurance level chosen is not known. Choose eidas1, eidas2 or eidas3.",
	}
	errNoTransaction = web.Error{
		Code: "S800002", Status: http.StatusBadRequest, Retry: true, BackURL: "/",
		MessageFR: "Cette connexion a expiré ou a déjà été traitée (page rechargée ?). Recommencez depuis l'accueil.",
		MessageEN: "This login has expired or was already handled (page reloaded?). Start again from the home page.",
	}
	errState = web.Error{
		Code: "S800003", Status: http.StatusBadRequest, Retry: true, BackURL: "/",
		MessageFR: "La réponse reçue ne correspond pas à la connexion demandée par ce navigateur (paramètre state). Recommencez depuis l'accueil.",
		MessageEN: "The response does not match the login this browser started (state parameter). Start again from the home page.",
	}
	errIssuer = web.Error{
		Code: "S800004", Status: http.StatusBadRequest, Retry: true, BackURL: "/",
		MessageFR: "La réponse ne vient pas du fournisseur d'identité attendu (paramètre iss). Elle a été refusée.",
		MessageEN: "The response does not come from the expected provider (iss parameter). It was refused.",
	}
	errNoCode = web.Error{
		Code: "S800005", Status: http.StatusBadRequest, Retry: true, BackURL: "/",
		MessageFR: "La réponse reçue ne contient pas de code d'autorisation. Recommencez depuis l'accueil.",
		MessageEN: "The response carries no authorization code. Start again from the home page.",
	}
	errInvalidGrant = web.Error{
		Code: "S800006", Status: http.StatusBadRequest, Retry: true, BackURL: "/",
		MessageFR: "Le code d'autorisation a été refusé par Sésame (expiré ou déjà utilisé). Recommencez depuis l'accueil.",
		MessageEN: "Sésame refused the authorization code (expired or already used). Start again from the home page.",
	}
	errExchange = web.Error{
		Code: "S800007", Status: http.StatusBadGateway, Retry: true, BackURL: "/",
		MessageFR: "L'échange du code d'autorisation avec Sésame a échoué. Réessayez dans un instant.",
		MessageEN: "Exchanging the authorization code with Sésame failed. Try again in a moment.",
	}
	errIDToken = web.Error{
		Code: "S800008", Status: http.StatusBadGateway, Retry: true, BackURL: "/",
		MessageFR: "Le jeton d'identité reçu n'est pas valide (signature, émetteur, audience ou date). La connexion a été refusée.",
		MessageEN: "The ID token received is not valid (signature, issuer, audience or date). The login was refused.",
	}
	errNonce = web.Error{
		Code: "S800009", Status: http.StatusBadRequest, Retry: true, BackURL: "/",
		MessageFR: "Le jeton d'identité ne correspond pas à cette connexion (nonce). La connexion a été refusée.",
		MessageEN: "The ID token does not belong to this login (nonce). The login was refused.",
	}
	errUserInfo = web.Error{
		Code: "S800010", Status: http.StatusBadGateway, Retry: true, BackURL: "/",
		MessageFR: "Les informations d'identité n'ont pas pu être obtenues ou ne concernent pas la personne connectée. La connexion a été refusée.",
		MessageEN: "The identity could not be fetched, or it is about someone else. The login was refused.",
	}
	errUnavailable = web.Error{
		Code: "S800011", Status: http.StatusServiceUnavailable, Retry: true, BackURL: "/",
		MessageFR: "Sésame est injoignable pour le moment. Réessayez dans un instant.",
		MessageEN: "Sésame cannot be reached at the moment. Try again in a moment.",
	}
	errBadPlatform = web.Error{
		Code: "S800016", Status: http.StatusBadRequest, Retry: true, BackURL: "/",
		MessageFR: "La plateforme choisie n'est pas proposée par cette démarche. Choisissez Sésame ou Sésame+ depuis l'accueil.",
		MessageEN: "The platform chosen is not offered by this service. Choose Sésame or Sésame+ from the home page.",
	}
	errNotEncrypted = web.Error{
		Code: "S800017", Status: http.StatusBadGateway, Retry: true, BackURL: "/",
		MessageFR: "Sésame+ a envoyé un jeton non chiffré. Sur Sésame+, le jeton d'identité et les informations d'identité doivent être chiffrés pour cette démarche : la connexion a été refusée.",
		MessageEN: "Sésame+ sent a token in clear. On Sésame+ the ID token and the identity must be encrypted for this service: the login was refused.",
	}
	errDecrypt = web.Error{
		Code: "S800018", Status: http.StatusBadGateway, Retry: true, BackURL: "/",
		MessageFR: "Un jeton chiffré reçu ne peut pas être déchiffré avec les clés de cette démarche (chiffré pour une autre clé, ou altéré). La connexion a été refusée.",
		MessageEN: "An encrypted token received cannot be decrypted with this service's keys (encrypted for another key, or altered). The login was refused.",
	}
	errProviderUnfit = web.Error{
		Code: "S800019", Status: http.StatusBadGateway, Retry: true, BackURL: "/",
		MessageFR: "Sésame+ n'annonce pas ce que cette démarche exige (requête d'autorisation poussée, DPoP) : la connexion n'a pas été tentée.",
		MessageEN: "Sésame+ does not advertise what this service requires (pushed authorization request, DPoP): no login was attempted.",
	}
	errPushed = web.Error{
		Code: "S800020", Status: http.StatusBadGateway, Retry: true, BackURL: "/",
		MessageFR: "La demande de connexion n'a pas pu être déposée auprès de Sésame+ (requête d'autorisation poussée). Réessayez dans un instant.",
		MessageEN: "The login request could not be pushed to Sésame+ (pushed authorization request). Try again in a moment.",
	}
	errLogoutState = web.Error{
		Code: "S800012", Status: http.StatusBadRequest, Retry: true, BackURL: "/",
		MessageFR: "Ce retour de déconnexion ne correspond à aucune déconnexion demandée par ce navigateur (paramètre state).",
		MessageEN: "This logout return does not match a logout this browser asked for (state parameter).",
	}
)

// codes of the two errors that get their own page, for the logs.
const (
	codeProviderError = "S800013"
	codeACRTooLow     = "S800014"
)

func (a *App) render(w http.ResponseWriter, r *http.Request, status int, page string, p web.Page) {
	a.pages.Render(w, r, status, page+".html", p)
}

func (a *App) fail(w http.ResponseWriter, r *http.Request, e web.Error) {
	a.pages.RenderError(w, r, e)
}

// failUpstream logs what went wrong with the provider, which never reaches
// the page: raw upstream text is no business of the citizen's.
func (a *App) failUpstream(w http.ResponseWriter, r *http.Request, e web.Error, err error) {
	slog.WarnContext(r.Context(), "demo-sp: provider call failed", "code", e.Code, "err", err,
		"correlation_id", web.CorrelationID(r.Context()))
	a.fail(w, r, e)
}

// failProvider shows an error the provider sent back to the callback: a
// sentence chosen by its code, and the code. The code comes from the URL, so
// anyone can forge it: html/template escapes it, and the page says it comes
// from the provider. The error_description is for developers (English,
// technical) and never shown to the citizen.
func (a *App) failProvider(w http.ResponseWriter, r *http.Request, code string) {
	slog.InfoContext(r.Context(), "demo-sp: provider returned an error", "code", codeProviderError,
		"error", code, "correlation_id", web.CorrelationID(r.Context()))
	a.render(w, r, http.StatusBadRequest, "provider_error", web.Page{
		Title: msg(web.PreferredLang(r), "oidc.title"),
		Body: map[string]any{
			"Code":      codeProviderError,
			"Error":     code,
			"Sentence":  providerSentence(code),
			"Cancelled": code == "access_denied",
		},
	})
}

// providerSentence is the key of the sentence that tells the citizen what
// an OAuth error code means for them.
func providerSentence(code string) string {
	switch code {
	case "access_denied":
		return "oidc.access_denied"
	case "login_required", "interaction_required", "consent_required":
		return "oidc.login_required"
	case "unmet_authentication_requirements":
		return "oidc.unmet"
	case "temporarily_unavailable", "server_error":
		return "oidc.unavailable"
	}
	return "oidc.other"
}

// failACR refuses a login whose level is below what was asked: accepting it
// would let a weak authentication into a service that required a strong one.
func (a *App) failACR(w http.ResponseWriter, r *http.Request, asked, got string) {
	slog.WarnContext(r.Context(), "demo-sp: acr below the level asked", "code", codeACRTooLow,
		"asked", asked, "got", got, "correlation_id", web.CorrelationID(r.Context()))
	lang := web.PreferredLang(r)
	if got == "" {
		got = msg(lang, "acr.none")
	}
	a.render(w, r, http.StatusForbidden, "acr_refused", web.Page{
		Title: msg(lang, "acr.title"),
		Body: map[string]any{"Code": codeACRTooLow,
			"AskedHTML": codeHTML("acr-asked", asked), "GotHTML": codeHTML("acr-got", got)},
	})
}

// codeHTML is a value shown as code inside a translated sentence, with an
// id for tests.
func codeHTML(id, v string) template.HTML {
	return template.HTML(`<code id="` + id + `">` + template.HTMLEscapeString(v) + `</code>`)
}
