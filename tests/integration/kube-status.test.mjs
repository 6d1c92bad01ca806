// kube-status.test.mjs: the watcher and the status writer wired together in the binary: a bad HTTPRoute next to good
// ones is dropped and reported on itself while the others serve (lenient loading), and the leader writes Gateway
// Programmed and HTTPRoute parents with our controllerName once the build serves.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SLOW, freePort, setup, withLogs } from './lib/harness.mjs';
import { httpGet, taggedBackends } from './lib/prod-util.mjs';
import { CONTROLLER, gateway, gatewayClass, kubeMetric, route, service, slices, startKubeGateway, startSim, waitFor } from './lib/kube-util.mjs';

setup();

let gw;

const cond = (conds, type) => (conds || []).find(c => c.type === type);

test('kube: a bad route next to good ones is dropped and reported; the good ones serve; status is written', { timeout: 60000 * SLOW },
    withLogs(() => [gw], async () => {
        const sim = await startSim();
        const port = await freePort();
        const be = await taggedBackends(2);
        const bad = route('bad', [{ path: '/bad', service: 's0' }]);
        bad.spec.hostnames = ['not a host name!'];
        sim.apply([gatewayClass(), gateway('gw', port),
            route('good0', [{ path: '/g0', service: 's0' }]), route('good1', [{ path: '/g1', service: 's1' }]), bad,
            service('s0'), ...slices('s0', [{ port: be.ports[0] }]), service('s1'), ...slices('s1', [{ port: be.ports[1] }])]);
        gw = await startKubeGateway(sim);
        assert.equal((await httpGet(port, '/g0')).body, 'backend 0');
        assert.equal((await httpGet(port, '/g1')).body, 'backend 1');
        assert.equal((await httpGet(port, '/bad')).status, 404);
        await waitFor(() => {
            const g = sim.get('Gateway', 'default', 'gw');
            const p = cond(g?.status?.conditions, 'Programmed');
            return p && p.status === 'True' && p.observedGeneration === g.metadata.generation;
        }, 20000 * SLOW, 'Gateway Programmed', gw);
        await waitFor(() => {
            const r = sim.get('HTTPRoute', 'default', 'good0');
            const p = r?.status?.parents?.find(x => x.controllerName === CONTROLLER);
            return p && cond(p.conditions, 'Accepted')?.status === 'True';
        }, 20000 * SLOW, 'good0 Accepted', gw);
        await waitFor(() => {
            const r = sim.get('HTTPRoute', 'default', 'bad');
            const p = r?.status?.parents?.find(x => x.controllerName === CONTROLLER);
            return p && cond(p.conditions, 'Accepted')?.status === 'False';
        }, 20000 * SLOW, 'bad not Accepted', gw);
        /* Fixing the bad route serves it. */
        sim.apply(route('bad', [{ path: '/bad', service: 's0' }]));
        await waitFor(async () => (await httpGet(port, '/bad')).status === 200, 10000 * SLOW, 'the fixed route', gw);
        await gw.stop();
    }));

let gw2;
test('kube: two replicas serve; only the Lease holder writes status; kill it and the other takes over', { timeout: 90000 * SLOW },
    withLogs(() => [gw, gw2], async () => {
        const sim = await startSim();
        const port = await freePort();
        const be = await taggedBackends(1);
        sim.apply([gatewayClass(), gateway('gw', port), route('r', [{ path: '/', service: 's' }]), service('s'),
            ...slices('s', [{ port: be.ports[0] }])]);
        gw = await startKubeGateway(sim);
        gw2 = await startKubeGateway(sim);
        const leader = async g => (await kubeMetric(g.admin, 'ssegate_kube_leader')) === 1;
        await waitFor(async () => (await leader(gw)) !== (await leader(gw2)), 30000 * SLOW, 'exactly one leader', gw);
        const [lead, other] = (await leader(gw)) ? [gw, gw2] : [gw2, gw];
        assert.equal((await httpGet(port, '/x')).body, 'backend 0');
        /* Only the leader's identity ever wrote: the other replica made no /status write. */
        await waitFor(() => sim.get('HTTPRoute', 'default', 'r')?.status?.parents?.length > 0, 20000 * SLOW, 'route status', lead);
        const otherWrites = await kubeMetric(other.admin, 'ssegate_kube_status_writes_total', { result: 'written' });
        assert.ok(!otherWrites, `the follower wrote ${otherWrites}`);
        await lead.stop('SIGKILL'); /* no release: the Lease must expire (15 s) */
        await waitFor(() => leader(other), 30000 * SLOW, 'the other replica leads (the Lease lasts 15 s)', other);
        sim.apply(route('r2', [{ path: '/two', service: 's' }]));
        await waitFor(() => sim.get('HTTPRoute', 'default', 'r2')?.status?.parents?.length > 0, 20000 * SLOW, 'the new leader writes', other);
        await other.stop('SIGKILL');
    }));
