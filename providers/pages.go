package providers

import (
	"net/http"

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
	// RequestedACR is what the client asked; ACR is what will be asserted.
	RequestedACR string
	ACR          string
	Scopes       []string
	Identities   []Identity
	Selected     string
	Error        string
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, idp *mockIdP, status int, tx string, p pendingLogin, selected, msg string) {
	s.pages.Render(w, r, status, "login.html", web.Page{
		Title: "Connexion – " + idp.cfg.Name,
		Body: loginView{
			IdPName: idp.cfg.Name, ClientID: p.ClientID, Action: idp.path + "/authorize", Tx: tx,
			RequestedACR: p.RequestedACR, ACR: p.ACR, Scopes: p.Scopes,
			Identities: s.identities, Selected: selected, Error: msg,
		},
	})
}
