#!/usr/bin/env node
// apiserver.mjs: kubesim, a Kubernetes API-server simulator for tests (HTTPS, bearer tokens, discovery, paged LIST,
// WATCH with history, /status, generation, 409s, CRD-served kinds, fault injection, a request log).
//
// API (see tests/kube/README.md for the details and the list of what it does not model):
//
//   import { startApiServer } from '../kube/apiserver.mjs';
//   const sim = await startApiServer({
//       port: 0, host: '127.0.0.1',   // port 0: a free port; start() after stop() reuses the same port
//       dir,                          // where ca.crt, token, kubeconfig, serviceaccount/ go (default: a new temp dir)
//       crdDir,                       // CRD YAMLs served as kinds (default: deploy/kubernetes/crds of this repo)
//       gatewayApi: true,             // install the Gateway API CRDs (GatewayClass, Gateway, HTTPRoute, GRPCRoute,
//                                     //   ReferenceGrant v1beta1, BackendTLSPolicy v1 + v1alpha3)
//       policyCrds: true,             // install the CRDs of crdDir (or an array of Kind names to install only those)
//       objects: [],                  // objects (or a YAML string) applied at start
//       bookmarkIntervalMs: 60000,    // BOOKMARK period on watches with allowWatchBookmarks (the real server: ~1 min)
//       watchTimeoutSeconds: null,    // timeout of watches without timeoutSeconds (default: 1800..3600 s random)
//       maxWatchSeconds: 0,           // if > 0, end every watch after at most this long (as a server restart or a
//                                     //   proxy may), whatever timeoutSeconds asked; 0: honour timeoutSeconds
//       watchExpired: 'inband',       // a too-old watch RV: 'inband' (HTTP 200 + ERROR 410 Expired) or 'http' (410)
//       continueTtlMs: 0,             // continue tokens also expire after this age (0: only by compaction)
//       maxHistory: 200000,           // events kept before automatic compaction
//       tokenMode: 'inline',          // kubeconfig user: 'inline' (token:) or 'file' (tokenFile:)
//       http2: false,                 // also offer HTTP/2 by ALPN, as kube-apiserver does (default: env KUBESIM_HTTP2=1)
//       keepAliveTimeoutMs: 60000,    // an idle kept-alive HTTP/1.1 connection is closed after this long (Node's
//                                     //   keepAliveTimeout; kube-apiserver's Go server keeps idle ones longer)
//       log: false,                   // print each request to stderr
//   });
//   sim.url, sim.port, sim.caPath, sim.caPem, sim.token, sim.tokenPath, sim.kubeconfigPath, sim.dir,
//   sim.serviceAccountDir               // token, ca.crt, namespace: the in-cluster files
//   sim.inClusterEnv()                  // {KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: port}
//   sim.rotateToken({graceMs = 0})      // new token (files rewritten); the old one gets 401 after graceMs; -> token
//   sim.apply(objOrYaml)                // create or replace (namespaces auto-created; status kept from the object
//                                       //   through /status semantics); -> stored object(s)
//   sim.create(obj), sim.update(obj), sim.updateStatus(obj), sim.patchStatus(kind, ns, name, status)
//   sim.delete(kind, ns, name), sim.get(kind, ns, name) (null when absent), sim.list(kind, ns?)
//       kind: 'HTTPRoute', 'httproutes', 'gateway.networking.k8s.io/HTTPRoute'; ns null for cluster-scoped kinds
//   sim.installCrd(crdObjOrPath), sim.uninstallCrd(name)   // e.g. 'routepolicies.alb.networking.azure.io'
//   sim.resourceVersion()               // the current global RV (a number)
//   sim.compact()                       // drop all history: older watch RVs and continue tokens get 410
//   sim.faults.add({method, path (prefix string or RegExp), resource (plural), watch (bool), list (bool),
//                   times = 1, action, ...})  -> {hits, remove()}; sim.faults.clear()
//       request actions: 'status' {code, retryAfter, message}, 'hang' (never answers), 'drop' (closes the
//                        connection without a response), 'delay' {delayMs} (then serves), 'truncate' (half a body)
//       'drop', 'truncate' and 'cut' close the whole connection; over HTTP/2, scope: 'stream' resets only the stream
//       watch actions:   'split' {size, gapMs}, 'merge' {count, flushMs}, 'rechunk' {size, flushMs},
//                        'cut' {afterEvents, midEvent}, 'stall' {afterEvents}, 'error' {afterEvents, code},
//                        'withHead' (the head goes out with the first event, in one write)
//   sim.dropWatches({graceful = false}) // end every open watch now (graceful: a clean end of the response)
//   sim.watches()                       // open watches: [{id, path, query, events}]
//   sim.requests(filter?)               // request log: [{seq, time, method, path, query, userAgent, token, auth,
//                                       //   status, watch, contentType, accept, httpVersion, conn}]
//                                       //   (conn: a number per TCP connection); filter: {method, path, watch}
//   sim.clearRequests(), sim.waitForRequest(pred, timeoutMs)
//   sim.connections()                   // {accepted: TLS connections accepted since start (a handshake each), open,
//                                       //   idle: open HTTP/1.1 connections between requests (kept alive)}
//   sim.closeIdleConnections({graceful = true})  // close every kept-alive connection between requests, as a server's
//                                       //   idle timeout does (graceful: TLS close_notify and FIN; else the socket is just
//                                       //   closed, no close_notify) -> how many
//   await sim.stop()                    // stop listening and cut every connection (objects are kept)
//   await sim.start({loseHistory})      // listen again on the same port with the same CA and certificate
//   await sim.close()
//
// CLI: node tests/kube/apiserver.mjs [--port N] [--dir D] [--crd-dir D] [--bookmark-ms N] [--no-policy-crds]
//      [--token-file] [--http2] [-f manifest.yaml ...] [--log]   writes D/kubeconfig, prints "kubesim: listening on URL".
import fs from 'node:fs';
import https from 'node:https';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';
import { makeCerts } from './certs.mjs';
import { GATEWAY_API_CRDS, POLICY_CRDS_FALLBACK, kindFromCrd, rkeyOf, gv } from './kinds.mjs';
import { Resources } from './resources.mjs';
import { ApiError, status, clone } from './store.mjs';
import { serveWatch } from './watch.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const DEFAULT_CRD_DIR = path.resolve(HERE, '../../deploy/kubernetes/crds');
const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
const PUBLIC = new Set(['/version', '/healthz', '/livez', '/readyz']);

