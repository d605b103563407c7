package providers

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/keys"
)

// oauthError is an error answered to a client, in the JSON body of the token
// endpoint or in the query of a redirect. Codes are the registered ones.
type oauthError struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// tokenRecord is what an access token stands for.
type tokenRecord struct {
	ClientID   string
	IdentityID string
	Scopes     []string
	SID        string
	Scenario   Scenario
}

// idTokenClaims is the id_token payload.
type idTokenClaims struct {
	Issuer   string   `json:"iss"`
	Subject  string   `json:"sub"`
	Audience string   `json:"aud"`
	Expiry   int64    `json:"exp"`
	IssuedAt int64    `json:"iat"`
	AuthTime int64    `json:"auth_time"`
	Nonce    string   `json:"nonce,omitempty"`
	ACR      string   `json:"acr"`
	AMR      []string `json:"amr"`
	ATHash   string   `json:"at_hash"`
	// SID names the login, so end_session can end it from an id_token_hint.
	SID string `json:"sid,omitempty"`
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	IDToken     string `json:"id_token"`
	Scope       string `json:"scope"`
}

// pkceVerifier is RFC 7636's code_verifier syntax.
var pkceVerifier = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// token redeems an authorization code for an access token and an id_token.
func (s *Server) token(idp *mockIdP, w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		tokenError(w, idp, &oauthError{Code: "invalid_request", Description: "the body is not a form of at most 64 KiB"})
		return
	}
	f := r.PostForm
	for name, vs := range f {
		if len(vs) > 1 {
			tokenError(w, idp, &oauthError{Code: "invalid_request", Description: name + " is repeated"})
			return
		}
	}
	client, oerr := idp.authenticateClient(r, f)
	if oerr != nil {
		tokenError(w, idp, oerr)
		return
	}
	switch gt := f.Get("grant_type"); gt {
	case "authorization_code":
	case "":
		tokenError(w, idp, &oauthError{Code: "invalid_request", Description: "grant_type is required"})
		return
	default:
		tokenError(w, idp, &oauthError{Code: "unsupported_grant_type", Description: "only authorization_code is supported"})
		return
	}
	rec, oerr := idp.redeemCode(client, f)
	if oerr != nil {
		tokenError(w, idp, oerr)
		return
	}
	resp, oerr := s.issueTokens(w, r, idp, f.Get("code"), rec)
	if oerr != nil {
		tokenError(w, idp, oerr)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// authenticateClient accepts client_secret_basic or client_secret_post,
// never both: two credentials that may disagree are a request error.
func (idp *mockIdP) authenticateClient(r *http.Request, f url.Values) (config.MockClient, *oauthError) {
	user, pass, hasBasic := r.BasicAuth()
	_, hasPost := f["client_secret"]
	var id, secret string
	switch {
	case hasBasic && hasPost:
		return config.MockClient{}, &oauthError{Code: "invalid_request", Description: "use one client authentication method, not both"}
	case hasBasic:
		// RFC 6749 §2.3.1 form-encodes both parts before base64.
		var err1, err2 error
		id, err1 = url.QueryUnescape(user)
		secret, err2 = url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return config.MockClient{}, errInvalidClient
		}
		if cid, ok := f["client_id"]; ok && cid[0] != id {
			return config.MockClient{}, &oauthError{Code: "invalid_request", Description: "client_id differs from the authenticated client"}
		}
	case hasPost:
		id, secret = f.Get("client_id"), f.Get("client_secret")
	default:
		return config.MockClient{}, errInvalidClient
	}
	client, known := idp.clients[id]
	want := client.ClientSecret
	if !known {
		// Compare anyway, so an unknown client costs the same time as a
		// known one with a wrong secret.
		want = "\x00unknown client"
	}
	if !secretEqual(secret, want) || !known || want == "" {
		return config.MockClient{}, errInvalidClient
	}
	return client, nil
}

var errInvalidClient = &oauthError{Code: "invalid_client", Description: "client authentication failed"}

