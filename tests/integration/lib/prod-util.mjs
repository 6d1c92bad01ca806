// prod-util.mjs: helpers for the production-behaviour suites: admin scrapes, a Prometheus text parser, multi-endpoint
// configs (Service + EndpointSlice + BackendLoadBalancingPolicy + RoutePolicy), tagged backends, a timestamped SSE
// reader, shared event sequences and the gateway's RSS.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { track, sleep } from './harness.mjs';
import { SseParser } from './sseclient.mjs';

/* GET path on host:port; resolves {status, headers, body (string)}. */
export function httpGet(port, path, { host = '127.0.0.1', headers = {}, ms = 5000, localAddress } = {}) {
    return new Promise((resolve, reject) => {
        const req = http.get({ host, port, path, agent: false, headers, localAddress }, res => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', d => (body += d));
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
            res.on('error', reject);
        });
        req.setTimeout(ms, () => req.destroy(new Error(`GET ${path} on ${port}: no answer in ${ms} ms`)));
        req.on('error', reject);
    });
}

/* Resolves 'refused' when a TCP connect to port is refused, 'open' when it succeeds, 'timeout' otherwise. */
export function probeConnect(port, host = '127.0.0.1', ms = 1000) {
    return new Promise(resolve => {
        const s = net.connect({ port, host });
        const t = setTimeout(() => {
            s.destroy();
            resolve('timeout');
        }, ms);
        s.once('connect', () => {
            clearTimeout(t);
            s.destroy();
            resolve('open');
        });
        s.once('error', e => {
            clearTimeout(t);
            resolve(e.code === 'ECONNREFUSED' ? 'refused' : `error ${e.code}`);
        });
    });
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Prometheus text exposition format 0.0.4: a strict parser that throws on anything a scraper would reject.      */

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(s, where) {
    if (s === '+Inf' || s === 'Inf') return Infinity;
    if (s === '-Inf') return -Infinity;
    if (s === 'NaN') return NaN;
    if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) throw new Error(`${where}: bad sample value ${JSON.stringify(s)}`);
    return Number(s);
}

function parseLabels(s, where) {
    /* s is what lies between { and } */
    const labels = {};
    let i = 0;
    while (i < s.length) {
        const eq = s.indexOf('=', i);
        if (eq < 0) throw new Error(`${where}: label without '='`);
        const name = s.slice(i, eq).trim();
        if (!LABEL_RE.test(name)) throw new Error(`${where}: bad label name ${JSON.stringify(name)}`);
        if (name in labels) throw new Error(`${where}: label ${name} twice`);
        if (s[eq + 1] !== '"') throw new Error(`${where}: label value of ${name} not quoted`);
        let j = eq + 2;
        let v = '';
        for (;;) {
            if (j >= s.length) throw new Error(`${where}: unterminated label value`);
            const c = s[j];
            if (c === '\\') {
                const n = s[j + 1];
                if (n === 'n') v += '\n';
                else if (n === '\\' || n === '"') v += n;
                else throw new Error(`${where}: bad escape \\${n} in label value`);
                j += 2;
            } else if (c === '"') {
                j++;
                break;
            } else if (c === '\n') {
                throw new Error(`${where}: newline in label value`);
            } else {
                v += c;
                j++;
            }
        }
        labels[name] = v;
        while (s[j] === ' ') j++;
        if (j < s.length) {
            if (s[j] !== ',') throw new Error(`${where}: expected ',' after label ${name}`);
            j++;
            while (s[j] === ' ') j++;
        }
        i = j;
    }
    return labels;
}

function familyOf(name, types) {
    if (types.has(name)) return name;
    for (const suf of ['_bucket', '_sum', '_count']) {
        if (name.endsWith(suf)) {
            const base = name.slice(0, -suf.length);
            const t = types.get(base);
            if (t === 'histogram' || (t === 'summary' && suf !== '_bucket')) return base;
        }
    }
    return null;
}

const labelKey = (labels, skip) =>
    Object.keys(labels)
        .filter(k => k !== skip)
        .sort()
        .map(k => `${k}=${JSON.stringify(labels[k])}`)
        .join(',');

