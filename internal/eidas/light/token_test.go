package light

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

// The test vector of CZ-NIC's django-eidas-specific-node (an independent
// implementation, eidas_node/tests/test_models.py TestLightToken): the
// same id, issuer, time and secret must give the same token, byte for
// byte. Its secret is shorter than NewToken allows, hence the literal.
var czNIC = struct {
	id, issuer, secret, digest, token string
	at                                time.Time
}{
	id:     "852a64c0-8ac1-445f-b0e1-992ada493033",
	issuer: IssuerConnectorRequest,
	secret: "mySecretConnectorRequest",
	digest: "7M8p+uP8CKXuMi2IqSda1tg452WlRvcOSwu0dcisSYE=",
	token: "c3BlY2lmaWNDb21tdW5pY2F0aW9uRGVmaW5pdGlvbkNvbm5lY3RvclJlcXVlc3R8ODUyYTY0YzAtOGFjMS0" +
		"0NDVmLWIwZTEtOTkyYWRhNDkzMDMzfDIwMTctMTItMTEgMTQ6MTI6MDUgMTQ4fDdNOHArdVA4Q0tYdU1pMk" +
		"lxU2RhMXRnNDUyV2xSdmNPU3d1MGRjaXNTWUU9",
	at: time.Date(2017, 12, 11, 14, 12, 5, 148_000_000, time.UTC),
}

func TestTokenVectorCZNIC(t *testing.T) {
	tok := Token{Issuer: czNIC.issuer, Secret: czNIC.secret}
	if got := base64.StdEncoding.EncodeToString(tok.digest(czNIC.id, "2017-12-11 14:12:05 148")); got != czNIC.digest {
		t.Errorf("digest = %s, want %s", got, czNIC.digest)
	}
	if got := tok.Make(czNIC.id, czNIC.at); got != czNIC.token {
		t.Errorf("Make =\n %s\nwant\n %s", got, czNIC.token)
	}
	id, err := tok.Parse(czNIC.token, czNIC.at.Add(time.Second))
	if err != nil || id != czNIC.id {
		t.Fatalf("Parse = %q, %v; want %q", id, err, czNIC.id)
	}
	// CZ-NIC's wrong-digest vector: the last digest character changed.
	wrong := strings.TrimSuffix(czNIC.token, "WUU9") + "WWs9"
	if _, err := tok.Parse(wrong, czNIC.at); !errors.Is(err, ErrTokenDigest) {
		t.Errorf("wrong digest: err = %v, want ErrTokenDigest", err)
	}
	if _, err := (Token{Issuer: czNIC.issuer, Secret: "Dycky Most!"}).Parse(czNIC.token, czNIC.at); !errors.Is(err, ErrTokenDigest) {
		t.Errorf("wrong secret: err = %v, want ErrTokenDigest", err)
	}
}

const testSecret = "0123456789abcdef0123456789abcdef-test"

func testToken(t *testing.T) Token {
	t.Helper()
	tok, err := NewToken(IssuerConnectorResponse, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// forge builds a token from raw parts, digest computed with secret unless
// digest is given.
func forge(issuer, id, ts, secret, digest string) string {
	if digest == "" {
		d := Token{Issuer: issuer, Secret: secret}.digest(id, ts)
		digest = base64.StdEncoding.EncodeToString(d)
	}
	return base64.StdEncoding.EncodeToString([]byte(issuer + "|" + id + "|" + ts + "|" + digest))
}

func TestTokenFaults(t *testing.T) {
	tok := testToken(t)
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	ts := tok.FormatTimestamp(now)
	good := tok.Make("_abc", now)
	if id, err := tok.Parse(good, now); err != nil || id != "_abc" {
		t.Fatalf("good token: %q, %v", id, err)
	}
	cases := []struct {
		name  string
		token string
		at    time.Time
		want  error
	}{
		{"too large", strings.Repeat("QUFB", 257), now, ErrTokenTooLarge},
		{"empty", "", now, ErrTokenMalformed},
		{"not base64", "!!!!" + good, now, ErrTokenMalformed},
		{"unpadded base64", strings.TrimRight(base64.StdEncoding.EncodeToString([]byte("a|b|c|dd")), "="), now, ErrTokenMalformed},
		{"three parts", base64.StdEncoding.EncodeToString([]byte(IssuerConnectorResponse + "|_abc|" + ts)), now, ErrTokenMalformed},
		{"five parts", forge(IssuerConnectorResponse, "_abc|x", ts, testSecret, ""), now, ErrTokenMalformed},
		{"other direction's issuer", Token{Issuer: IssuerConnectorRequest, Secret: testSecret}.Make("_abc", now), now, ErrTokenIssuer},
		{"wrong secret", forge(IssuerConnectorResponse, "_abc", ts, testSecret+"x", ""), now, ErrTokenDigest},
		{"id changed", forge(IssuerConnectorResponse, "_abd", ts, "", base64.StdEncoding.EncodeToString(tok.digest("_abc", ts))), now, ErrTokenDigest},
		{"timestamp changed", forge(IssuerConnectorResponse, "_abc", tok.FormatTimestamp(now.Add(time.Minute)), "", base64.StdEncoding.EncodeToString(tok.digest("_abc", ts))), now, ErrTokenDigest},
		{"digest not base64", forge(IssuerConnectorResponse, "_abc", ts, "", "***"), now, ErrTokenMalformed},
		{"id with space", forge(IssuerConnectorResponse, "a b", ts, testSecret, ""), now, ErrTokenMalformed},
		{"empty id", forge(IssuerConnectorResponse, "", ts, testSecret, ""), now, ErrTokenMalformed},
		{"ISO timestamp", forge(IssuerConnectorResponse, "_abc", "2026-03-01T10:00:00Z", testSecret, ""), now, ErrTokenMalformed},
		{"colon before millis (FranceConnect's parse format)", forge(IssuerConnectorResponse, "_abc", "2026-03-01 10:00:00:000", testSecret, ""), now, ErrTokenMalformed},
		{"signed millis", forge(IssuerConnectorResponse, "_abc", "2026-03-01 10:00:00 -01", testSecret, ""), now, ErrTokenMalformed},
		{"expired", good, now.Add(DefaultTokenMaxAge + time.Millisecond), ErrTokenExpired},
		{"from the future", good, now.Add(-DefaultTokenSkew - time.Millisecond), ErrTokenExpired},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id, err := tok.Parse(c.token, c.at)
			if !errors.Is(err, c.want) {
				t.Fatalf("Parse = %q, %v; want %v", id, err, c.want)
			}
			for _, other := range []error{ErrTokenTooLarge, ErrTokenMalformed, ErrTokenIssuer, ErrTokenDigest, ErrTokenExpired} {
				if other != c.want && errors.Is(err, other) {
					t.Errorf("%v also wraps %v", err, other)
				}
			}
		})
	}
	// At the edges: exactly MaxAge old and Skew ahead still pass.
	if _, err := tok.Parse(good, now.Add(DefaultTokenMaxAge)); err != nil {
		t.Errorf("at MaxAge: %v", err)
	}
	if _, err := tok.Parse(good, now.Add(-DefaultTokenSkew)); err != nil {
		t.Errorf("at -Skew: %v", err)
	}
}

