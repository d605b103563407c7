package mail

// TEMPORARY until the mail branch lands.
func ConnectionMessage(c Connection) Message {
	return Message{To: c.To, Subject: "Connexion à " + c.SPName, Text: c.Code, Tag: "connection"}
}
