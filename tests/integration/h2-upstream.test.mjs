// h2-upstream.test.mjs: HTTP/2 to backends (issue 13, point 3). A Service port with appProtocol kubernetes.io/h2c is
// spoken to with HTTP/2 prior knowledge: SSE and plain responses reach HTTP/1.1 and HTTP/2 clients alike, many
// client streams share a few upstream sessions and stay within the backend's MAX_CONCURRENT_STREAMS, request bodies
// (sized and chunked) arrive whole, response trailers reach the proxy, and configs ssegate cannot honour are refused.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { before, test } from 'node:test';
import { h2Backend, h2Service } from './lib/h2backends.mjs';
import { freePort, gatewayYaml, runGateway, setup, startGateway, waitFor, writeTemp } from './lib/harness.mjs';
import { openSse, waitEvents } from './lib/sseclient.mjs';

setup();

function req(port, path, { method = 'GET', headers = {}, body, chunked = false } = {}) {
    return new Promise((resolve, reject) => {
        const h = { ...headers };
        if (body !== undefined && !chunked) h['content-length'] = Buffer.byteLength(body);
        const r = http.request({ host: '127.0.0.1', port, path, method, headers: h, agent: false }, res => {
            let b = '';
            res.setEncoding('utf8');
            res.on('data', d => (b += d));
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: b }));
        });
        r.on('error', reject);
        r.setTimeout(10000, () => r.destroy(new Error('timeout')));
        if (body !== undefined) {
            if (chunked) {
                for (let i = 0; i < body.length; i += 1000) r.write(body.slice(i, i + 1000));
            } else {
                r.write(body);
            }
        }
        r.end();
    });
}

function h2req(client, path, { method = 'GET', body } = {}) {
    return new Promise((resolve, reject) => {
        const s = client.request({ ':path': path, ':method': method });
        let b = '';
        let head;
        s.setEncoding('utf8');
        s.on('response', h => (head = h));
        s.on('data', d => (b += d));
        s.on('end', () => resolve({ status: head?.[':status'], headers: head, body: b }));
        s.on('error', reject);
        if (body !== undefined) s.end(body);
        else s.end();
    });
}

async function metrics(admin) {
    return (await req(admin, '/metrics')).body;
}
function metric(text, name) {
    const m = text.split('\n').find(l => l.startsWith(name + ' '));
    return m ? Number(m.slice(name.length + 1)) : NaN;
}

let be, low, port, admin, gw;

before(async () => {
    be = await h2Backend();
    low = await h2Backend({ maxConcurrentStreams: 4 });
    [port, admin] = await Promise.all([freePort(), freePort()]);
    const yaml = gatewayYaml({
        port,
        routes: [
            { name: 'low', path: '/low', backends: [{ name: 'low', port: 8080 }] },
            { name: 'main', path: '/', backends: [{ name: 'h2be', port: 8080 }] },
        ],
        extra: [h2Service('h2be', be.port), h2Service('low', low.port)].join('---\n'),
    });
    gw = await startGateway({ yaml, args: ['--admin', `127.0.0.1:${admin}`, '--workers', '1'], waitPorts: [port] });
});

test('SSE over an h2c upstream reaches an HTTP/1.1 client, events whole and in order', async () => {
    const h = openSse(port, '/sse/a?n=5&end=1');
    await h.head;
    assert.equal(h.status, 200);
    assert.match(h.headers['content-type'], /text\/event-stream/);
    await waitEvents(h, 5, 5000);
    const done = await h.done;
    assert.equal(done.complete, true);
    assert.deepEqual(h.events.map(e => e.id), ['1', '2', '3', '4', '5']);
    assert.equal(h.events[4].data, 'event 5 of /sse/a');
});

