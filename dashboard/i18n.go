package dashboard

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"time"

	// The history is shown in Paris time wherever the space runs: the
	// zone database is embedded so that a container without
	// /usr/share/zoneinfo still has it.
	_ "time/tzdata"

	"github.com/sesame-id/sesame/internal/web"
)

// Languages of the pages. French is the default: the service is French
// first.
const (
	langFR = "fr"
	langEN = "en"
)

type ctxKey int

const langKey ctxKey = 0

// langOf is the language the request's pages are in (see withLang).
func langOf(r *http.Request) string {
	if l, _ := r.Context().Value(langKey).(string); l == langEN {
		return langEN
	}
	return langFR
}

// chooseLang picks the page language: ?lang= (which the citizen clicked,
// and which is then kept in a cookie), else that cookie, else the
// browser's Accept-Language.
func chooseLang(r *http.Request) (lang string, fromQuery bool) {
	switch q := r.URL.Query().Get("lang"); q {
	case langFR, langEN:
		return q, true
	}
	if c, err := r.Cookie(langCookie); err == nil && (c.Value == langFR || c.Value == langEN) {
		return c.Value, false
	}
	return web.PreferredLang(r), false
}

// withLang resolves the language once per request. The shared error page
// (web.RenderError) reads Accept-Language and ui_locales only, so the
// request it sees says the chosen language there, and ui_locales (a
// parameter of the broker, not ours) is dropped.
func (a *App) withLang(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lang, fromQuery := chooseLang(r)
		if fromQuery {
			http.SetCookie(w, &http.Cookie{Name: langCookie, Value: lang, Path: "/", MaxAge: int((365 * 24 * time.Hour).Seconds()),
				HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteLaxMode})
		}
		r = r.Clone(context.WithValue(r.Context(), langKey, lang))
		r.Header.Set("Accept-Language", lang)
		if q := r.URL.Query(); q.Has("ui_locales") {
			q.Del("ui_locales")
			r.URL.RawQuery = q.Encode()
		}
		next.ServeHTTP(w, r)
	})
}

// msg is one text of the catalogue, in both languages.
type msg struct{ fr, en string }

