// Data exchange ("zéro justificatif") with independent libraries only,
// from discovery and the dev credentials:
//  1. openid-client logs in on the standard platform as oidc-client with
//     data scopes (dgfip_rfr, cnaf_quotient_familial), at IdP impots;
//  2. openid-client, as the data provider dp-dgfip, introspects the SP's
//     access token (RFC 7662);
//  3. jose (panva) decrypts and verifies the JWT answer (RFC 9701) with the
//     provider's dev-only private key and the broker's /jwks;
//  4. the SP calls the mock data providers DGFiP and CNAF with its token;
//  5. openid-client revokes the token as oidc-client (RFC 7009): it is then
//     inactive at introspection and refused by the data provider.
// Exits non-zero on any failure.
import { readFile } from 'node:fs/promises';
import * as client from 'openid-client';
import { browserLogin } from './browser.mjs';
import * as jose from 'jose';

const base = 'http://localhost:8000';
const dpBase = 'http://localhost:8100/dp';
const issuer = new URL(base);
const dp = { client_id: 'dp-dgfip', secret: 'dev-only-dp-dgfip-secret-0123456789abcdef' };
const fail = (msg) => { console.error('FAIL:', msg); process.exit(1); };
const expect = (cond, msg) => { if (!cond) fail(msg); };
const scopeSet = (s) => (s ?? '').split(' ').filter(Boolean).sort().join(' ');

// 1. login as oidc-client, the browser part by hand
const config = await client.discovery(issuer, 'oidc-client', 'dev-only-oidc-client-secret-0123456789ab', undefined, { execute: [client.allowInsecureRequests] });
const redirect_uri = 'http://localhost:9000/callback';
const verifier = client.randomPKCECodeVerifier();
const challenge = await client.calculatePKCECodeChallenge(verifier);
const state = client.randomState(), nonce = client.randomNonce();
const scope = 'openid identite_pivot dgfip_rfr cnaf_quotient_familial';
const authURL = client.buildAuthorizationUrl(config, { redirect_uri, scope, code_challenge: challenge, code_challenge_method: 'S256', state, nonce, acr_values: 'eidas1' });

// the browser part, by hand (interop/browser.mjs)
const back = await browserLogin(base, authURL, 'impots', 'angela-dubois');
expect(back.origin + back.pathname === redirect_uri, `callback to ${redirect_uri}, got ${back}`);
const tokens = await client.authorizationCodeGrant(config, back, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true });
const spSub = tokens.claims().sub;
const access_token = tokens.access_token;
console.log('login as oidc-client at impots: token scope:', tokens.scope, 'SP sub:', spSub);
expect(scopeSet(tokens.scope) === scopeSet(scope), `token scope ${scope}, got ${tokens.scope}`);

// 2. RFC 7662: openid-client as the data provider dp-dgfip. dp-dgfip is
// registered for encrypted answers (introspection_encrypted_response_enc,
// hence signed ES256): the broker always answers it with a JWT in a JWE,
// so openid-client gets the registered metadata and the provider's
// dev-only private keys (imported with WebCrypto).
const { keys: dpKeys } = JSON.parse(await readFile(new URL('../config/dev-dp-dgfip.jwks.json', import.meta.url), 'utf8'));
const webcryptoKey = ({ kid, alg, use: _u, key_ops: _o, ...jwk }) => crypto.subtle.importKey('jwk', jwk,
  jwk.kty === 'EC' ? { name: 'ECDH', namedCurve: jwk.crv } : { name: 'RSA-OAEP', hash: 'SHA-256' }, false,
  jwk.kty === 'EC' ? ['deriveBits'] : ['decrypt']).then((key) => ({ key, kid, alg }));
const dpConfig = await client.discovery(issuer, dp.client_id, { introspection_signed_response_alg: 'ES256' }, client.ClientSecretBasic(dp.secret), { execute: [client.allowInsecureRequests] });
client.enableDecryptingResponses(dpConfig, ['A256GCM'], ...await Promise.all(dpKeys.map(webcryptoKey)));
const dpWire = {};
dpConfig[client.customFetch] = async (url, options) => {
  const res = await fetch(url, options);
  if (new URL(url).pathname === '/introspect') Object.assign(dpWire, { accept: new Headers(options?.headers).get('accept'), type: res.headers.get('content-type'), parts: (await res.clone().text()).split('.').length });
  return res;
};
expect(dpConfig.serverMetadata().introspection_endpoint === `${base}/introspect`, `discovery: introspection_endpoint ${base}/introspect, got ${dpConfig.serverMetadata().introspection_endpoint}`);
const intro = await client.tokenIntrospection(dpConfig, access_token);
console.log('introspection on the wire: Accept', dpWire.accept, '->', dpWire.type, dpWire.parts === 5 ? '(JWE)' : `(${dpWire.parts} parts)`);
console.log('introspection (openid-client, dp-dgfip):', JSON.stringify(intro));
expect(intro.active === true, 'active true');
expect(scopeSet(intro.scope) === scopeSet('identite_pivot dgfip_rfr'), `scope "identite_pivot dgfip_rfr" (not the CNAF's), got "${intro.scope}"`);
expect(intro.client_id === 'oidc-client', `client_id oidc-client, got ${intro.client_id}`);
expect(typeof intro.sub === 'string' && intro.sub !== '', 'a sub');
expect(intro.sub !== spSub, `the provider's sub differs from the SP's (${spSub})`);
expect(typeof intro.family_name === 'string' && intro.family_name !== '', 'family_name present');