test('plain responses and SSE over an h2c upstream reach an HTTP/2 client', async () => {
    const c = http2.connect(`http://127.0.0.1:${port}`);
    try {
        const r = await h2req(c, '/plain/x?q=1');
        assert.equal(r.status, 200);
        const j = JSON.parse(r.body);
        assert.equal(j.path, '/plain/x?q=1');
        assert.equal(j.method, 'GET');
        assert.equal(j.headers[':authority'], `127.0.0.1:${port}`);
        assert.equal(j.headers[':scheme'], 'http');
        assert.ok(j.headers['x-forwarded-for']);
        assert.ok(j.headers['x-request-id']);
        const s = await h2req(c, '/sse/h2?n=3&end=1');
        assert.equal(s.status, 200);
        assert.equal(s.body.match(/^id: /gm).length, 3);
    } finally {
        c.close();
    }
});

test('request bodies reach the h2c backend whole: sized, chunked, and from an HTTP/2 client', async () => {
    const body = 'b'.repeat(200000) + 'end';
    const r1 = await req(port, '/echo/sized', { method: 'POST', body });
    assert.equal(r1.status, 200);
    assert.equal(JSON.parse(r1.body).length, body.length);
    assert.equal(JSON.parse(r1.body).body, body);
    const r2 = await req(port, '/echo/chunked', { method: 'POST', body, chunked: true });
    assert.equal(r2.status, 200);
    const j2 = JSON.parse(r2.body);
    assert.equal(j2.body, body);
    assert.equal(j2.headers['transfer-encoding'], undefined);
    const c = http2.connect(`http://127.0.0.1:${port}`);
    try {
        const r3 = await h2req(c, '/echo/h2', { method: 'PUT', body });
        assert.equal(JSON.parse(r3.body).body, body);
        assert.equal(JSON.parse(r3.body).method, 'PUT');
    } finally {
        c.close();
    }
});

test('connection-specific request fields are dropped; te: trailers is kept', async () => {
    const r = await req(port, '/hdrs', { headers: { te: 'trailers', 'keep-alive': 'timeout=5', 'x-keep': 'yes' } });
    const j = JSON.parse(r.body);
    assert.equal(j.headers.te, 'trailers');
    assert.equal(j.headers['keep-alive'], undefined);
    assert.equal(j.headers.connection, undefined);
    assert.equal(j.headers['x-keep'], 'yes');
});

test('response trailers reach the proxy', async () => {
    const before = metric(await metrics(admin), 'ssegate_upstream_trailers_total');
    const r = await req(port, '/trailers');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'body-before-trailers');
    const after = metric(await metrics(admin), 'ssegate_upstream_trailers_total');
    assert.equal(after - before, 1);
});

test('many concurrent client streams share one upstream session', async () => {
    const s0 = be.state.sessions;
    const hs = [];
    for (let i = 0; i < 60; i++) hs.push(openSse(port, `/sse/many${i}?n=2`));
    for (const h of hs) await waitEvents(h, 2, 10000);
    assert.equal(be.state.sessions - s0, 0, 'the session opened by the earlier tests carries them all');
    assert.ok(be.state.sessions <= 1);
    const m = await metrics(admin);
    assert.equal(metric(m, 'ssegate_upstream_h2_sessions'), 1);
    assert.ok(metric(m, 'ssegate_upstream_h2_streams') >= 60);
    for (const h of hs) h.close();
    await waitFor(async () => metric(await metrics(admin), 'ssegate_upstream_h2_streams') === 0, 5000, 'streams to end');
});

test("a backend's low MAX_CONCURRENT_STREAMS is respected: more sessions, never more streams on one", async () => {
    const hs = [];
    for (let i = 0; i < 14; i++) hs.push(openSse(port, `/low/sse${i}?n=1`));
    for (const h of hs) await waitEvents(h, 1, 10000);
    assert.ok(low.state.maxOpen <= 4, `a session had ${low.state.maxOpen} streams open`);
    assert.ok(low.state.sessions >= 4, `${low.state.sessions} sessions for 14 streams at 4 each`);
    assert.ok(low.state.sessions <= 5);
    for (const h of hs) h.close();
});

