package mail

// TEMPORARY until the mail branch lands (the dashboard branch needs it to
// compile; drop this file at merge).
func PreferencesMessage(c PreferencesChange) Message {
	return Message{To: c.To, Subject: "Vos comptes Sésame ont changé", Text: c.SpaceURL, Tag: "preferences"}
}
