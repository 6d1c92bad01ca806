// kube-outage.test.mjs: the watcher against a misbehaving API server (kubesim): a compacted history (410) relists;
// an API server that goes away keeps the last config serving, and when it comes back changed (history lost) the
// relist turns vanished objects into deletes; a rotated service-account token is re-read; events split and merged
// across chunks, cut mid-event or answered with an in-band error are all survived.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SLOW, freePort, setup, withLogs } from './lib/harness.mjs';
import { httpGet, taggedBackends } from './lib/prod-util.mjs';
import { gateway, gatewayClass, kubeMetric, route, service, slices, startKubeGateway, startSim, waitFor } from './lib/kube-util.mjs';

setup();

async function body(port, path) {
    try {
        const r = await httpGet(port, path, { ms: 2000 });
        return r.status === 200 ? r.body : `HTTP ${r.status}`;
    } catch (e) {
        return `error ${e.message}`;
    }
}

async function base(sim, n = 2) {
    const port = await freePort();
    const be = await taggedBackends(n);
    const objs = [gatewayClass(), gateway('gw', port)];
    for (let i = 0; i < n; i++)
        objs.push(route(`r${i}`, [{ path: `/r${i}`, service: `s${i}` }]), service(`s${i}`), ...slices(`s${i}`, [{ port: be.ports[i] }]));
    sim.apply(objs);
    return { port, be };
}

let gw;

test('kube: a watch from a compacted resourceVersion gets 410 and the kind is relisted', { timeout: 60000 * SLOW },
    withLogs(() => [gw], async () => {
        const sim = await startSim();
        const { port, be } = await base(sim);
        gw = await startKubeGateway(sim);
        assert.equal(await body(port, '/r0'), 'backend 0');
        const lists0 = sim.requests({ method: 'GET', watch: false }).filter(r => r.path.endsWith('/httproutes')).length;
        /* The watches end; before they are back, a change and a compaction: the resourceVersion ssegate resumes
         * from is now older than the history. */
        sim.dropWatches();
        sim.delete('HTTPRoute', 'default', 'r0');
        sim.compact();
        await waitFor(async () => (await kubeMetric(gw.admin, 'ssegate_kube_watch_restarts_total', { kind: 'HTTPRoute', reason: 'expired' })) >= 1,
            15000 * SLOW, 'an expired watch of HTTPRoutes', gw);
        await waitFor(() => sim.requests({ method: 'GET', watch: false }).filter(r => r.path.endsWith('/httproutes')).length > lists0,
            15000 * SLOW, 'a relist of HTTPRoutes', gw);
        /* Watching again after the relist: a change arrives. */
        await waitFor(async () => (await body(port, '/r0')) === 'HTTP 404', 10000 * SLOW, 'the change the relist found', gw);
        sim.apply(route('r1', [{ path: '/moved', service: 's1' }]));
        await waitFor(async () => (await body(port, '/moved')) === 'backend 1', 10000 * SLOW, 'the change after the relist', gw);
        assert.equal(await body(port, '/r1'), 'HTTP 404');
        assert.ok(be.hits[1] > 0);
        await gw.stop('SIGKILL');
    }));

test('kube: the API server goes away (last config keeps serving) and comes back changed (relist deletes)', { timeout: 90000 * SLOW },
    withLogs(() => [gw], async () => {
        const sim = await startSim();
        const { port } = await base(sim);
        gw = await startKubeGateway(sim);
        assert.equal(await body(port, '/r0'), 'backend 0');
        assert.equal(await body(port, '/r1'), 'backend 1');
        await sim.stop();
        /* Changed while ssegate cannot see it: r0 deleted, r1 re-pointed; and the history is lost on restart. */
        sim.delete('HTTPRoute', 'default', 'r0');
        sim.apply(route('r1', [{ path: '/r1', service: 's0' }]));
        for (let i = 0; i < 10; i++) {
            assert.equal(await body(port, '/r0'), 'backend 0', 'the last config keeps serving while the API server is away');
            await new Promise(r => setTimeout(r, 100));
        }
        assert.equal(await kubeMetric(gw.admin, 'ssegate_kube_synced', { kind: 'HTTPRoute' }), 1);
        await sim.start({ loseHistory: true });
        await waitFor(async () => (await body(port, '/r0')) === 'HTTP 404', 40000 * SLOW, 'r0 deleted by the relist', gw);
        await waitFor(async () => (await body(port, '/r1')) === 'backend 0', 10000 * SLOW, 'r1 re-pointed', gw);
        await gw.stop('SIGKILL');
    }));

test('kube: --kube in-cluster, a rotated token is re-read after a 401', { timeout: 60000 * SLOW },
    withLogs(() => [gw], async () => {
        const sim = await startSim();
        const { port } = await base(sim);
        gw = await startKubeGateway(sim, { mode: 'incluster' });
        assert.equal(await body(port, '/r0'), 'backend 0');
        const oldToken = sim.token;
        const fresh = sim.rotateToken({ graceMs: 0 });
        assert.notEqual(fresh, oldToken);
        sim.clearRequests();
        sim.dropWatches();
        await waitFor(() => sim.requests().some(r => r.status === 401), 15000 * SLOW, 'a request with the old token refused', gw);
        await waitFor(() => sim.requests().some(r => r.watch && r.status === 200 && r.token === fresh), 20000 * SLOW,
            'a watch with the new token', gw);
        sim.apply(route('r0', [{ path: '/after-rotation', service: 's0' }]));
        await waitFor(async () => (await body(port, '/after-rotation')) === 'backend 0', 20000 * SLOW, 'a change after the rotation', gw);
        await gw.stop('SIGKILL');
    }));

test('kube: events split and merged across chunks, a watch cut mid-event, an in-band error: changes still arrive', { timeout: 90000 * SLOW },
    withLogs(() => [gw], async () => {
        const sim = await startSim();
        const { port } = await base(sim);
        gw = await startKubeGateway(sim);
        const cases = [
            { action: 'split', size: 7 },
            { action: 'merge', count: 3, flushMs: 50 },
            { action: 'cut', afterEvents: 1, midEvent: true },
            { action: 'error', afterEvents: 1, code: 500 },
        ];
        for (let c = 0; c < cases.length; c++) {
            const f = sim.faults.add({ resource: 'httproutes', watch: true, times: 1, ...cases[c] });
            sim.dropWatches();
            await waitFor(() => f.hits >= 1, 20000 * SLOW, `a watch under ${cases[c].action}`, gw);
            /* Several changes: the route moves through paths, the last one must be served. */
            for (let k = 0; k < 3; k++) sim.apply(route('r1', [{ path: `/c${c}k${k}`, service: 's1' }]));
            await waitFor(async () => (await body(port, `/c${c}k2`)) === 'backend 1', 30000 * SLOW, `the last change under ${cases[c].action}`, gw);
            assert.equal(await body(port, `/c${c}k0`), 'HTTP 404');
        }
        assert.ok((await kubeMetric(gw.admin, 'ssegate_kube_watch_restarts_total', { kind: 'HTTPRoute' })) >= 2);
        await gw.stop('SIGKILL');
    }));
