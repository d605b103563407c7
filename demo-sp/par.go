package demosp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxOAuthAnswer caps a PAR answer: a request_uri and a lifetime.
const maxOAuthAnswer = 64 << 10

// oauthError is an OAuth error answer (RFC 6749 §5.2, RFC 9126 §2.3).
type oauthError struct {
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

// parRefused is a PAR request the provider answered with an OAuth error:
// the login page shows it as the provider's own refusal, as it would an
// error sent back to the callback (a level the platform refuses, say).
type parRefused struct {
	status int
	oauthError
}

func (e *parRefused) Error() string {
	return fmt.Sprintf("PAR refused (%d): %s: %s", e.status, e.Code, e.Description)
}

// pushAuthorization makes a pushed authorization request (RFC 9126): the
// authorization parameters that would have gone in the browser's URL go
// to the provider directly, with the client's authentication (and, with
// DPoP, a proof that binds the code to the demo SP's key, RFC 9449 §10),
// and the browser gets only client_id and the request_uri that stands for
// them. authCodeURL is the URL the flow would otherwise redirect to, so
// both paths send exactly the same parameters.
func (a *App) pushAuthorization(ctx context.Context, p *platform, d *discovery, authCodeURL string) (string, error) {
	u, err := url.Parse(authCodeURL)
	if err != nil {
		return "", err
	}
	params := u.Query()
	var answer struct {
		RequestURI string `json:"request_uri"`
		ExpiresIn  int64  `json:"expires_in"`
	}
	for attempt := 0; ; attempt++ {
		// RFC 9126 §2: the PAR endpoint accepts the issuer as the
		// assertion's audience.
		status, header, body, err := a.postAuthenticated(ctx, p, d.parURL, params, p.issuer)
		if err != nil {
			return "", fmt.Errorf("PAR: %w", err)
		}
		if status == http.StatusCreated {
			if err := json.Unmarshal(body, &answer); err != nil {
				return "", fmt.Errorf("PAR answer: %w", err)
			}
			break
		}
		var oe oauthError
		if json.Unmarshal(body, &oe) != nil || oe.Code == "" {
			return "", fmt.Errorf("PAR answered %d without an OAuth error", status)
		}
		if p.dpop && attempt == 0 && useNonce(oe.Code, header) {
			continue // the transport kept the nonce: once more with it
		}
		return "", &parRefused{status: status, oauthError: oe}
	}
	if !strings.HasPrefix(answer.RequestURI, "urn:ietf:params:oauth:request_uri:") || answer.ExpiresIn <= 0 {
		return "", fmt.Errorf("PAR answer: request_uri %q, expires_in %d", answer.RequestURI, answer.ExpiresIn)
	}
	q := url.Values{"client_id": {p.clientID}, "request_uri": {answer.RequestURI}}
	dest := d.oauth.Endpoint.AuthURL
	if strings.Contains(dest, "?") {
		return dest + "&" + q.Encode(), nil
	}
	return dest + "?" + q.Encode(), nil
}

// postAuthenticated POSTs form to endpoint as the client: with
// private_key_jwt, a fresh assertion for audience (so that a second try
// never replays the first one's jti); with client_secret_basic, the
// secret in the header (RFC 6749 §2.3.1). It returns the answer, read.
func (a *App) postAuthenticated(ctx context.Context, p *platform, endpoint string, form url.Values, audience string) (int, http.Header, []byte, error) {
	body := url.Values{}
	for k, v := range form {
		body[k] = v
	}
	body.Set("client_id", p.clientID)
	if p.authMethod == authPrivateKeyJWT {
		assertion, err := a.keys.clientAssertion(p.clientID, audience, time.Now())
		if err != nil {
			return 0, nil, nil, err
		}
		body.Set("client_assertion_type", assertionType)
		body.Set("client_assertion", assertion)
	}
	ctx, cancel := context.WithTimeout(ctx, httpTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(body.Encode()))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if p.authMethod == authSecretBasic {
		req.SetBasicAuth(url.QueryEscape(p.clientID), url.QueryEscape(p.clientSecret))
	}
	resp, err := p.calls.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxOAuthAnswer+1))
	if err != nil {
		return 0, nil, nil, err
	}
	if len(raw) > maxOAuthAnswer {
		return 0, nil, nil, errors.New("answer over 64 KiB")
	}
	return resp.StatusCode, resp.Header, raw, nil
}
