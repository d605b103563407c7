package broker

import (
	"errors"
	"net/http"
	"slices"

	"github.com/sesame-id/sesame/broker/oidcerr"
	"github.com/sesame-id/sesame/broker/session"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/store"
	"github.com/sesame-id/sesame/internal/web"
)

// The errors a citizen can see. Codes follow FranceConnect's families with
// our own prefix: 01 identity, 02 IdP, 03 OIDC request, 10 levels,
// 19 session. They are stable: support and SPs quote them.
var (
	errSessionExpired = web.Error{Code: "S190001", Status: http.StatusBadRequest,
		MessageFR: "Votre session a expiré ou n'existe pas. Recommencez depuis le site du service.",
		MessageEN: "Your session has expired or does not exist. Start again from the service's website."}
	errStoreDown = web.Error{Code: "S190005", Status: http.StatusServiceUnavailable,
		MessageFR: "Le service est momentanément indisponible. Réessayez dans quelques instants.",
		MessageEN: "The service is temporarily unavailable. Try again in a few moments."}
	errBadStep = web.Error{Code: "S190002", Status: http.StatusBadRequest,
		MessageFR: "Cette étape de connexion n'est pas attendue (page rechargée ou ouverte dans un autre onglet). Recommencez depuis le site du service.",
		MessageEN: "This login step was not expected (page reloaded or opened in another tab). Start again from the service's website."}
	errBadState = web.Error{Code: "S190003", Status: http.StatusBadRequest,
		MessageFR: "Le retour du fournisseur d'identité ne correspond à aucune connexion en cours dans ce navigateur. Recommencez depuis le site du service.",
		MessageEN: "The identity provider's answer matches no login under way in this browser. Start again from the service's website."}
	errCSRF = web.Error{Code: "S190004", Status: http.StatusForbidden,
		MessageFR: "Le formulaire a expiré. Revenez en arrière et réessayez.",
		MessageEN: "The form has expired. Go back and try again."}
	errBadClient = web.Error{Code: "S030001", Status: http.StatusBadRequest,
		MessageFR: "Le service qui vous a envoyé ici n'est pas reconnu, ou son adresse de retour n'est pas enregistrée. Aucune donnée n'a été transmise.",
		MessageEN: "The service that sent you here is not known, or its return address is not registered. No data was sent."}
	errBadRequest = web.Error{Code: "S030002", Status: http.StatusBadRequest,
		MessageFR: "La demande de connexion est invalide.",
		MessageEN: "The login request is invalid."}
	errIdPUnknown = web.Error{Code: "S020001", Status: http.StatusBadRequest, Retry: true, BackURL: "/authorize/choose",
		MessageFR: "Ce fournisseur d'identité n'est pas disponible pour ce service. Choisissez-en un autre.",
		MessageEN: "This identity provider is not available for this service. Choose another one."}
	errIdPUnavailable = web.Error{Code: "S020026", Status: http.StatusBadGateway, Retry: true, BackURL: "/authorize/choose",
		MessageFR: "Le fournisseur d'identité ne répond pas. Réessayez ou choisissez-en un autre.",
		MessageEN: "The identity provider does not answer. Try again or choose another one."}
	errIdPRejected = web.Error{Code: "S020027", Status: http.StatusBadGateway, Retry: true, BackURL: "/authorize/choose",
		MessageFR: "La réponse du fournisseur d'identité n'a pas pu être vérifiée. Choisissez un autre fournisseur d'identité.",
		MessageEN: "The identity provider's answer could not be verified. Choose another identity provider."}
	errIdentityInvalid = web.Error{Code: "S010001", Status: http.StatusBadGateway, Retry: true, BackURL: "/authorize/choose",
		MessageFR: "L'identité transmise par le fournisseur d'identité est incomplète ou invalide. Contactez ce fournisseur ou choisissez-en un autre.",
		MessageEN: "The identity sent by the identity provider is incomplete or invalid. Contact that provider or choose another one."}
	errACRTooLow = web.Error{Code: "S100001", Status: http.StatusForbidden, Retry: true, BackURL: "/authorize/choose",
		MessageFR: "Le niveau de sécurité de votre connexion est inférieur à celui que demande le service. Choisissez un fournisseur d'identité qui offre ce niveau.",
		MessageEN: "Your login's security level is below what the service requires. Choose an identity provider that offers that level."}
	errACRNotAllowed = web.Error{Code: "S100018", Status: http.StatusForbidden, Retry: true, BackURL: "/authorize/choose",
		MessageFR: "Le fournisseur d'identité a déclaré un niveau de sécurité qu'il n'est pas autorisé à délivrer. Choisissez un autre fournisseur d'identité.",
		MessageEN: "The identity provider claimed a security level it is not allowed to give. Choose another identity provider."}
	errLogoutBad = web.Error{Code: "S030010", Status: http.StatusBadRequest,
		MessageFR: "La demande de déconnexion est invalide : l'adresse de retour n'est pas enregistrée ou le jeton fourni n'est pas reconnu. Aucune redirection n'a été faite.",
		MessageEN: "The logout request is invalid: the return address is not registered or the token given is not recognised. You were not redirected."}
)

