// kube-watch.test.mjs: ssegate --kubeconfig against kubesim: /ready waits for the first full sync, kubectl-applied
// routes are served, a route changed while an SSE stream is open leaves the stream whole, and EndpointSlice changes
// (scale-out, scale-in, terminating endpoints) reach the load balancer without SIGHUP.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import yaml from 'js-yaml';
import { test } from 'node:test';
import { SLOW, freePort, setup, sleep, withLogs, writeTemp } from './lib/harness.mjs';
import { httpGet, openTimedSse, sequenceBackends, sharedSequence, taggedBackends } from './lib/prod-util.mjs';
import { gateway, gatewayClass, kubeMetric, readyStatus, route, service, slices, startKubeGateway, startSim, waitFor } from './lib/kube-util.mjs';

setup();

const KUBECTL = ['/usr/bin/kubectl', '/usr/local/bin/kubectl'].find(p => fs.existsSync(p));

function kubectl(sim, args) {
    return new Promise((resolve, reject) => {
        execFile(KUBECTL, ['--cache-dir', path.join(sim.dir, 'kubectl-cache'), ...args], { env: { ...process.env, KUBECONFIG: sim.kubeconfigPath }, timeout: 30000 }, (err, stdout, stderr) =>
            err ? reject(new Error(`kubectl ${args.join(' ')}: ${err.message}\n${stderr}`)) : resolve(stdout));
    });
}

async function body(port, path) {
    try {
        const r = await httpGet(port, path, { ms: 2000 });
        return r.status === 200 ? r.body : `HTTP ${r.status}`;
    } catch (e) {
        return `error ${e.message}`;
    }
}

let gw;

test('kube: /ready is 503 until every kind has listed and the first config is published', { timeout: 60000 * SLOW },
    withLogs(() => [gw], async () => {
        const sim = await startSim();
        const port = await freePort();
        const be = await taggedBackends(1);
        sim.apply([gatewayClass(), gateway('gw', port), route('r', [{ path: '/', service: 's' }]), service('s'),
            ...slices('s', [{ port: be.ports[0] }])]);
        /* The HTTPRoute LIST fails until the fault is removed: nothing may be served from a partial cache. */
        const fault = sim.faults.add({ resource: 'httproutes', list: true, times: 1e9, action: 'status', code: 503 });
        gw = await startKubeGateway(sim, { waitReady: false });
        await waitFor(() => fault.hits >= 2, 15000 * SLOW, 'two failed LISTs of HTTPRoutes', gw);
        assert.equal(await readyStatus(gw.admin), 503);
        assert.equal(await kubeMetric(gw.admin, 'ssegate_kube_synced', { kind: 'HTTPRoute' }), 0);
        assert.equal(await kubeMetric(gw.admin, 'ssegate_kube_synced', { kind: 'Gateway' }), 1);
        assert.match(await body(port, '/'), /^error/); /* the listener is not even open */
        fault.remove();
        await waitFor(async () => (await readyStatus(gw.admin)) === 200, 40000 * SLOW, '/ready 200 after the fault', gw);
        assert.equal(await body(port, '/x'), 'backend 0');
        assert.equal(await kubeMetric(gw.admin, 'ssegate_kube_synced', { kind: 'HTTPRoute' }), 1);
        assert.ok((await kubeMetric(gw.admin, 'ssegate_kube_builds_total', { result: 'ok' })) >= 1);
        await gw.stop();
    }));

