package config

import (
	"strings"
	"testing"
	"time"
)

// The dev config's citizen space is registered at the broker as the
// citizen space, on the address the dashboard serves, and takes its
// accounts from the broker section.
func TestDevConfigCitizenSpace(t *testing.T) {
	c, err := Load("dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := c.Dashboard
	if d == nil || c.History == nil || c.Mail == nil {
		t.Fatal("dev.yaml needs the dashboard, history and mail sections")
	}
	var reg *SP
	for i, sp := range c.Broker.Platforms[0].ServiceProviders {
		if sp.ClientID == d.ClientID {
			reg = &c.Broker.Platforms[0].ServiceProviders[i]
		}
	}
	if reg == nil || !reg.CitizenSpace || reg.ClientSecret != d.ClientSecret || reg.RedirectURIs[0] != d.BaseURL+"/callback" {
		t.Fatalf("the dashboard's registration at the broker: %+v", reg)
	}
	if c.Broker.CitizenSpaceURL != d.BaseURL || c.DemoSP.CitizenSpaceURL != d.BaseURL {
		t.Errorf("citizen_space_url: broker %q, demo SP %q, want %q", c.Broker.CitizenSpaceURL, c.DemoSP.CitizenSpaceURL, d.BaseURL)
	}
	if len(d.IdentityProviders) != len(c.Broker.IdentityProviders) || len(d.DataScopes) != len(c.Broker.DataScopes) {
		t.Errorf("the dashboard's accounts and labels do not default to the broker's")
	}
	if c.History.Driver != "sqlite" || c.History.Retention.D(0) != DefaultRetention || c.Mail.SMTP.Host != "" || c.Mail.OutboxListen == "" {
		t.Errorf("dev history %+v, mail %+v", c.History, c.Mail)
	}
}

// Each mistake in the new sections is named with its section and field.
func TestCitizenSectionsValidation(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"history: {driver: mysql}", "history: driver"},
		{"history: {driver: postgres, url: \"sqlite://x\"}", "history: url"},
		{"history: {retention: 1h}", "history: retention"},
		{"mail: {from: nobody}", "mail: from"},
		{"mail: {from: a@b.fr, smtp: {host: smtp.example.org, tls: none}}", "mail.smtp: tls"},
		{"mail: {from: a@b.fr, smtp: {host: smtp.example.org, tls: ssl}}", "mail.smtp: tls"},
		{"dashboard: {listen: x, base_url: \"http://localhost:8400\", issuer: \"http://localhost:8000\", client_id: s, client_secret: short, cookie_key: nope}", "dashboard: listen"},
		{"dashboard: {listen: \"127.0.0.1:8400\", base_url: \"http://localhost:8400\", issuer: \"http://localhost:8000\", client_id: s, client_secret: short, cookie_key: nope}", "dashboard: client_secret"},
		{"dashboard: {listen: \"127.0.0.1:8400\", base_url: \"http://localhost:8400\", issuer: \"http://localhost:8000\", client_id: s, client_secret: short, cookie_key: nope}", "dashboard: cookie_key"},
		{"dashboard: {listen: \"127.0.0.1:8400\", base_url: \"http://localhost:8400\", issuer: \"http://localhost:8000\", client_id: s, client_secret: short, cookie_key: nope}", "needs a history section"},
	} {
		_, err := Parse("x.yaml", []byte(minimal+"\n"+tc.yaml+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one naming %q", tc.yaml, err, tc.want)
		}
	}
}

// Defaults: SQLite under data/, six months, batches of 100 every second;
// STARTTLS on 587.
func TestCitizenSectionsDefaults(t *testing.T) {
	c, err := Parse("x.yaml", []byte(minimal+"\nhistory: {}\nmail: {from: \"Sésame <a@b.fr>\", smtp: {host: smtp.example.org}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	h, m := c.History, c.Mail
	if h.Path != "data/history.db" || h.Retention.D(0) != 183*24*time.Hour || h.BatchSize != 100 || h.FlushEvery.D(0) != time.Second || h.PurgeEvery.D(0) != time.Hour {
		t.Errorf("history defaults %+v", h)
	}
	if m.SMTP.TLS != "starttls" || m.SMTP.Port != 587 || m.Queue != 1000 || m.Retries != 5 {
		t.Errorf("mail defaults %+v", m)
	}
}
