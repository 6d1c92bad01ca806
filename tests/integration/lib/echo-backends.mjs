// echo-backends.mjs: Gateway API conformance echo backends (backend-v1..v3) and the case driver shared by the suite and runner.
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import path from 'node:path';
import { tmpDir, track, sleep } from './harness.mjs';

/* A self-signed certificate made at test time, for the Secrets that HTTPS listeners reference. */
let testCert = null;
function certPem() {
    if (testCert) return testCert;
    const dir = tmpDir();
    const key = path.join(dir, 'tls.key'), crt = path.join(dir, 'tls.crt');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', key, '-out', crt, '-days', '2', '-subj', '/CN=example.com',
        '-addext', 'subjectAltName=DNS:example.com,DNS:*.example.com,IP:127.0.0.1'], { stdio: 'ignore' });
    testCert = { crt: fs.readFileSync(crt, 'utf8'), key: fs.readFileSync(key, 'utf8') };
    return testCert;
}

/* Secrets (kubernetes.io/tls) for every certificateRef of the Gateways that the config does not define. */
function certSecrets(gatewayYaml, otherYaml) {
    const names = [...gatewayYaml.matchAll(/certificateRefs:\s*\n?\s*-?\s*\{?\s*name:\s*([\w.-]+)/g)].map(m => m[1]);
    const docs = [];
    for (const name of new Set(names)) {
        if (new RegExp(`kind: Secret[\\s\\S]*name: ${name}\\b`).test(otherYaml)) continue;
        const { crt, key } = certPem();
        const ind = t => t.trim().split('\n').map(l => `    ${l}`).join('\n');
        docs.push(`apiVersion: v1\nkind: Secret\nmetadata: {name: ${name}}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n${ind(crt)}\n  tls.key: |\n${ind(key)}\n`);
    }
    return docs;
}

export const BACKEND_NAMES = ['backend-v1', 'backend-v2', 'backend-v3'];

/* Go's time.ParseDuration for the forms the peer suite uses (1s, 500ms, 1m30s, 1.5s); NaN when invalid. */
export function goDurationMs(s) {
    if (!s) return 0;
    const units = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 };
    const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
    let total = 0;
    let pos = 0;
    let m;
    while ((m = re.exec(s)) !== null) {
        total += Number(m[1]) * units[m[2]];
        pos = re.lastIndex;
    }
    return pos === s.length && pos > 0 ? total : NaN;
}

/* Header list from Node's rawHeaders: {lowercase name: [values in arrival order]}. */
export function headerMap(rawHeaders) {
    const h = {};
    for (let i = 0; i < rawHeaders.length; i += 2) (h[rawHeaders[i].toLowerCase()] ||= []).push(rawHeaders[i + 1]);
    return h;
}

/*
 * Starts one echo backend per name on a free loopback port, per the conformance README's contract:
 * 200 with JSON {backend, path (request-target as received), host, method, headers {lowercase name: [values]}};
 * `?delay=<Go duration>` waits first; `X-Echo-Set-Header: Name:val,Name2:val2` adds response headers;
 * `/retry/...?responseCode=C&succeedAfter=N&uuid=U` answers C to the first N attempts per uuid, then echoes.
 * Returns {ports: {name: port}, requests: [{backend, path, host, method, headers}], close}.
 */
