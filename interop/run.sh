#!/usr/bin/env bash
# Interop: Sésame against two independent, OpenID-certified libraries.
#  1. openid-client (panva) logs in at the broker as an SP, with only the
#     discovery URL and the README's oidc-client credentials.
#  2. oidc-provider (panva) is added as an upstream IdP by config alone, and
#     the demo SP logs in through it.
#  3. openid-client logs in on "+" as fapi-client with FAPI 2.0: PAR, PKCE,
#     private_key_jwt, DPoP-bound tokens, encrypted id_token and userinfo;
#     the DPoP-bound access token is refused at userinfo without its proof.
#  4. openid-client logs in with data scopes, then introspects the token as
#     the data provider dp-dgfip (RFC 7662); jose (panva) decrypts and
#     verifies the JWT answer (RFC 9701); the mock data providers answer the
#     SP's token; after revocation (RFC 7009) the token is inactive.
# Needs node and the npm registry; not part of `make test`.
set -euo pipefail
cd "$(dirname "$0")"
npm install --no-audit --no-fund --silent
go build -o ../bin/sesame ../cmd/sesame
sed -e 's/identity_providers: \[impots, /identity_providers: [impots, external, /' \
    -e '/^  identity_providers:/a\    - id: external\n      name: oidc-provider (panva)\n      issuer: http://localhost:8400\n      client_id: sesame-std\n      client_secret: external-op-secret-0123456789abcdef0123\n      acr_values: [eidas1]\n      acr_if_missing: eidas1' \
    ../config/dev.yaml > /tmp/sesame-interop.yaml
node external-op.mjs > /tmp/sesame-interop-op.log 2>&1 & op=$!
(cd .. && exec bin/sesame dev -config /tmp/sesame-interop.yaml > /tmp/sesame-interop.log 2>&1) & dev=$!
trap 'kill $op $dev 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf localhost:8000/healthz >/dev/null && curl -sf localhost:8400/.well-known/openid-configuration >/dev/null && break; sleep 0.2; done
curl -sf localhost:8000/healthz >/dev/null || { echo "the dev stack did not start:"; tail -20 /tmp/sesame-interop.log; exit 1; }
curl -sf localhost:8400/.well-known/openid-configuration >/dev/null || { echo "oidc-provider did not start:"; tail -20 /tmp/sesame-interop-op.log; exit 1; }
echo "== openid-client as SP"; node rp-openid-client.mjs
echo "== oidc-provider as upstream IdP"; node via-external-op.mjs | tail -1 | grep -q "Angela Claire Louise Dubois eidas1" && echo "demo SP shows the identity from oidc-provider: OK"
echo "== openid-client on + with FAPI 2.0 (PAR, PKCE, private_key_jwt, DPoP, JWE)"; node rp-fapi-openid-client.mjs
echo "== RFC 7662 introspection (openid-client) and RFC 9701 JWT (jose), data providers, RFC 7009 revocation"; node introspect-openid-client.mjs
