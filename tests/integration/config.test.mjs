// config.test.mjs: config validation: --check, FILE:LINE:COL messages, exit codes, unknown kinds.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { echoBackend } from './lib/backends.mjs';
import { freePort, gatewayYaml, runGateway, setup, startGateway, withLogs, writeTemp } from './lib/harness.mjs';
import { request } from './lib/rawhttp.mjs';

setup();
let be;
before(async () => {
    be = await echoBackend();
});

const good = port => gatewayYaml({ port, routes: [{ name: 'r', path: '/', backends: [{ name: '127.0.0.1', port: be.port }] }] });

/* 1-based number of the first line containing marker. */
const lineOf = (yaml, marker) => yaml.split('\n').findIndex(l => l.includes(marker)) + 1;

/* Problem lines of the form FILE:LINE:COL: message for this file. */
function problems(stderr, file) {
    const esc = file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    return [...stderr.matchAll(new RegExp(`^${esc}:(\\d+):(\\d+): (.+)$`, 'gm'))].map(m => ({
        line: Number(m[1]),
        col: Number(m[2]),
        msg: m[3],
    }));
}

test('--check on a valid config exits 0', async () => {
    const f = writeTemp('ok.yaml', good(await freePort()));
    const r = await runGateway(['--check', '-c', f]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(problems(r.stderr, f).filter(p => !p.msg.startsWith('warning')).length, 0, r.stderr);
});

test('invalid YAML syntax: exit 1 with FILE:LINE:COL, with and without --check', async () => {
    const yaml = good(await freePort()).replace('listeners:\n', 'listeners: [\n');
    const f = writeTemp('syntax.yaml', yaml);
    for (const args of [['--check', '-c', f], ['-c', f]]) {
        const r = await runGateway(args);
        assert.equal(r.code, 1, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
        const ps = problems(r.stderr, f);
        assert.ok(ps.length >= 1, `no FILE:LINE:COL line in: ${r.stderr}`);
        assert.ok(ps[0].line >= 1 && ps[0].col >= 1);
    }
});

const badFields = [
    { what: 'listener port not a number', edit: y => y.replace(/port: (\d+)}/, 'port: notaport}'), marker: 'notaport' },
    { what: 'listener port out of range', edit: y => y.replace(/port: (\d+)}/, 'port: 70000}'), marker: '70000' },
    { what: 'unknown path match type', edit: y => y.replace('type: PathPrefix', 'type: Bogus'), marker: 'Bogus' },
    { what: 'path value not starting with /', edit: y => y.replace('value: /}', 'value: nope}'), marker: 'nope' },
    { what: 'backendRef port out of range', edit: y => y.replace(/(backendRefs: \[\{name: 127\.0\.0\.1, port: )\d+/, '$199999'), marker: '99999' },
    { what: 'bad listener protocol', edit: y => y.replace('protocol: HTTP', 'protocol: GOPHER'), marker: 'GOPHER' },
    {
        what: 'bad duration in HTTPRoute timeouts.request',
        edit: y => y.replace(/(backendRefs: .*\])/, '$1\n    timeouts: {request: 2parsecs}'),
        marker: '2parsecs',
    },
    {
        what: 'bad duration in a RoutePolicy routeTimeout',
        edit: y =>
            y +
            '---\napiVersion: alb.networking.azure.io/v1\nkind: RoutePolicy\nmetadata: {name: p}\nspec:\n' +
            '  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}\n  default: {timeouts: {routeTimeout: soon}}\n',
        marker: 'soon',
    },
];

for (const c of badFields) {
    test(`bad field (${c.what}): exit 1, FILE:LINE:COL on the offending line`, async () => {
        const yaml = c.edit(good(await freePort()));
        assert.ok(yaml.includes(c.marker), 'test setup: edit did not apply');
        const f = writeTemp('bad.yaml', yaml);
        const want = lineOf(yaml, c.marker);
        for (const args of [['--check', '-c', f], ['-c', f]]) {
            const r = await runGateway(args);
            assert.equal(r.code, 1, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
            const ps = problems(r.stderr, f).filter(p => !p.msg.startsWith('warning'));
            assert.ok(ps.length >= 1, `no FILE:LINE:COL line in: ${r.stderr}`);
            assert.ok(ps.some(p => p.line === want && p.col >= 1), `want line ${want}, got ${JSON.stringify(ps)}`);
        }
    });
}

test('a missing config file: exit 1 with a message naming it', async () => {
    const r = await runGateway(['-c', '/nonexistent/ssegate.yaml']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\/nonexistent\/ssegate\.yaml/);
});

test('bad command-line options: non-zero exit', async () => {
    const f = writeTemp('ok2.yaml', good(await freePort()));
    for (const args of [['-c', f, '--workers', 'many'], ['-c', f, '--header-timeout', 'xyz'], ['-c', f, '--no-such-flag']]) {
        const r = await runGateway(args);
        assert.notEqual(r.code, 0, `${args.join(' ')} exited 0`);
    }
});

test(
    'an unknown kind gives a warning with its position and the gateway still runs',
    withLogs([], async () => {
        const port = await freePort();
        const extra = 'apiVersion: example.com/v1\nkind: Frobnicator\nmetadata: {name: f}\nspec: {x: 1}\n';
        const yaml = gatewayYaml({ port, routes: [{ name: 'r', path: '/', backends: [{ name: '127.0.0.1', port: be.port }] }], extra });
        const f = writeTemp('unknown.yaml', yaml);
        const chk = await runGateway(['--check', '-c', f]);
        assert.equal(chk.code, 0, chk.stderr);
        const w = problems(chk.stderr, f).filter(p => /warning/i.test(p.msg));
        assert.ok(w.length >= 1, `no warning line in: ${chk.stderr}`);
        assert.ok(w.some(p => p.line >= lineOf(yaml, 'Frobnicator') - 2 && p.line <= lineOf(yaml, 'Frobnicator')), JSON.stringify(w));
        const gw = await startGateway({ config: f, args: ['--access-log', 'off'], waitPorts: [port] });
        try {
            const r = await request(port, { path: '/still/runs' });
            assert.equal(r.status, 200);
            assert.match(gw.stderr, /warning/i);
        } catch (e) {
            e.message += '\n' + gw.logs();
            throw e;
        }
        await gw.stop();
    }),
);

test(
    'Service + EndpointSlice backends resolve like in Kubernetes',
    withLogs([], async () => {
        const port = await freePort();
        const extra = `apiVersion: v1
kind: Service
metadata: {name: echo-svc, namespace: default}
spec:
  ports: [{name: http, port: 80, targetPort: ${be.port}, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: echo-svc-abc
  namespace: default
  labels: {kubernetes.io/service-name: echo-svc}
addressType: IPv4
ports: [{name: http, port: ${be.port}, protocol: TCP}]
endpoints:
- addresses: [127.0.0.1]
  conditions: {ready: true}
`;
        const yaml = gatewayYaml({ port, routes: [{ name: 'svc', path: '/', backends: [{ name: 'echo-svc', port: 80 }] }], extra });
        const gw = await startGateway({ yaml, args: ['--access-log', 'off'], waitPorts: [port] });
        try {
            const from = be.requests.length;
            const r = await request(port, { path: '/via/service' });
            assert.equal(r.status, 200);
            assert.equal(be.requests.length, from + 1);
            assert.equal(JSON.parse(r.body).path, '/via/service');
        } catch (e) {
            e.message += '\n' + gw.logs();
            throw e;
        }
        await gw.stop();
    }),
);