test('kube: objects applied with kubectl are served; a deleted route stops being served', { timeout: 60000 * SLOW, skip: !KUBECTL && 'no kubectl' },
    withLogs(() => [gw], async () => {
        const sim = await startSim();
        const port = await freePort();
        const be = await taggedBackends(2);
        gw = await startKubeGateway(sim);
        assert.match(await body(port, '/'), /^error/);
        const objs = [gatewayClass(), gateway('gw', port), route('a', [{ path: '/a', service: 'sa' }]), service('sa'),
            ...slices('sa', [{ port: be.ports[0] }])];
        const file = writeTemp('objs.yaml', objs.map(o => yaml.dump(o)).join('---\n'));
        await kubectl(sim, ['apply', '-f', file]);
        await waitFor(async () => (await body(port, '/a')) === 'backend 0', 10000 * SLOW, 'route a served', gw);
        /* A second route and Service, applied while the first is served. */
        const more = [route('b', [{ path: '/b', service: 'sb' }]), service('sb'), ...slices('sb', [{ port: be.ports[1] }])];
        await kubectl(sim, ['apply', '-f', writeTemp('more.yaml', more.map(o => yaml.dump(o)).join('---\n'))]);
        await waitFor(async () => (await body(port, '/b')) === 'backend 1', 10000 * SLOW, 'route b served', gw);
        assert.equal(await body(port, '/a'), 'backend 0');
        await kubectl(sim, ['delete', 'httproute', 'a']);
        await waitFor(async () => (await body(port, '/a')) === 'HTTP 404', 10000 * SLOW, 'route a gone', gw);
        assert.equal(await body(port, '/b'), 'backend 1');
        /* A Gateway of another controller's class is not ours: its listener never opens. */
        const other = await freePort();
        sim.apply([gatewayClass('theirs', 'example.com/other'), gateway('gw2', other, { className: 'theirs' })]);
        sim.apply(route('c', [{ path: '/c', service: 'sb' }], { parents: [{ name: 'gw2' }, { name: 'gw' }] }));
        await waitFor(async () => (await body(port, '/c')) === 'backend 1', 10000 * SLOW, 'route c on our gateway', gw);
        assert.match(await body(other, '/c'), /^error/);
        await gw.stop();
    }));

test('kube: a route updated while an SSE stream is open leaves the stream whole, with no gap in ids', { timeout: 60000 * SLOW },
    withLogs(() => [gw], async () => {
        const sim = await startSim();
        const port = await freePort();
        const seq = sharedSequence({ interval: 50, half: 10 });
        const sse = await sequenceBackends(1, seq, { retry: null });
        const tagged = await taggedBackends(2);
        sim.apply([gatewayClass(), gateway('gw', port),
            route('r', [{ path: '/sse', service: 'seq' }, { path: '/t', service: 't0' }]),
            service('seq'), ...slices('seq', [{ port: sse.ports[0] }]),
            service('t0'), ...slices('t0', [{ port: tagged.ports[0] }]),
            service('t1'), ...slices('t1', [{ port: tagged.ports[1] }])]);
        gw = await startKubeGateway(sim);
        seq.start();
        const h = openTimedSse(port, '/sse/1');
        await waitFor(() => h.events.length >= 5, 10000 * SLOW, 'first events', gw);
        const gen0 = await kubeMetric(gw.admin, 'ssegate_config_generation');
        /* The route now sends /t to another Service; the stream's route is rewritten too (same path, new rule). */
        sim.apply(route('r', [{ path: '/sse', service: 'seq' }, { path: '/t', service: 't1' }, { path: '/new', service: 't0' }]));
        await waitFor(async () => (await body(port, '/t')) === 'backend 1', 10000 * SLOW, '/t moved to t1', gw);
        assert.equal(await body(port, '/new'), 'backend 0');
        assert.ok((await kubeMetric(gw.admin, 'ssegate_config_generation')) > gen0);
        const n = h.events.length;
        await waitFor(() => h.events.length >= n + 10, 10000 * SLOW, 'events after the change', gw);
        assert.equal(h.ended, false, 'the stream must not end');
        for (let k = 1; k < h.events.length; k++)
            assert.equal(Number(h.events[k].id), Number(h.events[k - 1].id) + 1, `gap in ids at ${k}`);
        assert.equal(sse.streams.length, 1, 'no reconnect to the backend');
        await gw.stop('SIGKILL');
    }));

