package broker

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/sesame-id/sesame/broker/oidcerr"
	"github.com/sesame-id/sesame/internal/dpop"
)

// dpopNoncePeriod is how long a server nonce is fresh (it stays valid for
// one more period): short, as RFC 9449 §8 wants, yet long enough for a
// login's PAR, token and userinfo calls.
const dpopNoncePeriod = 2 * time.Minute

// newDPoPNonces makes the platform's nonce source. Its key is derived from
// the sub secret, which every replica shares, so a nonce from one replica
// is good at another without a store.
func newDPoPNonces(subSecret []byte, namespace string) (*dpop.Nonces, error) {
	m := hmac.New(sha256.New, subSecret)
	m.Write([]byte("sesame dpop nonce key\x00" + namespace))
	return dpop.NewNonces(m.Sum(nil), dpopNoncePeriod)
}

// dpopAlgs lists the proof algorithms we take, for discovery and the
// DPoP challenge.
func dpopAlgs() []string {
	out := make([]string, len(dpop.DefaultAlgs))
	for i, a := range dpop.DefaultAlgs {
		out[i] = string(a)
	}
	return out
}

// dpopProof verifies the request's DPoP proof, if it has one, and records
// its jti so it is used once across replicas (see checkDPoP and
// spendDPoP); it returns the key's thumbprint, "" when there is no proof.
func (p *Platform) dpopProof(w http.ResponseWriter, r *http.Request, path, accessToken string) (string, *oidcerr.Error) {
	proof, oerr := p.checkDPoP(w, r, path, accessToken)
	if oerr == nil && proof != nil {
		oerr = p.spendDPoP(r, proof)
	}
	if oerr != nil || proof == nil {
		return "", oerr
	}
	return proof.JKT, nil
}

// checkDPoP verifies the request's DPoP proof for the endpoint at path
// (with the access token, at a resource), without touching the store: at
// PAR and token it runs before the client's assertion is spent, so a
// client told to use a nonce can retry with the same assertion, as some
// libraries do. nil when the request sent no proof.
func (p *Platform) checkDPoP(w http.ResponseWriter, r *http.Request, path, accessToken string) (*dpop.Proof, *oidcerr.Error) {
	if p.nonces != nil {
		// A fresh nonce on every answer, so a client never needs a
		// failed call to learn the next one (§8.2).
		w.Header().Set(dpop.NonceHeader, p.nonces.Issue(time.Now()))
	}
	raw, present, err := dpop.FromHeader(r.Header)
	if err != nil {
		return nil, oidcerr.New(oidcerr.InvalidDPoPProof, "send one DPoP header").WithCause(err)
	}
	if !present {
		return nil, nil
	}
	c := dpop.Check{Method: r.Method, URL: p.cfg.Issuer + path, AccessToken: accessToken}
	if p.nonces != nil {
		c.Nonce = func(n string) bool { return p.nonces.Valid(n, time.Now()) }
	}
	proof, err := dpop.Verify(raw, c)
	switch {
	case errors.Is(err, dpop.ErrUseNonce):
		return nil, oidcerr.New(oidcerr.UseDPoPNonce, "use the DPoP-Nonce this server sent").WithCause(err)
	case err != nil:
		return nil, oidcerr.New(oidcerr.InvalidDPoPProof, "the DPoP proof is invalid").WithCause(err)
	}
	return proof, nil
}

// spendDPoP records a verified proof's jti, refusing one already used.
func (p *Platform) spendDPoP(r *http.Request, proof *dpop.Proof) *oidcerr.Error {
	return p.spend(r, p.dpopOnce(proof))
}

// dpopOnce is the one-time marker of a proof's jti; nil for no proof.
func (p *Platform) dpopOnce(proof *dpop.Proof) *oneTime {
	if proof == nil {
		return nil
	}
	return &oneTime{
		entry:    p.sessions.Marker("dpop-jti", proof.JKT+"\x00"+proof.JTI, "1", 2*dpop.DefaultWindow),
		replayed: oidcerr.New(oidcerr.InvalidDPoPProof, "the DPoP proof was already used"),
	}
}

// resourceError answers a userinfo (resource) error in the scheme the
// client used: a DPoP challenge, or a Bearer one.
func (p *Platform) resourceError(w http.ResponseWriter, scheme string, e *oidcerr.Error) {
	p.metrics.oauthError(p.cfg.ID, "userinfo", e.Code)
	if e.Status >= 500 {
		e.WriteJSON(w)
		return
	}
	// A platform that binds every token challenges in DPoP, so clients
	// are pointed at the scheme they must use (RFC 9449 §7.1).
	if scheme == "DPoP" || p.cfg.RequiresDPoP() || e.Code == oidcerr.InvalidDPoPProof || e.Code == oidcerr.UseDPoPNonce {
		e.WriteDPoP(w, strings.Join(dpopAlgs(), " "))
		return
	}
	e.WriteBearer(w)
}
