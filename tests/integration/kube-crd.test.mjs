// kube-crd.test.mjs: a policy kind whose CRD is not installed is skipped and found once it is (the 30 s re-check);
// --dump-config prints what the watcher sees as YAML that file mode loads to the same routes.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { POLICY_CRDS_FALLBACK } from '../kube/kinds.mjs';
import { SLOW, freePort, runGateway, setup, startGateway, withLogs, writeTemp } from './lib/harness.mjs';
import { httpGet, openTimedSse, taggedBackends } from './lib/prod-util.mjs';
import { gateway, gatewayClass, kubeMetric, route, service, slices, startKubeGateway, startSim, waitFor } from './lib/kube-util.mjs';

setup();

let gw;

function routePolicy(name, routeName) {
    return {
        apiVersion: 'alb.networking.azure.io/v1',
        kind: 'RoutePolicy',
        metadata: { name, namespace: 'default' },
        spec: {
            targetRef: { group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: routeName },
            default: { sessionAffinity: { affinityType: 'managed-cookie' } },
        },
    };
}

test('kube: a policy CRD installed after start is found by the periodic re-check and its policy applied', { timeout: 90000 * SLOW },
    withLogs(() => [gw], async () => {
        const others = POLICY_CRDS_FALLBACK.map(c => c.spec.names.kind).filter(k => k !== 'RoutePolicy');
        const sim = await startSim({ policyCrds: others });
        const port = await freePort();
        const be = await taggedBackends(2);
        sim.apply([gatewayClass(), gateway('gw', port), route('r', [{ path: '/', service: 's' }]), service('s'),
            ...slices('s', [{ port: be.ports[0] }, { port: be.ports[1] }])]);
        gw = await startKubeGateway(sim);
        assert.equal(await kubeMetric(gw.admin, 'ssegate_kube_served', { kind: 'RoutePolicy' }), 0);
        assert.equal(await kubeMetric(gw.admin, 'ssegate_kube_synced', { kind: 'RoutePolicy' }), 1);
        const r0 = await httpGet(port, '/a');
        assert.equal(r0.status, 200);
        assert.equal(r0.headers['set-cookie'], undefined);
        sim.installCrd(POLICY_CRDS_FALLBACK.find(c => c.spec.names.kind === 'RoutePolicy'));
        sim.apply(routePolicy('affinity', 'r'));
        await waitFor(async () => (await httpGet(port, '/a')).headers['set-cookie'] !== undefined, 45000 * SLOW,
            'the RoutePolicy in force (a session cookie)', gw);
        assert.equal(await kubeMetric(gw.admin, 'ssegate_kube_served', { kind: 'RoutePolicy' }), 1);
        assert.equal(await kubeMetric(gw.admin, 'ssegate_kube_objects', { kind: 'RoutePolicy' }), 1);
        await gw.stop('SIGKILL');
    }));

test('kube: --dump-config output loads in file mode and serves the same routes', { timeout: 60000 * SLOW },
    withLogs(() => [gw], async () => {
        const sim = await startSim();
        const port = await freePort();
        const be = await taggedBackends(2);
        sim.apply([gatewayClass(), gateway('gw', port),
            route('a', [{ path: '/a', service: 'sa' }, { path: '/b', service: 'sb' }]),
            service('sa'), ...slices('sa', [{ port: be.ports[0] }]),
            service('sb'), ...slices('sb', [{ port: be.ports[1] }]),
            /* not ours: must not appear */
            gatewayClass('theirs', 'example.com/other'), gateway('other', await freePort(), { className: 'theirs' })]);
        const dump = await runGateway(['--kubeconfig', sim.kubeconfigPath, '--dump-config']);
        assert.equal(dump.code, 0, dump.stderr);
        assert.match(dump.stdout, /"kind": "HTTPRoute"/);
        assert.doesNotMatch(dump.stdout, /"name": "other"/);
        assert.doesNotMatch(dump.stdout, /managedFields|resourceVersion/);
        const file = writeTemp('dump.yaml', dump.stdout);
        const check = await runGateway(['--check', '-c', file]);
        assert.equal(check.code, 0, check.stderr + check.stdout);

        gw = await startKubeGateway(sim);
        const viaKube = [];
        for (const p of ['/a/1', '/b/2', '/c']) viaKube.push(await httpGet(port, p).then(r => `${r.status} ${r.body}`));
        await gw.stop('SIGKILL');
        gw = await startGateway({ config: file, args: ['--access-log', 'off'], waitPorts: [port] });
        const viaFile = [];
        for (const p of ['/a/1', '/b/2', '/c']) viaFile.push(await httpGet(port, p).then(r => `${r.status} ${r.body}`));
        assert.deepEqual(viaFile, viaKube);
        assert.deepEqual(viaKube.slice(0, 2), ['200 backend 0', '200 backend 1']);
        await gw.stop('SIGKILL');
        assert.ok(fs.existsSync(file));
    }));

