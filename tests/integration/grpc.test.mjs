// grpc.test.mjs: gRPC through ssegate with a real client and server (@grpc/grpc-js): unary, server-streaming,
// client-streaming and bidirectional calls over h2c and over TLS h2 (a certificate made at test time), to h2c and to
// h2-over-TLS backends; request metadata, response headers and custom trailing metadata; GRPCRoute matching on
// service and method (Exact, RegularExpression) and on headers; the header filters; weighted backendRefs.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { before, test } from 'node:test';
import { makeCert, secretYaml } from '../h2probe/tlsconf.mjs';
import { Echo, Other, client, grpc, grpcServer, serverStream, unary } from './lib/grpc.mjs';
import { grpcYaml } from './lib/grpcconf.mjs';
import { SLOW, freePort, setup, startGateway, waitFor, withLogs } from './lib/harness.mjs';

setup();

let gw, port, tlsPort, cert, b1, b2, b3, bt, beCert;
const transports = () => [
    ['h2c', {}],
    ['TLS h2', { get tls() { return { ca: cert.crt, servername: 'grpc.test' }; } }],
];

before(async () => {
    cert = makeCert('grpc.test');
    beCert = makeCert('grpc-backend.test');
    b1 = await grpcServer({ name: 'b1' });
    b2 = await grpcServer({ name: 'b2' });
    b3 = await grpcServer({ name: 'b3' });
    bt = await grpcServer({ name: 'tls-backend', tls: { cert: beCert.crt, key: beCert.key } });
    port = await freePort();
    tlsPort = await freePort();
    const be = (b, w) => `{name: 127.0.0.1, port: ${b.port}${w === undefined ? '' : `, weight: ${w}`}}`;
    gw = await startGateway({
        yaml: grpcYaml({
            listeners: [{ name: 'h', port }, { name: 's', port: tlsPort, protocol: 'HTTPS', cert: 'cert' }],
            routes: [
                { name: 'echo', rules: `  - matches: [{method: {service: sgtest.Echo}}]\n    backendRefs: [${be(b1)}]\n` },
                {
                    name: 'other',
                    rules: `  - matches: [{method: {service: sgtest.Other, method: Unary}, headers: [{name: x-canary, value: "yes"}]}]
    backendRefs: [${be(b3)}]
  - matches: [{method: {type: RegularExpression, service: 'sgtest\\.Oth.*', method: 'List[A-Z].*'}}]
    backendRefs: [${be(b2)}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: x-set, value: by-gateway}]
        add: [{name: x-added, value: one}]
        remove: [x-secret]
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        add: [{name: x-resp, value: from-gateway}]
  - matches: [{method: {method: Unary}}]
    backendRefs: [${be(b1, 1)}, ${be(b2, 1)}, ${be(b3, 0)}]
`,
                },
                { name: 'tlsbe', hostnames: ['secure.example'], rules: `  - backendRefs: [{name: tlsgrpc, port: 443}]\n` },
            ],
            extra: `${secretYaml('cert', cert)}---
apiVersion: v1
kind: Service
metadata: {name: tlsgrpc}
spec:
  ports: [{name: grpcs, port: 443, appProtocol: https}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: tlsgrpc-1, labels: {kubernetes.io/service-name: tlsgrpc}}
addressType: IPv4
endpoints: [{addresses: [127.0.0.1]}]
ports: [{name: grpcs, port: ${bt.port}}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: be-ca}
data:
  ca.crt: |
${beCert.crt.trimEnd().split('\n').map(l => '    ' + l).join('\n')}
---
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {name: tlsgrpc}
spec:
  targetRefs: [{group: "", kind: Service, name: tlsgrpc}]
  validation:
    hostname: grpc-backend.test
    caCertificateRefs: [{group: "", kind: ConfigMap, name: be-ca}]
`,
        }),
        args: ['--client-rate', '0'],
        waitPorts: [port, tlsPort],
    });
});