test('kube: EndpointSlice scale-out and scale-in reach the load balancer; terminating endpoints get no new streams; open streams stay', { timeout: 90000 * SLOW },
    withLogs(() => [gw], async () => {
        const sim = await startSim();
        const port = await freePort();
        const be = await taggedBackends(3);
        sim.apply([gatewayClass(), gateway('gw', port), route('r', [{ path: '/', service: 's' }]), service('s'),
            ...slices('s', [{ port: be.ports[0] }])]);
        gw = await startKubeGateway(sim);
        const seen = async n => {
            const got = new Set();
            for (let i = 0; i < n; i++) got.add(await body(port, `/x${i}`));
            return got;
        };
        assert.deepEqual([...await seen(6)], ['backend 0']);
        /* An SSE stream on backend 0, which will be scaled in later. */
        const h = openTimedSse(port, '/sse/keep');
        await waitFor(() => h.events.length >= 1, 10000 * SLOW, 'stream on backend 0', gw);
        /* Scale out: two more endpoints, each in its own slice (slices are per port here). */
        sim.apply(slices('s', [{ port: be.ports[1] }]));
        sim.apply(slices('s', [{ port: be.ports[2] }]));
        await waitFor(async () => (await seen(12)).size === 3, 10000 * SLOW, 'all three endpoints serve', gw);
        /* Backend 2 starts terminating: ready false, serving true. It gets no new requests. */
        sim.apply(slices('s', [{ port: be.ports[2], ready: false, serving: true, terminating: true }]));
        await waitFor(async () => !(await seen(12)).has('backend 2'), 10000 * SLOW, 'no new requests to the terminating endpoint', gw);
        /* Scale in: backend 0's slice is deleted. Its open stream keeps running (the stream keeps its generation). */
        sim.delete('EndpointSlice', 'default', `s-${be.ports[0]}`);
        await waitFor(async () => {
            const got = await seen(12);
            return got.size === 1 && got.has('backend 1');
        }, 10000 * SLOW, 'only backend 1 serves', gw);
        const before0 = be.hits[0];
        await seen(6);
        assert.equal(be.hits[0], before0, 'no new request reaches the removed endpoint');
        be.streams[0][0].write('id: 2\ndata: still here\n\n');
        await waitFor(() => h.events.some(e => e.data === 'still here'), 5000 * SLOW, 'the open stream continues', gw);
        assert.equal(h.ended, false);
        assert.equal(gw.stderr.includes('reload'), false, 'no SIGHUP reload was involved');
        await gw.stop('SIGKILL');
    }));

