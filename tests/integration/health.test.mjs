// health.test.mjs: HealthCheckPolicy active checks through the binary: an endpoint whose health path answers
// 500 is ejected (requests go to the other one) and readmitted when it answers 200; reloads keep the state.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { before, describe, test } from 'node:test';
import { SLOW, freePort, runGateway, setup, startGateway, track, withLogs, writeTemp } from './lib/harness.mjs';
import { httpGet, prodYaml, waitLog } from './lib/prod-util.mjs';

setup();

/* n servers answering "backend I" on every path but /healthz, which answers health[i]; probes are recorded. */
async function healthBackends(n) {
    const set = { ports: [], health: new Array(n).fill(200), probes: [], servers: [] };
    for (let i = 0; i < n; i++) {
        const server = http.createServer((req, res) => {
            req.resume();
            if (req.url === '/healthz') {
                set.probes.push({ i, headers: req.headers });
                res.writeHead(set.health[i], { 'content-type': 'text/plain', connection: 'close' });
                res.end('health\n');
                return;
            }
            res.writeHead(200, { 'content-type': 'text/plain' });
            res.end(`backend ${i}`);
        });
        await new Promise((resolve, reject) => {
            server.once('error', reject);
            server.listen(0, '127.0.0.1', resolve);
        });
        set.ports.push(server.address().port);
        set.servers.push(server);
    }
    track(() => Promise.all(set.servers.map(s => new Promise(r => (s.closeAllConnections(), s.close(() => r()))))));
    return set;
}

const HCP = (extra = '') => `apiVersion: alb.networking.azure.io/v1
kind: HealthCheckPolicy
metadata: {name: app-health}
spec:
  targetRef: {group: "", kind: Service, name: app}
  default:
    interval: 100ms
    timeout: 1s
    healthyThreshold: 1
    unhealthyThreshold: 2
    http:
      host: health.test
      path: /healthz
      match:
        statusCodes: [{start: 200, end: 299}]
${extra}`;

/* Which backends answer `count` requests. */
async function whoAnswers(port, count) {
    const seen = new Map();
    for (let i = 0; i < count; i++) {
        const r = await httpGet(port, '/x');
        assert.equal(r.status, 200, `request ${i}: ${r.status} ${r.body}`);
        seen.set(r.body, (seen.get(r.body) || 0) + 1);
    }
    return seen;
}

let gw, be, port, config;
const logs = () => [gw];

before(async () => {
    be = await healthBackends(2);
    port = await freePort();
    const yaml = prodYaml({
        port,
        routes: [{ name: 'app', path: '/', backends: [{ service: 'app' }] }],
        services: [{ name: 'app', endpoints: be.ports }],
        extra: HCP(),
    });
    config = writeTemp('health.yaml', yaml);
    gw = await startGateway({ config, args: ['--access-log', 'off', '--workers', '2'], waitPorts: [port] });
});

describe('active health checks', () => {
    test(
        'probes are GET path with the policy host, and both endpoints serve while healthy',
        withLogs(logs, async () => {
            const deadline = Date.now() + 3000 * SLOW;
            while (new Set(be.probes.map(p => p.i)).size < 2 && Date.now() < deadline) await new Promise(r => setTimeout(r, 20));
            assert.deepEqual([...new Set(be.probes.map(p => p.i))].sort(), [0, 1]);
            assert.equal(be.probes[0].headers.host, 'health.test');
            const seen = await whoAnswers(port, 40);
            assert.ok(seen.get('backend 0') > 0 && seen.get('backend 1') > 0, JSON.stringify([...seen]));
        }),
    );

    test(
        'an endpoint whose health path answers 500 is ejected, and readmitted when it answers 200',
        withLogs(logs, async () => {
            const from = gw.stderr.length;
            be.health[1] = 500;
            await waitLog(gw, new RegExp(`health: 127\\.0\\.0\\.1:${be.ports[1]} unhealthy: status 500 \\(2 checks failed\\)`), 5000 * SLOW, from);
            const down = await whoAnswers(port, 40);
            assert.deepEqual([...down], [['backend 0', 40]]);

            /* a reload with the same policy keeps the verdict: no request reaches the sick endpoint meanwhile */
            const reloadFrom = gw.stderr.length;
            gw.child.kill('SIGHUP');
            await waitLog(gw, /config reloaded/, 5000 * SLOW, reloadFrom);
            const still = await whoAnswers(port, 20);
            assert.deepEqual([...still], [['backend 0', 20]]);

            const upFrom = gw.stderr.length;
            be.health[1] = 200;
            await waitLog(gw, new RegExp(`health: 127\\.0\\.0\\.1:${be.ports[1]} healthy again`), 5000 * SLOW, upFrom);
            const up = await whoAnswers(port, 40);
            assert.ok(up.get('backend 1') > 0, JSON.stringify([...up]));
            assert.ok(up.get('backend 0') > 0, JSON.stringify([...up]));
        }),
    );

    test(
        'a reload that drops the HealthCheckPolicy trusts the endpoint again',
        withLogs(logs, async () => {
            const from = gw.stderr.length;
            be.health[0] = 503;
            await waitLog(gw, new RegExp(`health: 127\\.0\\.0\\.1:${be.ports[0]} unhealthy: status 503`), 5000 * SLOW, from);
            assert.deepEqual([...(await whoAnswers(port, 20))], [['backend 1', 20]]);
            const yaml = fs.readFileSync(config, 'utf8').replace(/---\napiVersion: alb.networking.azure.io\/v1\nkind: HealthCheckPolicy[^]*$/, '');
            assert.ok(!yaml.includes('HealthCheckPolicy'));
            fs.writeFileSync(config, yaml);
            const reloadFrom = gw.stderr.length;
            gw.child.kill('SIGHUP');
            await waitLog(gw, new RegExp(`health: 127\\.0\\.0\\.1:${be.ports[0]} no longer checked; considered healthy`), 5000 * SLOW, reloadFrom);
            const seen = await whoAnswers(port, 40);
            assert.ok(seen.get('backend 0') > 0 && seen.get('backend 1') > 0, JSON.stringify([...seen]));
        }),
    );
});

describe('HealthCheckPolicy validation', () => {
    test('--check reports schema errors with FILE:LINE:COL', async () => {
        const yaml = prodYaml({
            port: 1,
            routes: [{ name: 'app', path: '/', backends: [{ service: 'app' }] }],
            services: [{ name: 'app', endpoints: [1] }],
            extra: HCP('    grpc: {}\n').replace('interval: 100ms', 'interval: 0s'),
        });
        const file = writeTemp('bad-health.yaml', yaml);
        const r = await runGateway(['--check', '-c', file]);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /bad-health\.yaml:\d+:\d+: interval must be more than 0s/);
        /* grpc probes are served (grpc-health.test.mjs), but not beside http ones. */
        assert.match(r.stderr, /bad-health\.yaml:\d+:\d+: HealthCheckPolicy: http and grpc cannot both be given/);
    });
});