test('kube: an SSEPolicy (ssegate.io/v1alpha1) from the API server is in force: heartbeats on an idle stream', { timeout: 60000 * SLOW },
    withLogs(() => [gw], async () => {
        const sim = await startSim();
        const port = await freePort();
        const be = await taggedBackends(1);
        sim.apply([gatewayClass(), gateway('gw', port), route('r', [{ path: '/', service: 's' }]), service('s'),
            ...slices('s', [{ port: be.ports[0] }])]);
        gw = await startKubeGateway(sim);
        const quiet = openTimedSse(port, '/sse/1');
        await waitFor(() => quiet.events.length >= 1, 10000 * SLOW, 'the first event', gw);
        sim.apply({
            apiVersion: 'ssegate.io/v1alpha1', kind: 'SSEPolicy', metadata: { name: 'hb', namespace: 'default' },
            spec: { targetRef: { group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'r' }, default: { heartbeatInterval: '200ms' } },
        });
        await waitFor(async () => (await kubeMetric(gw.admin, 'ssegate_kube_objects', { kind: 'SSEPolicy' })) === 1, 10000 * SLOW, 'the SSEPolicy stored', gw);
        await waitFor(async () => (await kubeMetric(gw.admin, 'ssegate_kube_builds_total', { result: 'ok' })) >= 2, 10000 * SLOW, 'a build with it', gw);
        /* A stream opened now gets the policy's heartbeats while its backend is silent. */
        const h = openTimedSse(port, '/sse/2');
        await waitFor(() => /^:/m.test(h.text), 10000 * SLOW, 'a heartbeat comment', gw);
        assert.equal(await kubeMetric(gw.admin, 'ssegate_kube_builds_total', { result: 'failed' }), 0);
        assert.doesNotMatch(quiet.text, /^:/m, 'the stream opened before keeps its generation (no heartbeats)');
        await gw.stop('SIGKILL');
    }));

test('kube: a policy kind our RBAC may not read (403) is left empty and asked again; a core kind is waited for', { timeout: 60000 * SLOW },
    withLogs(() => [gw], async () => {
        const sim = await startSim();
        const port = await freePort();
        const be = await taggedBackends(1);
        sim.apply([gatewayClass(), gateway('gw', port), route('r', [{ path: '/', service: 's' }]), service('s'),
            ...slices('s', [{ port: be.ports[0] }]), routePolicy('affinity', 'r')]);
        const forbidden = sim.faults.add({ resource: 'routepolicies', list: true, times: 1e9, action: 'status', code: 403 });
        gw = await startKubeGateway(sim);
        assert.equal((await httpGet(port, '/a')).status, 200);
        assert.equal(await kubeMetric(gw.admin, 'ssegate_kube_served', { kind: 'RoutePolicy' }), 0);
        assert.match(gw.stderr, /routepolicies: HTTP 403/);
        forbidden.remove();
        /* Allowed again: found by the re-check (or at once on SIGHUP, which relists every kind). */
        gw.child.kill('SIGHUP');
        await waitFor(async () => (await httpGet(port, '/a')).headers['set-cookie'] !== undefined, 20000 * SLOW,
            'the RoutePolicy in force once readable', gw);
        await gw.stop('SIGKILL');
    }));