test('kube: an EndpointSlice whose endpoints change is applied as a patch: new requests follow it; status, the full-build count and open streams stay', { timeout: 60000 * SLOW },
    withLogs(() => [gw], async () => {
        const sim = await startSim();
        const port = await freePort();
        const be = await taggedBackends(2);
        sim.apply([gatewayClass(), gateway('gw', port), route('r', [{ path: '/', service: 's' }]), service('s'),
            ...slices('s', [{ port: be.ports[0] }, { port: be.ports[1], ready: false }])]);
        gw = await startKubeGateway(sim);
        const seen = async n => {
            const got = new Set();
            for (let i = 0; i < n; i++) got.add(await body(port, `/x${i}`));
            return [...got].sort();
        };
        assert.deepEqual(await seen(6), ['backend 0']);
        const parents = () => sim.get('HTTPRoute', 'default', 'r')?.status?.parents || [];
        await waitFor(() => parents().some(p => p.conditions?.some(c => c.type === 'Accepted' && c.status === 'True')),
            15000 * SLOW, 'route status written', gw);
        const h = openTimedSse(port, '/sse/keep');
        await waitFor(() => h.events.length >= 1, 10000 * SLOW, 'stream on backend 0', gw);
        const metric = r => kubeMetric(gw.admin, 'ssegate_kube_builds_total', { result: r });
        const ok0 = await metric('ok'), patched0 = await metric('patched');
        const gen0 = await kubeMetric(gw.admin, 'ssegate_config_generation');
        const rv0 = sim.get('HTTPRoute', 'default', 'r').metadata.resourceVersion;
        /* Endpoint 0 goes not ready, endpoint 1 ready: the same two slices, other contents. */
        sim.apply(slices('s', [{ port: be.ports[0], ready: false }, { port: be.ports[1] }]));
        await waitFor(async () => JSON.stringify(await seen(12)) === '["backend 1"]', 10000 * SLOW, 'only backend 1 serves', gw);
        assert.ok((await metric('patched')) > patched0, 'made as a patch');
        assert.equal(await metric('ok'), ok0, 'no full load');
        assert.ok((await kubeMetric(gw.admin, 'ssegate_config_generation')) > gen0, 'a new generation serves');
        /* And back: patches follow patches. */
        sim.apply(slices('s', [{ port: be.ports[0] }, { port: be.ports[1] }]));
        await waitFor(async () => JSON.stringify(await seen(12)) === '["backend 0","backend 1"]', 10000 * SLOW, 'both serve', gw);
        assert.equal(await metric('ok'), ok0);
        /* The stream on backend 0 kept its generation and runs on. */
        be.streams[0][0].write('id: 2\ndata: still here\n\n');
        await waitFor(() => h.events.some(e => e.data === 'still here'), 5000 * SLOW, 'the open stream continues', gw);
        assert.equal(h.ended, false);
        /* Endpoints are not status: the route's status was not written again. */
        assert.equal(sim.get('HTTPRoute', 'default', 'r').metadata.resourceVersion, rv0);
        /* A Service no route sends to: its slices' churn is stored and not built for (no build is even tried). */
        const unchanged0 = await metric('unchanged'), events0 = await kubeMetric(gw.admin, 'ssegate_kube_events_total', { kind: 'EndpointSlice' });
        const patched1 = await metric('patched');
        sim.apply([service('other'), ...slices('other', [{ port: be.ports[0] }])]);
        sim.apply(slices('other', [{ port: be.ports[0], ready: false }]));
        await waitFor(async () => (await kubeMetric(gw.admin, 'ssegate_kube_events_total', { kind: 'EndpointSlice' })) >= events0 + 2,
            10000 * SLOW, 'the events read', gw);
        await sleep(500 * SLOW); /* past the debounce's quiet period, in which a build would have run */
        assert.equal(await metric('unchanged'), unchanged0, 'no build tried');
        assert.equal(await metric('patched'), patched1);
        assert.equal(await metric('ok'), ok0);
        await gw.stop('SIGKILL');
    }));