export async function startEchoBackends(names = BACKEND_NAMES, { host = '127.0.0.1' } = {}) {
    const set = { ports: {}, requests: [], servers: [] };
    const attempts = new Map();
    for (const name of names) {
        const sockets = new Set();
        const server = http.createServer((req, res) => {
            req.resume();
            req.on('end', async () => {
                const u = new URL(req.url, 'http://x');
                const headers = headerMap(req.rawHeaders);
                const echo = { backend: name, path: req.url, host: req.headers.host, method: req.method, headers };
                set.requests.push(echo);
                const delay = goDurationMs(u.searchParams.get('delay') || '');
                if (delay > 0) await sleep(delay);
                if (res.destroyed || res.writableEnded) return;
                const extra = [];
                for (const kv of (req.headers['x-echo-set-header'] || '').split(',').filter(Boolean)) {
                    const i = kv.indexOf(':');
                    if (i > 0) extra.push([kv.slice(0, i).trim(), kv.slice(i + 1).trim()]);
                }
                let status = 200;
                if (u.pathname.startsWith('/retry/') && u.searchParams.has('uuid')) {
                    const key = u.searchParams.get('uuid');
                    const n = (attempts.get(key) || 0) + 1;
                    attempts.set(key, n);
                    if (n <= Number(u.searchParams.get('succeedAfter') || 0))
                        status = Number(u.searchParams.get('responseCode') || 500);
                }
                const body = JSON.stringify(echo);
                const flat = ['content-type', 'application/json', 'content-length', String(Buffer.byteLength(body))];
                for (const [k, v] of extra) flat.push(k, v);
                res.writeHead(status, flat);
                res.end(body);
            });
        });
        server.on('connection', s => {
            sockets.add(s);
            s.on('close', () => sockets.delete(s));
        });
        server.on('clientError', (_e, s) => s.destroy());
        server.keepAliveTimeout = 60000;
        server.requestTimeout = 0;
        await new Promise((resolve, reject) => {
            server.once('error', reject);
            server.listen(0, host, resolve);
        });
        set.ports[name] = server.address().port;
        set.servers.push({ server, sockets });
    }
    set.close = track(
        () =>
            Promise.all(
                set.servers.map(
                    ({ server, sockets }) =>
                        new Promise(resolve => {
                            for (const s of sockets) s.destroy();
                            server.close(() => resolve());
                        }),
                ),
            ),
    );
    return set;
}

/* Service + EndpointSlice documents that make backendRef {name, port: 8080} resolve to 127.0.0.1:<local port>. */
export function backendYaml(ports, servicePort = 8080) {
    return Object.entries(ports)
        .map(
            ([name, port]) => `apiVersion: v1
kind: Service
metadata: {name: ${name}}
spec:
  ports: [{name: http, port: ${servicePort}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${name}-1
  labels: {kubernetes.io/service-name: ${name}}
addressType: IPv4
endpoints:
- addresses: [127.0.0.1]
ports: [{name: http, port: ${port}}]
`,
        )
        .join('---\n');
}

const splitDocs = y => y.split(/^---\s*$/m).filter(d => d.trim());

/* Listener ports named in a case's Gateway YAML (the only `port:` fields there). */
export function listenerPorts(gatewayYaml) {
    return [...new Set([...gatewayYaml.matchAll(/\bport: (\d+)/g)].map(m => Number(m[1])))];
}

/*
 * The case's config for the local run: listener ports (and parentRefs ports) mapped through portMap, the Gateways
 * bound to 127.0.0.1, the RoutePolicy documents appended, then Service/EndpointSlice documents for the backends.
 */
export function localConfig(cfg, portMap, backendPorts) {
    const mapPort = p => {
        if (!(p in portMap)) throw new Error(`no local port for listener port ${p}`);
        return portMap[p];
    };
    const gws = splitDocs(cfg.gateway_yaml).map(d =>
        d
            .replace(/\bport: (\d+)/g, (_, p) => `port: ${mapPort(Number(p))}`)
            .replace(/^spec:\n/m, 'spec:\n  addresses: [{type: IPAddress, value: 127.0.0.1}]\n'),
    );
    /* Only ports inside parentRefs name listeners; backendRefs ports are Service ports and stay. */
    const routes = splitDocs(cfg.routes_yaml).map(d => {
        const lines = d.split('\n');
        let inParent = -1;
        for (let i = 0; i < lines.length; i++) {
            const indent = lines[i].search(/\S/);
            if (/^\s*parentRefs:/.test(lines[i])) {
                inParent = indent;
                continue;
            }
            if (inParent >= 0 && indent >= 0 && (indent < inParent || (indent === inParent && !/^\s*- /.test(lines[i])))) inParent = -1;
            if (inParent >= 0) lines[i] = lines[i].replace(/\bport: (\d+)/, (_, p) => `port: ${mapPort(Number(p))}`);
        }
        return lines.join('\n');
    });
    const docs = [...gws, ...routes, ...(cfg.extra_yaml ? splitDocs(cfg.extra_yaml) : []), backendYaml(backendPorts),
        ...certSecrets(cfg.gateway_yaml, cfg.extra_yaml || '')];
    return docs.map(d => d.replace(/\n*$/, '\n')).join('---\n');
}

