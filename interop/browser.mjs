// The browser's part of a login at Sésame's dev stack, by hand with fetch:
// authorize, the chooser, the mock IdP's login form, the callback and the
// information page. Shared by the interop scripts.

const fail = (msg) => { console.error('FAIL:', msg); process.exit(1); };

// browserLogin follows authURL on the broker at base, picks idp on the
// chooser, logs in as identity at the mock IdP, continues past the
// information page and returns the redirect to the SP (a URL).
export async function browserLogin(base, authURL, idp, identity) {
  const cookies = {};
  const jar = (res) => { for (const c of res.headers.getSetCookie()) { const [kv] = c.split(';'); const i = kv.indexOf('='); cookies[kv.slice(0, i)] = kv.slice(i + 1); } };
  const hdr = () => ({ cookie: Object.entries(cookies).map(([k, v]) => `${k}=${v}`).join('; ') });
  const go = async (url, opts = {}) => { const r = await fetch(url, { redirect: 'manual', ...opts, headers: { ...hdr(), ...(opts.headers || {}) } }); jar(r); return r; };
  const form = (body) => ({ method: 'POST', body: new URLSearchParams(body), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  const redirected = async (r, what) => {
    if (r.status < 300 || r.status > 399 || !r.headers.get('location')) fail(`${what}: expected a redirect, got ${r.status}: ${(await r.text()).slice(0, 500)}`);
    return new URL(r.headers.get('location'), base);
  };
  const field = (page, name, what) => { const m = page.match(new RegExp(`name="${name}" value="([^"]+)"`)); if (!m) fail(`${what}: no ${name} field in: ${page.slice(0, 500)}`); return m[1]; };

  let r = await go(authURL.href);
  let loc = await redirected(r, 'authorize');
  r = await go(loc.href); let page = await r.text();
  const csrf = field(page, 'csrf', 'chooser');
  r = await go(`${base}/authorize/choose`, form({ csrf, idp }));
  const idpAuth = (await redirected(r, 'chooser')).href;
  r = await go(idpAuth); page = await r.text();
  const tx = field(page, 'tx', 'mock IdP login');
  r = await go(idpAuth.split('?')[0], form({ tx, identity, action: 'login' }));
  r = await go((await redirected(r, 'mock IdP login')).href);
  loc = await redirected(r, 'IdP callback');
  r = await go(loc.href); page = await r.text();
  const csrf2 = field(page, 'csrf', 'consent');
  r = await go(`${base}/authorize/consent`, form({ csrf: csrf2 }));
  return redirected(r, 'consent');
}