// messages are the words of the pages: titles, labels, buttons and
// sentences. Templates read them as .Body.T.<key>; every key has both
// languages (TestCatalogueComplete).
var messages = map[string]msg{
	"brand":     {"Mon espace", "My space"},
	"lang_link": {"English", "Français"},

	"menu_label":    {"Menu de mon espace", "Menu of my space"},
	"nav_home":      {"Accueil", "Home"},
	"nav_history":   {"Mon historique", "My history"},
	"nav_accounts":  {"Mes comptes", "My accounts"},
	"nav_report":    {"Signaler une connexion", "Report a login"},
	"logout":        {"Se déconnecter", "Log out"},
	"login_button":  {"Se connecter avec Sésame", "Log in with Sésame"},
	"what_is_it":    {"Qu'est-ce que mon espace Sésame ?", "What is my Sésame space?"},
	"home_title":    {"Mon espace Sésame", "My Sésame space"},
	"home_intro":    {"Votre espace Sésame vous montre ce qui a été fait avec votre identité et vous permet de choisir les comptes qui peuvent servir à vous identifier.", "Your Sésame space shows you what was done with your identity, and lets you choose the accounts that may be used to identify you."},
	"home_history":  {"l'historique de vos connexions aux services en ligne, et des données transmises à ces services ;", "the history of your logins to online services, and of the data sent to them;"},
	"home_accounts": {"le choix des comptes (impots.gouv, ameli, La Poste…) qui peuvent servir à vous identifier ;", "the choice of the accounts (impots.gouv, ameli, La Poste…) that may be used to identify you;"},
	"home_reports":  {"le signalement d'une connexion que vous n'avez pas faite.", "reporting a login you did not make."},
	"home_offers":   {"Vous y trouverez :", "You will find there:"},
	"home_reauth":   {"Pour protéger votre historique, vous vous authentifiez à chaque ouverture de votre espace, même si vous venez de vous connecter à un service.", "To protect your history, you authenticate each time you open your space, even if you have just logged in to a service."},
	"home_mail":     {"Vous avez reçu un courriel de Sésame pour une connexion que vous n'avez pas faite ?", "Did you get an e-mail from Sésame for a login you did not make?"},
	"home_mail_act": {"Signalez-la sans vous connecter", "Report it without logging in"},
	"hello":         {"Bonjour", "Hello"},
	"current_idp":   {"Compte utilisé pour cette connexion :", "Account used for this login:"},
	"session_ends":  {"Par sécurité, votre session se termine 15 minutes après la connexion.", "For your security, your session ends 15 minutes after you log in."},
	"card_history":  {"Les connexions faites avec votre identité et les données transmises, des plus récentes aux plus anciennes.", "The logins made with your identity and the data sent, newest first."},
	"card_accounts": {"Autorisez ou bloquez les comptes qui peuvent servir à vous identifier.", "Allow or block the accounts that may be used to identify you."},

	"history_title":  {"Mon historique", "My history"},
	"history_empty":  {"Aucune connexion ni aucun échange de données n'a été enregistré pour vous sur cette période.", "No login and no data exchange was recorded for you over this period."},
	"history_next":   {"Voir les plus anciennes", "See older ones"},
	"history_first":  {"Revenir aux plus récentes", "Back to the most recent"},
	"history_list":   {"Connexions et échanges, du plus récent au plus ancien", "Logins and exchanges, newest first"},
	"history_unsure": {"Une connexion ne vient pas de vous ? Bloquez le compte utilisé dans « Mes comptes », puis signalez la connexion avec son code.", "A login was not made by you? Block the account used in \"My accounts\", then report the login with its code."},
	"f_date":         {"Date et heure (heure de Paris)", "Date and time (Paris time)"},
	"f_service":      {"Service", "Service"},
	"f_idp":          {"Compte utilisé", "Account used"},
	"f_level":        {"Niveau de sécurité", "Security level"},
	"f_platform":     {"Plateforme", "Platform"},
	"f_data":         {"Données transmises", "Data sent"},
	"f_provider":     {"Administration qui a fourni les données", "Administration that provided the data"},
	"f_code":         {"Code de connexion", "Login code"},
	"f_reported":     {"Code signalé", "Code reported"},
	"f_refusal":      {"Code de refus", "Refusal code"},

	"accounts_title":   {"Mes comptes", "My accounts"},
	"accounts_intro":   {"Choisissez les comptes avec lesquels on peut se connecter en votre nom. Un compte bloqué ne peut plus servir à vous identifier auprès d'aucun service, même par quelqu'un qui en connaît le mot de passe.", "Choose the accounts with which one can log in as you. A blocked account can no longer be used to identify you at any service, even by someone who knows its password."},
	"accounts_current": {"Ce compte sert à votre connexion actuelle : il ne peut pas être bloqué maintenant.", "This account is the one of your current login: it cannot be blocked now."},
	"allowed":          {"Autorisé", "Allowed"},
	"blocked":          {"Bloqué", "Blocked"},
	"future_legend":    {"Autoriser les comptes ajoutés à l'avenir", "Allow the accounts added in the future"},
	"future_hint":      {"Quand Sésame proposera un nouveau compte, pourra-t-il servir à vous identifier ?", "When Sésame offers a new account, may it be used to identify you?"},
	"future_allow":     {"Oui, les autoriser", "Yes, allow them"},
	"future_deny":      {"Non, les bloquer", "No, block them"},
	"save":             {"Enregistrer mes choix", "Save my choices"},
	"saved_title":      {"Vos choix sont enregistrés", "Your choices are saved"},
	"saved_none":       {"Aucun changement : vos choix étaient déjà ceux-ci.", "No change: these were already your choices."},
	"saved_history":    {"Chaque changement apparaît dans votre historique.", "Each change shows in your history."},
	"saved_mail":       {"Un courriel de confirmation vous est envoyé.", "A confirmation e-mail is on its way to you."},

	"report_title":     {"Signaler une connexion", "Report a login"},
	"report_intro":     {"Vous avez reçu un courriel de Sésame pour une connexion que vous n'avez pas faite ? Signalez-la : elle sera marquée dans votre historique, et vous saurez quoi faire ensuite. Vous n'avez pas besoin de vous connecter.", "Did you get an e-mail from Sésame for a login you did not make? Report it: it will be marked in your history, and you will know what to do next. You do not need to log in."},
	"report_code":      {"Code de connexion", "Login code"},
	"report_code_hint": {"Il figure dans le courriel de Sésame, sous la forme XXXXX-XXXXX.", "It is in Sésame's e-mail, in the form XXXXX-XXXXX."},
	"report_code_bad":  {"Ce code n'a pas le bon format : 10 lettres et chiffres, sous la forme XXXXX-XXXXX.", "This code is not in the right format: 10 letters and digits, in the form XXXXX-XXXXX."},
	"report_continue":  {"Continuer", "Continue"},
	"report_confirm":   {"Vous signalez que vous n'avez pas fait la connexion qui porte le code", "You are reporting that you did not make the login with the code"},
	"report_button":    {"Ce n'était pas moi : signaler cette connexion", "It was not me: report this login"},
	"report_other":     {"Signaler un autre code", "Report another code"},
	"reported_first":   {"Signalement enregistré", "Report recorded"},
	"reported_again":   {"Connexion déjà signalée", "Login already reported"},
	"reported_what":    {"Que faire maintenant ?", "What to do now?"},
	"advice_block":     {"Bloquez le compte utilisé dans votre espace, rubrique « Mes comptes » : personne ne pourra plus s'en servir pour se connecter en votre nom. Connectez-vous pour cela avec un autre compte.", "Block the account used, in your space under \"My accounts\": nobody will be able to use it to log in as you. To do so, log in with another account."},
	"advice_idp":       {"Contactez le fournisseur de ce compte (impots.gouv, ameli, La Poste…) et changez-en le mot de passe.", "Contact the provider of that account (impots.gouv, ameli, La Poste…) and change its password."},
	"advice_service":   {"Prévenez le service concerné qu'une connexion a été faite à votre insu.", "Tell the service concerned that a login was made without your knowledge."},
	"advice_police":    {"En cas d'usurpation d'identité, vous pouvez porter plainte auprès de la police ou de la gendarmerie.", "In case of identity theft, you may file a complaint with the police or the gendarmerie."},
	"advice_space":     {"Gérer mes comptes", "Manage my accounts"},
}

