// Package dashboard is the citizen space, "Mon espace Sésame": the place
// where a citizen sees what was done with their identity (each login at a
// service, each data exchange, each refusal of a blocked account, each
// change of their choices, each report) and chooses the accounts (IdPs)
// that may be used to log in as them.
//
// It is an ordinary OpenID Connect relying party of the broker's standard
// platform, registered with citizen_space: true, so that its id_token
// carries sesame_account (the account id the history is kept under) and
// idp_id (the account used for this login). Every login asks prompt=login:
// the citizen authenticates again to open their space, and the space
// checks that auth_time is fresh. It reads and writes a history.Store and
// keeps nothing on its side: the session is a sealed cookie of 15 minutes
// (account id, IdP, given name, e-mail, id_token), so the space runs as
// several replicas with no shared state but the store.
//
// # Routes
//
//	GET  /              what the space is, and the login button or the menu
//	GET  /login         starts a login at the broker (?retour=/historique|/comptes)
//	GET  /callback      the broker's answer
//	POST /logout        ends the session here, then at the broker
//	GET  /historique    the history of the last Retention, newest first (?after=)
//	GET  /comptes       the accounts allowed or blocked
//	POST /comptes       saves them (never the account of the current login)
//	GET  /signalement   "ce n'était pas moi": the form, for ?code=XXXXX-XXXXX
//	POST /signalement   records the report (no login needed, rate limited per IP)
//	GET  /healthz       liveness
//	GET  /static/...    the shared assets
//
// Any other path answers the shared 404 page, any other method the 405
// page, with the security headers of every page.
//
// # Language
//
// Pages are in French, or in English when asked by ?lang=en (kept in a
// cookie, ?lang=fr to go back), else by Accept-Language.
//
// # Errors
//
// Codes are S6 + five digits, apart from the other components':
//
//	S600001 400 the login's transaction cookie is missing or spent (reload, second tab)
//	S600002 400 the callback's state does not match this browser's login
//	S600003 400 the callback's iss is not the broker's (RFC 9207)
//	S600004 400 the callback carries no code
//	S600005 502 the code exchange failed
//	S600006 502 the id_token failed verification
//	S600007 400 the id_token's nonce is not this login's
//	S600008 502 the id_token lacks sesame_account or idp_id (SP not registered as the citizen space)
//	S600009 403 the authentication is not fresh (prompt=login not honoured)
//	S600010 502 userinfo failed or names someone else
//	S600011 503 the broker cannot be reached
//	S600012 400 the broker answered an error (access_denied...)
//	S600013 403 a form's CSRF token is missing or wrong
//	S600014 400 a form could not be read
//	S600015 400 a history cursor (?after=) is not one this space made for this account
//	S600016 400 blocking the account used for the current login
//	S600017 503 the history store is unavailable
//	S600018 400 a connection code of the wrong format
//	S600019 404 a connection code that names no connection (or one purged)
//	S600020 429 too many reports from this network (Retry-After)
//	S600021 401 the session expired (a form posted after 15 minutes)
package dashboard
