package broker

import (
	"encoding/json"
	"net/http"

	"github.com/sesame-id/sesame/internal/web"
)

// claimsSupported are the claims the broker can release.
var claimsSupported = []string{
	"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "at_hash",
	"given_name", "family_name", "birthdate", "gender", "birthplace", "birthcountry",
	"preferred_username", "email",
}

// The JWE algorithms of FranceConnect+; RSA1_5 is never offered.
var (
	encAlgs = []string{"ECDH-ES", "RSA-OAEP", "RSA-OAEP-256"}
	encEncs = []string{"A256GCM"}
)

// authMethods are the client authentications the token endpoint takes.
var authMethods = []string{"client_secret_basic", "client_secret_post", "private_key_jwt"}

// discovery serves the OpenID Provider Metadata of this platform.
func (p *Platform) discovery(w http.ResponseWriter, _ *http.Request) {
	iss := p.cfg.Issuer
	algs := p.signer.Algorithms()
	meta := map[string]any{
		"issuer":                                           iss,
		"authorization_endpoint":                           iss + "/authorize",
		"token_endpoint":                                   iss + "/token",
		"userinfo_endpoint":                                iss + "/userinfo",
		"jwks_uri":                                         iss + "/jwks",
		"end_session_endpoint":                             iss + "/session/end",
		"scopes_supported":                                 Scopes(),
		"claims_supported":                                 claimsSupported,
		"acr_values_supported":                             p.cfg.ACRValues,
		"response_types_supported":                         []string{"code"},
		"response_modes_supported":                         []string{"query"},
		"grant_types_supported":                            []string{"authorization_code"},
		"subject_types_supported":                          []string{"pairwise"},
		"id_token_signing_alg_values_supported":            algs,
		"userinfo_signing_alg_values_supported":            algs,
		"token_endpoint_auth_methods_supported":            authMethods,
		"token_endpoint_auth_signing_alg_values_supported": []string{"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"},
		"id_token_encryption_alg_values_supported":         encAlgs,
		"id_token_encryption_enc_values_supported":         encEncs,
		"userinfo_encryption_alg_values_supported":         encAlgs,
		"userinfo_encryption_enc_values_supported":         encEncs,
		"code_challenge_methods_supported":                 []string{"S256"},
		"claims_parameter_supported":                       true,
		"request_parameter_supported":                      false,
		// request_uri only as issued by PAR (RFC 9126 §4).
		"request_uri_parameter_supported":                false,
		"prompt_values_supported":                        []string{"none", "login", "consent", "select_account"},
		"ui_locales_supported":                           web.Languages,
		"authorization_response_iss_parameter_supported": true,
		"frontchannel_logout_supported":                  false,
		"backchannel_logout_supported":                   true,
		"backchannel_logout_session_supported":           true,
	}
	// The pages a citizen may read before signing in (RFC 8414 §2).
	meta["op_policy_uri"] = iss + "/donnees-personnelles"
	meta["op_tos_uri"] = iss + "/mentions-legales"
	meta["introspection_endpoint"] = iss + "/introspect"
	meta["introspection_endpoint_auth_methods_supported"] = []string{"client_secret_basic", "client_secret_post", "private_key_jwt"}
	meta["introspection_signing_alg_values_supported"] = algs
	meta["introspection_encryption_alg_values_supported"] = encAlgs
	meta["introspection_encryption_enc_values_supported"] = encEncs
	meta["revocation_endpoint"] = iss + "/revoke"
	meta["pushed_authorization_request_endpoint"] = iss + "/par"
	meta["require_pushed_authorization_requests"] = p.cfg.RequiresPAR()
	meta["dpop_signing_alg_values_supported"] = dpopAlgs()
	if p.cfg.PrivateKeyJWTOnly() {
		meta["token_endpoint_auth_methods_supported"] = []string{"private_key_jwt"}
	}
	meta["revocation_endpoint_auth_methods_supported"] = meta["token_endpoint_auth_methods_supported"]
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	_ = json.NewEncoder(w).Encode(meta)
}