test('kube: a burst of watch events is read in batches, at most one wakeup per 50 ms, and every event is applied', { timeout: 60000 * SLOW },
    withLogs(() => [gw], async () => {
        const sim = await startSim({ bookmarkIntervalMs: 600000 });
        const port = await freePort();
        const be = await taggedBackends(2);
        /* Each EndpointSlice event comes in pieces of 1 KB, each its own TLS record, as a large event can: a wakeup
         * must read them all, not stop at the first record and wait 50 ms for the next. */
        sim.faults.add({ resource: 'endpointslices', watch: true, action: 'split', size: 1024, gapMs: 1 });
        sim.apply([gatewayClass(), gateway('gw', port), route('r', [{ path: '/', service: 's' }]), service('s'),
            ...slices('s', [{ port: be.ports[0] }]), service('other'), ...slices('other', [{ port: be.ports[0] }])]);
        gw = await startKubeGateway(sim);
        assert.equal(await body(port, '/x'), 'backend 0');
        const events = () => kubeMetric(gw.admin, 'ssegate_kube_events_total', { kind: 'EndpointSlice' });
        const reads = () => kubeMetric(gw.admin, 'ssegate_kube_watch_reads_total');
        /* A lone event is read at once: it counts one wakeup. */
        let e0 = await events(), r0 = await reads();
        sim.apply(slices('other', [{ port: be.ports[1] }]));
        await waitFor(async () => (await events()) === e0 + 1, 10000 * SLOW, 'the lone event read', gw);
        assert.equal(await reads(), r0 + 1);
        /* One slice of 60 endpoints (an event of about 5 KB, as a Deployment's), changed 40 times. */
        const many = i => Array.from({ length: 60 }, (_, j) => ({ port: 9000, ip: `10.1.0.${j + 1}`, ready: (i + j) % 3 !== 0 }));
        sim.apply(slices('other', many(-1)));
        await waitFor(async () => (await events()) === e0 + 2, 10000 * SLOW, 'the slice added', gw);
        /* 40 changes at once (a rolling update's burst), sent by the server over a few hundred ms in 200 pieces.
         * After a wakeup that read events the next waits 50 ms, then reads all that has come: at least two events
         * per wakeup. One per wakeup (no pacing, or a read that stops at the first record) would be 40. */
        await sleep(200);
        e0 = await events();
        r0 = await reads();
        const t0 = Date.now();
        for (let i = 0; i < 40; i++) sim.apply(slices('other', many(i)));
        await waitFor(async () => (await events()) === e0 + 40, 10000 * SLOW, 'all 40 events read', gw);
        const window = Date.now() - t0;
        const n = (await reads()) - r0;
        assert.ok(n >= 1 && n <= 20 && n <= Math.ceil(window / 50) + 1, `${n} wakeups read 40 events in ${window} ms`);
        /* The route's own Service still serves. */
        assert.equal(await body(port, '/x'), 'backend 0');
        /* A change to the route's own Service after a burst still reaches the traffic. */
        sim.apply(slices('s', [{ port: be.ports[1] }]));
        await waitFor(async () => (await body(port, '/x')) === 'backend 1', 10000 * SLOW, 'the change served', gw);
        await gw.stop('SIGKILL');
    }));

test('kube: a watch whose first event comes with its response head applies it at once', { timeout: 60000 * SLOW },
    withLogs(() => [gw], async () => {
        /* No bookmarks: nothing else arrives on the watch after the event, so only the bytes read with the head hold it. */
        const sim = await startSim({ bookmarkIntervalMs: 600000 });
        const port = await freePort();
        const be = await taggedBackends(2);
        sim.apply([gatewayClass(), gateway('gw', port), route('r', [{ path: '/', service: 's' }]), service('s'),
            ...slices('s', [{ port: be.ports[0] }])]);
        gw = await startKubeGateway(sim);
        assert.equal(await body(port, '/x'), 'backend 0');
        const fault = sim.faults.add({ resource: 'endpointslices', watch: true, action: 'withHead' });
        const events0 = await kubeMetric(gw.admin, 'ssegate_kube_events_total', { kind: 'EndpointSlice' });
        /* The watches break; while ssegate backs off, the slice changes: its next watch starts with that change. */
        sim.dropWatches();
        sim.apply(slices('s', [{ port: be.ports[1] }]));
        await waitFor(() => fault.hits === 1, 15000 * SLOW, 'the EndpointSlice watch opened again', gw);
        await waitFor(async () => (await body(port, '/x')) === 'backend 1', 10000 * SLOW, 'the change served', gw);
        assert.ok((await kubeMetric(gw.admin, 'ssegate_kube_events_total', { kind: 'EndpointSlice' })) > events0);
        await gw.stop('SIGKILL');
    }));

