// fanout-util.mjs: configs with SSEPolicy for the fan-out tests, a backend that holds its answers, and the per-worker
// subscriber gauge.
import http from 'node:http';
import { track } from './harness.mjs';
import { prodYaml, scrape } from './prod-util.mjs';

/*
 * One Gateway on port, and routes [{name, path, backends: [{service, port}], policy: {...} | undefined,
 * ruleName}], each route with one rule (named ruleName when given). policy is the SSEPolicy spec.default as YAML
 * flow text (e.g. "{sharing: {enabled: true}}") and may target the rule by sectionName (policySection).
 */
export function fanoutYaml({ port, routes, services = [], extra = '' }) {
    const docs = [];
    for (const r of routes) {
        if (!r.policy) continue;
        const section = r.policySection ? `, sectionName: ${r.policySection}` : '';
        docs.push(`apiVersion: ssegate.io/v1alpha1
kind: SSEPolicy
metadata: {name: ${r.name}-sse}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: ${r.name}${section}}
  default: ${r.policy}
`);
    }
    let y = prodYaml({ port, routes, services, extra: [extra, ...docs].filter(Boolean).join('---\n') });
    /* Rule names: prodYaml writes one rule per route; name it when asked. */
    for (const r of routes)
        if (r.ruleName)
            y = y.replace(
                `metadata: {name: ${r.name}}\nspec:\n  parentRefs: [{name: gw}]\n  rules:\n  - matches:`,
                `metadata: {name: ${r.name}}\nspec:\n  parentRefs: [{name: gw}]\n  rules:\n  - name: ${r.ruleName}\n    matches:`,
            );
    return y;
}

/* Ids of events as numbers. */
export const ids = h => h.events.map(e => Number(e.id));

export const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

/* A backend that holds every response head until the test answers it (answer, send, noContent, fail). Records each
 * request. */
export async function gatedBackend() {
    const sockets = new Set();
    const be = { reqs: [] };
    const server = http.createServer((req, res) => {
        const r = { lei: req.headers['last-event-id'], url: req.url, closed: false, res };
        res.on('close', () => (r.closed = true));
        r.answer = () => {
            res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
            res.flushHeaders();
        };
        r.send = id => res.write(`id: ${id}\ndata: event ${id}\n\n`);
        r.noContent = () => {
            res.writeHead(204);
            res.end();
        };
        r.fail = () => {
            res.writeHead(503, { 'content-type': 'text/plain' });
            res.end('down\n');
        };
        be.reqs.push(r);
    });
    server.on('connection', s => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
    });
    server.requestTimeout = 0;
    server.timeout = 0;
    be.port = await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve(server.address().port));
    });
    track(() => new Promise(resolve => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
    }));
    return be;
}

/* Subscribers per worker, from the gateway's own per-worker gauge. */
export async function perWorker(admin, n) {
    const m = await scrape(admin);
    const out = [];
    for (let i = 0; i < n; i++) {
        const v = m.get('ssegate_fanout_worker_subscribers', { worker: String(i) });
        if (v === undefined) throw new Error(`no ssegate_fanout_worker_subscribers{worker="${i}"} in /metrics`);
        out.push(v);
    }
    return out;
}
