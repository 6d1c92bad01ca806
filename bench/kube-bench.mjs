#!/usr/bin/env node
// kube-bench.mjs: ssegate --kubeconfig against kubesim. Figures, not pass/fail.
//  build:  time from a changed object to a request it changes: an HTTPRoute applied to the simulator (served once its
//          path answers) and an EndpointSlice moved to another backend (served once the answer comes from it),
//          interleaved, at several store sizes; the config build time ssegate reports; the store's bytes and the RSS.
//  churn:  p99 event latency of open SSE streams (bench/loadgen against bench/origin through ssegate) with and without
//          EndpointSlice changes at KB_CHURN_RATE per second, interleaved rounds.
//  status: a new leader's first status sync: KB_STATUS_ROUTES (1000) HTTPRoutes without status, one ssegate: time from
//          its start until every route carries our status.parents entry, the requests and TLS connections it took;
//          then a second ssegate takes over the released Lease and reads everything again (status in place: no
//          writes): time until it has. KB_STATUS_ARGS: more ssegate arguments (e.g. "--kube-api-qps 0").
// Usage: node bench/kube-bench.mjs [BUILD_DIR]   knobs: KB_SIZES="10:10 1000:1000 1000:5000" (routes:endpoints),
//        KB_PROBES (changes timed per size, default 15), KB_STREAMS (200), KB_RATE (events/s, 2000), KB_DURATION (s, 10),
//        KB_ROUNDS (2), KB_CHURN_RATE (50), KB_PARTS ("build churn"). Churn rounds come in four modes (KB_MODES):
//        quiet (no change), ext (the same updates in a namespace ssegate does not watch: the API's load without
//        ssegate's), sham (the same updates to a Service no route names: watched, no rebuild), churn (rebuilds),
//        floor (ext's updates read by a bare `curl` watch on the streams' CPU: the least any watcher can do with
//        them there). A mode may end in @idle or @nN: the kube threads at SCHED_IDLE or nice N for its rounds
//        (KB_SCHED_BASE, default n10, after). workers_wait_ms: the workers' time runnable but not running.
//        KB_CHURN_SIZE=1000:5000: that many more routes and endpoints in the churn config (each rebuild costs more).
//        KB_API_NICE=19: the simulator and the updater at that nice level. KB_PIN=1 with `taskset -c 1 node bench/kube-
//        bench.mjs`: the streams' processes on CPU 0, the simulator and the updater on CPU 1.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startApiServer } from '../tests/kube/apiserver.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const B = path.resolve(ROOT, process.argv[2] || 'build');
const SSEGATE = path.join(B, 'ssegate');
const env = process.env;
const SIZES = (env.KB_SIZES || '10:10 1000:1000 1000:5000').split(/\s+/).filter(Boolean).map(s => s.split(':').map(Number));
const PROBES = Number(env.KB_PROBES || 15);
const PARTS = (env.KB_PARTS || 'build churn').split(/\s+/);
/* KB_API_NICE=N (churn): the simulator (this process) and the updater run at nice N, ssegate, the origin and the load
 * generator at 0, as if the API server were on another machine: its CPU then no longer competes with the streams. */
const API_NICE = env.KB_API_NICE === undefined ? null : Number(env.KB_API_NICE);
const unNice = child => { if (API_NICE !== null) os.setPriority(child.pid, 0); };
/* KB_PIN=1 (churn; run the bench itself under `taskset -c 1`): ssegate, the origin and the load generator run on CPU 0,
 * the simulator and the updater stay on CPU 1: the API load cannot take the streams' core. */
const pinned = (bin, args) => (env.KB_PIN ? ['taskset', ['-c', '0', bin, ...args]] : [bin, args]);
/* KB_CHURN_SIZE=routes:endpoints: churn with that many more routes and endpoints in the config, so that every rebuild
 * costs what it does at that size (default none). */
const CHURN_SIZE = (env.KB_CHURN_SIZE || '0:0').split(':').map(Number);
/* KB_GATE_ARGS: more ssegate arguments for the churn part (e.g. "--kube-nice 0"). */
const GATE_ARGS = (env.KB_GATE_ARGS || '').split(/\s+/).filter(Boolean);
const MODES = (env.KB_MODES || 'quiet ext sham churn').split(/\s+/).filter(Boolean);
const STATUS_ARGS = (env.KB_STATUS_ARGS || '').split(/\s+/).filter(Boolean);
const sleep = ms => new Promise(r => setTimeout(r, ms));
const kids = new Set();
process.on('exit', () => { for (const k of kids) try { k.kill('SIGKILL'); } catch { /* gone */ } });

