package web

// layoutMessages are the words of the shared layout and error page, which
// every service's pages show whatever its own catalogue.
var layoutMessages = Catalogue{
	"layout.skiplinks":    {"Accès rapide", "Quick access"},
	"layout.skip_content": {"Contenu", "Content"},
	"layout.skip_footer":  {"Pied de page", "Footer"},
	"layout.tools":        {"Liens utiles", "Useful links"},
	"layout.home":         {"Accueil – %s", "Home – %s"},
	"layout.footer_desc": {"Sésame vous permet de vous identifier auprès d'un service en ligne avec un compte que vous possédez déjà.",
		"Sésame lets you sign in to an online service with an account you already have."},

	"error.page_title": {"Erreur", "Error"},
	"error.title":      {"Une erreur est survenue", "Something went wrong"},
	"error.code":       {"Erreur", "Error"},
	"error.support":    {"Si vous contactez l'assistance, indiquez-lui ces informations\u00a0:", "If you contact support, give them this information:"},
	"error.code_label": {"Code d'erreur\u00a0:", "Error code:"},
	"error.request_id": {"Identifiant de la requête\u00a0:", "Request id:"},
	"error.back":       {"Retour", "Back"},
}
