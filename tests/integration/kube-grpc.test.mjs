// kube-grpc.test.mjs: a GRPCRoute from the API server (kubesim) is served in kube mode: a grpc-js client through
// ssegate (h2c) reaches a grpc-js server behind a Service with appProtocol kubernetes.io/h2c; the route's
// status.parents says Accepted and ResolvedRefs for our controller; the listener's supportedKinds lists both route
// kinds; a GRPCRoute removed stops being served.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Echo, client, grpcServer, unary } from './lib/grpc.mjs';
import { SLOW, freePort, setup, withLogs } from './lib/harness.mjs';
import { CONTROLLER, gateway, gatewayClass, slices, startKubeGateway, startSim, waitFor } from './lib/kube-util.mjs';

setup();

const GW = 'gateway.networking.k8s.io';

function grpcRoute(name, service) {
    return {
        apiVersion: `${GW}/v1`,
        kind: 'GRPCRoute',
        metadata: { name, namespace: 'default' },
        spec: {
            parentRefs: [{ name: 'gw' }],
            rules: [{ matches: [{ method: { service: 'sgtest.Echo' } }], backendRefs: [{ name: service, port: 80 }] }],
        },
    };
}

let gw;
test('kube: a GRPCRoute is served, and its status says Accepted', { timeout: 60000 * SLOW },
    withLogs(() => [gw], async () => {
        const b = await grpcServer({ name: 'kube-b1' });
        const sim = await startSim();
        const port = await freePort();
        sim.apply([gatewayClass(), gateway('gw', port), grpcRoute('echo', 'g'),
            { apiVersion: 'v1', kind: 'Service', metadata: { name: 'g', namespace: 'default' },
                spec: { ports: [{ name: 'http', port: 80, appProtocol: 'kubernetes.io/h2c' }] } },
            ...slices('g', [{ port: b.port }])]);
        gw = await startKubeGateway(sim);
        const c = client(Echo, port);
        const r = await waitFor(async () => {
            const x = await unary(c, 'Unary', { text: 'hi', n: 1 }, { deadlineMs: 2000 });
            return x.err ? null : x;
        }, 15000 * SLOW, 'a unary call through the GRPCRoute', gw);
        assert.equal(r.res.server, 'kube-b1');
        assert.equal(r.res.n, 2);

        const ours = o => (o?.status?.parents || []).find(p => p.controllerName === CONTROLLER);
        const p = await waitFor(() => ours(sim.get('GRPCRoute', 'default', 'echo')), 15000 * SLOW, 'status of the GRPCRoute', gw);
        assert.equal(p.parentRef.name, 'gw');
        const cond = t => p.conditions.find(x => x.type === t);
        assert.equal(cond('Accepted')?.status, 'True', JSON.stringify(p));
        assert.equal(cond('ResolvedRefs')?.status, 'True', JSON.stringify(p));

        const g = await waitFor(() => sim.get('Gateway', 'default', 'gw')?.status?.listeners?.[0], 15000 * SLOW, 'listener status', gw);
        assert.deepEqual(g.supportedKinds.map(k => k.kind).sort(), ['GRPCRoute', 'HTTPRoute']);
        await waitFor(() => sim.get('Gateway', 'default', 'gw')?.status?.listeners?.[0]?.attachedRoutes === 1, 15000 * SLOW,
            'the GRPCRoute counted in attachedRoutes', gw);

        sim.delete('GRPCRoute', 'default', 'echo');
        await waitFor(async () => {
            const x = await unary(c, 'Unary', { text: 'gone', n: 1 }, { deadlineMs: 2000 });
            return x.err ? x : null;
        }, 15000 * SLOW, 'the deleted GRPCRoute no longer served', gw);
        await gw.stop();
    }));