test('appProtocol values ssegate cannot honour are refused at load', async () => {
    const mk = ap => writeTemp('bad.yaml', gatewayYaml({
        port: 1,
        routes: [{ name: 'r', path: '/', backends: [{ name: 'x', port: 8080 }] }],
        extra: h2Service('x', 9, ap),
    }));
    let r = await runGateway(['--check', '-c', mk('kubernetes.io/grpc-web')]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /appProtocol kubernetes.io\/grpc-web is not supported/);
    r = await runGateway(['--check', '-c', mk('https')]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /appProtocol https is TLS, but no BackendTLSPolicy applies/);
    r = await runGateway(['--check', '-c', mk('kubernetes.io/h2c')]);
    assert.equal(r.code, 0, r.stderr);
    r = await runGateway(['--check', '-c', mk('kubernetes.io/ws')]);
    assert.equal(r.code, 0, r.stderr);
});

test('HealthCheckPolicy probes an h2c port in HTTP/2: a failing endpoint is left out', async () => {
    const mk = code => h2Backend({
        onStream(stream, headers, url) {
            if (url.pathname !== '/healthz') return false;
            stream.respond({ ':status': code });
            stream.end();
            return true;
        },
    });
    const [sick, well] = await Promise.all([mk(503), mk(200)]);
    const p = await freePort();
    const slice = (n, bp) => `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: hc-${n}
  labels: {kubernetes.io/service-name: hc}
addressType: IPv4
endpoints: [{addresses: [127.0.0.1]}]
ports: [{name: web, port: ${bp}}]
`;
    const yaml = gatewayYaml({
        port: p,
        routes: [{ name: 'hc', path: '/', backends: [{ name: 'hc', port: 8080 }] }],
        extra: [`apiVersion: v1
kind: Service
metadata: {name: hc}
spec:
  ports: [{name: web, port: 8080, appProtocol: kubernetes.io/h2c}]
`, slice(1, sick.port), slice(2, well.port), `apiVersion: alb.networking.azure.io/v1
kind: HealthCheckPolicy
metadata: {name: hc}
spec:
  targetRef: {group: "", kind: Service, name: hc}
  default:
    interval: 100ms
    timeout: 1s
    healthyThreshold: 1
    unhealthyThreshold: 1
    http: {host: health.test, path: /healthz}
`].join('---\n'),
    });
    const g = await startGateway({ yaml, args: ['--workers', '1'], waitPorts: [p] });
    await waitFor(() => /health: 127\.0\.0\.1:\d+ unhealthy: status 503/.test(g.stderr), 5000, 'the probe to fail');
    assert.ok(sick.state.paths.includes('/healthz'), 'the probe came as an HTTP/2 stream');
    assert.ok(well.state.paths.includes('/healthz'));
    const seen = new Set();
    for (let i = 0; i < 10; i++) {
        const r = await req(p, '/who');
        assert.equal(r.status, 200);
        seen.add(JSON.parse(r.body).path);
    }
    assert.equal(sick.state.paths.filter(x => x === '/who').length, 0, 'the unhealthy endpoint got no request');
    assert.equal(well.state.paths.filter(x => x === '/who').length, 10);
});

test('an h2c port whose backend speaks only HTTP/1.1: 502, not a hang', async () => {
    const srv = http.createServer((q, s) => s.end('h1'));
    await new Promise(r => srv.listen(0, '127.0.0.1', r));
    const p = await freePort();
    const yaml = gatewayYaml({
        port: p,
        routes: [{ name: 'x', path: '/', backends: [{ name: 'h1be', port: 8080 }] }],
        extra: h2Service('h1be', srv.address().port),
    });
    const g = await startGateway({ yaml, args: ['--workers', '1'], waitPorts: [p] });
    try {
        const rs = await Promise.all([req(p, '/a'), req(p, '/b'), req(p, '/c')]);
        for (const r of rs) assert.equal(r.status, 502, r.body);
        assert.match(g.stderr, /upstream 127\.0\.0\.1:\d+: invalid response \(the backend (does not speak HTTP\/2|closed the connection before its SETTINGS)/);
    } finally {
        srv.closeAllConnections();
        srv.close();
    }
});
