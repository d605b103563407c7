// Package dpop implements OAuth 2.0 Demonstrating Proof of Possession
// (DPoP, RFC 9449) for both ends of Sésame: the broker verifies the proofs
// a client sends (Verify, Nonces), the demo SP makes them (NewProof).
//
// A DPoP proof is a JWT the client signs, for one HTTP request, with a key
// whose public half travels in the proof's own header. A code or token bound
// to that key's thumbprint (Proof.JKT) is worthless to whoever steals it
// without the private key: that is the whole point, so every check of
// RFC 9449 §4.3 that this package can make alone, it makes.
//
// One check it cannot make alone is replay: a proof's jti must be used once
// within the window its iat allows, which takes a store shared by every
// replica. Verify returns JTI and IssuedAt so that the caller can record
// the jti (for about twice Check.Window) and refuse a second use.
//
// All JOSE work (parsing, signature checks, signing, thumbprints) is done
// by go-jose; this package only decides what is acceptable.
package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// HeaderName is the HTTP header that carries a proof (RFC 9449 §4.1), and
// NonceHeader the one a server sends its nonce in (§8).
const (
	HeaderName  = "DPoP"
	NonceHeader = "DPoP-Nonce"
)

// JWTType is the typ header every proof must carry (RFC 9449 §4.2): it is
// what keeps another kind of JWT signed by the same key (an id_token, a
// client assertion) from being passed off as a proof.
const JWTType = "dpop+jwt"

// MaxProofSize bounds a proof before it is parsed: an honest proof with an
// RSA 4096 key is under 2 KiB, and nothing larger deserves CPU time.
const MaxProofSize = 8 << 10

// MaxJTILength bounds the jti, which the caller stores for replay checks:
// an unbounded one would let a client fill that store.
const MaxJTILength = 256

// DefaultWindow is the accepted distance between a proof's iat and now when
// Check.Window is zero: RFC 9449 §11.1 leaves it to the server, and a minute
// covers clock skew and a slow network without keeping jtis for long.
const DefaultWindow = 60 * time.Second

// minRSABits is the smallest RSA key accepted in a proof's jwk: a weaker
// key could be factored and the binding forged.
const minRSABits = 2048

// DefaultAlgs are the algorithms accepted when Check.Algs is empty. RS256
// is left out on purpose (PKCS #1 v1.5 is what FAPI 2.0 forbids); a server
// that must accept it lists it in Check.Algs.
var DefaultAlgs = []jose.SignatureAlgorithm{
	jose.ES256, jose.ES384, jose.ES512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.EdDSA,
}

// asymmetric are the only algorithms a proof may ever use, whatever
// Check.Algs says: RFC 9449 §4.3 forbids none and MACs, since a MAC key
// cannot be published in the proof without handing it to everyone.
var asymmetric = []jose.SignatureAlgorithm{
	jose.ES256, jose.ES384, jose.ES512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.RS256, jose.RS384, jose.RS512,
	jose.EdDSA,
}

// ErrInvalidProof is wrapped, with the reason, by every refusal of Verify
// except a missing or stale nonce: the caller answers it with the
// invalid_dpop_proof error (RFC 9449 §7.1, §5).
var ErrInvalidProof = errors.New("dpop: invalid proof")

// ErrUseNonce means the proof is otherwise good but carries no nonce, or
// one the server no longer accepts: the caller answers use_dpop_nonce with
// a fresh nonce in the DPoP-Nonce header (RFC 9449 §8), and the client
// tries again with it.
var ErrUseNonce = errors.New("dpop: a fresh server nonce is required")