func TestTokenLimits(t *testing.T) {
	tok := testToken(t)
	tok.MaxAge, tok.MaxSize = 10*time.Second, 150
	now := time.Now()
	good := tok.Make(NewID(), now)
	// NewID's 65 characters make a token of about 250 bytes.
	if _, err := tok.Parse(good, now); !errors.Is(err, ErrTokenTooLarge) {
		t.Errorf("MaxSize 150, %d-byte token: err = %v", len(good), err)
	}
	tok.MaxSize = 0
	if _, err := tok.Parse(good, now.Add(11*time.Second)); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("MaxAge 10s: err = %v", err)
	}
	if _, err := tok.Parse(good, now.Add(9*time.Second)); err != nil {
		t.Errorf("MaxAge 10s, 9s old: %v", err)
	}
	if _, err := (Token{}).Parse(good, now); err == nil {
		t.Error("a Token without secret parsed")
	}
}

func TestNewTokenRefusesWeakConfig(t *testing.T) {
	for _, c := range []struct{ issuer, secret string }{
		{IssuerConnectorRequest, "short"},
		{IssuerConnectorRequest, strings.Repeat("x", MinSecretLength-1)},
		{"", testSecret},
		{"a|b", testSecret},
	} {
		if _, err := NewToken(c.issuer, c.secret); err == nil {
			t.Errorf("NewToken(%q, %d chars) accepted", c.issuer, len(c.secret))
		}
	}
	if _, err := NewToken(IssuerConnectorRequest, strings.Repeat("x", MinSecretLength)); err != nil {
		t.Errorf("32-character secret refused: %v", err)
	}
}

func TestTokenTimestampLocation(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatalf("tzdata: %v", err)
	}
	utc := testToken(t)
	local := utc
	local.Location = paris
	at := time.Date(2026, 7, 14, 8, 30, 15, 7_000_000, time.UTC)
	if got := utc.FormatTimestamp(at); got != "2026-07-14 08:30:15 007" {
		t.Errorf("UTC timestamp %q", got)
	}
	if got := local.FormatTimestamp(at); got != "2026-07-14 10:30:15 007" {
		t.Errorf("Paris timestamp %q", got)
	}
	// A node on Paris time read as UTC looks two hours ahead: refused,
	// which is why Location must match the node's clock.
	if _, err := utc.Parse(local.Make("_x", at), at); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("mismatched zone: err = %v", err)
	}
	if _, err := local.Parse(local.Make("_x", at), at); err != nil {
		t.Errorf("matched zone: %v", err)
	}
}

func TestValidIDAndNewID(t *testing.T) {
	for _, ok := range []string{"_abc", "852a64c0-8ac1-445f-b0e1-992ada493033", "_NPZeBLAkF3F.U1QYwDaw5u37", "a:b~c+d/e=", NewID()} {
		if err := ValidID(ok); err != nil {
			t.Errorf("ValidID(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a|b", "a b", "é", "a\x00", strings.Repeat("a", MaxIDLength+1), "<x>"} {
		if ValidID(bad) == nil {
			t.Errorf("ValidID(%q) accepted", bad)
		}
	}
	if a, b := NewID(), NewID(); a == b || len(a) != 65 || a[0] != '_' {
		t.Errorf("NewID: %q %q", a, b)
	}
}