function freePort() {
    return new Promise(res => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); }); });
}
function get(port, p) {
    return new Promise(resolve => {
        const req = http.get({ host: '127.0.0.1', port, path: p, agent: false }, r => { r.resume(); r.on('end', () => resolve(r.statusCode)); });
        req.setTimeout(2000, () => req.destroy());
        req.on('error', () => resolve(0));
    });
}
function body(port, p) {
    return new Promise(resolve => {
        const req = http.get({ host: '127.0.0.1', port, path: p, agent: false }, r => {
            let b = ''; r.on('data', d => (b += d)); r.on('end', () => resolve(r.statusCode === 200 ? b : ''));
        });
        req.setTimeout(2000, () => req.destroy());
        req.on('error', () => resolve(''));
    });
}
async function metrics(admin) {
    return new Promise(resolve => {
        http.get({ host: '127.0.0.1', port: admin, path: '/metrics', agent: false }, r => {
            let b = ''; r.on('data', d => (b += d)); r.on('end', () => resolve(b));
        }).on('error', () => resolve(''));
    });
}
const mval = (text, name) => { const m = new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text); return m ? Number(m[1]) : NaN; };
const rssKiB = pid => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
/* CPU ms of each thread of a process, by thread name (summed over threads of the same name) */
function threadCpu(pid) {
    const hz = 100, out = {};
    for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
        try {
            const st = fs.readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
            const name = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
            const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
            out[name] = (out[name] || 0) + (Number(f[11]) + Number(f[12])) * 1000 / hz;
        } catch { /* thread gone */ }
    }
    return out;
}
/* Nanoseconds the threads named prefix* spent runnable and waiting for a CPU (schedstat's second field). */
function runDelay(pid, prefix) {
    let ns = 0;
    for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
        try {
            if (!fs.readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').startsWith(prefix)) continue;
            ns += Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[1]);
        } catch { /* thread gone */ }
    }
    return ns;
}
/* The kube threads (watch, status) to policy "idle" (SCHED_IDLE), "nN" (SCHED_OTHER at nice N), by chrt and renice. */
function kubeSched(pid, pol) {
    for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
        let comm = '';
        try { comm = fs.readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim(); } catch { continue; }
        if (comm !== 'ssegate-kube' && comm !== 'ssegate-kstatus') continue;
        const run = (bin, args) => { const r = spawnSync(bin, args); if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed`); };
        if (pol === 'idle') run('chrt', ['-i', '-p', '0', t]);
        else { run('chrt', ['-o', '-p', '0', t]); run('renice', ['-n', pol.slice(1), '-p', t]); }
    }
}
function procCpu(pid) {
    try {
        const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
        return (Number(f[11]) + Number(f[12])) * 10;
    } catch { return NaN; }
}
const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };

const GC = { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'ssegate' }, spec: { controllerName: 'ssegate.io/gateway-controller' } };
const gw = port => ({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'gw', namespace: 'default' },
    spec: { gatewayClassName: 'ssegate', listeners: [{ name: 'http', port, protocol: 'HTTP' }] } });
const route = (name, p, svc) => ({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name, namespace: 'default' },
    spec: { parentRefs: [{ name: 'gw' }], rules: [{ matches: [{ path: { type: 'PathPrefix', value: p } }], backendRefs: [{ name: svc, port: 80 }] }] } });
const svc = name => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { ports: [{ name: 'http', port: 80 }] } });
const slice = (name, service, addrs, port, ready = () => true) => ({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': service } }, addressType: 'IPv4',
    endpoints: addrs.map((a, i) => ({ addresses: [a], conditions: { ready: ready(i) } })), ports: [{ name: 'http', port }] });
const otherNs = o => ({ ...o, metadata: { ...o.metadata, namespace: 'other' } });
const ip = n => `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;

async function startGate(sim, extra = []) {
    const admin = await freePort();
    /* KB_GATE_CPUS (with KB_PIN): ssegate's own CPUs, e.g. "0,1" with KB_GATE_ARGS="--worker-cpus 0 --kube-cpus 1". */
    const place = (bin, args) => (env.KB_PIN && env.KB_GATE_CPUS ? ['taskset', ['-c', env.KB_GATE_CPUS, bin, ...args]] : pinned(bin, args));
    const child = spawn(...place(SSEGATE, ['--kubeconfig', sim.kubeconfigPath, '--admin', `127.0.0.1:${admin}`, '--access-log', 'off', '--workers', '2', ...extra]),
        { stdio: ['ignore', 'ignore', 'pipe'] });
    kids.add(child);
    unNice(child);
    let err = '';
    child.stderr.on('data', d => (err += d));
    const t0 = Date.now();
    for (;;) {
        const st = await get(admin, '/ready');
        if (st === 200) break;
        if (Date.now() - t0 > 120000) throw new Error(`ssegate not ready\n${err}`);
        await sleep(20);
    }
    return { child, admin, syncMs: Date.now() - t0, err: () => err };
}

/* nroutes routes over nroutes Services; neps endpoints spread over them in slices of at most 100. */
function bulk(nroutes, neps) {
    const objs = [];
    const perSvc = Math.max(1, Math.floor(neps / Math.max(1, nroutes)));
    let n = 0;
    for (let i = 0; i < nroutes; i++) {
        objs.push(route(`r${i}`, `/r${i}/`, `s${i}`), svc(`s${i}`));
        const cnt = i === nroutes - 1 ? neps - n : Math.min(perSvc, neps - n);
        for (let k = 0; k < cnt; k += 100) {
            const addrs = [];
            for (let j = k; j < Math.min(cnt, k + 100); j++) addrs.push(ip(n + j + 1));
            objs.push(slice(`s${i}-${k / 100}`, `s${i}`, addrs, 8080));
        }
        n += Math.max(0, cnt);
    }
    return objs;
}

async function buildPart() {
    const rows = [];
    const live = http.createServer((q, r) => r.end('ok')).listen(0, '127.0.0.1');
    await new Promise(r => live.once('listening', r));
    const livePort = live.address().port;
    /* Two backends that say who they are: an EndpointSlice change moves Service "ep" from one to the other. */
    const eps = await Promise.all(['A', 'B'].map(async id => {
        const srv = http.createServer((q, r) => r.end(id)).listen(0, '127.0.0.1');
        await new Promise(r => srv.once('listening', r));
        return srv;
    }));
    const epPort = i => eps[i % 2].address().port;
    for (const [nroutes, neps] of SIZES) {
        const sim = await startApiServer({ bookmarkIntervalMs: 60000 });
        const port = await freePort();
        const objs = [GC, gw(port), svc('live'), slice('live', 'live', ['127.0.0.1'], livePort), route('ep', '/ep/', 'ep'),
            svc('ep'), slice('ep', 'ep', ['127.0.0.1'], epPort(0))];
        objs.push(...bulk(nroutes, neps));
        sim.apply(objs);
        const g = await startGate(sim);
        const m0 = await metrics(g.admin);
        const row = { routes: nroutes, endpoints: neps, sync_ms: g.syncMs, store_kib: (mval(m0, 'ssegate_kube_store_bytes') / 1024).toFixed(0) };
        /* change: an HTTPRoute added (served once its path answers), or the EndpointSlice of Service "ep" moved to the
         * other backend (served once /ep/ answers from it). Interleaved, so both meet the same machine load. */
        const res = { route: { times: [], builds: [], cpus: [] }, slice: { times: [], builds: [], cpus: [] } };
        for (let p = 0; p < PROBES; p++) {
            for (const kind of ['route', 'slice']) {
                const t0 = performance.now();
                let ok;
                if (kind === 'route') {
                    sim.apply(route(`probe${p}`, `/probe${p}`, 'live'));
                    ok = async () => (await get(port, `/probe${p}`)) === 200;
                } else {
                    const want = p % 2 === 0 ? 'B' : 'A';
                    sim.apply(slice('ep', 'ep', ['127.0.0.1'], epPort(p + 1)));
                    ok = async () => (await body(port, '/ep/x')) === want;
                }
                while (!(await ok())) {
                    if (performance.now() - t0 > 20000) throw new Error(`${kind} probe ${p} not served\n${g.err()}`);
                }
                res[kind].times.push(performance.now() - t0);
                const mt = await metrics(g.admin);
                res[kind].builds.push(mval(mt, 'ssegate_config_build_last_seconds') * 1000);
                res[kind].cpus.push(mval(mt, 'ssegate_config_build_last_cpu_seconds') * 1000);
                await sleep(150);
            }
        }
        const m = await metrics(g.admin);
        for (const kind of ['route', 'slice']) {
            const r = res[kind];
            rows.push({ ...row, change: kind, change_to_serving_p50_ms: pct(r.times, 0.5).toFixed(1),
                change_to_serving_max_ms: Math.max(...r.times).toFixed(1), build_p50_ms: pct(r.builds, 0.5).toFixed(1),
                build_max_ms: Math.max(...r.builds).toFixed(1), build_cpu_p50_ms: pct(r.cpus, 0.5).toFixed(1),
                store_kib: (mval(m, 'ssegate_kube_store_bytes') / 1024).toFixed(0), rss_kib: rssKiB(g.child.pid) });
        }
        g.child.kill('SIGKILL');
        kids.delete(g.child);
        await sim.close();
    }
    live.close();
    for (const e of eps) e.close();
    return rows;
}

async function churnPart() {
    const oport = await freePort();
    const origin = spawn(...pinned(path.join(B, 'bench/origin'), ['--port', String(oport), '--rate', String(env.KB_RATE || 2000)]), { stdio: 'ignore' });
    kids.add(origin);
    if (API_NICE !== null) {
        os.setPriority(0, API_NICE);
        unNice(origin);
    }
    await sleep(300);
    const sim = await startApiServer({ bookmarkIntervalMs: 60000 });
    const port = await freePort();
    /* The churn is on another Service (99 endpoints flipping ready/not ready): every change is a full rebuild and a new
     * generation handed to the workers that carry the open streams, which is all a change of their own Service would
     * do to them too (an open stream keeps its generation); new streams never meet the unroutable 10.x addresses. */
    const flip = i => slice('c-extra', 'c', Array.from({ length: 99 }, (_, j) => ip(j + 1)), 8080, j => (j + i) % 3 !== 0);
    sim.apply([GC, gw(port), route('o', '/', 'o'), svc('o'), slice('o', 'o', ['127.0.0.1'], oport), route('c', '/c/', 'c'), svc('c'), flip(0),
        svc('unused'), slice('u-extra', 'unused', Array.from({ length: 99 }, (_, j) => ip(j + 1)), 8080, () => true), otherNs(slice('x-extra', 'unused', [ip(1)], 8080)),
        ...bulk(CHURN_SIZE[0], CHURN_SIZE[1])]);
    /* Only "default" is watched, so that mode ext's updates (namespace "other") reach ssegate not at all. */
    const g = await startGate(sim, ['--watch-namespace', 'default', ...GATE_ARGS]);
    /* The first leader writes every route's status (at --kube-api-qps): rounds start once that is over. */
    const writes = async () => [...(await metrics(g.admin)).matchAll(/^ssegate_kube_status_writes_total\{[^}]*\} (\d+)$/mg)]
        .reduce((a, m) => a + Number(m[1]), 0);
    for (let last = -1, t0 = Date.now(); Date.now() - t0 < 120000;) {
        const now = await writes();
        if (now === last && now > 0) break;
        last = now;
        await sleep(2000);
    }
    const rate = Number(env.KB_CHURN_RATE || 50), rounds = Number(env.KB_ROUNDS || 2), dur = Number(env.KB_DURATION || 10);
    const streams = Number(env.KB_STREAMS || 200);
    /* sham: the same updates through the API, to a slice of a Service no route names: the watcher filters it out of the
     * build, so the API traffic, the simulator's and the updater's CPU are there and the rebuilds are not. */
    /* ext: the same updates in namespace "other", which ssegate does not watch, read by a watch of the churn child's
     * own: the simulator's and the updater's work (and a consumer's) with none of ssegate's. */
    /* A mode may name the kube threads' scheduling for its rounds: "churn@idle", "sham@n19" (KB_SCHED_BASE, default
     * n10, is put back after). */
    const res = Object.fromEntries(MODES.map(m => [m, []]));
    for (let r = 0; r < rounds; r++) {
        for (const tag of MODES) {
            const [mode, pol] = tag.split('@');
            if (pol) kubeSched(g.child.pid, pol);
            const gen0 = mval(await metrics(g.admin), 'ssegate_config_generation');
            /* The changes come from another process, through the API, as kubectl's would. */
            let child = null;
            let floor = null;
            if (mode !== 'quiet') {
                const [name, service, ns] = mode === 'churn' ? ['c-extra', 'c', 'default'] : mode === 'sham' ? ['u-extra', 'unused', 'default'] : ['x-extra', 'unused', 'other'];
                child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--churn-child', sim.kubeconfigPath, String(rate), name, service, ns], { stdio: 'ignore' });
                kids.add(child);
            }
            if (mode === 'floor') {
                /* floor: ext's updates, and the least a watcher can do with them (curl: TLS, then discard) where the
                 * streams run: what reading the events costs them whoever reads. */
                floor = spawn(...pinned('curl', ['-sSN', '--http1.1', '--cacert', sim.caPath, '-H', `Authorization: Bearer ${sim.token}`, '-o', '/dev/null',
                    `${sim.url}/apis/discovery.k8s.io/v1/namespaces/other/endpointslices?watch=1`]), { stdio: 'ignore' });
                kids.add(floor);
            }
            const cpu0 = threadCpu(g.child.pid), sim0 = process.cpuUsage(), wait0 = runDelay(g.child.pid, 'ssegate-w');
            const out = await new Promise((resolve, reject) => {
                const lg = spawn(...pinned(path.join(B, 'bench/loadgen'), ['--port', String(port), '--path', '/sse', '--streams', String(streams), '--warmup', '2', '--duration', String(dur)]), { stdio: ['ignore', 'pipe', 'ignore'] });
                kids.add(lg);
                unNice(lg);
                let o = '';
                lg.stdout.on('data', d => (o += d));
                lg.on('exit', () => { kids.delete(lg); resolve(o); });
                lg.on('error', reject);
            });
            const cpu1 = threadCpu(g.child.pid), sim1 = process.cpuUsage(sim0), childMs = child ? procCpu(child.pid) : 0;
            const waitMs = (runDelay(g.child.pid, 'ssegate-w') - wait0) / 1e6;
            if (pol) kubeSched(g.child.pid, env.KB_SCHED_BASE || 'n10');
            if (child) { child.kill('SIGKILL'); kids.delete(child); }
            const floorMs = floor ? procCpu(floor.pid) : 0;
            if (floor) { floor.kill('SIGKILL'); kids.delete(floor); }
            const d = k => Object.keys(cpu1).filter(n => n.startsWith(k)).reduce((a, n) => a + cpu1[n] - (cpu0[n] || 0), 0);
            const line = out.trim().split('\n').pop();
            const kv = Object.fromEntries(line.split(' ').slice(1).map(x => x.split('=')));
            const gens = mval(await metrics(g.admin), 'ssegate_config_generation') - gen0;
            res[tag].push({ p50_us: Number(kv.p50_us), p99_us: Number(kv.p99_us), gaps: kv.gaps, closed: kv.closed, events: kv.events, generations: gens,
                kube_thread_ms: d('ssegate-kube'), status_thread_ms: d('ssegate-kstatus'), main_thread_ms: (cpu1.ssegate || 0) - (cpu0.ssegate || 0), workers_ms: d('ssegate-w'), workers_wait_ms: Number(waitMs.toFixed(1)), simulator_ms: Math.round((sim1.user + sim1.system) / 1000), updater_ms: childMs, floor_ms: floorMs });
        }
    }
    g.child.kill('SIGKILL');
    origin.kill('SIGKILL');
    await sim.close();
    return res;
}

async function statusPart() {
    const nroutes = Number(env.KB_STATUS_ROUTES || 1000);
    const sim = await startApiServer({ bookmarkIntervalMs: 60000 });
    const port = await freePort();
    const objs = [GC, gw(port)];
    for (let i = 0; i < nroutes; i++) objs.push(route(`r${i}`, `/r${i}/`, `s${i}`), svc(`s${i}`));
    sim.apply(objs);
    const ours = o => (o.status?.parents || []).some(p => p.controllerName === 'ssegate.io/gateway-controller');
    const count = () => {
        const q = sim.requests().filter(e => !e.watch);
        return { puts: q.filter(e => e.method === 'PUT').length, requests: q.length, conns: sim.connections().accepted };
    };
    const rows = [];
    /* 1: the first leader, no status anywhere */
    sim.clearRequests();
    const c0 = sim.connections().accepted;
    const t0 = Date.now();
    const g1 = await startGate(sim, STATUS_ARGS);
    let done;
    for (;;) {
        done = sim.list('HTTPRoute', 'default').filter(ours).length;
        if (done === nroutes) break;
        if (Date.now() - t0 > 600000) throw new Error(`status of ${done}/${nroutes} routes after 600 s\n${g1.err()}`);
        await sleep(100);
    }
    const first = Date.now() - t0;
    await sleep(500);
    let k = count();
    const m1 = await metrics(g1.admin);
    rows.push({ sync: 'first leader', routes: nroutes, ready_ms: g1.syncMs, all_status_ms: first, requests: k.requests, puts: k.puts,
        tls_connections: k.conns - c0, throttled_s: mval(m1, 'ssegate_kube_api_throttled_seconds_total') });
    /* 2: the holder goes (SIGTERM releases the Lease); a second replica reads every object again */
    g1.child.kill('SIGTERM');
    await new Promise(r => g1.child.once('exit', r));
    kids.delete(g1.child);
    sim.clearRequests();
    const c1 = sim.connections().accepted;
    const t1 = Date.now();
    const g2 = await startGate(sim, STATUS_ARGS);
    let unchanged = 0;
    for (;;) {
        const m = await metrics(g2.admin);
        unchanged = mval(m.replace(/\{result="unchanged"\}/, '_unchanged'), 'ssegate_kube_status_writes_total_unchanged');
        if (unchanged >= nroutes + 2) break; /* the routes, the Gateway and the GatewayClass */
        if (Date.now() - t1 > 600000) throw new Error(`handover: ${unchanged} read after 600 s\n${g2.err()}`);
        await sleep(100);
    }
    const second = Date.now() - t1;
    k = count();
    const m2 = await metrics(g2.admin);
    rows.push({ sync: 'next leader (status in place)', routes: nroutes, ready_ms: g2.syncMs, all_status_ms: second, requests: k.requests,
        puts: k.puts, tls_connections: k.conns - c1, throttled_s: mval(m2, 'ssegate_kube_api_throttled_seconds_total') });
    g2.child.kill('SIGKILL');
    kids.delete(g2.child);
    await sim.close();
    return rows;
}

/* The churn child: applies the flipping slice through the API at RATE per second (its own event loop). */
async function churnChild(kubeconfig, rate, name, service, ns) {
    const kc = fs.readFileSync(kubeconfig, 'utf8');
    const server = /server: (\S+)/.exec(kc)[1], token = /token: (\S+)/.exec(kc)[1];
    const ca = fs.readFileSync(/certificate-authority: (\S+)/.exec(kc)[1]);
    const https = await import('node:https');
    const agent = new https.Agent({ ca, keepAlive: true });
    let i = 0;
    const put = () => {
        const obj = slice(name, service, Array.from({ length: 99 }, (_, j) => ip(j + 1)), 8080, j => (j + i) % 3 !== 0);
        obj.metadata.namespace = ns;
        i++;
        const body = JSON.stringify(obj);
        const req = https.request(`${server}/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices/${name}`,
            { method: 'PUT', agent, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } }, r => r.resume());
        req.on('error', () => {});
        req.end(body);
    };
    setInterval(put, 1000 / rate);
    if (ns !== 'default') {
        /* Mode ext: a consumer of our own reads the watch stream as a controller would (a JSON parse per event). */
        const w = https.request(`${server}/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices?watch=1`,
            { agent, headers: { authorization: `Bearer ${token}` } }, r => {
                let buf = '';
                r.setEncoding('utf8');
                r.on('data', d => {
                    buf += d;
                    let nl;
                    while ((nl = buf.indexOf('\n')) >= 0) { JSON.parse(buf.slice(0, nl)); buf = buf.slice(nl + 1); }
                });
            });
        w.on('error', () => {});
        w.end();
    }
}