/* Rules of a routes YAML, roughly: parent Gateway names, path matches and the redirect's explicit keys. */
function routeRules(routesYaml) {
    const out = [];
    for (const d of splitDocs(routesYaml)) {
        const parents = [...d.matchAll(/parentRefs:\n((?:\s+- .*\n?)+)/g)].flatMap(m => [...m[1].matchAll(/name: ([\w.-]+)/g)].map(x => x[1]));
        const rulesAt = d.indexOf('\n  rules:\n');
        if (rulesAt < 0) continue;
        const ruleTexts = d.slice(rulesAt + 10).split(/^ {2}- /m).filter(t => t.trim());
        for (const t of ruleTexts) {
            const paths = [...t.matchAll(/path: \{type: (\w+), value: ([^},\s]+)\}/g)].map(m => ({ type: m[1], value: m[2] }));
            const rr = /requestRedirect:(.*)\n?((?:\s{8,}.*\n?)*)/.exec(t);
            out.push({
                parents,
                paths: paths.length ? paths : [{ type: 'PathPrefix', value: '/' }],
                redirect: rr ? { port: /\bport:/.test(rr[1] + rr[2]), scheme: /\bscheme:/.test(rr[1] + rr[2]) } : null,
            });
        }
    }
    return out;
}

const prefixMatch = (value, path) => {
    const v = value.replace(/\/$/, '');
    return v === '' || path === v || path.startsWith(v + '/');
};

/*
 * Whether a redirect case's Location port comes from the listener (the filter sets neither port nor scheme),
 * so that it maps to the local port; otherwise the port is a literal from the filter or the scheme default.
 */
