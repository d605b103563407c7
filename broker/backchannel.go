package broker

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/sesame-id/sesame/broker/identity"
	"github.com/sesame-id/sesame/broker/session"
)

const (
	// backchannelEvent marks a logout token (Back-Channel Logout 1.0 §2.4).
	backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"
	// backchannelLife bounds how long a logout token is valid.
	backchannelLife = 2 * time.Minute
	// backchannelSlots bounds deliveries under way per platform; past it a
	// delivery is dropped and logged rather than queued without end.
	backchannelSlots = 64
)

// backchannelBackoff are the waits before each retry of a delivery that
// failed (unreachable SP, timeout, 5xx, 429): five retries within 16 s,
// well inside the logout token's life. A 4xx other than 429 is the SP
// refusing the token, and is not retried.
var backchannelBackoff = []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}

// backchannelClient posts logout tokens: short timeout, no redirects, so a
// dead or slow SP costs a goroutine for 5 s at most.
var backchannelClient = &http.Client{
	Timeout:       5 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// logoutClaims is a logout token: no nonce, an events claim, sid and sub.
type logoutClaims struct {
	Issuer   string              `json:"iss"`
	Audience string              `json:"aud"`
	IssuedAt int64               `json:"iat"`
	Expiry   int64               `json:"exp"`
	JTI      string              `json:"jti"`
	Subject  string              `json:"sub"`
	SID      string              `json:"sid"`
	Events   map[string]struct{} `json:"events"`
}

// notifyLogout tells every SP of the ended session that registered a
// back-channel logout URI, asynchronously: the citizen's logout never
// waits on an SP, and an SP that is down does not stop it.
func (p *Platform) notifyLogout(ctx context.Context, sess *session.Session) {
	if sess.Login == nil {
		return
	}
	for _, id := range sess.Clients {
		sp, ok := p.reg(ctx).Client(id)
		if !ok || sp.BackchannelLogoutURI == "" {
			continue
		}
		now := time.Now()
		token, err := p.signer.SignJWT(jose.SignatureAlgorithm(sp.IDTokenSignedResponseAlg), "logout+jwt", logoutClaims{
			Issuer: p.cfg.Issuer, Audience: sp.ClientID, IssuedAt: now.Unix(), Expiry: now.Add(backchannelLife).Unix(),
			JTI: session.NewID(), SID: sess.SID,
			Subject: identity.Sub(p.subSecret, sp.Sector, sess.Login.Identity.Hash()),
			Events:  map[string]struct{}{backchannelEvent: {}},
		})
		if err != nil {
			p.log.Error("sign logout token", "client_id", sp.ClientID, "err", err)
			continue
		}
		select {
		case p.backchannelSlots <- struct{}{}:
			go func(uri, clientID string) {
				defer func() { <-p.backchannelSlots }()
				p.deliverLogout(uri, clientID, token)
			}(sp.BackchannelLogoutURI, sp.ClientID)
		default:
			p.log.Warn("back-channel logout dropped: too many deliveries under way", "client_id", sp.ClientID)
		}
	}
}

// deliverLogout posts a logout token, retrying with backoff while the SP
// is unreachable or failing.
func (p *Platform) deliverLogout(uri, clientID, token string) {
	for attempt := 0; ; attempt++ {
		retry, err := postLogout(uri, token)
		if err == nil {
			return
		}
		if !retry || attempt >= len(backchannelBackoff) {
			p.log.Warn("back-channel logout not delivered", "client_id", clientID, "attempts", attempt+1, "err", err)
			return
		}
		time.Sleep(backchannelBackoff[attempt])
	}
}

// postLogout makes one delivery and says whether a failure is worth a
// retry.
func postLogout(uri, token string) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), backchannelClient.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, uri, strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := backchannelClient.Do(req)
	if err != nil {
		return true, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNoContent:
		return false, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return true, fmt.Errorf("status %d", resp.StatusCode)
	default:
		return false, fmt.Errorf("refused with status %d", resp.StatusCode)
	}
}
