// grpc-errors.test.mjs: the gateway's own answers to gRPC calls are gRPC statuses (Trailers-Only: :status 200,
// content-type application/grpc, grpc-status, grpc-message) as a real client (@grpc/grpc-js) reads them: no route
// UNIMPLEMENTED, an unreachable backend UNAVAILABLE, a timeout DEADLINE_EXCEEDED; gRPC over HTTP/1.1 and gRPC-Web
// are refused with a reason; the metrics count calls by grpc-status.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { before, test } from 'node:test';
import { Echo, Other, client, grpc, unary } from './lib/grpc.mjs';
import { grpcYaml } from './lib/grpcconf.mjs';
import { freePort, setup, startGateway, track, withLogs } from './lib/harness.mjs';

setup();

let gw, port, admin, deadPort, silent;

before(async () => {
    port = await freePort();
    admin = await freePort();
    deadPort = await freePort();
    /* A backend that accepts and never answers: the route timeout is what ends the call. */
    const socks = new Set();
    silent = net.createServer(s => {
        socks.add(s);
        s.on('error', () => {});
    });
    await new Promise(r => silent.listen(0, '127.0.0.1', r));
    track(() => {
        for (const s of socks) s.destroy();
        return new Promise(r => silent.close(r));
    });
    const be = p => `    backendRefs: [{name: 127.0.0.1, port: ${p}}]\n`;
    gw = await startGateway({
        yaml: grpcYaml({
            listeners: [{ name: 'h', port }],
            routes: [
                { name: 'dead', rules: `  - matches: [{method: {service: sgtest.Echo}}]\n${be(deadPort)}` },
                { name: 'slow', rules: `  - matches: [{method: {service: sgtest.Other, method: Unary}}]\n${be(silent.address().port)}` },
                { name: 'nobackend', rules: '  - matches: [{method: {service: sgtest.Other, method: ListThings}}]\n' },
            ],
            extra: `apiVersion: alb.networking.azure.io/v1
kind: RoutePolicy
metadata: {name: slow}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: GRPCRoute, name: slow}
  default: {timeouts: {routeTimeout: 400ms}}
`,
        }),
        args: ['--admin', `127.0.0.1:${admin}`],
        waitPorts: [port],
    });
});

/* A raw HTTP/2 request; resolves {headers, flags, body, trailers}. */
function raw(headers, body = null) {
    return new Promise((resolve, reject) => {
        const s = http2.connect(`http://127.0.0.1:${port}`);
        s.on('error', reject);
        const req = s.request(headers, { endStream: body === null });
        const out = { body: '' };
        req.on('response', (h, flags) => {
            out.headers = h;
            out.flags = flags;
        });
        req.on('trailers', t => (out.trailers = t));
        req.on('data', d => (out.body += d));
        req.on('end', () => {
            s.close();
            resolve(out);
        });
        req.on('error', reject);
        if (body !== null) req.end(body);
    });
}

test('no route: UNIMPLEMENTED as a Trailers-Only response', withLogs(() => [gw], async () => {
    const c = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const st = await new Promise(resolve => {
        const call = c.makeUnaryRequest('/nope.Missing/Call', x => x, x => x, Buffer.alloc(0), () => {});
        call.on('status', resolve);
    });
    c.close();
    assert.equal(st.code, grpc.status.UNIMPLEMENTED);
    assert.match(st.details, /ssegate: no route/);
    /* On the wire: one HEADERS frame with END_STREAM, :status 200 and the status fields. */
    const w = await raw({ ':method': 'POST', ':path': '/nope.Missing/Call', 'content-type': 'application/grpc', te: 'trailers' },
                        Buffer.from([0, 0, 0, 0, 0]));
    assert.equal(w.headers[':status'], 200);
    assert.equal(w.headers['content-type'], 'application/grpc');
    assert.equal(w.headers['grpc-status'], '12');
    assert.equal(w.headers['grpc-message'], 'ssegate: no route');
    assert.ok(w.flags & http2.constants.NGHTTP2_FLAG_END_STREAM, 'HEADERS carries END_STREAM');
    assert.equal(w.body, '');
    /* A request that is not gRPC still gets the plain 404. */
    const p = await raw({ ':method': 'GET', ':path': '/nope' });
    assert.equal(p.headers[':status'], 404);
}));

