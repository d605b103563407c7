// openid-client (panva, OpenID-certified RP) logs in on the "+" platform with
// the FAPI 2.0 features: PAR (RFC 9126), PKCE S256, private_key_jwt,
// DPoP-bound tokens (RFC 9449), encrypted (JWE) id_token and userinfo.
// Then checks that the DPoP-bound access token is refused at userinfo
// without its proof. Exits non-zero on any failure.
import { readFile } from 'node:fs/promises';
import * as client from 'openid-client';
import { browserLogin } from './browser.mjs';

const base = 'http://localhost:8001';
const fail = (msg) => { console.error('FAIL:', msg); process.exit(1); };
const expect = (cond, msg) => { if (!cond) fail(msg); };

// The fapi-client's private keys (local use only): a sig ES256 key for
// private_key_jwt, an enc ECDH-ES key the broker encrypts to.
const { keys } = JSON.parse(await readFile(new URL('../config/dev-fapi-client.jwks.json', import.meta.url), 'utf8'));
const sigJwk = keys.find((k) => k.use === 'sig'), encJwk = keys.find((k) => k.use === 'enc');
expect(sigJwk && encJwk, 'config/dev-fapi-client.jwks.json: a sig and an enc key');
const { kid: sigKid, alg: _a1, use: _u1, ...sigKeyData } = sigJwk;
const { kid: encKid, alg: _a2, use: _u2, ...encKeyData } = encJwk;
const signingKey = await crypto.subtle.importKey('jwk', sigKeyData, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
const decryptionKey = await crypto.subtle.importKey('jwk', encKeyData, { name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits']);

const config = await client.discovery(new URL(base), 'fapi-client',
  { id_token_signed_response_alg: 'ES256', userinfo_signed_response_alg: 'ES256' },
  client.PrivateKeyJwt({ key: signingKey, kid: sigKid }),
  { execute: [client.allowInsecureRequests] });
client.enableDecryptingResponses(config, ['A256GCM'], { key: decryptionKey, kid: encKid, alg: 'ECDH-ES' });
// observe the wire (openid-client normalises some values, e.g. token_type)
const wire = {};
config[client.customFetch] = async (url, options) => {
  const res = await fetch(url, options);
  const path = new URL(url).pathname, body = await res.clone().text();
  if (path === '/token' && res.ok) wire.token_type = JSON.parse(body).token_type;
  if (path === '/userinfo' && res.ok) wire.userinfo = { status: res.status, type: res.headers.get('content-type'), jwe: body.split('.').length === 5 ? JSON.parse(Buffer.from(body.split('.')[0], 'base64url')) : undefined };
  if (new Headers(options?.headers).has('dpop')) (wire.dpop ??= new Set()).add(path);
  return res;
};
const DPoP = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));

const redirect_uri = 'http://localhost:9000/callback';
const verifier = client.randomPKCECodeVerifier();
const challenge = await client.calculatePKCECodeChallenge(verifier);
const state = client.randomState(), nonce = client.randomNonce();
const authURL = await client.buildAuthorizationUrlWithPAR(config,
  { redirect_uri, scope: 'openid identite_pivot email', code_challenge: challenge, code_challenge_method: 'S256', state, nonce, acr_values: 'eidas2' },
  { DPoP });
expect([...authURL.searchParams.keys()].sort().join(',') === 'client_id,request_uri', `authorization URL has only client_id and request_uri: ${authURL}`);
const request_uri = authURL.searchParams.get('request_uri');
console.log('PAR request_uri:', request_uri.slice(0, request_uri.lastIndexOf(':') + 1) + '...');

// the browser part, by hand (interop/browser.mjs)
const back = await browserLogin(base, authURL, 'laposte', 'angela-dubois');
expect(back.origin + back.pathname === redirect_uri, `callback to ${redirect_uri}, got ${back}`);
console.log('callback:', back.origin + back.pathname, 'iss=', back.searchParams.get('iss'));

const tokens = await client.authorizationCodeGrant(config, back,
  { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true },
  undefined, { DPoP });
console.log('token_type:', wire.token_type, '(openid-client:', tokens.token_type + ')');
expect(wire.token_type === 'DPoP' && tokens.token_type === 'dpop', `token_type DPoP, got ${wire.token_type}`);
expect(tokens.id_token?.split('.').length === 5, 'the id_token is a JWE (5 parts)');
console.log('id_token: JWE', JSON.stringify(JSON.parse(Buffer.from(tokens.id_token.split('.')[0], 'base64url'))));
const claims = tokens.claims();
console.log('id_token claims:', JSON.stringify(claims));
expect(claims.acr === 'eidas2', `acr eidas2, got ${claims.acr}`);

const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub, { DPoP });
console.log('userinfo response:', wire.userinfo.type, 'JWE', JSON.stringify(wire.userinfo.jwe));
expect(wire.userinfo.type?.startsWith('application/jwt') && wire.userinfo.jwe, 'userinfo answers application/jwt, a JWE');
console.log('userinfo (decrypted, signature checked):', JSON.stringify(info));
console.log('DPoP proofs sent to:', [...wire.dpop].join(' '));
expect(['/par', '/token', '/userinfo'].every((p) => wire.dpop.has(p)), 'DPoP proofs at /par, /token and /userinfo');
expect(info.sub === claims.sub, 'userinfo sub is the id_token sub');

// negative: the DPoP-bound access token as a bearer token, without a proof
const r = await fetch(config.serverMetadata().userinfo_endpoint, { headers: { authorization: `Bearer ${tokens.access_token}` } });
const challengeHdr = r.headers.get('www-authenticate');
console.log('userinfo with Bearer <DPoP token>, no proof:', r.status, 'WWW-Authenticate:', challengeHdr);
expect(r.status === 401, `refused with 401, got ${r.status}: ${(await r.text()).slice(0, 500)}`);
expect(/^DPoP\b/i.test(challengeHdr ?? ''), `a WWW-Authenticate: DPoP challenge, got ${challengeHdr}`);
console.log('DPoP-bound token without its proof refused: OK');