// catalogue is messages for one language, as templates read it.
type catalogue map[string]string

var catalogues = func() map[string]catalogue {
	out := map[string]catalogue{langFR: {}, langEN: {}}
	for k, m := range messages {
		out[langFR][k], out[langEN][k] = m.fr, m.en
	}
	return out
}()

// t is one message in lang.
func t(lang, key string) string { return catalogues[lang][key] }

// pick is the French or the English of a text that is not in the
// catalogue (labels from configuration, sentences with values).
func pick(lang, fr, en string) string {
	if lang == langEN && en != "" {
		return en
	}
	return fr
}

// levelLabels are the eIDAS levels in words.
var levelLabels = map[string]msg{
	"eidas1": {"faible (eidas1)", "low (eidas1)"},
	"eidas2": {"substantiel (eidas2)", "substantial (eidas2)"},
	"eidas3": {"élevé (eidas3)", "high (eidas3)"},
}

// identityLabels name the identity scopes (openid, which passes nothing
// on but an identifier, is left out of the list).
var identityLabels = map[string]msg{
	"identite_pivot":     {"Identité pivot (nom, prénoms, sexe, date et lieu de naissance)", "Core identity (names, sex, date and place of birth)"},
	"profile":            {"Profil (nom, prénoms, sexe, date de naissance)", "Profile (names, sex, date of birth)"},
	"given_name":         {"Prénoms", "Given names"},
	"family_name":        {"Nom de naissance", "Birth name"},
	"preferred_username": {"Nom d'usage", "Usual name"},
	"birthdate":          {"Date de naissance", "Date of birth"},
	"gender":             {"Sexe", "Sex"},
	"birth":              {"Lieu et pays de naissance", "Place and country of birth"},
	"birthplace":         {"Lieu de naissance", "Place of birth"},
	"birthcountry":       {"Pays de naissance", "Country of birth"},
	"email":              {"Adresse électronique", "E-mail address"},
}

// paris is where the history's times are shown: the citizens' time.
var paris = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		panic(err) // embedded by time/tzdata: cannot happen
	}
	return loc
}()

var (
	daysFR   = [...]string{"dimanche", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"}
	monthsFR = [...]string{"janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"}
)

// longTime is t in Paris time, in words: "lundi 2 mars 2026 à 14:05".
func longTime(t time.Time, lang string) string {
	p := t.In(paris)
	if lang == langEN {
		return p.Format("Monday 2 January 2006 at 15:04")
	}
	return fmt.Sprintf("%s %d %s %d à %s", daysFR[p.Weekday()], p.Day(), monthsFR[p.Month()-1], p.Year(), p.Format("15:04"))
}

// shortDate is t's day in Paris time: "2 mars 2026".
func shortDate(t time.Time, lang string) string {
	p := t.In(paris)
	if lang == langEN {
		return p.Format("2 January 2006")
	}
	return fmt.Sprintf("%d %s %d", p.Day(), monthsFR[p.Month()-1], p.Year())
}

// retentionWords says how far back the history goes: "6 derniers mois",
// or days below two months.
func retentionWords(d time.Duration, lang string) string {
	days := d.Hours() / 24
	if days >= 60 {
		months := int(math.Round(days / 30.5))
		return pick(lang, fmt.Sprintf("%d derniers mois", months), fmt.Sprintf("last %d months", months))
	}
	n := int(math.Round(days))
	return pick(lang, fmt.Sprintf("%d derniers jours", n), fmt.Sprintf("last %d days", n))
}

// langSwitch is the link to the same page in the other language.
func langSwitch(r *http.Request) (href, lang string) {
	other := langEN
	if langOf(r) == langEN {
		other = langFR
	}
	q := r.URL.Query()
	q.Set("lang", other)
	if r.Method != http.MethodGet {
		// A page answering a form: the link goes to the page itself.
		q = map[string][]string{"lang": {other}}
	}
	return r.URL.Path + "?" + q.Encode(), other
}
