package demosp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/sesame-id/sesame/internal/web"
)

// assertionType is RFC 7523's client_assertion_type for a JWT.
const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// maxUserInfo caps a userinfo answer: an identity is a few hundred bytes.
const maxUserInfo = 1 << 20

// exchange redeems the code. With private_key_jwt the demo SP proves who it
// is with a fresh signed assertion (RFC 7523 §2.2) addressed to this token
// endpoint only, and sends no secret at all.
//
// With DPoP, x/oauth2 sends the request through the platform's client,
// whose transport adds the proof; a use_dpop_nonce answer is tried once
// more, with a new assertion (its jti may already be spent) and the nonce
// the transport kept. The token must then be a DPoP one: a bearer token
// where DPoP was asked for means the binding was dropped, and is refused.
func (a *App) exchange(ctx context.Context, p *platform, d *discovery, code, verifier string) (*oauth2.Token, error) {
	if p.dpop {
		ctx = oidc.ClientContext(ctx, p.calls)
	}
	for attempt := 0; ; attempt++ {
		opts := []oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)}
		if p.authMethod == authPrivateKeyJWT {
			assertion, err := a.keys.clientAssertion(p.clientID, d.tokenURL, time.Now())
			if err != nil {
				return nil, err
			}
			opts = append(opts,
				oauth2.SetAuthURLParam("client_assertion_type", assertionType),
				oauth2.SetAuthURLParam("client_assertion", assertion))
		}
		tok, err := d.oauth.Exchange(ctx, code, opts...)
		var re *oauth2.RetrieveError
		if p.dpop && attempt == 0 && errors.As(err, &re) && re.Response != nil && useNonce(re.ErrorCode, re.Response.Header) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if p.dpop && !strings.EqualFold(tok.TokenType, "DPoP") {
			return nil, fmt.Errorf("the token endpoint answered token_type %q, not DPoP: the token is not bound to the demo SP's key", tok.TokenType)
		}
		return tok, nil
	}
}

// verifyIDToken opens the id_token and lets go-oidc check the signature (with
// the platform's algorithms only), iss, aud and exp. On "+" the id_token must
// be a JWE: a signed but unencrypted one is refused, however valid, because
// an SP that accepts clear text when encryption is due would never notice a
// broker, or an attacker in between, dropping it. The standard platform
// accepts either. It returns the verified token, the signed JWT (the
// id_token_hint for logout: OIDC Core §3.1.2.1 asks for the decrypted one)
// and how it was encrypted.
func (a *App) verifyIDToken(ctx context.Context, p *platform, d *discovery, raw string) (*oidc.IDToken, string, *jweInfo, error) {
	signed, info, err := a.open(p, raw)
	if err != nil {
		return nil, "", nil, err
	}
	idt, err := d.verifier.Verify(ctx, signed)
	if err != nil {
		return nil, "", nil, err
	}
	return idt, signed, info, nil
}

// open returns the JWS a token is or holds: it decrypts a JWE, and refuses a
// bare JWS where the platform requires encryption.
func (a *App) open(p *platform, raw string) (string, *jweInfo, error) {
	raw = strings.TrimSpace(raw)
	if !isJWE(raw) {
		if p.plus {
			return "", nil, errPlain
		}
		return raw, nil, nil
	}
	signed, info, err := a.keys.decrypt(raw)
	if err != nil {
		return "", nil, err
	}
	return signed, &info, nil
}

// cryptoPage picks the page for a failure to open a token: its own for a
// token in clear or one this SP cannot decrypt, def for anything else.
func cryptoPage(err error, def web.Error) web.Error {
	switch {
	case errors.Is(err, errPlain):
		return errNotEncrypted
	case errors.Is(err, errUndecryptable):
		return errDecrypt
	}
	return def
}

// userInfoResult is a checked userinfo answer.
type userInfoResult struct {
	claims  json.RawMessage
	subject string
	signed  bool     // it came as a signed JWT
	jwe     *jweInfo // how it was encrypted, if it was
}