for (const [name, t] of transports()) {
    test(`${name}: unary with request metadata, response headers and custom trailing metadata`, withLogs(() => [gw], async () => {
        const c = client(Echo, t.tls ? tlsPort : port, t);
        const md = new grpc.Metadata();
        md.set('x-hello', 'world');
        md.set('x-blob-bin', Buffer.from([1, 2, 3]));
        const r = await unary(c, 'Unary', { text: 'hi', n: 41 }, { metadata: md });
        assert.equal(r.err, null, String(r.err));
        assert.equal(r.res.n, 42);
        assert.equal(r.res.server, 'b1');
        const seen = JSON.parse(r.res.meta);
        assert.equal(seen['x-hello'], 'world');
        assert.equal(seen['x-forwarded-proto'], t.tls ? 'https' : 'http');
        assert.equal(r.headers['x-server'], 'b1');
        assert.equal(r.trailers['x-trailer'], 't-hi');
        assert.deepEqual([...r.trailers['x-bin-bin']], [0, 1, 2, 255]);
        /* A status of the backend's, with its message and trailers, reaches the client unchanged. */
        const f = await unary(c, 'Unary', { text: 'fail' });
        assert.equal(f.err?.code, grpc.status.FAILED_PRECONDITION);
        assert.equal(f.err.details, 'failing as asked');
        assert.equal(f.trailers['x-why'], 'asked-to-fail');
    }));

    test(`${name}: server streaming, in order, ending with the backend's trailers`, withLogs(() => [gw], async () => {
        const c = client(Echo, t.tls ? tlsPort : port, t);
        const s = serverStream(c, { count: 500, text: 'tick', size: 1000 });
        const out = await s.done;
        assert.equal(out.status.code, grpc.status.OK, out.status.details);
        assert.equal(out.msgs.length, 500);
        out.msgs.forEach((m, i) => assert.equal(m.n, i + 1));
        assert.equal(out.status.metadata.get('x-sent')[0], '500');
    }));

    test(`${name}: client streaming`, withLogs(() => [gw], async () => {
        const c = client(Echo, t.tls ? tlsPort : port, t);
        const res = await new Promise((resolve, reject) => {
            const call = c.ClientStream((err, r) => (err ? reject(err) : resolve(r)));
            for (let i = 1; i <= 20; i++) call.write({ text: `m${i}`, n: i });
            call.end();
        });
        assert.equal(res.n, 210);
        assert.equal(res.text.split(',').length, 20);
    }));

    test(`${name}: bidirectional, each reply before the next request (no wait for the request's end)`, withLogs(() => [gw], async () => {
        const c = client(Echo, t.tls ? tlsPort : port, t);
        const call = c.Bidi();
        const replies = [];
        let wake = null;
        call.on('data', m => {
            replies.push(m);
            wake?.();
        });
        const status = new Promise(r => call.on('status', r));
        for (let i = 1; i <= 10; i++) {
            const got = new Promise(r => (wake = r));
            call.write({ text: `q${i}`, n: i });
            /* The next message is written only once this one's echo came back through the gateway. */
            await got;
            assert.equal(replies.at(-1).text, `echo:q${i}`);
        }
        call.end();
        const st = await status;
        assert.equal(st.code, grpc.status.OK);
        assert.equal(st.metadata.get('x-bidi')[0], 'done');
        assert.equal(replies.length, 10);
    }));
}

test('back-pressure: a client that stops reading stops the backend\'s writes; nothing is lost when it reads again',
    withLogs(() => [gw], async () => {
        const c = client(Echo, port);
        const call = c.ServerStream({ count: 0, size: 1000, text: 'p' }, new grpc.Metadata(), { deadline: Date.now() + 60000 });
        const got = [];
        let paused = false;
        call.on('data', m => {
            got.push(m.n);
            if (!paused && got.length === 10) {
                paused = true;
                call.pause();
            }
        });
        call.on('error', () => {});
        await waitFor(() => paused, 5000 * SLOW, 'the first messages');
        const sent0 = b1.sent;
        /* The backend writes until every buffer on the way is full, then waits (grpc-js: write() false). */
        let last = -1;
        await waitFor(async () => {
            const now = b1.sent;
            const still = now === last;
            last = now;
            await new Promise(r => setTimeout(r, 300));
            return still && b1.sent === now;
        }, 20000 * SLOW, 'the backend held back');
        const held = b1.sent - sent0;
        /* About a megabyte in flight (windows, the gateway's 256 KiB watermark, socket buffers), not an endless stream. */
        assert.ok(held < 20000, `${held} messages of 1000 bytes written while the client read none`);
        call.resume();
        await waitFor(() => got.length > 10 + held, 20000 * SLOW, 'the held messages delivered');
        got.forEach((n, i) => assert.equal(n, i + 1));
        call.cancel();
    }));

