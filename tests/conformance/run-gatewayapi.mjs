// run-gatewayapi.mjs: the peer Gateway API HTTPRoute cases (gatewayapi-cases.jsonl) against a real ssegate.
//   node tests/conformance/run-gatewayapi.mjs [--only ID,ID] [--config CONFIG_ID] [--verbose]
// Starts the peer's backend emulator (backend-v1..v3, as Service + EndpointSlice), then one ssegate per
// config_id, sends each case's request and compares with its expectations. Needs ../shared/conformance
// (or SG_CONFORMANCE_DIR); says so and exits 0 when it is missing.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const conf = process.env.SG_CONFORMANCE_DIR || path.join(repo, '../shared/conformance');
const bin = process.env.SSEGATE_BIN || (fs.existsSync(path.join(repo, 'build/ssegate')) ? path.join(repo, 'build/ssegate') : path.join(repo, 'ssegate'));
const args = process.argv.slice(2);
const opt = n => {
    const i = args.indexOf(n);
    return i >= 0 ? args[i + 1] : undefined;
};
const verbose = args.includes('--verbose');
/* The gateway binds this loopback address, so the peer's real listener ports (80, 8080, 443) can be used
 * without clashing with anything on 127.0.0.1. */
const GW_ADDR = process.env.SG_GW_ADDR || '127.0.0.9';

if (!fs.existsSync(conf)) {
    console.log(`conformance: ${conf} not found (set SG_CONFORMANCE_DIR); nothing to run`);
    process.exit(0);
}
if (!fs.existsSync(bin)) {
    console.error(`conformance: no ssegate at ${bin} (run make, or set SSEGATE_BIN)`);
    process.exit(2);
}