// userInfo fetches the identity. The demo SP does the request itself rather
// than through go-oidc, which knows neither JWE nor the "+" rules:
//
//   - application/json is accepted on the standard platform only;
//   - application/jwt holds a JWS, or a JWE holding a JWS; on "+" only the
//     JWE is accepted;
//   - the JWS is verified against the issuer's jwks_uri with the platform's
//     algorithms (ES256 only on "+");
//   - on "+", iss must be the issuer and aud must name this client; on the
//     standard platform they are checked when present (OIDC Core §5.3.2).
//
// The sub is compared with the id_token's by the caller.
func (a *App) userInfo(ctx context.Context, p *platform, d *discovery, tok *oauth2.Token) (*userInfoResult, error) {
	if d.userinfoURL == "" {
		return nil, errors.New("the provider advertises no userinfo_endpoint")
	}
	ctx, cancel := context.WithTimeout(ctx, httpTimeout)
	defer cancel()
	resp, body, err := getUserInfo(ctx, p, d, tok)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("userinfo answered %s", resp.Status)
	}
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil {
		return nil, fmt.Errorf("userinfo content type: %w", err)
	}
	res := &userInfoResult{}
	switch mt {
	case "application/json":
		if p.plus {
			return nil, errPlain
		}
		res.claims = body
	case "application/jwt":
		signed, info, err := a.open(p, string(body))
		if err != nil {
			return nil, err
		}
		res.jwe, res.signed = info, true
		if res.claims, err = d.verifyJWS(ctx, p, signed); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("userinfo content type %q is neither application/json nor application/jwt", mt)
	}
	var c struct {
		Subject string `json:"sub"`
	}
	if err := json.Unmarshal(res.claims, &c); err != nil {
		return nil, fmt.Errorf("userinfo is not a JSON object: %w", err)
	}
	if c.Subject == "" {
		return nil, errors.New("userinfo has no sub")
	}
	res.subject = c.Subject
	if err := checkUserInfoClaims(p, res.claims, p.plus); err != nil {
		return nil, err
	}
	return res, nil
}

// getUserInfo sends the userinfo request and reads the answer. With DPoP
// the token goes as "Authorization: DPoP" (RFC 9449 §7.1), which tells the
// platform's transport to put its hash (ath) in the proof; a 401 asking
// for a nonce is tried once more, with the nonce the transport kept.
func getUserInfo(ctx context.Context, p *platform, d *discovery, tok *oauth2.Token) (*http.Response, []byte, error) {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.userinfoURL, nil)
		if err != nil {
			return nil, nil, err
		}
		if p.dpop {
			req.Header.Set("Authorization", "DPoP "+tok.AccessToken)
		} else {
			tok.SetAuthHeader(req)
		}
		req.Header.Set("Accept", "application/jwt, application/json;q=0.9")
		resp, err := p.calls.Do(req)
		if err != nil {
			return nil, nil, err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxUserInfo+1))
		resp.Body.Close()
		if err != nil {
			return nil, nil, err
		}
		if len(body) > maxUserInfo {
			return nil, nil, errors.New("userinfo answer over 1 MiB")
		}
		if p.dpop && attempt == 0 && resourceUseNonce(resp) {
			continue
		}
		return resp, body, nil
	}
}

// verifyJWS checks a compact JWS's signature against the issuer's keys,
// with the platform's algorithms only, and returns its payload.
func (d *discovery) verifyJWS(ctx context.Context, p *platform, raw string) ([]byte, error) {
	var algs []jose.SignatureAlgorithm
	for _, alg := range p.sigAlgs() {
		algs = append(algs, jose.SignatureAlgorithm(alg))
	}
	jws, err := jose.ParseSignedCompact(raw, algs)
	if err != nil {
		return nil, fmt.Errorf("userinfo JWS: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("userinfo JWS: exactly one signature is required")
	}
	return d.keySet.VerifySignature(ctx, raw)
}

// checkUserInfoClaims applies OIDC Core 5.3.2: a userinfo from another
// issuer, or meant for another client, must not feed this one. strict makes
// iss and aud mandatory, as they are on "+".
func checkUserInfoClaims(p *platform, raw json.RawMessage, strict bool) error {
	var c struct {
		Issuer   *string         `json:"iss"`
		Audience json.RawMessage `json:"aud"`
		Expiry   *float64        `json:"exp"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return err
	}
	switch {
	case c.Issuer == nil && strict:
		return errors.New("userinfo has no iss")
	case c.Issuer != nil && *c.Issuer != p.issuer:
		return errors.New("userinfo iss is not the issuer")
	}
	if c.Expiry != nil && time.Unix(int64(*c.Expiry), 0).Before(time.Now()) {
		return errors.New("userinfo has expired")
	}
	if len(c.Audience) == 0 {
		if strict {
			return errors.New("userinfo has no aud")
		}
		return nil
	}
	var one string
	var many []string
	if json.Unmarshal(c.Audience, &one) == nil {
		many = []string{one}
	} else if err := json.Unmarshal(c.Audience, &many); err != nil {
		return errors.New("userinfo aud is neither a string nor a list")
	}
	if !slices.Contains(many, p.clientID) {
		return errors.New("userinfo aud does not name this client")
	}
	return nil
}