export function redirectPortFromListener(c) {
    const gwPorts = {};
    for (const d of splitDocs(c.gateway_yaml)) {
        const name = /metadata: \{name: ([\w.-]+)/.exec(d)?.[1];
        if (name) gwPorts[name] = listenerPorts(d);
    }
    const path = c.request.path.split('?')[0];
    let best = null;
    let bestRank = -1;
    for (const r of routeRules(c.routes_yaml)) {
        if (!r.redirect || !r.parents.some(p => (gwPorts[p] || []).includes(c.request.port))) continue;
        for (const p of r.paths) {
            const rank = p.type === 'Exact' ? (p.value === path ? 1e6 : -1) : prefixMatch(p.value, path) ? p.value.length : -1;
            if (rank > bestRank) {
                bestRank = rank;
                best = r;
            }
        }
    }
    if (!best) throw new Error(`${c.id}: cannot find the redirect rule for ${path}`);
    return !best.redirect.port && !best.redirect.scheme;
}

/* Converts the jsonl rows into the fixture: configs once per config_id, cases with what the local run needs. */
export function toFixture(rows) {
    const configs = {};
    const cases = [];
    for (const c of rows) {
        const cfg = { gateway_yaml: c.gateway_yaml, routes_yaml: c.routes_yaml };
        if (c.extra_yaml) cfg.extra_yaml = c.extra_yaml;
        if (configs[c.config_id] && JSON.stringify(configs[c.config_id]) !== JSON.stringify(cfg))
            throw new Error(`config ${c.config_id} differs between cases (${c.id})`);
        configs[c.config_id] = cfg;
        const k = { id: c.id, peer_test: c.peer_test, feature: c.feature, support: c.support, config_id: c.config_id };
        k.request = c.request;
        k.expect = { ...c.expect };
        if (k.expect.redirect) k.expect.redirect = { ...k.expect.redirect, port_from_listener: redirectPortFromListener(c) };
        if (c.note) k.note = c.note;
        if (c.derived) k.derived = true;
        cases.push(k);
    }
    return { configs, cases };
}

/* One HTTP/1.1 request on a fresh connection; redirects are never followed. */
export function httpRequest({ port, method = 'GET', path = '/', headers = {}, timeoutMs = 10000, scheme = 'http' }) {
    return new Promise((resolve, reject) => {
        const opts = { host: '127.0.0.1', port, method, path, headers, agent: false, setHost: false };
        const host = String(headers.Host || headers.host || '').replace(/:\d+$/, '');
        const req = scheme === 'https'
            ? https.request({ ...opts, rejectUnauthorized: false, servername: /^[\d.]+$/.test(host) ? undefined : host })
            : http.request(opts);
        const t = setTimeout(() => req.destroy(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
        req.on('response', res => {
            const parts = [];
            res.on('data', d => parts.push(d));
            res.on('end', () => {
                clearTimeout(t);
                resolve({ status: res.statusCode, headers: headerMap(res.rawHeaders), body: Buffer.concat(parts).toString('utf8') });
            });
            res.on('error', e => {
                clearTimeout(t);
                reject(e);
            });
        });
        req.on('error', e => {
            clearTimeout(t);
            reject(e);
        });
        req.end();
    });
}

/*
 * The same over HTTP/2 cleartext with prior knowledge, one session per request: Host becomes :authority,
 * header names go lowercase (h2 requires it), response header lines come from the raw list.
 */
export function h2Request({ port, method = 'GET', path = '/', headers = {}, timeoutMs = 10000, scheme = 'http' }) {
    return new Promise((resolve, reject) => {
        const host = String(headers.Host || headers.host || '').replace(/:\d+$/, '');
        const session = scheme === 'https'
            ? http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, servername: /^[\d.]+$/.test(host) ? undefined : host })
            : http2.connect(`http://127.0.0.1:${port}`);
        const fail = e => {
            clearTimeout(t);
            session.destroy();
            reject(e);
        };
        const t = setTimeout(() => fail(new Error(`no h2 answer in ${timeoutMs} ms`)), timeoutMs);
        session.on('error', fail);
        const h = { ':method': method, ':path': path };
        for (const [k, v] of Object.entries(headers)) {
            if (k.toLowerCase() === 'host') h[':authority'] = v;
            else h[k.toLowerCase()] = v;
        }
        const st = session.request(h, { endStream: true });
        let res = null;
        const parts = [];
        st.on('response', (_h, _flags, raw) => {
            const plain = [];
            for (let i = 0; i < raw.length; i += 2) if (!raw[i].startsWith(':')) plain.push(raw[i], raw[i + 1]);
            res = { status: Number(_h[':status']), headers: headerMap(plain) };
        });
        st.on('data', d => parts.push(d));
        st.on('end', () => {
            clearTimeout(t);
            session.close();
            if (!res) return reject(new Error('h2 stream ended without a response'));
            resolve({ ...res, body: Buffer.concat(parts).toString('utf8') });
        });
        st.on('error', fail);
    });
}

const defaultPort = scheme => (scheme === 'https' ? 443 : 80);

/*
 * The request a case sends locally: the listener port mapped, Host as in the case (its port mapped too, or
 * 127.0.0.1:<port> when the case leaves it open), a fresh uuid, X-Echo-Set-Header for the wanted backend headers.
 */
export function localRequest(c, portMap) {
    const r = c.request;
    const port = portMap[r.port];
    if (!port) throw new Error(`${c.id}: no local port for listener port ${r.port}`);
    let host = r.host;
    if (host === null || host === undefined) host = `127.0.0.1:${port}`;
    else host = host.replace(/:(\d+)$/, (_, p) => `:${portMap[Number(p)] || p}`);
    const headers = { Host: host, ...(r.headers || {}) };
    const brh = c.expect.backend_response_headers;
    if (brh && Object.keys(brh).length) headers['X-Echo-Set-Header'] = Object.entries(brh).map(([k, v]) => `${k}:${v}`).join(',');
    const path = r.path.replace(/\{fresh-uuid\}/g, () => crypto.randomUUID());
    return { port, method: r.method || 'GET', path, headers, scheme: r.scheme || 'http' };
}

const lc = o => Object.fromEntries(Object.entries(o || {}).map(([k, v]) => [k.toLowerCase(), v]));
const joined = (h, name) => (h[name.toLowerCase()] ? h[name.toLowerCase()].join(',') : undefined);

/* Checks one response against expect; returns a list of problems (empty = pass). */
export function checkResponse(c, req, res, portMap, expect = c.expect) {
    const errs = [];
    const want = expect.status_any_of || (expect.status !== undefined ? [expect.status] : expect.backend ? [200] : null);
    if (want && !want.includes(res.status)) errs.push(`status ${res.status}, want ${want.join(' or ')}`);
    let echo = null;
    if (expect.backend || expect.upstream_request) {
        try {
            echo = JSON.parse(res.body);
        } catch {
            errs.push(`response body is not the echo JSON: ${JSON.stringify(res.body.slice(0, 200))}`);
        }
    }
    if (echo && expect.backend && echo.backend !== expect.backend) errs.push(`answered by ${echo.backend}, want ${expect.backend}`);
    const up = expect.upstream_request;
    if (echo && up) {
        const wantPath = up.path !== undefined ? up.path : req.path;
        if (echo.path !== wantPath) errs.push(`upstream path ${JSON.stringify(echo.path)}, want ${JSON.stringify(wantPath)}`);
        if (up.host !== undefined) {
            /* The peer compares the host name; the port of a Host it forwards as received is not part of it. */
            const got = (echo.host || '').replace(/:\d+$/, '');
            if (got !== up.host) errs.push(`upstream host ${JSON.stringify(echo.host)}, want ${JSON.stringify(up.host)}`);
        }
        for (const [k, v] of Object.entries(up.headers || {})) {
            const got = joined(echo.headers, k);
            if (got !== v) errs.push(`upstream header ${k}: ${JSON.stringify(got)}, want ${JSON.stringify(v)}`);
        }
        for (const k of up.absent_headers || []) {
            if (echo.headers[k.toLowerCase()]) errs.push(`upstream header ${k} present (${JSON.stringify(echo.headers[k.toLowerCase()])}), want absent`);
        }
    } else if (echo && expect.backend && echo.path !== req.path) {
        errs.push(`upstream path ${JSON.stringify(echo.path)}, want the request's ${JSON.stringify(req.path)}`);
    }
    for (const [k, v] of Object.entries(expect.response_headers || {})) {
        const got = joined(res.headers, k);
        if (got !== v) errs.push(`response header ${k}: ${JSON.stringify(got)}, want ${JSON.stringify(v)}`);
    }
    for (const k of expect.absent_response_headers || []) {
        if (res.headers[k.toLowerCase()]) errs.push(`response header ${k} present, want absent`);
    }
    if (expect.redirect) errs.push(...checkRedirect(c, req, res, portMap, expect.redirect));
    return errs;
}

function checkRedirect(c, req, res, portMap, rd) {
    const loc = joined(res.headers, 'location');
    if (!loc) return [`no Location header (status ${res.status})`];
    let u;
    try {
        u = new URL(loc);
    } catch {
        return [`Location ${JSON.stringify(loc)} is not an absolute URL`];
    }
    const errs = [];
    const reqHost = req.headers.Host.replace(/:\d+$/, '');
    const scheme = rd.scheme === '=request' ? req.scheme : rd.scheme;
    const host = rd.host === '=request' ? reqHost : rd.host;
    const reqPath = req.path.split('?')[0];
    const path = rd.path === '=request' ? reqPath : rd.path;
    /* The effective port in the peer's world, then its local counterpart when it is the listener's. */
    let port = rd.port === null || rd.port === undefined ? defaultPort(scheme) : Number(rd.port);
    if (rd.port_from_listener) port = portMap[port] || port;
    const gotPort = u.port === '' ? defaultPort(u.protocol.slice(0, -1)) : Number(u.port);
    if (u.protocol !== `${scheme}:`) errs.push(`Location scheme ${u.protocol.slice(0, -1)}, want ${scheme} (${loc})`);
    if (u.hostname !== host) errs.push(`Location host ${u.hostname}, want ${host} (${loc})`);
    if (gotPort !== port) errs.push(`Location port ${gotPort}, want ${port} (${loc})`);
    if (u.pathname !== path) errs.push(`Location path ${u.pathname}, want ${path} (${loc})`);
    return errs;
}

/*
 * Runs one case against a gateway whose listener ports are portMap; returns the problems (empty = pass).
 * proto: 'h1' (HTTP/1.1, default) or 'h2' (h2c prior knowledge). Also handles the weight keys: distribution {backend: weight} over 500 requests, 10 at a time, up to 10 tries;
 * repeat N with each (an expect object) checked per request.
 */
export async function runCase(c, portMap, { timeoutMs = 10000, proto = 'h1' } = {}) {
    const ex = c.expect;
    const send = proto === 'h2' ? h2Request : httpRequest;
    if (ex.distribution) return runDistribution(c, portMap, timeoutMs, send);
    if (ex.repeat) {
        for (let i = 0; i < ex.repeat; i++) {
            const req = localRequest(c, portMap);
            const res = await send({ ...req, timeoutMs });
            const errs = checkResponse(c, req, res, portMap, ex.each || ex);
            if (errs.length) return errs.map(e => `request ${i + 1}: ${e}`);
        }
        return [];
    }
    const req = localRequest(c, portMap);
    const res = await send({ ...req, timeoutMs });
    return checkResponse(c, req, res, portMap);
}

async function runDistribution(c, portMap, timeoutMs, send) {
    const weights = c.expect.distribution;
    const total = Object.values(weights).reduce((a, b) => a + b, 0);
    let last = [];
    for (let attempt = 0; attempt < 10; attempt++) {
        const counts = {};
        let next = 0;
        const errs = [];
        const worker = async () => {
            while (next < 500) {
                next++;
                const req = localRequest(c, portMap);
                const res = await send({ ...req, timeoutMs });
                let b = null;
                try {
                    b = JSON.parse(res.body).backend;
                } catch {
                    /* counted as an error below */
                }
                if (res.status !== 200 || !b) errs.push(`status ${res.status}`);
                else counts[b] = (counts[b] || 0) + 1;
            }
        };
        await Promise.all(Array.from({ length: 10 }, worker));
        if (errs.length) return [`${errs.length} of 500 requests failed: ${errs[0]}`];
        last = [];
        for (const [b, w] of Object.entries(weights)) {
            const share = (counts[b] || 0) / 500;
            if (w === 0 && counts[b]) return [`weight-0 backend ${b} was selected ${counts[b]} times`];
            if (Math.abs(share - w / total) > 0.05) last.push(`${b}: share ${share.toFixed(3)}, want ${(w / total).toFixed(3)} ± 0.05`);
        }
        for (const b of Object.keys(counts)) if (!(b in weights)) return [`unexpected backend ${b}`];
        if (!last.length) return [];
    }
    return last;
}
