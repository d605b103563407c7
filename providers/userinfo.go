package providers

import (
	"net/http"
	"strings"
)

// userinfo answers the claims of the access token's scopes.
func (s *Server) userinfo(idp *mockIdP, w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	scheme, token, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		// RFC 6750 §3.1: a request with no credentials gets a bare
		// challenge, without an error code.
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+idp.issuer+`"`)
		writeJSON(w, http.StatusUnauthorized, oauthError{Code: "invalid_request", Description: "a Bearer access token is required"})
		return
	}
	rec, ok := idp.tokens.get(hashKey(strings.TrimSpace(token)))
	if ok {
		// A token outlives nothing: once end_session ended its login, it
		// is refused even before it expires.
		_, ok = idp.logins.get(rec.SID)
	}
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+idp.issuer+`", error="invalid_token", error_description="the access token is unknown, expired or revoked"`)
		writeJSON(w, http.StatusUnauthorized, oauthError{Code: "invalid_token", Description: "the access token is unknown, expired or revoked"})
		return
	}
	claims := idp.claims(s.byID[rec.IdentityID], rec.Scopes)
	rec.Scenario.userinfo(claims)
	writeJSON(w, http.StatusOK, claims)
}

// claims releases what the scopes allow. birthplace is sent even when empty
// (born abroad) because that is the pivot identity's format; email and
// preferred_username are left out when the person has none.
func (idp *mockIdP) claims(id *Identity, scopes []string) map[string]any {
	all := map[string]string{
		"sub":                idp.subject(id.ID),
		"given_name":         id.GivenName,
		"family_name":        id.FamilyName,
		"birthdate":          id.Birthdate,
		"gender":             id.Gender,
		"birthplace":         id.Birthplace,
		"birthcountry":       id.Birthcountry,
		"email":              id.Email,
		"preferred_username": id.PreferredUsername,
	}
	out := map[string]any{}
	for _, sc := range scopes {
		for _, c := range scopeClaims[sc] {
			v := all[c]
			if v == "" && (c == "email" || c == "preferred_username") {
				continue
			}
			out[c] = v
		}
	}
	return out
}