// secretEqual compares digests so that neither the content nor the length
// of the registered secret leaks through timing.
func secretEqual(got, want string) bool {
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// redeemCode takes the code (so it is single use whatever happens next) and
// checks that it was issued to this client, for this redirect_uri and, when
// PKCE was used, to whoever holds the verifier.
func (idp *mockIdP) redeemCode(client config.MockClient, f url.Values) (codeRecord, *oauthError) {
	invalid := func(desc string) (codeRecord, *oauthError) {
		return codeRecord{}, &oauthError{Code: "invalid_grant", Description: desc}
	}
	code := f.Get("code")
	if code == "" {
		return codeRecord{}, &oauthError{Code: "invalid_request", Description: "code is required"}
	}
	key := hashKey(code)
	rec, ok := idp.codes.take(key)
	if !ok {
		// A replayed code means it leaked: revoke what its first use gave.
		if at, used := idp.redeemed.take(key); used {
			idp.tokens.delete(at)
			return invalid("code already used; the tokens it gave are revoked")
		}
		return invalid("code unknown or expired")
	}
	if rec.ClientID != client.ClientID {
		return invalid("code was issued to another client")
	}
	if f.Get("redirect_uri") != rec.RedirectURI {
		return invalid("redirect_uri differs from the authorization request")
	}
	verifier := f.Get("code_verifier")
	switch {
	case rec.CodeChallenge == "" && verifier != "":
		// Accepting it would let a downgrade (challenge stripped from the
		// authorization request) go unnoticed.
		return invalid("code_verifier sent but no code_challenge was")
	case rec.CodeChallenge != "" && verifier == "":
		return invalid("code_verifier is required")
	case rec.CodeChallenge != "" && (!pkceVerifier.MatchString(verifier) || !secretEqual(s256(verifier), rec.CodeChallenge)):
		return invalid("code_verifier does not match code_challenge")
	}
	return rec, nil
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// issueTokens builds the answer, lets the login's scenario alter it, and
// only then stores the access token.
func (s *Server) issueTokens(w http.ResponseWriter, r *http.Request, idp *mockIdP, code string, rec codeRecord) (*tokenResponse, *oauthError) {
	now := s.now()
	at := newSecret()
	atHash, err := keys.HalfHash(jose.ES256, at)
	if err != nil {
		return nil, serverError(r, "at_hash", err)
	}
	step := tokenStep{
		Claims: idTokenClaims{
			Issuer: idp.issuer, Subject: idp.subject(rec.IdentityID), Audience: rec.ClientID,
			Expiry: now.Add(idTokenTTL).Unix(), IssuedAt: now.Unix(), AuthTime: rec.AuthTime.Unix(),
			Nonce: rec.Nonce, ACR: rec.ACR, AMR: []string{"pwd"}, ATHash: atHash, SID: rec.SID,
		},
		Signer: idp.keys,
		Alg:    jose.ES256,
	}
	rec.Scenario.token(&step)
	if step.Err != nil {
		return nil, step.Err
	}
	if step.Delay > 0 {
		// The server's write timeout (30 s in cmd/sesame) would drop the
		// answer to a longer wait: the point is that the client, not the
		// mock, gives up first.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(step.Delay + 10*time.Second))
		t := time.NewTimer(step.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			// The client gave up: issue nothing it will never see.
			return nil, &oauthError{Code: "temporarily_unavailable", Description: "the client went away"}
		}
	}
	payload, err := step.payload()
	if err != nil {
		return nil, serverError(r, "id_token claims", err)
	}
	idToken, err := step.Signer.SignJWT(step.Alg, "", payload)
	if err != nil {
		return nil, serverError(r, "sign id_token", err)
	}
	tr := tokenRecord{ClientID: rec.ClientID, IdentityID: rec.IdentityID, Scopes: rec.Scopes, SID: rec.SID, Scenario: rec.Scenario}
	if idp.tokens.put(hashKey(at), tr, accessTokenTTL) != nil ||
		idp.redeemed.put(hashKey(code), hashKey(at), accessTokenTTL) != nil {
		return nil, &oauthError{Code: "temporarily_unavailable", Description: "too many live tokens; retry shortly"}
	}
	return &tokenResponse{
		AccessToken: at, TokenType: "Bearer", ExpiresIn: int(accessTokenTTL / time.Second),
		IDToken: idToken, Scope: strings.Join(rec.Scopes, " "),
	}, nil
}

// subject is the person's sub at this IdP. Hashing the IdP id in makes each
// IdP give the same person a different sub, as real IdPs do, so the broker
// cannot get away with keying anything on an upstream sub.
func (idp *mockIdP) subject(identityID string) string {
	sum := sha256.Sum256([]byte(idp.cfg.ID + "\x00" + identityID))
	return hex.EncodeToString(sum[:])
}

// serverError logs the cause and returns a bare server_error: the client
// gets no internal detail.
func serverError(r *http.Request, what string, err error) *oauthError {
	slog.ErrorContext(r.Context(), "providers: "+what, "err", err)
	return &oauthError{Code: "server_error"}
}

// tokenError answers a token endpoint error as JSON with its RFC 6749
// status: 401 and a challenge for invalid_client, 500 for server_error,
// 503 when full, 400 otherwise.
func tokenError(w http.ResponseWriter, idp *mockIdP, e *oauthError) {
	status := http.StatusBadRequest
	switch e.Code {
	case "invalid_client":
		status = http.StatusUnauthorized
		w.Header().Set("WWW-Authenticate", `Basic realm="`+idp.issuer+`"`)
	case "server_error":
		status = http.StatusInternalServerError
	case "temporarily_unavailable":
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, e)
}