test('an unreachable backend: UNAVAILABLE; a rule with no backend: UNAVAILABLE', withLogs(() => [gw], async () => {
    const r = await unary(client(Echo, port), 'Unary', { text: 'x' });
    assert.equal(r.err?.code, grpc.status.UNAVAILABLE, String(r.err));
    assert.match(r.err.details, /ssegate: upstream connection refused/);
    const n = await unary(client(Other, port), 'ListThings', { text: 'x' });
    assert.equal(n.err?.code, grpc.status.UNAVAILABLE, String(n.err));
    assert.match(n.err.details, /ssegate: no backend available/);
}));

test('a route timeout: DEADLINE_EXCEEDED from the gateway (the client\'s deadline is far later)', withLogs(() => [gw], async () => {
    const r = await unary(client(Other, port), 'Unary', { text: 'x' }, { deadlineMs: 20000 });
    assert.equal(r.err?.code, grpc.status.DEADLINE_EXCEEDED, String(r.err));
    assert.match(r.err.details, /ssegate: upstream response timeout/);
}));

test('the client\'s grpc-timeout is the call\'s deadline at the gateway', withLogs(() => [gw], async () => {
    /* Shorter than the route's 400 ms: the gateway's deadline is the client's. Sent by hand, so the client has no
     * deadline of its own that could answer first. */
    const w = await raw({ ':method': 'POST', ':path': '/sgtest.Other/Unary', 'content-type': 'application/grpc',
                          te: 'trailers', 'grpc-timeout': '150m' }, Buffer.from([0, 0, 0, 0, 0]));
    assert.equal(w.headers['grpc-status'], '4');
}));

test('gRPC over HTTP/1.1 is refused with a reason; gRPC-Web is not translated', withLogs(() => [gw], async () => {
    const res = await new Promise((resolve, reject) => {
        const req = http.request({ port, host: '127.0.0.1', method: 'POST', path: '/sgtest.Echo/Unary',
                                   headers: { 'content-type': 'application/grpc', te: 'trailers' } }, r => {
            let b = '';
            r.on('data', d => (b += d));
            r.on('end', () => resolve({ status: r.statusCode, body: b }));
        });
        req.on('error', reject);
        req.end(Buffer.from([0, 0, 0, 0, 0]));
    });
    assert.equal(res.status, 505);
    assert.match(res.body, /gRPC needs HTTP\/2/);
    const web = await raw({ ':method': 'POST', ':path': '/sgtest.Echo/Unary', 'content-type': 'application/grpc-web+proto' },
                          Buffer.from([0, 0, 0, 0, 0]));
    assert.equal(web.headers[':status'], 415);
    assert.match(web.body, /gRPC-Web is not translated/);
}));

test('metrics count gRPC calls per route by grpc-status', withLogs(() => [gw], async () => {
    const m = await new Promise((resolve, reject) => {
        http.get({ port: admin, host: '127.0.0.1', path: '/metrics' }, r => {
            let b = '';
            r.on('data', d => (b += d));
            r.on('end', () => resolve(b));
        }).on('error', reject);
    });
    assert.match(m, /^ssegate_grpc_calls_total\{route="default\/dead",code="14"\} [1-9]/m);
    assert.match(m, /^ssegate_grpc_calls_total\{route="default\/nobackend",code="14"\} [1-9]/m);
    assert.match(m, /^ssegate_grpc_calls_total\{route="default\/slow",code="4"\} [1-9]/m);
    assert.match(m, /^ssegate_grpc_calls_active\{route="default\/dead"\} 0$/m);
    /* The access log says which status each call ended with (its HTTP status is 200 for all of them). */
    assert.match(gw.stdout, /path=\/nope\.Missing\/Call status=200 .* grpc=12 rid=/);
    assert.match(gw.stdout, /path=\/sgtest\.Echo\/Unary status=200 .* route=default\/dead .* grpc=14 rid=/);
}));
