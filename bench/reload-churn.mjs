// bench/reload-churn.mjs: RSS of ssegate across many SIGHUP reloads whose endpoint sets keep changing.
//
// Usage: node bench/reload-churn.mjs [RELOADS] [SSEGATE_BIN]     (defaults: 10000, build/ssegate)
//   SG_CHURN_CHECKPOINTS="1000,10000" (when to read VmRSS and /metrics), SG_CHURN_ENDPOINTS=4 (per reload),
//   SG_CHURN_FIXED=1 (the same endpoints every time, so only the loader churns).
// Each reload writes a config with quoted scalars (double-quoted with escapes, single-quoted) and a fresh set of
// endpoint addresses (as pods come and go in Kubernetes), sends SIGHUP and waits for ssegate to acknowledge that
// generation in its log before the next one, so the pace is whatever ssegate can follow. Bounded in count; it
// sends no traffic and uses only loopback addresses (the endpoints are never connected to).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const N = Number(process.argv[2] || 10000);
const BIN = process.argv[3] || process.env.SSEGATE_BIN || 'build/ssegate';
const CHECKPOINTS = (process.env.SG_CHURN_CHECKPOINTS || `1000,${N}`).split(',').map(Number);
const EPS = Number(process.env.SG_CHURN_ENDPOINTS || 4);
const FIXED = process.env.SG_CHURN_FIXED === '1'; /* same endpoints every time: isolates the loader from the table */

function freePort() {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.on('error', reject);
        s.listen(0, '127.0.0.1', () => {
            const p = s.address().port;
            s.close(() => resolve(p));
        });
    });
}

function yaml(port, iter) {
    const i = FIXED ? 0 : iter;
    /* 127.1.x.y:port: a new address set every reload, never repeating within 10,000 reloads x 4 endpoints. */
    const eps = [];
    for (let k = 0; k < EPS; k++) {
        const n = i * EPS + k;
        eps.push(`"127.1.${(n >> 8) & 255}.${n & 255}"`);
    }
    const epPort = 20000 + (Math.floor((i * EPS) / 65536) % 1000);
    return `apiVersion: "gateway.networking.k8s.io/v1"
kind: 'Gateway'
metadata: {name: "gw", annotations: {"note": "reload \\"${iter}\\"\\tchurn \\u0041", 'q': 'it''s ${iter}'}}
spec:
  gatewayClassName: "ssegate"
  addresses: [{type: IPAddress, value: "127.0.0.1"}]
  listeners:
  - {name: "http", protocol: "HTTP", port: ${port}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: "churn"}
spec:
  parentRefs: [{name: "gw"}]
  rules:
  - matches: [{path: {type: "PathPrefix", value: "/api"}, headers: [{name: "X-Env", value: "pr\\u006Fd"}]}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: "X-Tag", value: "t\\u00e9st \\"q\\" ${iter}"}]
    backendRefs: [{name: "svc", port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: "svc"}
spec:
  ports: [{name: "http", port: 80, targetPort: "http"}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: "svc-1"
  labels: {"kubernetes.io/service-name": "svc"}
addressType: "IPv4"
endpoints:
- addresses: [${eps.join(', ')}]
ports: [{name: "http", port: ${epPort}}]
`;
}

function rssKiB(pid) {
    return Number(/^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
}

async function scrape(port) {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    const text = await res.text();
    const one = name => {
        const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
        return m ? Number(m[1]) : null;
    };
    return {
        healthEntries: one('ssegate_health_entries'),
        endpointLines: (text.match(/^ssegate_endpoint_healthy\{/gm) || []).length,
        generation: one('ssegate_config_generation'),
    };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-churn-'));
const cfg = path.join(dir, 'gw.yaml');
const port = await freePort();
const admin = await freePort();
fs.writeFileSync(cfg, yaml(port, 0));
const child = spawn(BIN, ['-c', cfg, '--workers', '2', '--access-log', 'off', '--admin', `127.0.0.1:${admin}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
});
let log = '';
let waiting = null;
child.stderr.setEncoding('utf8');
child.stderr.on('data', d => {
    log = (log + d).slice(-4096);
    if (waiting && waiting.re.test(log)) {
        const w = waiting;
        waiting = null;
        w.resolve();
    }
});
const exited = new Promise(r => child.on('exit', (code, sig) => r({ code, sig })));
const waitLog = (re, ms) =>
    new Promise((resolve, reject) => {
        if (re.test(log)) return resolve();
        const t = setTimeout(() => reject(new Error(`no ${re} in ${ms} ms; log tail:\n${log}`)), ms);
        waiting = { re, resolve: () => (clearTimeout(t), resolve()) };
    });

const rows = [];
try {
    await waitLog(/admin on/, 10000);
    await new Promise(r => setTimeout(r, 200));
    const base = { n: 0, rss: rssKiB(child.pid), ...(await scrape(admin)) };
    rows.push(base);
    const t0 = Date.now();
    for (let i = 1; i <= N; i++) {
        fs.writeFileSync(cfg + '.tmp', yaml(port, i));
        fs.renameSync(cfg + '.tmp', cfg);
        child.kill('SIGHUP');
        /* acknowledged by the generation gauge: the "config reloaded" log line is rate-limited */
        for (const t0r = Date.now(); (await scrape(admin)).generation < i + 1;) {
            if (Date.now() - t0r > 10000) throw new Error(`reload ${i} not acknowledged in 10 s`);
            await new Promise(r => setTimeout(r, 1));
        }
        if (CHECKPOINTS.includes(i)) rows.push({ n: i, rss: rssKiB(child.pid), ...(await scrape(admin)) });
    }
    const secs = (Date.now() - t0) / 1000;
    console.log(`ssegate ${BIN}: ${N} reloads in ${secs.toFixed(1)} s, ${FIXED ? `the same ${EPS} endpoints` : `${EPS} new endpoint addresses`} each`);
    console.log('reloads  VmRSS_KiB  health_entries  endpoint_metric_lines');
    for (const r of rows)
        console.log(`${String(r.n).padStart(7)}  ${String(r.rss).padStart(9)}  ${String(r.healthEntries ?? '-').padStart(14)}  ${String(r.endpointLines).padStart(21)}`);
} finally {
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
    fs.rmSync(dir, { recursive: true, force: true });
}
