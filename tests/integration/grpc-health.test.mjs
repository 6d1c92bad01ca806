// grpc-health.test.mjs: HealthCheckPolicy grpc probes call grpc.health.v1.Health/Check (a grpc-js server implementing
// the health service) over h2c: an endpoint whose service turns NOT_SERVING stops getting calls, and gets them again
// once it is SERVING; the policy's service name is what the probe asks about.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { Echo, client, grpcServer, unary } from './lib/grpc.mjs';
import { grpcYaml } from './lib/grpcconf.mjs';
import { SLOW, freePort, setup, sleep, startGateway, waitFor, withLogs } from './lib/harness.mjs';

setup();

let gw, port, b1, b2;

before(async () => {
    b1 = await grpcServer({ name: 'b1', health: new Map([['sgtest.Echo', 'SERVING']]) });
    /* The same port on another loopback address: one Service, two endpoints. */
    b2 = await grpcServer({ name: 'b2', host: '127.0.0.2', port: b1.port, health: new Map([['sgtest.Echo', 'SERVING']]) });
    port = await freePort();
    gw = await startGateway({
        yaml: grpcYaml({
            listeners: [{ name: 'h', port }],
            routes: [{ name: 'echo', rules: '  - backendRefs: [{name: echo, port: 50051}]\n' }],
            extra: `apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  ports: [{name: grpc, port: 50051, appProtocol: kubernetes.io/h2c}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: echo-1, labels: {kubernetes.io/service-name: echo}}
addressType: IPv4
endpoints: [{addresses: [127.0.0.1]}, {addresses: [127.0.0.2]}]
ports: [{name: grpc, port: ${b1.port}}]
---
apiVersion: alb.networking.azure.io/v1
kind: HealthCheckPolicy
metadata: {name: echo-health}
spec:
  targetRef: {group: "", kind: Service, name: echo}
  default:
    interval: 200ms
    timeout: 1s
    healthyThreshold: 1
    unhealthyThreshold: 1
    grpc: {service: sgtest.Echo}
`,
        }),
        waitPorts: [port],
    });
});

async function servers(n) {
    const c = client(Echo, port);
    const by = {};
    for (let i = 0; i < n; i++) {
        const r = await unary(c, 'Unary', { text: `h${i}` });
        assert.equal(r.err, null, String(r.err));
        by[r.res.server] = (by[r.res.server] || 0) + 1;
    }
    return by;
}

test('probes ask grpc.health.v1 about the policy\'s service; NOT_SERVING takes an endpoint out, SERVING brings it back',
    withLogs(() => [gw], async () => {
        await waitFor(() => (b1.calls['Health.Check'] || 0) > 0 && (b2.calls['Health.Check'] || 0) > 0, 5000 * SLOW,
                      'a probe to each endpoint');
        const both = await servers(20);
        assert.ok(both.b1 > 0 && both.b2 > 0, JSON.stringify(both));

        b2.health.set('sgtest.Echo', 'NOT_SERVING');
        await waitFor(() => /health: 127\.0\.0\.2:\d+ unhealthy: gRPC health: NOT_SERVING/.test(gw.stderr), 5000 * SLOW,
                      'the endpoint marked unhealthy');
        const one = await servers(20);
        assert.deepEqual(one, { b1: 20 });

        /* A service the backend does not know (NOT_FOUND) is as unhealthy as NOT_SERVING. */
        b2.health.delete('sgtest.Echo');
        await sleep(400 * SLOW);
        assert.deepEqual(await servers(10), { b1: 10 });

        b2.health.set('sgtest.Echo', 'SERVING');
        await waitFor(() => /health: 127\.0\.0\.2:\d+ healthy again/.test(gw.stderr), 5000 * SLOW, 'the endpoint back');
        const again = await servers(20);
        assert.ok(again.b1 > 0 && again.b2 > 0, JSON.stringify(again));
    }));