/* Kubernetes version priority: v1 > v1beta2 > v1beta1 > v1alpha3 ... */
function versionRank(v) {
    const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
    if (!m) return -1;
    return Number(m[1]) * 1000 + (m[2] === 'beta' ? 500 : m[2] === 'alpha' ? 0 : 900) + Number(m[3] || 0);
}

export function readYamlDocs(text) {
    return yaml.loadAll(text).filter(d => d && typeof d === 'object');
}

function crdsIn(dir) {
    if (!dir || !fs.existsSync(dir)) return null;
    const out = [];
    for (const f of fs.readdirSync(dir).sort()) {
        if (!/\.ya?ml$/.test(f)) continue;
        for (const d of readYamlDocs(fs.readFileSync(path.join(dir, f), 'utf8'))) if (d.kind === 'CustomResourceDefinition') out.push(d);
    }
    return out;
}

class Faults {
    constructor() {
        this.list = [];
    }

    add(f) {
        const h = { ...f, times: f.times ?? 1, hits: 0, remove: () => { this.list = this.list.filter(x => x !== h); } };
        this.list.push(h);
        return h;
    }

    clear() {
        this.list = [];
    }

    /* The first fault matching this request, used up by one hit. */
    take(req, info) {
        for (const f of this.list) {
            if (f.hits >= f.times) continue;
            if (f.method && f.method !== req.method) continue;
            if (f.path instanceof RegExp ? !f.path.test(info.path) : f.path && !info.path.startsWith(f.path)) continue;
            if (f.resource && f.resource !== info.resource) continue;
            if (f.watch !== undefined && f.watch !== info.watch) continue;
            if (f.list !== undefined && f.list !== info.list) continue;
            const watchOnly = ['split', 'merge', 'rechunk', 'cut', 'stall', 'error', 'withHead'].includes(f.action);
            if (watchOnly && !info.watch) continue;
            f.hits++;
            return f;
        }
        return null;
    }
}