// Check is what the server expects of one proof: the request it arrived
// with, and the server's rules.
type Check struct {
	// Method is the request's HTTP method, compared exactly with htm.
	Method string
	// URL is the request's target URI as the server knows itself (its
	// public issuer URL, not the listener's address), compared with htu
	// without query and fragment, after RFC 3986 syntax normalisation.
	URL string
	// AccessToken, when set, is the access token presented with the
	// request (resource access, RFC 9449 §7): the proof must then carry
	// ath = base64url(SHA-256(AccessToken)). When empty, ath is ignored.
	AccessToken string
	// Now is the server's time; zero means time.Now().
	Now time.Time
	// Window is the accepted |Now - iat|; zero means DefaultWindow.
	Window time.Duration
	// Algs are the accepted signature algorithms; empty means DefaultAlgs.
	// Symmetric algorithms and none are refused even when listed.
	Algs []jose.SignatureAlgorithm
	// Nonce, when non-nil, makes a server nonce mandatory: the proof must
	// carry a nonce for which it returns true (Nonces.Valid, typically),
	// or Verify returns ErrUseNonce.
	Nonce func(nonce string) bool
}

// Proof is what a verified proof tells the server.
type Proof struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of the proof's key,
	// base64url: the value a code or token is bound to (cnf.jkt).
	JKT string
	// JTI is the proof's unique id, for the caller's replay store.
	JTI string
	// IssuedAt is the proof's iat: the caller keeps the jti until
	// IssuedAt + Window has passed, after which Verify refuses it anyway.
	IssuedAt time.Time
	// Nonce is the server nonce the proof carried, if any.
	Nonce string
}

// claims are a proof's payload (RFC 9449 §4.2). Pointers tell an absent
// claim from an empty one.
type claims struct {
	JTI   *string          `json:"jti"`
	HTM   *string          `json:"htm"`
	HTU   *string          `json:"htu"`
	IAT   *jwt.NumericDate `json:"iat"`
	ATH   *string          `json:"ath"`
	Nonce *string          `json:"nonce"`
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidProof, fmt.Sprintf(format, args...))
}

// FromHeader returns the request's DPoP proof. RFC 9449 §4.3 requires that
// there be not more than one DPoP header: two (or one holding a list) are
// refused, since a server that picked one of them could be told to verify
// a different proof than a proxy in front of it logged. present is false
// when there is none.
func FromHeader(h http.Header) (proof string, present bool, err error) {
	vals := h.Values(HeaderName)
	switch {
	case len(vals) == 0:
		return "", false, nil
	case len(vals) > 1:
		return "", true, invalid("more than one DPoP header")
	}
	return vals[0], true, nil
}

