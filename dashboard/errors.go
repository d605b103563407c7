package dashboard

import (
	"net/http"

	"github.com/sesame-id/sesame/internal/web"
)

// The errors a citizen can see (see the package documentation for the
// table). Those a new login cures offer it as a button; the link is a
// constant path, never taken from the request.
var (
	errNoTransaction = relogin(web.Error{Code: "S600001", Status: http.StatusBadRequest,
		MessageFR: "Cette connexion a expiré ou a déjà été traitée (page rechargée, ou ouverte dans un autre onglet ?). Connectez-vous à nouveau.",
		MessageEN: "This login has expired or was already handled (page reloaded, or opened in another tab?). Log in again."})
	errState = relogin(web.Error{Code: "S600002", Status: http.StatusBadRequest,
		MessageFR: "La réponse reçue ne correspond pas à la connexion demandée par ce navigateur. Connectez-vous à nouveau.",
		MessageEN: "The answer received does not match the login this browser started. Log in again."})
	errIssuer = relogin(web.Error{Code: "S600003", Status: http.StatusBadRequest,
		MessageFR: "La réponse ne vient pas de Sésame. Elle a été refusée.",
		MessageEN: "The answer does not come from Sésame. It was refused."})
	errNoCode = relogin(web.Error{Code: "S600004", Status: http.StatusBadRequest,
		MessageFR: "La réponse de Sésame ne contient pas de code d'autorisation. Connectez-vous à nouveau.",
		MessageEN: "Sésame's answer carries no authorization code. Log in again."})
	errExchange = relogin(web.Error{Code: "S600005", Status: http.StatusBadGateway,
		MessageFR: "La connexion n'a pas pu être finalisée auprès de Sésame. Connectez-vous à nouveau.",
		MessageEN: "The login could not be completed with Sésame. Log in again."})
	errIDToken = relogin(web.Error{Code: "S600006", Status: http.StatusBadGateway,
		MessageFR: "Le jeton d'identité reçu n'est pas valide. La connexion a été refusée.",
		MessageEN: "The ID token received is not valid. The login was refused."})
	errNonce = relogin(web.Error{Code: "S600007", Status: http.StatusBadRequest,
		MessageFR: "Le jeton d'identité ne correspond pas à cette connexion. La connexion a été refusée.",
		MessageEN: "The ID token does not belong to this login. The login was refused."})
	errClaims = web.Error{Code: "S600008", Status: http.StatusBadGateway, Retry: true, BackURL: "/",
		MessageFR: "Sésame n'a pas transmis l'identifiant de votre espace : votre historique ne peut pas être affiché. Ce service n'est sans doute pas encore déclaré comme espace personnel auprès de Sésame ; réessayez plus tard.",
		MessageEN: "Sésame did not send the identifier of your space: your history cannot be shown. This service is probably not yet registered as the personal space with Sésame; try again later."}
	errStaleLogin = relogin(web.Error{Code: "S600009", Status: http.StatusForbidden,
		MessageFR: "Pour ouvrir votre espace, vous devez vous authentifier à nouveau auprès de votre compte. Connectez-vous à nouveau.",
		MessageEN: "To open your space, you must authenticate again with your account. Log in again."})
	errUserInfo = relogin(web.Error{Code: "S600010", Status: http.StatusBadGateway,
		MessageFR: "Vos informations n'ont pas pu être obtenues auprès de Sésame. Connectez-vous à nouveau.",
		MessageEN: "Your details could not be obtained from Sésame. Log in again."})
	errBrokerDown = web.Error{Code: "S600011", Status: http.StatusServiceUnavailable, Retry: true, BackURL: "/",
		MessageFR: "Sésame est injoignable pour le moment. Réessayez dans quelques instants.",
		MessageEN: "Sésame cannot be reached at the moment. Try again in a few moments."}
	errCSRF = web.Error{Code: "S600013", Status: http.StatusForbidden, Retry: true, BackURL: "/",
		MessageFR: "Le formulaire a expiré. Revenez en arrière, rechargez la page et réessayez.",
		MessageEN: "The form has expired. Go back, reload the page and try again."}
	errBadForm = web.Error{Code: "S600014", Status: http.StatusBadRequest, Retry: true, BackURL: "/",
		MessageFR: "Le formulaire envoyé est illisible. Rechargez la page et réessayez.",
		MessageEN: "The form sent could not be read. Reload the page and try again."}
	errBadCursor = web.Error{Code: "S600015", Status: http.StatusBadRequest, Retry: true, BackURL: "/historique",
		MessageFR: "Cette page de l'historique n'existe pas (adresse modifiée ou trop ancienne). Reprenez depuis les connexions les plus récentes.",
		MessageEN: "This page of the history does not exist (address altered or too old). Start again from the most recent connections."}
	errBlockCurrent = web.Error{Code: "S600016", Status: http.StatusBadRequest, Retry: true, BackURL: "/comptes",
		MessageFR: "Le compte qui sert à votre connexion actuelle ne peut pas être bloqué. Rien n'a été enregistré. Pour le bloquer, connectez-vous à votre espace avec un autre compte.",
		MessageEN: "The account of your current login cannot be blocked. Nothing was saved. To block it, log in to your space with another account."}
	errStoreDown = web.Error{Code: "S600017", Status: http.StatusServiceUnavailable, Retry: true, BackURL: "/",
		MessageFR: "Votre espace est momentanément indisponible. Réessayez dans quelques instants.",
		MessageEN: "Your space is temporarily unavailable. Try again in a few moments."}
	errUnknownCode = web.Error{Code: "S600019", Status: http.StatusNotFound, Retry: true, BackURL: "/signalement",
		MessageFR: "Aucune connexion ne correspond à ce code. Vérifiez le code indiqué dans le courriel : les connexions anciennes ne sont plus conservées.",
		MessageEN: "No connection matches this code. Check the code given in the e-mail: old connections are no longer kept."}
	errTooMany = web.Error{Code: "S600020", Status: http.StatusTooManyRequests, Retry: true, BackURL: "/signalement",
		MessageFR: "Trop de signalements ont été envoyés depuis votre réseau. Réessayez plus tard.",
		MessageEN: "Too many reports were sent from your network. Try again later."}
	errSessionExpired = relogin(web.Error{Code: "S600021", Status: http.StatusUnauthorized,
		MessageFR: "Votre session a expiré (elle dure 15 minutes). Rien n'a été enregistré. Connectez-vous à nouveau.",
		MessageEN: "Your session has expired (it lasts 15 minutes). Nothing was saved. Log in again."})
)