test('kube: Secrets of the types the store never keeps (Helm releases, tokens, registry credentials) are left out by the server; Secrets and ConfigMaps come 100 to a page', { timeout: 60000 * SLOW },
    withLogs(() => [gw], async () => {
        const sim = await startSim();
        const port = await freePort();
        const be = await taggedBackends(1);
        const b64 = t => Buffer.from(t).toString('base64');
        const secret = (name, type, data) => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: 'default' }, type, data });
        const helm = i => secret('sh.helm.release.v1.app.v1', 'helm.sh/release.v1', { release: b64(`revision ${i} `.repeat(8000)) });
        const tls = i => secret('cert', 'kubernetes.io/tls', { 'tls.crt': b64(`crt ${i}`), 'tls.key': b64(`key ${i}`) });
        sim.apply([gatewayClass(), gateway('gw', port), route('r', [{ path: '/', service: 's' }]), service('s'),
            ...slices('s', [{ port: be.ports[0] }]), tls(0), helm(0),
            secret('sa', 'kubernetes.io/service-account-token', { 'ca.crt': b64('ca'), token: b64('t') }),
            secret('ca', 'Opaque', { 'ca.crt': b64('ca') })]);
        gw = await startKubeGateway(sim);
        const q = sim.requests({ path: '/api/v1/secrets' });
        assert.ok(q.some(e => !e.watch) && q.some(e => e.watch), 'a LIST and a WATCH of Secrets');
        for (const e of q)
            assert.match(e.query.fieldSelector || '', /type!=helm\.sh\/release\.v1/, `${e.watch ? 'WATCH' : 'LIST'} ${e.path}`);
        /* Secrets and ConfigMaps (up to 1.5 MiB each) are listed 100 to a page, which stays under the response cap. */
        for (const path of ['/api/v1/secrets', '/api/v1/configmaps'])
            for (const e of sim.requests({ path, watch: false })) assert.equal(e.query.limit, '100', e.path);
        assert.equal(sim.requests({ path: '/api/v1/services', watch: false })[0].query.limit, '500');
        assert.equal(await kubeMetric(gw.admin, 'ssegate_kube_objects', { kind: 'Secret' }), 2); /* cert and ca */
        const events = () => kubeMetric(gw.admin, 'ssegate_kube_events_total', { kind: 'Secret' });
        const e0 = await events();
        /* Helm's revisions come and go: no event reaches ssegate. A TLS Secret's change does. */
        for (let i = 1; i <= 3; i++) sim.apply([helm(i)]);
        sim.apply([tls(1)]);
        await waitFor(async () => (await events()) >= e0 + 1, 10000 * SLOW, "the TLS Secret's event", gw);
        await sleep(300 * SLOW);
        assert.equal(await events(), e0 + 1);
        assert.equal(await body(port, '/x'), 'backend 0');
        await gw.stop('SIGKILL');
    }));

test('kube: --watch-namespace watches the namespaced kinds of one namespace only', { timeout: 60000 * SLOW },
    withLogs(() => [gw], async () => {
        const sim = await startSim();
        const port = await freePort();
        const be = await taggedBackends(2);
        sim.apply([gatewayClass(), gateway('gw', port, { ns: 'team-a' }),
            route('a', [{ path: '/a', service: 's' }], { ns: 'team-a', parents: [{ name: 'gw', namespace: 'team-a' }] }),
            service('s', { ns: 'team-a' }), ...slices('s', [{ port: be.ports[0] }], { ns: 'team-a' }),
            route('b', [{ path: '/b', service: 's' }], { ns: 'team-b', parents: [{ name: 'gw', namespace: 'team-a' }] }),
            service('s', { ns: 'team-b' }), ...slices('s', [{ port: be.ports[1] }], { ns: 'team-b' })]);
        gw = await startKubeGateway(sim, { args: ['--watch-namespace', 'team-a'] });
        assert.equal(await body(port, '/a'), 'backend 0');
        assert.equal(await body(port, '/b'), 'HTTP 404', 'a route of another namespace is not seen');
        const paths = sim.requests({ method: 'GET' }).map(r => r.path);
        assert.ok(paths.some(p => p === '/apis/gateway.networking.k8s.io/v1/namespaces/team-a/httproutes'), paths.join(' '));
        assert.ok(!paths.some(p => p === '/apis/gateway.networking.k8s.io/v1/httproutes'));
        assert.ok(paths.some(p => p === '/apis/gateway.networking.k8s.io/v1/gatewayclasses'), 'cluster-scoped kinds are cluster-wide');
        await gw.stop('SIGKILL');
    }));