// storeError maps a session-store failure to the page a person sees.
func storeError(err error) web.Error {
	if errors.Is(err, store.ErrUnavailable) {
		return errStoreDown
	}
	if errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrCorrupt) {
		return errSessionExpired
	}
	return web.ErrInternal
}

// storeOAuthError maps a store failure to an OAuth error for the SP.
func storeOAuthError(err error) *oidcerr.Error {
	if errors.Is(err, store.ErrUnavailable) {
		return oidcerr.New(oidcerr.TemporarilyUnavailable, "the service is temporarily unavailable, retry later").WithCause(err)
	}
	return oidcerr.New(oidcerr.ServerError, "internal error").WithCause(err)
}

// fail renders a page error and logs the internal cause with the
// correlation id the person sees.
func (p *Platform) fail(w http.ResponseWriter, r *http.Request, e web.Error, cause error) {
	if cause != nil {
		p.log.WarnContext(r.Context(), "request failed", "code", e.Code, "err", cause, "correlation_id", web.CorrelationID(r.Context()))
	}
	p.pages.RenderError(w, r, e)
}

// The way back to the service. A login step replayed or out of date (Back,
// reload, another tab, a spent or expired trip) is refused, as it must be;
// but while the session, or the sealed pending request, still names the
// SP's request, the page offers "Revenir sur <service>" through the OIDC
// error path, and a session whose login is complete sends the browser back
// to the SP it served. Neither carries a code: the SP only hears that the
// login did not happen here.
var (
	// errLeftStale is what the SP hears when the citizen follows the way
	// back from a stale step.
	errLeftStale = oidcerr.New(oidcerr.AccessDenied, "the user left a login step that was replayed or out of date (Back button, reload, another tab, expired trip) and went back to the service")
	// errBackAfterLogin is what the SP hears when the browser comes back
	// to a step of a login already completed (the code was sent): the
	// code is never sent twice, and a new login request gets SSO where
	// the platform allows it.
	errBackAfterLogin = oidcerr.New(oidcerr.AccessDenied, "the login was already completed and its code sent; the browser came back to one of its steps (Back button)")
)

// stale answers a step replayed or out of date: back to the SP for a
// session whose login is complete, e with the way back to the SP for one
// whose request is under way, e alone when nothing names the SP.
func (p *Platform) stale(w http.ResponseWriter, r *http.Request, sess *session.Session, e web.Error, cause error) {
	if sess != nil && sess.Request == nil && sess.Step == session.StepDone && sess.Served != nil {
		if _, ok := p.servedSP(r, sess.Served.ClientID, sess.Served.RedirectURI); ok {
			p.log.InfoContext(r.Context(), "back to the SP after a completed login", "path", r.URL.Path, "sp", sess.Served.ClientID,
				"correlation_id", web.CorrelationID(r.Context()))
			redirect(w, r, errBackAfterLogin.RedirectURL(sess.Served.RedirectURI, sess.Served.State, p.cfg.Issuer))
			return
		}
	}
	p.fail(w, r, p.wayBack(r, sess, e), cause)
}

// wayBack adds to e the link "Revenir sur <service>" (in English "Back to
// <service>") when sess has a request under way whose SP still has its
// redirect_uri: access_denied, the request's state and our iss, to the
// redirect_uri checked at /authorize. Otherwise e is returned unchanged.
func (p *Platform) wayBack(r *http.Request, sess *session.Session, e web.Error) web.Error {
	if sess == nil || sess.Request == nil {
		return e
	}
	req := sess.Request
	sp, ok := p.servedSP(r, req.ClientID, req.RedirectURI)
	if !ok {
		return e
	}
	e.Link = errLeftStale.RedirectURL(req.RedirectURI, req.State, p.cfg.Issuer)
	e.LinkFR, e.LinkEN = "Revenir sur le service", "Back to the service"
	if sp.Name != "" {
		e.LinkFR, e.LinkEN = "Revenir sur "+sp.Name, "Back to "+sp.Name
	}
	return e
}

// servedSP is the SP clientID when redirectURI is still one of its
// registered redirect_uris: a reload may have removed either since
// /authorize, and the browser is never sent where the registry no longer
// says.
func (p *Platform) servedSP(r *http.Request, clientID, redirectURI string) (*config.SP, bool) {
	sp, ok := p.reg(r.Context()).Client(clientID)
	if !ok || !slices.Contains(sp.RedirectURIs, redirectURI) {
		return nil, false
	}
	return sp, true
}