// codeBrokerError is the page of an error the broker sent back to the
// callback (S600012); its sentence depends on the error.
const codeBrokerError = "S600012"

// relogin gives e the way out a new login offers.
func relogin(e web.Error) web.Error {
	e.Retry, e.BackURL = true, "/"
	e.Link, e.LinkFR, e.LinkEN = "/login", "Se connecter à nouveau", "Log in again"
	return e
}

// brokerError is the page of an error answer of the broker. The error
// comes from the URL, so anybody can forge it: it only picks one of our
// sentences and never reaches the page itself.
func brokerError(code string) web.Error {
	e := relogin(web.Error{Code: codeBrokerError, Status: http.StatusBadRequest})
	switch code {
	case "access_denied":
		e.MessageFR = "La connexion a été annulée, ou refusée par Sésame. Vous pouvez réessayer."
		e.MessageEN = "The login was cancelled, or refused by Sésame. You may try again."
	case "temporarily_unavailable":
		e.MessageFR = "Sésame est momentanément indisponible. Réessayez dans quelques instants."
		e.MessageEN = "Sésame is temporarily unavailable. Try again in a few moments."
	default:
		e.MessageFR = "Sésame n'a pas pu vous connecter à votre espace. Vous pouvez réessayer."
		e.MessageEN = "Sésame could not log you in to your space. You may try again."
	}
	return e
}