const only = opt('--only') ? new Set(opt('--only').split(',')) : null;
const cases = fs
    .readFileSync(path.join(conf, 'gatewayapi-cases.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map(l => JSON.parse(l))
    .filter(c => (!only || only.has(c.id)) && (!opt('--config') || c.config_id === opt('--config')));

const sleep = ms => new Promise(r => setTimeout(r, ms));
const goDuration = s => {
    let ms = 0;
    for (const [, n, u] of String(s).matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) ms += Number(n) * { ms: 1, s: 1000, m: 60000, h: 3600000 }[u];
    return ms;
};

/* ---- backend emulator (the peer's echo server contract) ---- */
const retries = new Map();
function emulator(name) {
    const server = http.createServer((req, res) => {
        let body = '';
        req.on('data', d => (body += d));
        req.on('end', async () => {
            const u = new URL(req.url, 'http://x');
            if (u.searchParams.get('delay')) await sleep(goDuration(u.searchParams.get('delay')));
            if (u.pathname.startsWith('/retry/')) {
                const key = u.searchParams.get('uuid');
                const n = (retries.get(key) || 0) + 1;
                retries.set(key, n);
                if (n <= Number(u.searchParams.get('succeedAfter') || 0)) {
                    res.writeHead(Number(u.searchParams.get('responseCode') || 500));
                    return res.end(`attempt ${n}`);
                }
            }
            const headers = {};
            for (let i = 0; i < req.rawHeaders.length; i += 2) (headers[req.rawHeaders[i]] ||= []).push(req.rawHeaders[i + 1]);
            const extra = {};
            for (const kv of (req.headers['x-echo-set-header'] || '').split(',').filter(Boolean)) {
                const i = kv.indexOf(':');
                extra[kv.slice(0, i).trim()] = kv.slice(i + 1).trim();
            }
            res.writeHead(200, { 'content-type': 'application/json', ...extra });
            res.end(JSON.stringify({ backend: name, path: req.url, host: req.headers.host, method: req.method, headers }));
        });
    });
    return new Promise(r => server.listen(0, '127.0.0.1', () => r({ name, server, port: server.address().port })));
}

function canBind(port) {
    return new Promise(r => {
        const s = net.createServer();
        s.once('error', () => r(false));
        s.listen(port, GW_ADDR, () => s.close(() => r(true)));
    });
}

async function freePort() {
    const s = net.createServer();
    await new Promise(r => s.listen(0, GW_ADDR, r));
    const { port } = s.address();
    await new Promise(r => s.close(r));
    return port;
}

const backends = await Promise.all(['backend-v1', 'backend-v2', 'backend-v3'].map(emulator));
const services = backends
    .map(
        b => `apiVersion: v1
kind: Service
metadata: {name: ${b.name}}
spec:
  ports: [{port: 8080, targetPort: ${b.port}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${b.name}-1
  labels: {kubernetes.io/service-name: ${b.name}}
addressType: IPv4
ports: [{port: ${b.port}}]
endpoints:
- addresses: [127.0.0.1]
`,
    )
    .join('---\n');

/* ---- one gateway per config ---- */
async function startGateway(c) {
    const ports = [...new Set([...c.gateway_yaml.matchAll(/port: (\d+)/g)].map(m => Number(m[1])))];
    const map = {};
    for (const p of ports) map[p] = (await canBind(p)) ? p : await freePort();
    let gwYaml = c.gateway_yaml
        .split(/^---$/m)
        .map(d => (/^kind: Gateway$/m.test(d) ? d.replace(/^spec:\n/m, `spec:\n  addresses: [{type: IPAddress, value: ${GW_ADDR}}]\n`) : d))
        .join('---');
    gwYaml = gwYaml.replace(/port: (\d+)/g, (_, p) => `port: ${map[p]}`);
    /* parentRefs may pin a port; backendRefs (backend-*) keep theirs */
    const routes = c.routes_yaml.replace(/(\{name: (?!backend-)[\w-]+(?:, [\w]+: [\w-]+)*, port: )(\d+)/g, (_, a, p) => `${a}${map[p] ?? p}`);
    const yaml = [gwYaml.trimEnd() + '\n', routes, c.extra_yaml || '', services].filter(Boolean).join('---\n');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-gwapi-'));
    const file = path.join(dir, `${c.config_id}.yaml`);
    fs.writeFileSync(file, yaml);
    const child = spawn(bin, ['-c', file, '--access-log', 'off'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', d => (stderr += d));
    let exited = false;
    child.on('exit', () => (exited = true));
    const g = { child, map, file, dir, stderr: () => stderr };
    for (const p of Object.values(map)) {
        for (let i = 0; ; i++) {
            if (exited || i > 200) return { ...g, error: `ssegate did not start: ${stderr.trim()}` };
            const ok = await new Promise(r => {
                const s = net.connect(p, GW_ADDR);
                s.once('connect', () => (s.destroy(), r(true)));
                s.once('error', () => r(false));
            });
            if (ok) break;
            await sleep(25);
        }
    }
    return g;
}

async function stopGateway(g) {
    if (g.child.exitCode === null) {
        g.child.kill('SIGTERM');
        await Promise.race([new Promise(r => g.child.once('exit', r)), sleep(3000)]);
        if (g.child.exitCode === null) g.child.kill('SIGKILL');
    }
    fs.rmSync(g.dir, { recursive: true, force: true });
}

/* ---- one request ---- */
function send(c, g) {
    const rq = c.request;
    const port = g.map[rq.port] ?? rq.port;
    const reqPath = rq.path.replace('{fresh-uuid}', crypto.randomUUID());
    const hostHeader = rq.host ?? (rq.port === 80 || rq.port === 443 ? GW_ADDR : `${GW_ADDR}:${rq.port}`);
    const headers = { ...rq.headers, host: hostHeader };
    if (c.expect.backend_response_headers) {
        headers['X-Echo-Set-Header'] = Object.entries(c.expect.backend_response_headers)
            .map(([k, v]) => `${k}:${v}`)
            .join(',');
    }
    const mod = rq.scheme === 'https' ? https : http;
    return new Promise(resolve => {
        const r = mod.request(
            {
                host: GW_ADDR,
                port,
                method: rq.method,
                path: reqPath,
                headers,
                agent: false,
                rejectUnauthorized: false,
                servername: rq.host || undefined,
                timeout: 15000,
            },
            res => {
                let body = '';
                res.setEncoding('utf8');
                res.on('data', d => (body += d));
                res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, rawHeaders: res.rawHeaders, body, path: reqPath, hostHeader }));
            },
        );
        r.on('timeout', () => r.destroy(new Error('timeout')));
        r.on('error', e => resolve({ error: e.message }));
        r.end();
    });
}

function check(c, r) {
    const e = c.expect;
    const fails = [];
    if (r.error) return [`request failed: ${r.error}`];
    if (e.status !== undefined && r.status !== e.status) fails.push(`status ${r.status}, want ${e.status}`);
    if (e.status_any_of && !e.status_any_of.includes(r.status)) fails.push(`status ${r.status}, want one of ${e.status_any_of}`);
    let j = null;
    if (e.backend || e.upstream_request) {
        try {
            j = JSON.parse(r.body);
        } catch {
            fails.push(`response is not the echo JSON: ${r.body.slice(0, 80)}`);
            return fails;
        }
    }
    if (e.backend && j.backend !== e.backend) fails.push(`answered by ${j.backend}, want ${e.backend}`);
    if (e.upstream_request) {
        const u = e.upstream_request;
        const lower = {};
        for (const [k, v] of Object.entries(j.headers)) (lower[k.toLowerCase()] ||= []).push(...v);
        const wantPath = u.path ?? r.path;
        if (j.path !== wantPath) fails.push(`backend path ${j.path}, want ${wantPath}`);
        if (u.host !== undefined && j.host !== u.host) fails.push(`backend host ${j.host}, want ${u.host}`);
        for (const [k, v] of Object.entries(u.headers || {})) {
            const got = lower[k.toLowerCase()];
            if ((got || []).join(',') !== v) fails.push(`backend header ${k}: ${JSON.stringify(got)}, want ${JSON.stringify(v)}`);
        }
        for (const k of u.absent_headers || []) if (lower[k.toLowerCase()]) fails.push(`backend header ${k} should be absent`);
    }
    for (const [k, v] of Object.entries(e.response_headers || {})) {
        /* the peer joins several field lines with ',' and no space (node would join with ', ') */
        const got = r.rawHeaders.filter((x, i) => i % 2 === 1 && r.rawHeaders[i - 1].toLowerCase() === k.toLowerCase());
        if (got.join(',') !== v) fails.push(`response header ${k}: ${JSON.stringify(got)}, want ${JSON.stringify(v)}`);
    }
    for (const k of e.absent_response_headers || []) if (r.headers[k.toLowerCase()] !== undefined) fails.push(`response header ${k} should be absent`);
    if (e.redirect) {
        const loc = r.headers.location;
        if (!loc) fails.push('no Location');
        else {
            const u = new URL(loc, `${c.request.scheme}://${r.hostHeader}`);
            const x = e.redirect;
            const wantScheme = x.scheme === '=request' ? c.request.scheme : x.scheme;
            const wantHost = x.host === '=request' ? r.hostHeader.replace(/:\d+$/, '') : x.host;
            const wantPath = x.path === '=request' ? r.path : x.path;
            if (u.protocol !== `${wantScheme}:`) fails.push(`Location scheme ${u.protocol} (${loc}), want ${wantScheme}`);
            if (u.hostname !== wantHost) fails.push(`Location host ${u.hostname} (${loc}), want ${wantHost}`);
            /* URL drops a port equal to the scheme's default, which is what port: null allows */
            if ((x.port ?? '') !== u.port) fails.push(`Location port "${u.port}" (${loc}), want ${x.port ?? 'none/default'}`);
            if (u.pathname + u.search !== wantPath) fails.push(`Location path ${u.pathname + u.search}, want ${wantPath}`);
        }
    }
    for (const k of ['distribution', 'repeat', 'each']) if (e[k] !== undefined) fails.push(`runner does not implement expect.${k}`);
    return fails;
}

/* ---- main ---- */
const byConfig = new Map();
for (const c of cases) (byConfig.get(c.config_id) || byConfig.set(c.config_id, []).get(c.config_id)).push(c);
let pass = 0;
let fail = 0;
const mapped = new Set();
for (const [cfg, list] of byConfig) {
    const g = await startGateway(list[0]);
    for (const [from, to] of Object.entries(g.map)) if (Number(from) !== to) mapped.add(`${from}->${to}`);
    for (const c of list) {
        const fails = g.error ? [g.error.split('\n').slice(0, 4).join(' | ')] : check(c, await send(c, g));
        if (fails.length) fail++;
        else pass++;
        if (fails.length || verbose) console.log(`${fails.length ? 'FAIL' : 'PASS'} ${c.id} [${cfg}, ${c.support}] ${c.feature}${fails.length ? '\n    ' + fails.join('\n    ') : ''}`);
    }
    await stopGateway(g);
}
if (mapped.size) console.log(`note: listener ports remapped (${[...mapped].join(', ')}); redirect port expectations may differ`);
for (const b of backends) b.server.close();
console.log(`${pass} passed, ${fail} failed`);
process.exit(fail ? 1 : 0);