// 3. RFC 9701: the JWT answer, decrypted and verified with jose
let r = await fetch(`${base}/introspect`, {
  method: 'POST',
  body: new URLSearchParams({ token: access_token }),
  headers: {
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/token-introspection+jwt',
    authorization: 'Basic ' + Buffer.from(`${encodeURIComponent(dp.client_id)}:${encodeURIComponent(dp.secret)}`).toString('base64'),
  },
});
const body = await r.text();
expect(r.status === 200, `JWT introspection: 200, got ${r.status}: ${body.slice(0, 500)}`);
const ctype = r.headers.get('content-type');
expect(ctype?.split(';')[0].trim().toLowerCase() === 'application/token-introspection+jwt', `Content-Type application/token-introspection+jwt, got ${ctype}`);
expect(body.split('.').length === 5, `a compact JWE (5 parts), got ${body.slice(0, 100)}...`);
const { plaintext, protectedHeader: jweHeader } = await jose.compactDecrypt(body, async (h) => {
  const jwk = dpKeys.find((k) => k.kid === h.kid);
  if (!jwk) fail(`JWE for an unknown kid ${h.kid}`);
  return jose.importJWK(jwk, h.alg);
});
console.log('JWE protected header:', JSON.stringify(jweHeader));
expect(jweHeader.enc === 'A256GCM', `enc A256GCM, got ${jweHeader.enc}`);
expect(jweHeader.cty?.toUpperCase() === 'JWT', `cty JWT, got ${jweHeader.cty}`);
const JWKS = jose.createRemoteJWKSet(new URL(`${base}/jwks`));
const { payload, protectedHeader: jwsHeader } = await jose.jwtVerify(new TextDecoder().decode(plaintext), JWKS, {
  issuer: base, audience: dp.client_id, typ: 'token-introspection+jwt', maxTokenAge: '60s',
});
console.log('JWS protected header:', JSON.stringify(jwsHeader));
console.log('JWT claims (signature checked):', JSON.stringify(payload));
const ti = payload.token_introspection;
expect(ti && ti.active === true, 'token_introspection.active true');
expect(scopeSet(ti.scope) === scopeSet('identite_pivot dgfip_rfr'), `token_introspection.scope "identite_pivot dgfip_rfr", got "${ti.scope}"`);
expect(ti.sub === intro.sub && ti.client_id === 'oidc-client', 'token_introspection has the same sub and client_id as the JSON answer');

// 4. the SP calls the mock data providers with its token
const callDP = (path) => fetch(`${dpBase}${path}`, { headers: { authorization: `Bearer ${access_token}` } });
r = await callDP('/dgfip/api/impot/revenu-fiscal');
const rfr = await r.text();
console.log('GET /dp/dgfip/api/impot/revenu-fiscal:', r.status, rfr.trim());
expect(r.status === 200, `DGFiP 200, got ${r.status} ${r.headers.get('www-authenticate') ?? ''}`);
const annees = JSON.parse(rfr).annees;
expect(Array.isArray(annees) && annees.length === 2, 'two tax years');
expect(annees.every((a) => Number.isInteger(a.annee) && typeof a.revenu_fiscal_de_reference === 'number'), 'each year has revenu_fiscal_de_reference');
expect(annees.every((a) => !('nombre_de_parts' in a)), 'no nombre_de_parts (dgfip_nbpart not granted)');
r = await callDP('/cnaf/api/prestations/quotient-familial');
const qf = await r.text();
console.log('GET /dp/cnaf/api/prestations/quotient-familial:', r.status, qf.trim());
expect(r.status === 200, `CNAF 200, got ${r.status} ${r.headers.get('www-authenticate') ?? ''}`);
expect(typeof JSON.parse(qf).quotient_familial === 'number', 'a quotient_familial');

// 5. RFC 7009: oidc-client revokes its token
await client.tokenRevocation(config, access_token);
console.log('revoked (openid-client, oidc-client)');
const after = await client.tokenIntrospection(dpConfig, access_token);
console.log('introspection after revocation:', dpWire.type, dpWire.parts === 5 ? '(JWE)' : '', JSON.stringify(after));
expect(after.active === false, 'active false after revocation');
r = await callDP('/dgfip/api/impot/revenu-fiscal');
const refused = await r.text();
console.log('GET /dp/dgfip/api/impot/revenu-fiscal after revocation:', r.status, 'WWW-Authenticate:', r.headers.get('www-authenticate'), refused.trim());
expect(r.status === 401, `401 after revocation, got ${r.status}`);
console.log('introspection, JWT answer, data providers and revocation: OK');
