// A minimal Sésame service provider with openid-client (panva, OpenID
// certified): it logs a citizen in and shows what it received.
//
// Standard platform (eidas1), with the client_secret of `sesame sp new`:
//   node client.mjs --issuer http://localhost:8000 --client-id ID --client-secret SECRET
// "+" platform (eidas2, eidas3), with the keys of `sesame sp new -plus`:
// PAR, PKCE, private_key_jwt, DPoP, and the JWE id_token and userinfo
// decrypted by openid-client itself:
//   node client.mjs --issuer http://localhost:8001 --client-id ID --keys ID.jwks.json --acr eidas3
// Then open http://localhost:9000. See docs/quickstart.md.
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import * as client from 'openid-client';

const { values: o } = parseArgs({ options: {
  issuer: { type: 'string', default: 'http://localhost:8000' },
  'client-id': { type: 'string' }, 'client-secret': { type: 'string' }, keys: { type: 'string' },
  acr: { type: 'string', default: 'eidas1' }, scope: { type: 'string', default: 'openid identite_pivot email' },
  'redirect-uri': { type: 'string', default: 'http://localhost:9000/callback' },
} });
if (!o['client-id']) throw new Error('--client-id is required (sesame sp new prints one)');
// Plain http is for the dev stack on localhost only.
const insecure = { execute: [client.allowInsecureRequests] };

let config, DPoP;
if (o.keys) {
  // The private JWKS of `sesame sp new -plus`: a sig key (ES256) for
  // private_key_jwt, an enc key (ECDH-ES) the platform encrypts to.
  const { keys } = JSON.parse(await readFile(o.keys, 'utf8'));
  const load = ({ kid, alg, use, ...jwk }, algorithm, usages) => crypto.subtle.importKey('jwk', jwk, algorithm, false, usages);
  const sig = keys.find((k) => k.use === 'sig'), enc = keys.find((k) => k.use === 'enc');
  config = await client.discovery(new URL(o.issuer), o['client-id'],
    { id_token_signed_response_alg: 'ES256', userinfo_signed_response_alg: 'ES256' },
    client.PrivateKeyJwt({ key: await load(sig, { name: 'ECDSA', namedCurve: 'P-256' }, ['sign']), kid: sig.kid }), insecure);
  client.enableDecryptingResponses(config, ['A256GCM'],
    { key: await load(enc, { name: 'ECDH', namedCurve: 'P-256' }, ['deriveBits']), kid: enc.kid, alg: 'ECDH-ES' });
  // This process's own DPoP key: the tokens are bound to it.
  DPoP = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
} else {
  config = await client.discovery(new URL(o.issuer), o['client-id'], o['client-secret'], client.ClientSecretBasic(o['client-secret']), insecure);
}

const logins = new Map(); // state -> { verifier, nonce }
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (res, status, body) => res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' })
  .end(`<!doctype html><html lang="fr"><meta charset="utf-8"><title>node-client</title>${body}`);

const redirectURI = new URL(o['redirect-uri']);
http.createServer(async (req, res) => {
  const url = new URL(req.url, redirectURI);
  try {
    if (url.pathname === '/login') {
      const verifier = client.randomPKCECodeVerifier(), state = client.randomState(), nonce = client.randomNonce();
      const params = { redirect_uri: redirectURI.href, scope: o.scope, acr_values: o.acr, state, nonce,
        code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' };
      const to = DPoP ? await client.buildAuthorizationUrlWithPAR(config, params, { DPoP }) : client.buildAuthorizationUrl(config, params);
      logins.set(state, { verifier, nonce });
      res.writeHead(303, { location: to.href, 'set-cookie': `node_client_state=${state}; Path=/; HttpOnly; SameSite=Lax` }).end();
    } else if (url.pathname === '/callback') {
      const state = url.searchParams.get('state'), login = logins.get(state);
      logins.delete(state);
      if (!login || !(req.headers.cookie ?? '').split('; ').includes(`node_client_state=${state}`)) return page(res, 400, 'unknown state: start again at <a href="/">/</a>');
      // Checks iss (RFC 9207), state, the code, PKCE, the id_token and its nonce.
      const tokens = await client.authorizationCodeGrant(config, url,
        { pkceCodeVerifier: login.verifier, expectedState: state, expectedNonce: login.nonce, idTokenExpected: true },
        undefined, DPoP && { DPoP });
      const claims = tokens.claims();
      if (claims.acr !== o.acr) throw new Error(`acr ${claims.acr}, asked ${o.acr}`);
      const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub, DPoP && { DPoP });
      page(res, 200, `<h1 id="citizen">${esc(info.given_name)} ${esc(info.family_name)}</h1>
<p>sub <code id="sub">${esc(claims.sub)}</code>, acr <code id="acr">${esc(claims.acr)}</code>${DPoP ? ', id_token and userinfo decrypted (JWE), tokens bound by DPoP' : ''}</p>
<h2>id_token</h2><pre>${esc(JSON.stringify(claims, null, 2))}</pre><h2>userinfo</h2><pre>${esc(JSON.stringify(info, null, 2))}</pre><p><a href="/">Recommencer</a></p>`);
    } else {
      page(res, 200, `<h1>node-client</h1><p>${esc(o.issuer)}, niveau ${esc(o.acr)}</p><p><a id="login" href="/login">Se connecter avec Sésame</a></p>`);
    }
  } catch (err) {
    page(res, 502, `<p>login failed: ${esc(err.message)}${err.error ? ` (${esc(err.error)}: ${esc(err.error_description ?? '')})` : ''}</p>`);
  }
}).listen(Number(redirectURI.port || 80), redirectURI.hostname, () => console.log(`node-client: open ${redirectURI.origin}/ (client ${o['client-id']} at ${o.issuer}, level ${o.acr})`));
