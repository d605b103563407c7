package mail

import (
	"strings"
	"testing"
	"time"
)

func TestConnectionMessageLevels(t *testing.T) {
	for acr, want := range map[string][2]string{
		"eidas1": {"faible", "low"},
		"eidas2": {"substantiel", "substantial"},
		"eidas3": {"élevé", "high"},
	} {
		c := testConnection()
		c.ACR = acr
		m := ConnectionMessage(c)
		for _, s := range []string{"Niveau de garantie : " + want[0], "Level of assurance: " + want[1]} {
			if !strings.Contains(m.Text, s) {
				t.Errorf("%s: text lacks %q", acr, s)
			}
		}
		if !strings.Contains(m.HTML, "<strong>"+want[0]+"</strong>") || !strings.Contains(m.HTML, "<strong>"+want[1]+"</strong>") {
			t.Errorf("%s: HTML lacks the level in words", acr)
		}
	}
}

// Without a known level, no line says a level: an acr value means nothing
// to the citizen, and an empty one would read as a blank.
func TestConnectionMessageNoLevel(t *testing.T) {
	c := testConnection()
	c.ACR = ""
	m := ConnectionMessage(c)
	for _, part := range []string{m.Text, m.HTML} {
		if strings.Contains(part, "Niveau de garantie") || strings.Contains(part, "Level of assurance") {
			t.Errorf("a level line without a level:\n%s", part)
		}
	}
}

func TestConnectionMessageParisTime(t *testing.T) {
	c := testConnection()
	// Winter: UTC+1. And the first of the month reads "1er".
	c.Time = time.Date(2026, 3, 1, 8, 30, 0, 0, time.UTC)
	m := ConnectionMessage(c)
	for _, want := range []string{"dimanche 1er mars 2026 à 9 h 30", "Sunday 1 March 2026 at 09:30"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("text lacks %q", want)
		}
	}
	// The zone of the time given does not matter.
	c.Time = time.Date(2026, 12, 24, 23, 59, 0, 0, time.FixedZone("X", -5*3600))
	if m := ConnectionMessage(c); !strings.Contains(m.Text, "vendredi 25 décembre 2026 à 5 h 59") {
		t.Errorf("text lacks the Paris date:\n%s", m.Text)
	}
}

func TestConnectionMessageEscapes(t *testing.T) {
	c := testConnection()
	c.SPName = `Mairie <b>"&"</b>` + "\r\nBcc: x@evil.example"
	c.ReportURL = "javascript:alert(1)"
	m := ConnectionMessage(c)
	if strings.ContainsAny(m.Subject, "\r\n") {
		t.Errorf("subject spans lines: %q", m.Subject)
	}
	if strings.Contains(m.HTML, "<b>") || !strings.Contains(m.HTML, "&lt;b&gt;") {
		t.Error("the service name is not escaped in HTML")
	}
	if strings.Contains(m.HTML, "javascript:") {
		t.Error("a javascript: link went through")
	}
	if m.Tag != TagConnection || m.To != testTo {
		t.Errorf("tag %q to %q", m.Tag, m.To)
	}
	if strings.Contains(m.Text+m.HTML, testTo) {
		t.Error("the body holds the address")
	}
}

func TestConnectionMessageWithoutLinks(t *testing.T) {
	c := testConnection()
	c.ReportURL, c.SpaceURL = "", ""
	m := ConnectionMessage(c)
	if strings.Contains(m.Text, "Signalez-le") || strings.Contains(m.HTML, "href") {
		t.Errorf("links without URLs:\n%s", m.Text)
	}
}

func TestPreferencesMessage(t *testing.T) {
	p := PreferencesChange{
		To:       testTo,
		Time:     time.Date(2026, 7, 14, 10, 0, 0, 0, time.UTC),
		Allowed:  []string{"ameli.fr"},
		Blocked:  []string{"La Poste", "MSA"},
		Future:   "deny",
		SpaceURL: "https://espace.sesame.example/",
	}
	m := PreferencesMessage(p)
	if m.Tag != TagPreferences || m.To != testTo || !strings.Contains(m.Subject, "Sésame") {
		t.Errorf("tag %q to %q subject %q", m.Tag, m.To, m.Subject)
	}
	for _, want := range []string{
		"mardi 14 juillet 2026 à 12 h 00", "Tuesday 14 July 2026 at 12:00",
		"Comptes désormais autorisés : ameli.fr", "Comptes désormais bloqués : La Poste, MSA",
		"Comptes ajoutés à l'avenir : bloqués par défaut", "Accounts added later: blocked by default",
		"Accounts now allowed: ameli.fr", "Accounts now blocked: La Poste, MSA",
		"Si ce n'était pas vous, connectez-vous à votre espace Sésame", "If it was not you, log in to your Sésame space",
		p.SpaceURL,
	} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("text lacks %q", want)
		}
	}
	if fr, en := strings.Index(m.Text, "Bonjour"), strings.Index(m.Text, "Hello"); fr < 0 || fr > en {
		t.Error("French does not come first")
	}
	for _, want := range []string{"<strong>La Poste</strong>, <strong>MSA</strong>", `href="` + p.SpaceURL + `"`, `lang="en"`} {
		if !strings.Contains(m.HTML, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}

	p = PreferencesChange{To: testTo, Future: "allow"}
	m = PreferencesMessage(p)
	if strings.Contains(m.Text, "désormais") || !strings.Contains(m.Text, "autorisés par défaut") {
		t.Errorf("only the future setting changed:\n%s", m.Text)
	}
}

func TestPreferencesMessageNoList(t *testing.T) {
	m := PreferencesMessage(PreferencesChange{To: testTo, SpaceURL: "https://espace.sesame.example/"})
	if strings.Contains(m.HTML, "<ul>") {
		t.Errorf("an empty list:\n%s", m.HTML)
	}
}

// A login in English gets its e-mail in English first: subject, <html
// lang>, first part; the French follows. French is the default.
func TestMessagesLanguage(t *testing.T) {
	c := testConnection()
	fr := ConnectionMessage(c)
	c.Lang = "en"
	en := ConnectionMessage(c)
	p := PreferencesMessage(PreferencesChange{To: testTo, Blocked: []string{"MSA"}, Lang: "en"})
	for name, tc := range map[string]struct {
		m             Message
		subject, html string
		first, second string
	}{
		"connection fr":  {fr, "Connexion à Agence nationale des titres sécurisés avec Sésame", `<html lang="fr">`, "Vous venez de vous connecter", "You have just signed in"},
		"connection en":  {en, "Sign-in to Agence nationale des titres sécurisés with Sésame", `<html lang="en">`, "You have just signed in", "Vous venez de vous connecter"},
		"preferences en": {p, "Your allowed accounts changed – Sésame", `<html lang="en">`, "Accounts now blocked", "Comptes désormais bloqués"},
	} {
		if tc.m.Subject != tc.subject {
			t.Errorf("%s: subject %q, want %q", name, tc.m.Subject, tc.subject)
		}
		if !strings.HasPrefix(tc.m.HTML, "<!doctype html>\n"+tc.html) {
			t.Errorf("%s: HTML does not start with %s", name, tc.html)
		}
		for part, body := range map[string]string{"text": tc.m.Text, "HTML": tc.m.HTML} {
			i, j := strings.Index(body, tc.first), strings.Index(body, tc.second)
			if i < 0 || j < 0 || i > j {
				t.Errorf("%s %s: %q should come before %q", name, part, tc.first, tc.second)
			}
		}
	}
}
