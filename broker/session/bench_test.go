package session

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sesame-id/sesame/broker/authreq"
	"github.com/sesame-id/sesame/broker/identity"
)

// BenchmarkLoadAdvance is what most steps of a login do with the session:
// load it (read, open, decode) and advance it (encode, seal, swap), here
// with the record of a login at the consent step.
func BenchmarkLoadAdvance(b *testing.B) {
	s, _ := newStore(b, time.Hour, true)
	ctx := context.Background()
	sess := s.New()
	sess.Step, sess.IdP, sess.LoginID = StepAuthenticated, "impots", NewLoginID()
	sess.Request = &authreq.Request{ClientID: "sp-demo", RedirectURI: "https://sp.example/callback", State: NewID(), Nonce: NewID(),
		Scopes: []string{"openid", "profile", "email", "birth"}, ACR: "eidas1", CodeChallenge: NewID(), MaxAge: -1}
	sess.Login = &Login{IdP: "impots", ACR: "eidas1", AMR: []string{"pwd"}, AuthTime: time.Now().UTC(), UpstreamIDToken: strings.Repeat("eyJhbGciOiJSUzI1NiJ9.", 35),
		Identity: identity.Identity{Pivot: identity.Pivot{GivenName: "Angela Claire Louise", FamilyName: "Dubois", Birthdate: "1962-08-24",
			Gender: "female", Birthplace: "75107", Birthcountry: "99100"}, Email: "angela.dubois@example.fr"}}
	if err := s.Save(ctx, sess); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		got, err := s.Load(ctx, sess.ID)
		if err != nil {
			b.Fatal(err)
		}
		if won, err := s.Advance(ctx, got, nil); err != nil || !won {
			b.Fatal(won, err)
		}
	}
}

// BenchmarkPendingCookie seals an authorization request in its cookie and
// opens it, as /authorize and the chooser do.
func BenchmarkPendingCookie(b *testing.B) {
	s, _ := newStore(b, time.Hour, true)
	sess := s.NewPending(&authreq.Request{ClientID: "sp-demo", RedirectURI: "https://sp.example/callback", State: NewID(), Nonce: NewID(),
		Scopes: []string{"openid", "profile", "email", "birth"}, ACR: "eidas1", CodeChallenge: NewID(), MaxAge: -1})
	for b.Loop() {
		v, err := s.SealPending(sess)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.OpenPending(v); err != nil {
			b.Fatal(err)
		}
	}
}