/*
 * Parses and validates text. Returns {families: Map(name -> {type, help, samples}), samples: [{name, labels, value}]}.
 * Checks: line grammar, HELP/TYPE at most once per family and TYPE before its samples, every sample in a typed
 * family, a family's samples contiguous, no duplicate series, counters non-negative and named *_total, histograms
 * with cumulative buckets sorted by le, ending in +Inf, with _sum and _count (= the +Inf bucket).
 */
export function parseProm(text) {
    if (!text.endsWith('\n')) throw new Error('exposition does not end with a newline');
    const types = new Map();
    const helps = new Map();
    const families = new Map();
    const samples = [];
    const seen = new Set();
    const closedFamilies = new Set();
    let current = null;
    const lines = text.split('\n');
    lines.pop();
    lines.forEach((line, idx) => {
        const where = `line ${idx + 1} (${JSON.stringify(line.slice(0, 120))})`;
        if (line === '') return;
        if (line.startsWith('#')) {
            const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
            if (!m) return; /* an ordinary comment */
            const [, kw, name, rest = ''] = m;
            if (!NAME_RE.test(name)) throw new Error(`${where}: bad metric name`);
            if (kw === 'TYPE') {
                if (!TYPES.has(rest)) throw new Error(`${where}: unknown type ${JSON.stringify(rest)}`);
                if (types.has(name)) throw new Error(`${where}: second TYPE for ${name}`);
                if (families.has(name)) throw new Error(`${where}: TYPE for ${name} after its samples`);
                types.set(name, rest);
            } else {
                if (helps.has(name)) throw new Error(`${where}: second HELP for ${name}`);
                helps.set(name, rest);
            }
            return;
        }
        const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ([^ ]+)(?: (-?\d+))?$/.exec(line);
        if (!m) throw new Error(`${where}: not a sample line`);
        const [, name, lab, val] = m;
        const labels = lab === undefined ? {} : parseLabels(lab, where);
        const value = parseValue(val, where);
        const fam = familyOf(name, types);
        if (!fam) throw new Error(`${where}: sample ${name} has no TYPE`);
        if (fam !== current) {
            if (closedFamilies.has(fam)) throw new Error(`${where}: samples of ${fam} are not contiguous`);
            if (current) closedFamilies.add(current);
            current = fam;
        }
        const key = `${name}{${labelKey(labels)}}`;
        if (seen.has(key)) throw new Error(`${where}: duplicate series ${key}`);
        seen.add(key);
        const s = { name, labels, value };
        samples.push(s);
        if (!families.has(fam)) families.set(fam, { name: fam, type: types.get(fam), help: helps.get(fam), samples: [] });
        families.get(fam).samples.push(s);
    });
    /* a family may be declared before it has any series (e.g. per-route families before the first request) */
    for (const [name, type] of types) if (!families.has(name)) families.set(name, { name, type, help: helps.get(name), samples: [] });
    for (const f of families.values()) {
        if (f.type === 'counter') {
            if (!f.name.endsWith('_total')) throw new Error(`counter ${f.name} is not named *_total`);
            for (const s of f.samples) if (!(s.value >= 0)) throw new Error(`counter ${s.name} has value ${s.value}`);
        }
        if (f.type === 'histogram') {
            const groups = new Map();
            for (const s of f.samples) {
                const k = labelKey(s.labels, 'le');
                if (!groups.has(k)) groups.set(k, { buckets: [], sum: undefined, count: undefined });
                const g = groups.get(k);
                if (s.name === `${f.name}_bucket`) {
                    if (s.labels.le === undefined) throw new Error(`${s.name} without le`);
                    g.buckets.push({ le: parseValue(s.labels.le, `${s.name} le`), v: s.value });
                } else if (s.name === `${f.name}_sum`) g.sum = s.value;
                else if (s.name === `${f.name}_count`) g.count = s.value;
                else throw new Error(`histogram ${f.name} has a sample ${s.name}`);
            }
            for (const [k, g] of groups) {
                const what = `histogram ${f.name}{${k}}`;
                if (!g.buckets.length) throw new Error(`${what}: no buckets`);
                for (let i = 1; i < g.buckets.length; i++) {
                    if (!(g.buckets[i].le > g.buckets[i - 1].le)) throw new Error(`${what}: le not increasing`);
                    if (g.buckets[i].v < g.buckets[i - 1].v) throw new Error(`${what}: buckets not cumulative at le=${g.buckets[i].le}`);
                }
                const last = g.buckets[g.buckets.length - 1];
                if (last.le !== Infinity) throw new Error(`${what}: last bucket is not +Inf`);
                if (g.sum === undefined || g.count === undefined) throw new Error(`${what}: missing _sum or _count`);
                if (g.count !== last.v) throw new Error(`${what}: _count ${g.count} != +Inf bucket ${last.v}`);
                if (!(g.sum >= 0)) throw new Error(`${what}: _sum ${g.sum}`);
            }
        }
    }
    return { families, samples };
}