export async function startApiServer(opts = {}) {
    const dir = opts.dir || fs.mkdtempSync(path.join(os.tmpdir(), 'kubesim-'));
    const ownDir = !opts.dir;
    fs.mkdirSync(dir, { recursive: true });
    const certs = makeCerts(dir);
    const R = new Resources({ maxHistory: opts.maxHistory, continueTtlMs: opts.continueTtlMs });
    const faults = new Faults();
    const log = [];
    let seq = 0;
    const tokens = new Map(); // token -> expiry (ms epoch)
    let token = null;
    const watches = new Map();
    let watchSeq = 0;
    const sockets = new Set();
    const sessions = new Set();
    const connIds = new WeakMap();
    let connSeq = 0;
    let accepted = 0;               // TLS connections accepted (handshakes completed)
    const busy = new WeakMap();     // socket -> requests in progress on it (0: idle, kept alive)
    const useH2 = opts.http2 ?? process.env.KUBESIM_HTTP2 === '1';
    const hung = new Set();
    const bookmarkMs = opts.bookmarkIntervalMs ?? 60000;
    const defaultTimeout = () => opts.watchTimeoutSeconds ?? Math.floor(1800 * (1 + Math.random()));
    const tokenPath = path.join(dir, 'token');
    const saDir = path.join(dir, 'serviceaccount');
    fs.mkdirSync(saDir, { recursive: true });

    const writeAtomic = (p, text) => {
        fs.writeFileSync(`${p}.tmp`, text);
        fs.renameSync(`${p}.tmp`, p);
    };
    /*
     * The in-cluster files are laid out the way the kubelet's AtomicWriter does it: a timestamped directory,
     * `..data` a symlink to it, and `token`, `ca.crt`, `namespace` symlinks through `..data`. A rotation writes a
     * new directory and swaps `..data` with a rename, so a reader sees the old or the new token, never half.
     */
    let saGen = 0;
    const writeServiceAccount = () => {
        const gen = `..${new Date().toISOString().replace(/[-:T]/g, '_').replace(/\..*/, '')}.${process.pid}${++saGen}`;
        const d = path.join(saDir, gen);
        fs.mkdirSync(d);
        fs.writeFileSync(path.join(d, 'token'), token);
        fs.writeFileSync(path.join(d, 'ca.crt'), certs.caPem);
        fs.writeFileSync(path.join(d, 'namespace'), opts.namespace || 'default');
        const old = fs.existsSync(path.join(saDir, '..data')) ? fs.readlinkSync(path.join(saDir, '..data')) : null;
        fs.symlinkSync(gen, path.join(saDir, '..data_tmp'));
        fs.renameSync(path.join(saDir, '..data_tmp'), path.join(saDir, '..data'));
        for (const f of ['token', 'ca.crt', 'namespace']) {
            if (!fs.existsSync(path.join(saDir, f))) fs.symlinkSync(path.join('..data', f), path.join(saDir, f));
        }
        if (old) fs.rmSync(path.join(saDir, old), { recursive: true, force: true });
    };
    const newToken = () => {
        token = `kubesim-${crypto.randomBytes(18).toString('base64url')}`;
        tokens.set(token, Infinity);
        writeAtomic(tokenPath, token);
        writeServiceAccount();
        return token;
    };
    newToken();

    /* CRDs: Gateway API, then the policy kinds from crdDir. */
    const crdKind = R.kindByName('CustomResourceDefinition');
    const installCrd = crd => {
        if (typeof crd === 'string') {
            const docs = readYamlDocs(fs.readFileSync(crd, 'utf8')).filter(d => d.kind === 'CustomResourceDefinition');
            return docs.map(d => installCrd(d));
        }
        kindFromCrd(crd);
        const cur = R.store.get(rkeyOf(crdKind), `/${crd.metadata.name}`);
        if (cur) return R.update(crdKind, null, crd.metadata.name, { ...clone(crd), metadata: { ...crd.metadata, resourceVersion: cur.metadata.resourceVersion } });
        return R.create(crdKind, null, crd);
    };
    if (opts.gatewayApi !== false) for (const c of GATEWAY_API_CRDS) installCrd(c);
    if (opts.policyCrds !== false) {
        const crds = crdsIn(opts.crdDir ?? DEFAULT_CRD_DIR) || POLICY_CRDS_FALLBACK;
        for (const c of crds) if (!Array.isArray(opts.policyCrds) || opts.policyCrds.includes(c.spec.names.kind)) installCrd(c);
    }
    /* A CRD gone: its watches end, as the real server closes them. */
    R.onKindsChanged = (k, what) => {
        if (what !== 'removed') return;
        for (const w of watches.values()) if (w.rkey === rkeyOf(k)) w.handle.close(true);
    };

    /* ---------- discovery ---------- */
    const groups = () => {
        const m = new Map();
        for (const k of R.kinds.values()) {
            if (!k.group) continue;
            const g = m.get(k.group) || new Set();
            for (const v of k.versions) g.add(v);
            m.set(k.group, g);
        }
        return [...m].map(([name, vs]) => {
            const versions = [...vs].sort((a, b) => versionRank(b) - versionRank(a)).map(v => ({ groupVersion: `${name}/${v}`, version: v }));
            return { name, versions, preferredVersion: versions[0] };
        }).sort((a, b) => (a.name < b.name ? -1 : 1));
    };
    const resourceList = (group, version) => {
        const resources = [];
        for (const k of R.kinds.values()) {
            if (k.group !== group || !k.versions.includes(version)) continue;
            resources.push({ name: k.plural, singularName: k.singular, namespaced: k.namespaced, kind: k.kind, verbs: VERBS, ...(k.shortNames.length ? { shortNames: k.shortNames } : {}), ...(k.categories.length ? { categories: k.categories } : {}), storageVersionHash: crypto.createHash('sha256').update(rkeyOf(k)).digest('base64').slice(0, 11) });
            if (k.status) resources.push({ name: `${k.plural}/status`, singularName: '', namespaced: k.namespaced, kind: k.kind, verbs: ['get', 'patch', 'update'] });
        }
        if (!resources.length) return null;
        return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: gv(group, version), resources };
    };

    /*
     * OpenAPI v3, only as much as kubectl needs: the PATCH operations with their group-version-kind and the
     * fieldValidation parameter, so kubectl leaves validation to the server (no schemas are served or checked).
     */
    const openapiV3 = gvPath => {
        const gvs = [['', 'v1'], ...groups().flatMap(g => g.versions.map(v => [g.name, v.version]))];
        if (!gvPath) {
            const paths = {};
            for (const [g, v] of gvs) {
                const key = g ? `apis/${g}/${v}` : `api/${v}`;
                paths[key] = { serverRelativeURL: `/openapi/v3/${key}?hash=${crypto.createHash('sha256').update(key + R.kinds.size).digest('hex').slice(0, 16)}` };
            }
            return { paths };
        }
        const m = /^(?:api\/(v1)|apis\/([^/]+)\/([^/]+))$/.exec(gvPath);
        if (!m) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
        const [group, version] = m[1] ? ['', 'v1'] : [m[2], m[3]];
        const paths = {};
        for (const k of R.kinds.values()) {
            if (k.group !== group || !k.versions.includes(version)) continue;
            const base = `/${group ? `apis/${group}` : 'api'}/${version}${k.namespaced ? '/namespaces/{namespace}' : ''}/${k.plural}/{name}`;
            const op = { 'x-kubernetes-group-version-kind': { group, version, kind: k.kind }, parameters: [{ name: 'fieldValidation', in: 'query', schema: { type: 'string', uniqueItems: true } }], responses: {} };
            paths[base] = { patch: op };
        }
        if (!Object.keys(paths).length) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
        return { openapi: '3.0.0', info: { title: 'Kubernetes', version: 'v1.32.0-kubesim' }, paths, components: { schemas: {} } };
    };

    /* ---------- HTTP ---------- */
    const req2 = res => res.req?.httpVersionMajor === 2 || !!res.stream;
    const send = (res, code, body, headers = {}) => {
        if (res.headersSent || res.destroyed || res.writableEnded || res.stream?.destroyed) return;
        const text = JSON.stringify(body);
        /* As kube-apiserver's Go server: a body that fits its 2 KiB buffer gets a Content-Length, a longer one is sent
         * chunked (over HTTP/1.1), so a client meets both framings on one kept-alive connection. */
        const len = Buffer.byteLength(text);
        res.writeHead(code, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Audit-Id': crypto.randomUUID(), ...headers,
            ...(len <= 2048 || req2(res) ? { 'Content-Length': len } : {}) });
        if (len > 2048 && !req2(res)) {
            const b = Buffer.from(text);
            res.write(b.subarray(0, len >> 1));
            res.end(b.subarray(len >> 1));
        } else res.end(text);
    };

    const readBody = req => new Promise((resolve, reject) => {
        const parts = [];
        req.on('data', c => parts.push(c));
        req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
        req.on('error', reject);
    });

    const parseBody = (text, ct) => {
        if (!text) return undefined;
        if (/protobuf|cbor/.test(ct || '')) throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - kubesim accepts application/json and YAML only (got ${ct})`);
        try {
            if (/yaml/.test(ct || '')) return yaml.load(text);
            return JSON.parse(text);
        } catch (e) {
            throw new ApiError(400, 'BadRequest', `the body of the request could not be decoded: ${e.message}`);
        }
    };

    /* Table output for kubectl's default printing (Accept: ...;as=Table;...). */
    const table = (kind, items, md, includeObject, version) => {
        const ts = o => {
            const s = Math.max(0, Math.floor((Date.now() - Date.parse(o.metadata.creationTimestamp)) / 1000));
            return s < 120 ? `${s}s` : s < 7200 ? `${Math.floor(s / 60)}m` : `${Math.floor(s / 3600)}h`;
        };
        return {
            kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: md,
            columnDefinitions: [{ name: 'Name', type: 'string', format: 'name', description: 'Name', priority: 0 }, { name: 'Age', type: 'string', format: '', description: 'Age', priority: 0 }],
            rows: items.map(o => ({
                cells: [o.metadata.name, ts(o)],
                object: includeObject === 'None' ? undefined : includeObject === 'Object' ? R.out(kind, o, version) : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata },
            })),
        };
    };

    /* /api/v1/..., /apis/g/v/... -> {kind, version, ns, name, sub} or a discovery answer. */
    const route = p => {
        let segs = p.split('/').filter(Boolean);
        let group, version;
        if (segs[0] === 'api') {
            if (segs.length === 1) return { doc: { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: `127.0.0.1:${sim.port}` }] } };
            group = '';
            version = segs[1];
            segs = segs.slice(2);
        } else if (segs[0] === 'apis') {
            if (segs.length === 1) return { doc: { kind: 'APIGroupList', apiVersion: 'v1', groups: groups() } };
            group = segs[1];
            if (segs.length === 2) {
                const g = groups().find(x => x.name === group);
                if (!g) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
                return { doc: { kind: 'APIGroup', apiVersion: 'v1', ...g } };
            }
            version = segs[2];
            segs = segs.slice(3);
        } else throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
        if (!segs.length) {
            const doc = resourceList(group, version);
            if (!doc) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
            return { doc };
        }
        let legacyWatch = false;
        if (segs[0] === 'watch') {
            legacyWatch = true;
            segs = segs.slice(1);
        }
        let ns = null;
        if (segs[0] === 'namespaces' && segs.length >= 3 && !(segs.length === 3 && ['status', 'finalize'].includes(segs[2]))) {
            ns = segs[1];
            segs = segs.slice(2);
        }
        const [plural, name, sub, extra] = segs;
        const kind = R.kindFor(group, version, plural);
        if (!kind || extra !== undefined) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
        if (ns && !kind.namespaced) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
        if (sub !== undefined && !(sub === 'status' && kind.status)) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
        return { kind, version, ns, name, sub: sub || null, legacyWatch };
    };

    /* Ends a request abruptly: the connection (every stream on it), or over HTTP/2 with scope 'stream' one stream. */
    const kill = (req, res, scope) => {
        if (req.httpVersionMajor === 2) {
            if (scope === 'stream') req.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
            else req.stream.session.destroy();
        } else req.socket.destroy();
    };

    const handle = async (req, res) => {
        const u = new URL(req.url, 'https://x');
        const q = Object.fromEntries(u.searchParams);
        const p = u.pathname;
        const auth = req.headers.authorization || '';
        const tok = /^Bearer\s+(.+)$/i.exec(auth)?.[1] || null;
        const isWatch = q.watch === 'true' || q.watch === '1' || /\/watch\//.test(p);
        const sock = req.httpVersionMajor === 2 ? req.stream.session : req.socket;
        if (!connIds.has(sock)) connIds.set(sock, ++connSeq);
        if (req.httpVersionMajor !== 2) {
            busy.set(sock, (busy.get(sock) || 0) + 1);
            let done = false;
            const idle = () => { if (!done) { done = true; busy.set(sock, busy.get(sock) - 1); } };
            res.on('finish', idle);
            res.on('close', idle);
        }
        const entry = { seq: ++seq, time: Date.now(), method: req.method, path: p, query: q, userAgent: req.headers['user-agent'] || '', token: tok, auth: null, status: null, watch: isWatch, contentType: req.headers['content-type'] || '', accept: req.headers.accept || '', httpVersion: req.httpVersion, conn: connIds.get(sock) };
        log.push(entry);
        if (log.length > 100000) log.splice(0, 50000);
        res.on('finish', () => { entry.status ??= res.statusCode; });
        const origWriteHead = res.writeHead.bind(res);
        res.writeHead = (code, ...a) => {
            entry.status = code;
            return origWriteHead(code, ...a);
        };
        if (opts.log) process.stderr.write(`kubesim: ${req.method} ${req.url} ${entry.userAgent}\n`);
        let info = { path: p, watch: isWatch, list: false, resource: null };
        try {
            let r = null;
            try {
                r = PUBLIC.has(p) || p.startsWith('/openapi') ? null : route(p);
            } catch {
                r = null;
            }
            if (r?.kind) info = { ...info, resource: r.kind.plural, list: !r.name && req.method === 'GET' && !isWatch };
            const fault = faults.take(req, info);
            if (fault) {
                if (fault.action === 'hang') {
                    hung.add(res);
                    res.on('close', () => hung.delete(res));
                    return;
                }
                if (fault.action === 'drop') {
                    kill(req, res, fault.scope);
                    return;
                }
                if (fault.action === 'status') {
                    const code = fault.code || 500;
                    const reason = { 400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 409: 'Conflict', 410: 'Expired', 422: 'Invalid', 429: 'TooManyRequests', 500: 'InternalError', 503: 'ServiceUnavailable', 504: 'Timeout' }[code] || 'Unknown';
                    const headers = fault.retryAfter !== undefined ? { 'Retry-After': String(fault.retryAfter) } : {};
                    const msg = fault.message || (code === 429 ? 'Too many requests, please try again later.' : 'an error on the server ("injected") has prevented the request from succeeding');
                    const body = status(code, reason, msg, fault.retryAfter !== undefined ? { retryAfterSeconds: fault.retryAfter } : undefined);
                    return send(res, code, body, headers);
                }
                if (fault.action === 'delay') await new Promise(rs => setTimeout(rs, fault.delayMs ?? 1000));
            }
            /* Authentication: a bad token is 401 everywhere; no token is the anonymous user (public paths only). */
            if (tok !== null) {
                const exp = tokens.get(tok);
                if (exp === undefined || exp <= Date.now()) {
                    entry.auth = 'rejected';
                    return send(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
                }
                entry.auth = 'ok';
            } else if (!PUBLIC.has(p)) {
                entry.auth = 'anonymous';
                const what = r?.kind ? `${r.kind.plural}${r.kind.group ? `.${r.kind.group}` : ''} is forbidden: User "system:anonymous" cannot ${req.method.toLowerCase()} resource "${r.kind.plural}"` : `forbidden: User "system:anonymous" cannot get path "${p}"`;
                return send(res, 403, status(403, 'Forbidden', what));
            }
            if (fault?.action === 'truncate') {
                const text = JSON.stringify(status(500, 'InternalError', 'x'.repeat(200)));
                res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': text.length });
                res.write(text.slice(0, text.length >> 1));
                setTimeout(() => kill(req, res, fault.scope), 20);
                return;
            }
            if (p === '/version') return send(res, 200, { major: '1', minor: '32', gitVersion: 'v1.32.0-kubesim', gitCommit: 'kubesim', gitTreeState: 'clean', buildDate: '2026-01-01T00:00:00Z', goVersion: 'go1.23', compiler: 'gc', platform: 'linux/amd64' });
            if (PUBLIC.has(p)) {
                res.writeHead(200, { 'Content-Type': 'text/plain' });
                return res.end('ok');
            }
            if (p.startsWith('/openapi/v3')) return send(res, 200, openapiV3(p.slice('/openapi/v3'.length).replace(/^\//, '')));
            if (p.startsWith('/openapi')) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
            r = route(p);
            if (r.doc) return send(res, 200, r.doc);
            return await resource(req, res, r, q, isWatch, fault, entry);
        } catch (e) {
            if (e instanceof ApiError) return send(res, e.code, e.body, e.headers);
            process.stderr.write(`kubesim: internal error on ${req.method} ${req.url}: ${e.stack}\n`);
            return send(res, 500, status(500, 'InternalError', String(e.message)));
        }
    };

    const resource = async (req, res, r, q, isWatch, fault, entry) => {
        const { kind, version, ns, name, sub } = r;
        const wantTable = /as=Table/.test(req.headers.accept || '');
        const manager = q.fieldManager || (req.headers['user-agent'] || '').split('/')[0];
        const dryRun = q.dryRun === 'All';
        const out = o => R.out(kind, o, version);
        const body = ['POST', 'PUT', 'PATCH', 'DELETE'].includes(req.method) ? parseBody(await readBody(req), req.headers['content-type']) : undefined;
        if (req.method === 'GET' && (isWatch || r.legacyWatch)) {
            const q2 = { ...q };
            if (name) q2.fieldSelector = [q.fieldSelector, `metadata.name=${name}`].filter(Boolean).join(',');
            const match = R.matcher(kind, ns, q2);
            if (q.sendInitialEvents === 'true' && (q.resourceVersionMatch !== 'NotOlderThan' || !['true', '1'].includes(q.allowWatchBookmarks))) {
                throw new ApiError(422, 'Invalid', 'sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to NotOlderThan and allowWatchBookmarks is true');
            }
            const rv = q.resourceVersion;
            if (rv && !/^\d+$/.test(rv)) throw new ApiError(400, 'BadRequest', `resourceVersion: Invalid value: "${rv}": must be a valid resourceVersion`);
            if (opts.watchExpired === 'http' && rv && Number(rv) !== 0 && Number(rv) < R.store.compacted && q.sendInitialEvents !== 'true') {
                throw new ApiError(410, 'Expired', `too old resource version: ${rv} (${R.store.compacted})`);
            }
            const id = ++watchSeq;
            const w = { id, path: req.url, query: q, rkey: rkeyOf(kind), events: 0, handle: null };
            watches.set(id, w);
            w.handle = serveWatch({
                res, kind, version, ns, q, match, resources: R, fault, bookmarkMs, defaultTimeout, maxWatchSeconds: opts.maxWatchSeconds || 0,
                headers: { 'Audit-Id': crypto.randomUUID() }, onEnd: () => watches.delete(id),
                kill: scope => kill(req, res, scope),
            });
            if (!watches.has(id)) return;
            const wr = w.handle.writer;
            if (wr) {
                const orig = wr.send.bind(wr);
                wr.send = ev => { w.events++; return orig(ev); };
            }
            if (wantTable) { /* kubectl -w without -o: rows are re-sent by the client from the objects; JSON is accepted */ }
            return;
        }
        const nsCheck = () => { if (kind.namespaced && !ns && req.method !== 'GET') throw new ApiError(404, 'NotFound', 'the server could not find the requested resource'); };
        if (!name) {
            if (req.method === 'GET') {
                const { md, items } = R.list(kind, ns, q);
                if (wantTable) return send(res, 200, table(kind, items, md, q.includeObject, version));
                const builtin = !kind.crd;
                return send(res, 200, { kind: kind.listKind, apiVersion: gv(kind.group, version), metadata: md, items: items.map(o => (builtin ? clone(o) : out(o))) });
            }
            if (req.method === 'POST') {
                const o = R.create(kind, ns, body, { dryRun, manager });
                return send(res, 201, out(o));
            }
            if (req.method === 'DELETE') {
                nsCheck();
                const { items } = R.list(kind, ns, { labelSelector: q.labelSelector, fieldSelector: q.fieldSelector });
                for (const o of items) R.delete(kind, o.metadata.namespace, o.metadata.name, {}, { dryRun });
                return send(res, 200, { kind: kind.listKind, apiVersion: gv(kind.group, version), metadata: { resourceVersion: String(R.store.rv) }, items: items.map(out) });
            }
            throw new ApiError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`);
        }
        nsCheck();
        switch (req.method) {
        case 'GET': {
            const o = R.get(kind, ns, name);
            if (wantTable) return send(res, 200, table(kind, [o], { resourceVersion: o.metadata.resourceVersion }, q.includeObject, version));
            return send(res, 200, out(o));
        }
        case 'PUT': return send(res, 200, out(R.update(kind, ns, name, body, { sub, dryRun, manager })));
        case 'PATCH': {
            const { created, obj } = R.patch(kind, ns, name, req.headers['content-type'], body, { sub, dryRun, manager });
            return send(res, created ? 201 : 200, out(obj));
        }
        case 'DELETE': {
            if (sub) throw new ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
            const o = R.delete(kind, ns, name, body, { dryRun });
            const still = R.store.get(rkeyOf(kind), R.okey(kind, ns, name));
            if (still || kind.crd) return send(res, still ? 200 : 200, out(still || o));
            return send(res, 200, status(200, undefined, undefined, { name, group: kind.group, kind: kind.plural, uid: o.metadata.uid }));
        }
        default: throw new ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
        }
    };

    /* ---------- listening ---------- */
    let server = null;
    const listen = port => new Promise((resolve, reject) => {
        const onReq = (req, res) => { handle(req, res); };
        server = useH2
            ? http2.createSecureServer({ key: certs.key, cert: certs.cert, allowHTTP1: true }, onReq)
            : https.createServer({ key: certs.key, cert: certs.cert, requestTimeout: 0, keepAliveTimeout: opts.keepAliveTimeoutMs ?? 60000 }, onReq);
        server.on('session', sess => {
            sessions.add(sess);
            sess.on('close', () => sessions.delete(sess));
        });
        server.on('secureConnection', s => {
            accepted++;
            sockets.add(s);
            s.on('close', () => sockets.delete(s));
        });
        server.on('connection', s => {
            sockets.add(s);
            s.on('close', () => sockets.delete(s));
        });
        server.once('error', reject);
        server.listen(port, opts.host || '127.0.0.1', () => resolve(server.address().port));
    });

    const sim = {
        dir, caPath: certs.caPath, caPem: certs.caPem, http2: useH2, tokenPath, serviceAccountDir: saDir, faults, resources: R,
        get token() { return token; },
        get store() { return R.store; },
        port: 0, url: '', kubeconfigPath: path.join(dir, 'kubeconfig'),
        inClusterEnv: () => ({ KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(sim.port) }),
        rotateToken({ graceMs = 0 } = {}) {
            const old = token;
            newToken();
            tokens.set(old, Date.now() + graceMs);
            return token;
        },
        resourceVersion: () => R.store.rv,
        compact: () => R.store.compact(),
        installCrd, uninstallCrd: name => R.delete(crdKind, null, name),
        kind(k, apiVersion) {
            const kd = typeof k === 'string' ? R.kindByName(k, apiVersion) : k;
            if (!kd) throw new Error(`kubesim: kind ${k} is not served`);
            return kd;
        },
        ensureNamespace(ns) {
            if (ns && !R.store.get('/namespaces', `/${ns}`)) R.create(R.kindByName('Namespace'), null, { metadata: { name: ns } });
        },
        apply(objOrYaml) {
            if (typeof objOrYaml === 'string') return readYamlDocs(objOrYaml).map(d => sim.apply(d));
            if (Array.isArray(objOrYaml)) return objOrYaml.map(d => sim.apply(d));
            const o = objOrYaml;
            const k = sim.kind(o.kind, o.apiVersion);
            const ns = k.namespaced ? o.metadata.namespace || 'default' : null;
            sim.ensureNamespace(ns);
            const cur = R.store.get(rkeyOf(k), R.okey(k, ns, o.metadata.name));
            let res;
            if (!cur) res = R.create(k, ns, o, { manager: 'kubesim' });
            else res = R.update(k, ns, o.metadata.name, { ...clone(o), metadata: { ...o.metadata, resourceVersion: cur.metadata.resourceVersion } }, { manager: 'kubesim' });
            if (k.status && o.status !== undefined) res = R.update(k, ns, o.metadata.name, { status: o.status, metadata: { resourceVersion: res.metadata.resourceVersion } }, { sub: 'status', manager: 'kubesim' });
            return R.out(k, res);
        },
        create(o) {
            const k = sim.kind(o.kind, o.apiVersion);
            return R.out(k, R.create(k, k.namespaced ? o.metadata.namespace || 'default' : null, o, { manager: 'kubesim' }));
        },
        update(o) {
            const k = sim.kind(o.kind, o.apiVersion);
            return R.out(k, R.update(k, k.namespaced ? o.metadata.namespace || 'default' : null, o.metadata.name, o, { manager: 'kubesim', requireRv: false }));
        },
        updateStatus(o) {
            const k = sim.kind(o.kind, o.apiVersion);
            return R.out(k, R.update(k, k.namespaced ? o.metadata.namespace || 'default' : null, o.metadata.name, o, { sub: 'status', manager: 'kubesim', requireRv: false }));
        },
        patchStatus(kind, ns, name, st) {
            const k = sim.kind(kind);
            return R.out(k, R.patch(k, ns, name, 'application/merge-patch+json', { status: st }, { sub: 'status', manager: 'kubesim' }).obj);
        },
        patch(kind, ns, name, patch) {
            const k = sim.kind(kind);
            return R.out(k, R.patch(k, ns, name, 'application/merge-patch+json', patch, { manager: 'kubesim' }).obj);
        },
        delete(kind, ns, name) {
            const k = sim.kind(kind);
            return R.out(k, R.delete(k, ns, name));
        },
        get(kind, ns, name) {
            const k = sim.kind(kind);
            const o = R.store.get(rkeyOf(k), R.okey(k, ns, name));
            return o ? R.out(k, o) : null;
        },
        list(kind, ns = null) {
            const k = sim.kind(kind);
            return R.store.snapshot(rkeyOf(k), Infinity, k.namespaced ? ns : null).map(([, o]) => R.out(k, o));
        },
        dropWatches({ graceful = false } = {}) {
            for (const w of [...watches.values()]) w.handle.close(graceful);
        },
        watches: () => [...watches.values()].map(w => ({ id: w.id, path: w.path, query: w.query, events: w.events })),
        requests(filter = {}) {
            return log.filter(e => (!filter.method || e.method === filter.method) && (!filter.path || (filter.path instanceof RegExp ? filter.path.test(e.path) : e.path.startsWith(filter.path))) && (filter.watch === undefined || e.watch === filter.watch)).map(e => ({ ...e }));
        },
        clearRequests: () => { log.length = 0; },
        connections() {
            const tls = [...sockets].filter(so => so.encrypted);
            return { accepted, open: tls.length, idle: tls.filter(so => !busy.get(so)).length };
        },
        closeIdleConnections({ graceful = true } = {}) {
            let n = 0;
            for (const so of sockets) {
                if (!so.encrypted || busy.get(so) || so.destroyed) continue;
                if (graceful) so.end();
                else so.destroy();
                n++;
            }
            return n;
        },
        async waitForRequest(pred, timeoutMs = 10000) {
            const end = Date.now() + timeoutMs;
            let from = 0;
            for (;;) {
                for (; from < log.length; from++) if (pred(log[from])) return { ...log[from] };
                if (Date.now() > end) throw new Error('kubesim: waitForRequest timed out');
                await new Promise(r => setTimeout(r, 10));
            }
        },
        writeKubeconfig(file = sim.kubeconfigPath, { tokenMode = opts.tokenMode || 'inline' } = {}) {
            const user = tokenMode === 'file' ? { tokenFile: tokenPath } : { token };
            const kc = {
                apiVersion: 'v1', kind: 'Config', 'current-context': 'kubesim', preferences: {},
                clusters: [{ name: 'kubesim', cluster: { server: sim.url, 'certificate-authority': certs.caPath } }],
                users: [{ name: 'kubesim', user }],
                contexts: [{ name: 'kubesim', context: { cluster: 'kubesim', user: 'kubesim', namespace: 'default' } }],
            };
            fs.writeFileSync(file, yaml.dump(kc));
            return file;
        },
        async stop() {
            for (const w of [...watches.values()]) w.handle.close(false);
            for (const res of hung) res.socket?.destroy();
            if (!server) return;
            const s = server;
            server = null;
            const closed = new Promise(r => s.close(r));
            for (const se of sessions) se.destroy();
            for (const so of sockets) so.destroy();
            await closed;
        },
        async start({ loseHistory = false } = {}) {
            if (server) return;
            if (loseHistory) R.store.compact();
            await listen(sim.port);
        },
        async close() {
            await sim.stop();
            if (ownDir) fs.rmSync(dir, { recursive: true, force: true });
        },
    };
    sim.port = await listen(opts.port || 0);
    sim.url = `https://127.0.0.1:${sim.port}`;
    sim.writeKubeconfig();
    if (opts.objects) sim.apply(opts.objects);
    return sim;
}

