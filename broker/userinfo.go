package broker

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/sesame-id/sesame/broker/identity"
	"github.com/sesame-id/sesame/broker/oidcerr"
	"github.com/sesame-id/sesame/broker/session"
	"github.com/sesame-id/sesame/internal/audit"
)

// scopeClaims maps each scope to the claims it releases. Every claim is
// also a scope of its own, as on FranceConnect.
var scopeClaims = map[string][]string{
	"profile":            {"given_name", "family_name", "birthdate", "gender", "preferred_username"},
	"birth":              {"birthplace", "birthcountry"},
	"identite_pivot":     {"given_name", "family_name", "birthdate", "gender", "birthplace", "birthcountry"},
	"email":              {"email"},
	"given_name":         {"given_name"},
	"family_name":        {"family_name"},
	"birthdate":          {"birthdate"},
	"gender":             {"gender"},
	"birthplace":         {"birthplace"},
	"birthcountry":       {"birthcountry"},
	"preferred_username": {"preferred_username"},
}

// Scopes lists the scopes the broker knows, for discovery.
func Scopes() []string {
	out := []string{"openid"}
	for s := range scopeClaims {
		out = append(out, s)
	}
	slices.Sort(out[1:])
	return out
}

// userinfo returns the claims the access token's scopes allow. A token
// bound to a DPoP key is taken only with a proof of that key (scheme
// DPoP, RFC 9449 §7), never as a bearer token.
func (p *Platform) userinfo(w http.ResponseWriter, r *http.Request) {
	token, scheme, oerr := bearerToken(w, r)
	if oerr != nil {
		p.resourceError(w, scheme, oerr)
		return
	}
	var jkt string
	if scheme == "DPoP" {
		if jkt, oerr = p.dpopProof(w, r, "/userinfo", token); oerr == nil && jkt == "" {
			oerr = oidcerr.New(oidcerr.InvalidDPoPProof, "a DPoP proof is required with a DPoP access token")
		}
		if oerr != nil {
			p.resourceError(w, scheme, oerr)
			return
		}
	}
	var g grant
	if err := p.sessions.Token(r.Context(), token, &g); err != nil {
		if errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrCorrupt) {
			p.resourceError(w, scheme, oidcerr.New(oidcerr.InvalidToken, "the access token is invalid, expired or revoked"))
			return
		}
		p.resourceError(w, scheme, storeOAuthError(err))
		return
	}
	switch {
	case g.JKT != "" && scheme != "DPoP":
		p.resourceError(w, "DPoP", oidcerr.New(oidcerr.InvalidToken, "this access token is DPoP-bound: send it as Authorization: DPoP with a DPoP proof of its key"))
		return
	case g.JKT != jkt:
		// A bearer token sent as DPoP, or a proof by another key.
		p.resourceError(w, "DPoP", oidcerr.New(oidcerr.InvalidToken, "the DPoP proof is not by the key this access token is bound to"))
		return
	}
	claims := releasedClaims(&g)
	p.record(r, audit.Event{Name: audit.UserinfoServed, Step: audit.UserinfoServedStep, Outcome: "ok", LoginID: g.LoginID,
		SP: g.ClientID, Scopes: g.Scopes, Claims: claimNames(&g), ACR: g.ACR, Account: p.account(g.Identity)})
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	sp, ok := p.reg(r.Context()).Client(g.ClientID)
	if ok && sp.UserinfoSignedResponseAlg != "" {
		claims["iss"] = p.cfg.Issuer
		claims["aud"] = sp.ClientID
		claims["iat"] = time.Now().Unix()
		jwt, err := p.signer.SignJWT(jose.SignatureAlgorithm(sp.UserinfoSignedResponseAlg), "JWT", claims)
		if err == nil {
			jwt, err = p.encryptFor(r.Context(), sp, jwt, sp.UserinfoEncryptedResponseAlg, sp.UserinfoEncryptedResponseEnc)
		}
		if err != nil {
			oidcerr.New(oidcerr.ServerError, "internal error").WithCause(err).WriteJSON(w)
			return
		}
		w.Header().Set("Content-Type", "application/jwt")
		_, _ = w.Write([]byte(jwt))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(claims)
}

// claimNames are the names of the claims a grant releases, for the audit
// trail (never their values).
func claimNames(g *grant) []string {
	var out []string
	for c := range releasedClaims(g) {
		if c != "sub" {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

// bearerToken reads the access token and its scheme (Bearer or DPoP, in
// any case) from the Authorization header, or a bearer token from a POST
// body (RFC 6750 §2.2), never both.
func bearerToken(w http.ResponseWriter, r *http.Request) (token, scheme string, e *oidcerr.Error) {
	scheme = "Bearer"
	if h := r.Header.Get("Authorization"); h != "" {
		s, value, ok := strings.Cut(h, " ")
		switch {
		case ok && strings.EqualFold(s, "DPoP"):
			scheme = "DPoP"
		case !ok || !strings.EqualFold(s, "Bearer"):
			return "", scheme, oidcerr.New(oidcerr.InvalidRequest, "the Authorization header must be Bearer or DPoP")
		}
		token = strings.TrimSpace(value)
		if token == "" {
			return "", scheme, oidcerr.New(oidcerr.InvalidRequest, "the Authorization header carries no token")
		}
	}
	if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if err := r.ParseForm(); err == nil && r.PostForm.Get("access_token") != "" {
			if token != "" {
				return "", scheme, oidcerr.New(oidcerr.InvalidRequest, "send the access token once")
			}
			token = r.PostForm.Get("access_token")
		}
	}
	if token == "" {
		return "", scheme, oidcerr.New(oidcerr.InvalidToken, "an access token is required")
	}
	if len(token) > 256 {
		return "", scheme, oidcerr.New(oidcerr.InvalidToken, "the access token is invalid")
	}
	return token, scheme, nil
}

// releasedClaims builds the userinfo body from the grant's scopes and the
// claims asked for userinfo through the claims parameter (within scope).
func releasedClaims(g *grant) map[string]any {
	values := claimValues(g.Identity)
	out := map[string]any{"sub": g.Sub}
	for _, s := range g.Scopes {
		for _, c := range scopeClaims[s] {
			// A claim with no value is omitted (Core §5.3.2), except
			// birthplace: FranceConnect's pivot identity always has it,
			// empty for a birth abroad, and SPs rely on that.
			if values[c] != "" || c == "birthplace" {
				out[c] = values[c]
			}
		}
	}
	if g.Account != "" {
		out["sesame_account"], out["idp_id"] = g.Account, g.IdP
	}
	// amr only when asked through claims (checkSPPolicy allowed it).
	if slices.Contains(g.UserinfoClaims, "amr") && len(g.AMR) > 0 {
		out["amr"] = g.AMR
	}
	return out
}

func claimValues(id identity.Identity) map[string]string {
	return map[string]string{
		"given_name": id.GivenName, "family_name": id.FamilyName, "birthdate": id.Birthdate,
		"gender": id.Gender, "birthplace": id.Birthplace, "birthcountry": id.Birthcountry,
		"email": id.Email, "preferred_username": id.PreferredUsername,
	}
}
