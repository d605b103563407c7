package broker

import "github.com/sesame-id/sesame/broker/session"

// A grant is sealed at the consent (the code), again at the token step
// (the access token), and opened at the token step, at every userinfo
// and introspection: it is a session.BinaryRecord, cheaper to decode than
// its JSON. A field added to grant is added at the end of both methods;
// TestGrantRecordEveryField fails until then.

// EncodeRecord implements session.BinaryRecord.
func (g *grant) EncodeRecord(e *session.Encoder) {
	e.String(g.ClientID)
	e.String(g.RedirectURI)
	e.String(g.Nonce)
	e.String(g.CodeChallenge)
	e.Strings(g.Scopes)
	e.Strings(g.IDTokenClaims)
	e.Strings(g.UserinfoClaims)
	e.String(g.Sub)
	e.String(g.ACR)
	e.Strings(g.AMR)
	e.Time(g.AuthTime)
	id := &g.Identity
	e.String(id.GivenName)
	e.String(id.FamilyName)
	e.String(id.Birthdate)
	e.String(id.Gender)
	e.String(id.Birthplace)
	e.String(id.Birthcountry)
	e.String(id.Email)
	e.String(id.PreferredUsername)
	e.String(id.EIDAS)
	e.String(g.SID)
	e.String(g.JKT)
	e.String(g.LoginID)
	e.String(g.IdP)
	e.String(g.Account)
	e.Time(g.IssuedAt)
	e.Time(g.Expiry)
	e.String(g.JTI)
}

// DecodeRecord implements session.BinaryRecord.
func (g *grant) DecodeRecord(d *session.Decoder) {
	g.ClientID = d.String()
	g.RedirectURI = d.String()
	g.Nonce = d.String()
	g.CodeChallenge = d.String()
	g.Scopes = d.Strings()
	g.IDTokenClaims = d.Strings()
	g.UserinfoClaims = d.Strings()
	g.Sub = d.String()
	g.ACR = d.String()
	g.AMR = d.Strings()
	g.AuthTime = d.Time()
	id := &g.Identity
	id.GivenName = d.String()
	id.FamilyName = d.String()
	id.Birthdate = d.String()
	id.Gender = d.String()
	id.Birthplace = d.String()
	id.Birthcountry = d.String()
	id.Email = d.String()
	id.PreferredUsername = d.String()
	id.EIDAS = d.String()
	g.SID = d.String()
	g.JKT = d.String()
	g.LoginID = d.String()
	g.IdP = d.String()
	g.Account = d.String()
	g.IssuedAt = d.Time()
	g.Expiry = d.Time()
	g.JTI = d.String()
}