if (process.argv[2] === '--churn-child') {
    churnChild(process.argv[3], Number(process.argv[4]), process.argv[5], process.argv[6], process.argv[7]);
} else {
    const started = Date.now();
    if (PARTS.includes('build')) {
        const rows = await buildPart();
        console.log('build: changed object -> served (includes the 100 ms quiet period of the debounce); change: an HTTPRoute added, or an EndpointSlice moved to another backend');
        console.table(rows);
    }
    if (PARTS.includes('status')) {
        const rows = await statusPart();
        console.log(`status: a new leader's status sync; ssegate args: ${STATUS_ARGS.join(' ') || '(none)'}; requests: every non-watch request ` +
            'of the process (LISTs, Lease, status reads and writes); tls_connections: accepted by the simulator, watches included');
        console.table(rows);
    }
    if (PARTS.includes('churn')) {
        const r = await churnPart();
        console.log(`churn: ${env.KB_STREAMS || 200} SSE streams at ${env.KB_RATE || 2000} events/s; EndpointSlice changes at ${env.KB_CHURN_RATE || 50}/s; ` +
            `${CHURN_SIZE[0]} more routes and ${CHURN_SIZE[1]} more endpoints in the config`);
        console.table(MODES.flatMap(m => r[m].map(x => ({ mode: m, ...x }))));
    }
    console.log(`kube-bench: ${((Date.now() - started) / 1000).toFixed(0)} s`);
    process.exit(0);
}