// Verify checks a DPoP proof against the request it came with and returns
// what the server needs from it. It makes every check of RFC 9449 §4.3
// except jti replay, which is the caller's (see the package doc). A
// refusal wraps ErrInvalidProof or is ErrUseNonce; an unusable Check (a
// URL the server cannot parse) is an error that wraps neither, because it
// is the server's fault, not the client's.
func Verify(proof string, c Check) (*Proof, error) {
	want, err := normalizeHTU(c.URL)
	if err != nil {
		return nil, fmt.Errorf("dpop: Check.URL: %w", err)
	}
	if len(proof) > MaxProofSize {
		return nil, invalid("proof over %d bytes", MaxProofSize)
	}
	// Exactly one compact JWS: three parts. A JWE has five, the JSON
	// serialisations none; neither is a proof.
	if strings.Count(proof, ".") != 2 {
		return nil, invalid("not a JWS in compact form")
	}
	algs := c.Algs
	if len(algs) == 0 {
		algs = DefaultAlgs
	}
	jws, err := jose.ParseSignedCompact(proof, algs)
	if err != nil {
		return nil, invalid("%v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, invalid("exactly one signature is required")
	}
	h := jws.Signatures[0].Protected
	// Exactly dpop+jwt: RFC 9449 §4.2 fixes that spelling, and a proof
	// that any other spelling passes is a JWT made for something else.
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != JWTType {
		return nil, invalid("typ %v, want %q", h.ExtraHeaders[jose.HeaderType], JWTType)
	}
	// ParseSignedCompact already kept to algs; this refuses a caller's
	// list that names a MAC or none.
	if !slices.Contains(asymmetric, jose.SignatureAlgorithm(h.Algorithm)) {
		return nil, invalid("alg %q is not an asymmetric signature", h.Algorithm)
	}
	jwk := h.JSONWebKey
	if jwk == nil {
		return nil, invalid("no jwk header")
	}
	// go-jose refuses private parameters when it parses a header jwk; this
	// says so again here, because publishing a private key is exactly what
	// must never be accepted as a binding.
	if !jwk.IsPublic() || !jwk.Valid() {
		return nil, invalid("the jwk header is not a valid public key")
	}
	if k, ok := jwk.Key.(*rsa.PublicKey); ok && k.N.BitLen() < minRSABits {
		return nil, invalid("RSA key of %d bits, %d at least", k.N.BitLen(), minRSABits)
	}
	payload, err := jws.Verify(jwk)
	if err != nil {
		return nil, invalid("signature: %v", err)
	}
	var cl claims
	if err := json.Unmarshal(payload, &cl); err != nil {
		return nil, invalid("claims: %v", err)
	}

	switch {
	case cl.JTI == nil || *cl.JTI == "":
		return nil, invalid("no jti")
	case len(*cl.JTI) > MaxJTILength:
		return nil, invalid("jti over %d bytes", MaxJTILength)
	case cl.HTM == nil || *cl.HTM != c.Method:
		return nil, invalid("htm is not %s", c.Method)
	case cl.HTU == nil:
		return nil, invalid("no htu")
	}
	got, err := normalizeHTU(*cl.HTU)
	if err != nil {
		return nil, invalid("htu: %v", err)
	}
	if got != want {
		return nil, invalid("htu %q is not this request's %q", *cl.HTU, c.URL)
	}

	now, window := c.Now, c.Window
	if now.IsZero() {
		now = time.Now()
	}
	if window <= 0 {
		window = DefaultWindow
	}
	if cl.IAT == nil {
		return nil, invalid("no iat")
	}
	iat := cl.IAT.Time()
	if d := now.Sub(iat); d > window || d < -window {
		return nil, invalid("iat %s is more than %s away from now", iat.UTC().Format(time.RFC3339), window)
	}

	if c.AccessToken != "" {
		sum := sha256.Sum256([]byte(c.AccessToken))
		ath := base64.RawURLEncoding.EncodeToString(sum[:])
		if cl.ATH == nil || subtle.ConstantTimeCompare([]byte(*cl.ATH), []byte(ath)) != 1 {
			return nil, invalid("ath missing or not the hash of the access token")
		}
	}

	jkt, err := Thumbprint(*jwk)
	if err != nil {
		return nil, invalid("%v", err)
	}
	p := &Proof{JKT: jkt, JTI: *cl.JTI, IssuedAt: iat}
	if cl.Nonce != nil {
		p.Nonce = *cl.Nonce
	}
	// The nonce comes last: use_dpop_nonce tells the client to try again
	// with a nonce, which only helps a proof that is good otherwise.
	if c.Nonce != nil && (p.Nonce == "" || !c.Nonce(p.Nonce)) {
		return nil, ErrUseNonce
	}
	return p, nil
}

// normalizeHTU applies RFC 3986 §6.2.2 syntax-based normalisation to an
// http(s) URI and drops its query and fragment, which RFC 9449 §4.3 leaves
// out of the comparison: a lower-case scheme and host, no default port,
// "/" for an empty path, dot segments removed, and percent-encodings in
// one form (unreserved characters decoded, hex digits upper-case).
func normalizeHTU(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return "", fmt.Errorf("%q is not an absolute http(s) URI", raw)
	}
	if u.User != nil {
		// No request target has userinfo; one in htu is not this request.
		return "", fmt.Errorf("%q has userinfo", raw)
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	path, err := normalizePercent(u.EscapedPath())
	if err != nil {
		return "", err
	}
	if path == "" {
		path = "/"
	}
	return u.Scheme + "://" + host + removeDotSegments(path), nil
}

// removeDotSegments is RFC 3986 §5.2.4 for an absolute path: "." segments
// go, ".." removes the segment before it, and a path ending in either
// keeps its trailing slash. Empty segments ("//") are kept: they are part
// of what the server routes on.
func removeDotSegments(path string) string {
	segs := strings.Split(path, "/")[1:]
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, s)
			continue
		}
		if last {
			out = append(out, "")
		}
	}
	return "/" + strings.Join(out, "/")
}

