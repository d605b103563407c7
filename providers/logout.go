package providers

import (
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// maxHintLen bounds id_token_hint; the mock's id_tokens are under 1 KiB.
const maxHintLen = 8 << 10

// endSession is RP-initiated logout. It checks everything before acting, so
// a request that fails changes nothing, then ends the login and goes back
// to the client's exact post_logout_redirect_uri, or shows a page when
// there is none.
func (s *Server) endSession(idp *mockIdP, w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		s.pages.RenderError(w, r, errBadForm)
		return
	}
	f := r.Form
	for _, name := range []string{"id_token_hint", "client_id", "post_logout_redirect_uri", "state"} {
		if len(f[name]) > 1 {
			s.pages.RenderError(w, r, errBadForm)
			return
		}
	}
	clientID := f.Get("client_id")
	var hint *idTokenClaims
	if h := f.Get("id_token_hint"); h != "" {
		c, err := idp.verifyHint(h)
		if err != nil || (clientID != "" && clientID != c.Audience) {
			s.pages.RenderError(w, r, errBadIDTokenHint)
			return
		}
		hint, clientID = c, c.Audience
	}
	target := f.Get("post_logout_redirect_uri")
	if target != "" {
		client, ok := idp.clients[clientID]
		if !ok || !slices.Contains(client.PostLogoutRedirectURIs, target) {
			s.pages.RenderError(w, r, errBadLogoutRedirect)
			return
		}
	}
	if hint != nil && hint.SID != "" {
		// No back-channel logout token: the login's only client is the
		// one asking, which already knows (Back-Channel Logout 1.0 lets an
		// OP skip the RP that initiated the logout).
		idp.logins.delete(hint.SID)
	}
	if target == "" {
		s.pages.Render(w, r, http.StatusOK, "logged_out.html", idp.cfg.Name)
		return
	}
	params := url.Values{}
	if st := f.Get("state"); st != "" {
		params.Set("state", st)
	}
	redirectWith(w, r, target, params)
}

// verifyHint checks that an id_token was signed by this IdP for one of its
// clients. Expiry is deliberately not checked: a person logs out long
// after their id_token expired, and the OIDC logout spec allows it.
func (idp *mockIdP) verifyHint(raw string) (*idTokenClaims, error) {
	if len(raw) > maxHintLen {
		return nil, errors.New("id_token_hint too long")
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		return nil, err
	}
	var c idTokenClaims
	if err := tok.Claims(idp.keys.PublicJWKS(), &c); err != nil {
		return nil, err
	}
	if c.Issuer != idp.issuer {
		return nil, errors.New("id_token_hint from another issuer")
	}
	if _, ok := idp.clients[c.Audience]; !ok {
		return nil, errors.New("id_token_hint for an unknown client")
	}
	return &c, nil
}