test('back-pressure on requests: a backend that stops reading holds the client back, not the gateway\'s memory',
    withLogs(() => [gw], async () => {
        const rss = () => Number(fs.readFileSync(`/proc/${gw.child.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
        const c = client(Echo, port);
        const before = rss();
        const r0 = b1.received;
        let res;
        const done = new Promise((resolve, reject) => {
            const call = c.ClientStream((err, r) => (err ? reject(err) : resolve((res = r))));
            const big = 'hold' + 'x'.repeat(16 * 1024);
            /* 48 MiB offered; grpc-js keeps what the connection does not take in the client. */
            for (let i = 1; i <= 3000; i++) call.write({ text: big, n: 1 });
            call.end();
        });
        let last = -1;
        await waitFor(async () => {
            const now = b1.received;
            const still = now === last && b1.release !== null;
            last = now;
            await new Promise(r => setTimeout(r, 300));
            return still && b1.received === now;
        }, 20000 * SLOW, 'the backend holding');
        const held = b1.received - r0;
        const grew = rss() - before;
        /* Flow-control windows and the gateway's watermark bound what waits in between: a few MiB, not 48. */
        assert.ok(held < 3000, `the backend got all ${held} messages while paused`);
        assert.ok(grew < 16 * 1024, `the gateway grew by ${grew} KiB while the backend did not read`);
        b1.release();
        b1.release = null;
        await done;
        assert.equal(res.n, 3000);
    }));

test('GRPCRoute matching: service Exact, method RegularExpression, headers, method-only', withLogs(() => [gw], async () => {
    const o = client(Other, port);
    /* Header match on Other.Unary -> b3 (weight 0 elsewhere, so only this rule can reach it). */
    const md = new grpc.Metadata();
    md.set('x-canary', 'yes');
    const canary = await unary(o, 'Unary', { text: 'c' }, { metadata: md });
    assert.equal(canary.res?.server, 'b3', String(canary.err));
    /* RegularExpression on service and method -> b2. */
    const list = await unary(o, 'ListThings', { text: 'l' });
    assert.equal(list.res?.server, 'b2', String(list.err));
    assert.equal(list.res.text, 'list:l');
    /* Exact service -> b1 for every method of Echo. */
    const e = await unary(client(Echo, port), 'Unary', { text: 'e' });
    assert.equal(e.res?.server, 'b1');
}));

test('header filters on a GRPCRoute rule: request set/add/remove, response add', withLogs(() => [gw], async () => {
    const md = new grpc.Metadata();
    md.set('x-set', 'from-client');
    md.set('x-secret', 'hidden');
    md.set('x-keep', 'kept');
    const r = await unary(client(Other, port), 'ListThings', { text: 'f' }, { metadata: md });
    assert.equal(r.err, null, String(r.err));
    const seen = JSON.parse(r.res.meta);
    assert.equal(seen['x-set'], 'by-gateway');
    assert.equal(seen['x-added'], 'one');
    assert.equal(seen['x-keep'], 'kept');
    assert.equal(seen['x-secret'], undefined);
    assert.equal(r.headers['x-resp'], 'from-gateway');
}));

test('weighted backendRefs: both weight-1 backends serve, the weight-0 one never', withLogs(() => [gw], async () => {
    const o = client(Other, port);
    const by = {};
    for (let i = 0; i < 60; i++) {
        const r = await unary(o, 'Unary', { text: `w${i}` });
        assert.equal(r.err, null, String(r.err));
        by[r.res.server] = (by[r.res.server] || 0) + 1;
    }
    assert.ok(by.b1 > 0 && by.b2 > 0, JSON.stringify(by));
    assert.equal(by.b3, undefined, JSON.stringify(by));
}));

test('an h2-over-TLS backend (BackendTLSPolicy, appProtocol https): all four call types', withLogs(() => [gw], async () => {
    const c = client(Echo, port, { authority: 'secure.example' });
    const u = await unary(c, 'Unary', { text: 'sec', n: 1 });
    assert.equal(u.res?.server, 'tls-backend', String(u.err));
    assert.equal(u.trailers['x-trailer'], 't-sec');
    const s = await serverStream(c, { count: 50, text: 's' }).done;
    assert.equal(s.msgs.length, 50);
    assert.equal(s.status.code, grpc.status.OK);
    const cs = await new Promise((resolve, reject) => {
        const call = c.ClientStream((err, r) => (err ? reject(err) : resolve(r)));
        call.write({ n: 2 });
        call.write({ n: 3 });
        call.end();
    });
    assert.equal(cs.n, 5);
    const call = c.Bidi();
    const got = [];
    call.on('data', m => got.push(m.text));
    call.write({ text: 'a' });
    await waitFor(() => got.length === 1, 5000 * SLOW, 'the first bidi reply');
    call.write({ text: 'b' });
    call.end();
    await new Promise(r => call.on('status', r));
    assert.deepEqual(got, ['echo:a', 'echo:b']);
}));