// normalizePercent decodes percent-encoded unreserved characters and
// upper-cases the hex digits of the others (RFC 3986 §6.2.2.1, §6.2.2.2),
// so that two spellings of one path compare equal and nothing else does.
func normalizePercent(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "", fmt.Errorf("bad percent-encoding in %q", s)
		}
		c := unhex(s[i+1])<<4 | unhex(s[i+2])
		if isUnreserved(c) {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteString(strings.ToUpper(s[i+1 : i+3]))
		}
		i += 2
	}
	return b.String(), nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of a key's public half,
// base64url without padding: the jkt that RFC 9449 binds codes and tokens
// to, computed the same way by the client and the server. A private key
// gives the thumbprint of its public key; a symmetric key is an error.
func Thumbprint(jwk jose.JSONWebKey) (string, error) {
	pub := jwk.Public()
	if !pub.Valid() || !pub.IsPublic() {
		return "", errors.New("dpop: thumbprint: not an asymmetric key")
	}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("dpop: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// proofClaims are the claims NewProof signs.
type proofClaims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	ATH   string `json:"ath,omitempty"`
	Nonce string `json:"nonce,omitempty"`
}

// NewProof makes a proof for one request (RFC 9449 §4.2), signed with the
// client's private key, whose public half goes in the jwk header. htu is
// rawURL without its query and fragment. accessToken, when set, adds ath
// (for a resource request, §7); nonce, when set, is the server's latest
// DPoP-Nonce (§8). Each proof has a fresh random jti, so the server can
// refuse a replayed one.
//
// The algorithm is the key's Algorithm, or else follows from the key:
// ES256/ES384/ES512 by curve, EdDSA for Ed25519, PS256 for RSA.
func NewProof(key jose.JSONWebKey, method, rawURL, accessToken, nonce string) (string, error) {
	if key.IsPublic() || !key.Valid() {
		return "", errors.New("dpop: NewProof needs a valid private key")
	}
	alg, err := signingAlg(key)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(rawURL)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return "", fmt.Errorf("dpop: htu %q is not an absolute URL", rawURL)
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	c := proofClaims{
		JTI: rand.Text(), HTM: method, HTU: u.String(),
		IAT: time.Now().Unix(), Nonce: nonce,
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		c.ATH = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType(JWTType)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		return "", fmt.Errorf("dpop: signer: %w", err)
	}
	out, err := jwt.Signed(signer).Claims(c).Serialize()
	if err != nil {
		return "", fmt.Errorf("dpop: sign: %w", err)
	}
	return out, nil
}

// signingAlg picks a key's algorithm, refusing one a server would refuse.
func signingAlg(key jose.JSONWebKey) (jose.SignatureAlgorithm, error) {
	if key.Algorithm != "" {
		alg := jose.SignatureAlgorithm(key.Algorithm)
		if !slices.Contains(asymmetric, alg) {
			return "", fmt.Errorf("dpop: alg %q is not an asymmetric signature", alg)
		}
		return alg, nil
	}
	switch k := key.Key.(type) {
	case *ecdsa.PrivateKey:
		switch k.Curve.Params().BitSize {
		case 256:
			return jose.ES256, nil
		case 384:
			return jose.ES384, nil
		case 521:
			return jose.ES512, nil
		}
	case ed25519.PrivateKey:
		return jose.EdDSA, nil
	case *rsa.PrivateKey:
		return jose.PS256, nil
	}
	return "", fmt.Errorf("dpop: no signature algorithm for a %T", key.Key)
}
