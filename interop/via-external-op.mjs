let cookies = {};
const jar = (res) => { for (const c of res.headers.getSetCookie()) { const [kv] = c.split(';'); const i = kv.indexOf('='); cookies[kv.slice(0,i)] = kv.slice(i+1); } };
const hdr = () => ({ cookie: Object.entries(cookies).map(([k, v]) => `${k}=${v}`).join('; ') });
let last = 'http://localhost:8200/';
const go = async (url, opts = {}) => { last = url; const r = await fetch(url, { redirect: 'manual', ...opts, headers: { ...hdr(), ...(opts.headers || {}) } }); jar(r); console.log(opts.method||'GET', url.slice(0,90), '->', r.status, (r.headers.get('location')||'').slice(0,100)); return r; };
const form = (o) => ({ method: 'POST', body: new URLSearchParams(o), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
let r = await go('http://localhost:8200/login', form({ acr_values: 'eidas1' }));
r = await go(r.headers.get('location'));
r = await go('http://localhost:8000/authorize/choose'); let page = await r.text();
r = await go('http://localhost:8000/authorize/choose', form({ csrf: page.match(/name="csrf" value="([^"]+)"/)[1], idp: 'external' }));
r = await go(r.headers.get('location'));
let loc = new URL(r.headers.get('location'), 'http://localhost:8400'); // interaction
r = await go(loc.href); page = await r.text();
const action = page.match(/action="([^"]+)"/)[1];
r = await go(new URL(action, 'http://localhost:8400').href, form({ prompt: 'login', login: 'angela', password: 'x' }));
while (r.status >= 300 && r.status < 400) {
  const next = new URL(r.headers.get('location'), last).href;
  if (next.startsWith('http://localhost:8400/interaction')) { r = await go(next); page = await r.text();
    const m = page.match(/action="([^"]+)"/); if (m) { r = await go(new URL(m[1], 'http://localhost:8400').href, form({ prompt: 'consent' })); continue; } console.log(page.slice(0,500)); break; }
  if (next.startsWith('http://localhost:8000/authorize/consent')) { r = await go(next); page = await r.text(); r = await go(next, form({ csrf: page.match(/name="csrf" value="([^"]+)"/)[1] })); continue; }
  r = await go(next);
}
page = await r.text();
console.log(r.status, (page.match(/id="citizen-name"[^>]*>([^<]*)/)||[])[1], (page.match(/id="acr"[^>]*>([^<]*)/)||[])[1]);