/* Value of the series name{labels} (labels must match exactly), or undefined. */
export function metric(parsed, name, labels = {}) {
    const k = labelKey(labels);
    const s = parsed.samples.find(x => x.name === name && labelKey(x.labels) === k);
    if (s) return s.value;
    /* Not an exact series: the sum over the series that carry these labels (PromQL's sum by). */
    const subset = parsed.samples.filter(x => x.name === name && Object.entries(labels).every(([l, v]) => x.labels[l] === v));
    return subset.length ? subset.reduce((a, x) => a + x.value, 0) : undefined;
}

/* Scrapes and parses /metrics on the admin port. */
export async function scrape(adminPort) {
    const r = await httpGet(adminPort, '/metrics');
    if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
    const parsed = parseProm(r.body);
    parsed.text = r.body;
    parsed.contentType = r.headers['content-type'];
    parsed.get = (name, labels) => metric(parsed, name, labels);
    return parsed;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Configs with Services, EndpointSlices and policies.                                                          */

/*
 * Builds a config: one Gateway (listeners [{name, port}] or port), routes [{name, path, rules?, backends:
 * [{service, port=80, weight}], affinity: {type, cookieName, cookieDuration}, heartbeat: DUR}], services [{name, endpoints:
 * [port...], host='127.0.0.1', strategy, ringHash}] each with one EndpointSlice per endpoint (all named port
 * "http"), so endpoints can be loopback servers on ephemeral ports.
 */
export function prodYaml({ port, listeners, routes = [], services = [], extra = '' }) {
    const ls = listeners || [{ name: 'http', port }];
    const docs = [
        `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: ssegate
  addresses: [{type: IPAddress, value: 127.0.0.1}]
  listeners:
${ls.map(l => `  - {name: ${l.name}, protocol: HTTP, port: ${l.port}}`).join('\n')}
`,
    ];
    for (const r of routes) {
        const be = r.backends.map(b => `{name: ${b.service}, port: ${b.port || 80}${b.weight !== undefined ? `, weight: ${b.weight}` : ''}}`).join(', ');
        const parent = r.sectionName ? `[{name: gw, sectionName: ${r.sectionName}}]` : '[{name: gw}]';
        docs.push(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ${r.name}}
spec:
  parentRefs: ${parent}
  rules:
  - matches: [{path: {type: PathPrefix, value: ${r.path || '/'}}}]
    backendRefs: [${be}]
`);
        if (r.affinity || r.heartbeat) {
            const a = r.affinity;
            let body = '';
            if (a) {
                body += `    sessionAffinity:\n      affinityType: ${a.type}\n`;
                if (a.cookieName) body += `      cookieName: ${a.cookieName}\n`;
                if (a.cookieDuration) body += `      cookieDuration: ${a.cookieDuration}\n`;
            }
            if (r.heartbeat) body += `    sse: {heartbeatInterval: ${r.heartbeat}}\n`;
            docs.push(`apiVersion: alb.networking.azure.io/v1
kind: RoutePolicy
metadata: {name: ${r.name}-policy}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: ${r.name}}
  default:
${body}`);
        }
    }
    for (const s of services) {
        docs.push(`apiVersion: v1
kind: Service
metadata: {name: ${s.name}}
spec:
  ports: [{name: http, port: ${s.port || 80}, targetPort: http}]
`);
        s.endpoints.forEach((p, i) => {
            docs.push(`apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${s.name}-${i}
  labels: {kubernetes.io/service-name: ${s.name}}
addressType: IPv4
endpoints:
- addresses: [${s.host || '127.0.0.1'}]
ports: [{name: http, port: ${p}}]
`);
        });
        if (s.strategy) {
            const ring = s.ringHash ? `\n    ringHash: ${s.ringHash}` : '';
            docs.push(`apiVersion: alb.networking.azure.io/v1
kind: BackendLoadBalancingPolicy
metadata: {name: ${s.name}-lb}
spec:
  targetRefs:
  - {group: "", kind: Service, name: ${s.name}}
  loadBalancing:
    strategy: ${s.strategy}${ring}
`);
        }
    }
    if (extra) docs.push(extra);
    return docs.join('---\n');
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Backends.                                                                                                    */

/*
 * n HTTP servers that answer every request with 200 text "backend I" (or an SSE stream when the path contains
 * /sse, kept open until the test closes it), and count requests per server. Returns {ports, hits: [n], streams:
 * [[res...]], close(i), closeAll}.
 */
export async function taggedBackends(n, { host = '127.0.0.1' } = {}) {
    const set = { ports: [], hits: new Array(n).fill(0), streams: [], servers: [], sockets: [], log: [] };
    for (let i = 0; i < n; i++) {
        const sockets = new Set();
        set.streams.push([]);
        const server = http.createServer((req, res) => {
            set.hits[i]++;
            set.log.push({ i, url: req.url, headers: req.headers });
            req.resume();
            if (req.url.includes('/sse')) {
                res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
                res.write(`id: 1\ndata: backend ${i}\n\n`);
                set.streams[i].push(res);
                return;
            }
            res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': String(i) });
            res.end(`backend ${i}`);
        });
        server.keepAliveTimeout = 60000;
        server.on('connection', s => {
            sockets.add(s);
            s.on('close', () => sockets.delete(s));
        });
        await new Promise((resolve, reject) => {
            server.once('error', reject);
            server.listen(0, host, resolve);
        });
        set.ports.push(server.address().port);
        set.servers.push(server);
        set.sockets.push(sockets);
    }
    set.close = i =>
        new Promise(resolve => {
            for (const s of set.sockets[i]) s.destroy();
            if (!set.servers[i].listening) return resolve();
            set.servers[i].close(() => resolve());
        });
    set.closeAll = () => Promise.all(set.servers.map((_, i) => set.close(i)));
    track(set.closeAll);
    return set;
}

/*
 * An event sequence shared by several SSE backends (as a broker behind replicas would be): events id 1, 2, ...
 * every `interval` ms, each written in two halves `half` ms apart, so a cut at a random moment lands mid-event.
 * A stream starts after its Last-Event-ID (or with the next event when it has none) and gets the backlog first.
 */
export function sharedSequence({ interval = 50, half = 10 } = {}) {
    const seq = { events: [], subs: new Set(), timer: null };
    const text = id => [`id: ${id}\ndata: tick`, ` ${id}\n\n`];
    seq.start = () => {
        seq.timer = setInterval(() => {
            const id = seq.events.length + 1;
            seq.events.push(id);
            const [a, b] = text(id);
            for (const sub of [...seq.subs]) sub.write(a);
            /* a test hook that runs between the halves, e.g. to kill a backend mid-event */
            if (seq.onFirstHalf) seq.onFirstHalf(id);
            setTimeout(() => {
                for (const sub of [...seq.subs]) sub.write(b);
            }, half);
        }, interval);
        track(() => clearInterval(seq.timer));
    };
    seq.stop = () => clearInterval(seq.timer);
    /* Subscribes res (an SSE response) from after lastId; returns the subscription. */
    seq.attach = (res, lastId) => {
        const sub = {
            res,
            writes: 0,
            write: t => {
                if (!res.writableEnded && !res.destroyed) {
                    res.write(t);
                    sub.writes++;
                }
            },
        };
        if (lastId !== undefined) {
            for (let id = Number(lastId) + 1; id <= seq.events.length; id++) sub.write(text(id).join(''));
        }
        seq.subs.add(sub);
        res.on('close', () => seq.subs.delete(sub));
        return sub;
    };
    return seq;
}

/* n SSE servers on one shared sequence; retry (ms) is sent first on every stream (null: none). */
export async function sequenceBackends(n, seq, { retry = 100, host = '127.0.0.1' } = {}) {
    const set = { ports: [], servers: [], sockets: [], streams: [] };
    for (let i = 0; i < n; i++) {
        const sockets = new Set();
        const server = http.createServer((req, res) => {
            req.resume();
            const lei = req.headers['last-event-id'];
            set.streams.push({ i, lastEventId: lei, url: req.url, at: performance.now() });
            res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
            if (retry !== null) res.write(`retry: ${retry}\n\n`);
            else res.flushHeaders();
            seq.attach(res, lei);
        });
        server.on('connection', s => {
            s.setNoDelay(true);
            sockets.add(s);
            s.on('close', () => sockets.delete(s));
        });
        await new Promise((resolve, reject) => {
            server.once('error', reject);
            server.listen(0, host, resolve);
        });
        set.ports.push(server.address().port);
        set.servers.push(server);
        set.sockets.push(sockets);
    }
    /* Kills backend i: stops listening (connects are refused) and cuts every connection. */
    set.kill = i =>
        new Promise(resolve => {
            for (const s of set.sockets[i]) s.destroy();
            if (!set.servers[i].listening) return resolve();
            set.servers[i].close(() => resolve());
        });
    set.closeAll = () => Promise.all(set.servers.map((_, i) => set.kill(i)));
    track(set.closeAll);
    return set;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* A timestamped SSE reader: every chunk with its arrival time, complete lines with their times, parsed events. */

export function openTimedSse(port, path, { headers = {}, host = '127.0.0.1', localAddress } = {}) {
    const h = { chunks: [], lines: [], events: [], text: '', status: undefined, ended: false, complete: false };
    let partial = '';
    const parser = new SseParser(ev => {
        ev.t = performance.now();
        h.events.push(ev);
    });
    let resolveHead, rejectHead, resolveDone;
    h.head = new Promise((a, b) => {
        resolveHead = a;
        rejectHead = b;
    });
    h.done = new Promise(r => (resolveDone = r));
    const finish = complete => {
        if (h.ended) return;
        h.ended = true;
        h.complete = complete;
        h.endedAt = performance.now();
        h.partialAtEnd = partial;
        h.parserRest = parser.buf;
        resolveDone(h);
    };
    const req = http.get({ host, port, path, agent: false, localAddress, headers: { accept: 'text/event-stream', ...headers } });
    req.on('response', res => {
        h.status = res.statusCode;
        h.headers = res.headers;
        h.headersAt = performance.now();
        res.setEncoding('utf8');
        res.on('data', d => {
            const t = performance.now();
            h.chunks.push({ t, d });
            h.text += d;
            partial += d;
            let i;
            while ((i = partial.indexOf('\n')) >= 0) {
                h.lines.push({ t, line: partial.slice(0, i) });
                partial = partial.slice(i + 1);
            }
            parser.push(d);
        });
        res.on('end', () => finish(res.complete));
        res.on('aborted', () => finish(false));
        res.on('error', () => finish(false));
        res.on('close', () => finish(res.complete));
        resolveHead(h);
    });
    req.on('error', e => {
        h.error = e;
        rejectHead(e);
        finish(false);
    });
    h.close = () => req.destroy();
    track(() => req.destroy());
    return h;
}

/* ------------------------------------------------------------------------------------------------------------ */

/* Resident set size of pid in KiB (VmRSS from /proc/PID/status). */
export function rssKiB(pid) {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    if (!m) throw new Error(`no VmRSS for ${pid}`);
    return Number(m[1]);
}

/* Waits until re matches gw.stderr (from offset `from`), or throws after ms with the logs. */
export async function waitLog(gw, re, ms, from = 0) {
    const deadline = Date.now() + ms;
    while (!re.test(gw.stderr.slice(from))) {
        if (Date.now() > deadline) throw new Error(`log line ${re} did not appear in ${ms} ms`);
        await sleep(20);
    }
}

/* Counts of values in arr keyed by value. */
export function tally(arr) {
    const m = new Map();
    for (const v of arr) m.set(v, (m.get(v) || 0) + 1);
    return m;
}