/* ---------- CLI ---------- */
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
    const a = process.argv.slice(2);
    const o = { files: [] };
    for (let i = 0; i < a.length; i++) {
        const v = a[i];
        if (v === '--port') o.port = Number(a[++i]);
        else if (v === '--dir') o.dir = a[++i];
        else if (v === '--crd-dir') o.crdDir = a[++i];
        else if (v === '--bookmark-ms') o.bookmarkIntervalMs = Number(a[++i]);
        else if (v === '--no-policy-crds') o.policyCrds = false;
        else if (v === '--token-file') o.tokenMode = 'file';
        else if (v === '--http2') o.http2 = true;
        else if (v === '-f') o.files.push(a[++i]);
        else if (v === '--log') o.log = true;
        else {
            process.stderr.write('usage: apiserver.mjs [--port N] [--dir D] [--crd-dir D] [--bookmark-ms N] [--no-policy-crds] [--token-file] [--http2] [-f FILE]... [--log]\n');
            process.exit(2);
        }
    }
    const sim = await startApiServer(o);
    for (const f of o.files) sim.apply(fs.readFileSync(f, 'utf8'));
    process.stdout.write(`kubesim: listening on ${sim.url}\nkubesim: kubeconfig ${sim.kubeconfigPath}\nkubesim: token file ${sim.tokenPath}; in-cluster files in ${sim.serviceAccountDir}\n`);
    const bye = async () => {
        await sim.stop();
        process.exit(0);
    };
    process.on('SIGTERM', bye);
    process.on('SIGINT', bye);
}
