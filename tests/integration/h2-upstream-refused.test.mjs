// h2-upstream-refused.test.mjs: requests WITH A BODY that an HTTP/2 backend refuses unprocessed (RFC 9113 section 8.7:
// RST_STREAM REFUSED_STREAM, or a stream above a GOAWAY's last stream id) after the body reached it are sent again
// whole, on the same or a new session, and the client gets the retry's answer: a POST (with a length, and chunked) and
// a gRPC unary call (@grpc/grpc-js through a real grpc-js server); a backend that goes away (GOAWAY, then no new
// connections) has the POST taken by another endpoint. A body larger than --h2-upstream-replay cannot be
// sent again: the client gets a 503 that says so (gRPC: UNAVAILABLE, 14), never a hang.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { before, test } from 'node:test';
import { Echo, client, grpcServer, unary } from './lib/grpc.mjs';
import { grpcYaml, h2cService } from './lib/grpcconf.mjs';
import { h2Backend, h2Service } from './lib/h2backends.mjs';
import { freePort, setup, startGateway, track, waitFor, withLogs } from './lib/harness.mjs';
import { scrape } from './lib/prod-util.mjs';

setup();

const { NGHTTP2_REFUSED_STREAM, NGHTTP2_NO_ERROR } = http2.constants;

/* How the backends turn a stream away once its whole request body has arrived: path (or gRPC :path) -> a list of
 * 'refuse' | 'goaway', one taken per stream. */
const plan = new Map();
const seen = { refused: 0, bodies: [] };

/* Reads the stream's body to its end, then refuses it as planned. Returns true when it did. */
function turnAway(stream, path, onLeave = null) {
    const todo = plan.get(path);
    if (!todo || todo.length === 0) return false;
    const how = todo.shift();
    let n = 0;
    stream.on('data', d => (n += d.length));
    stream.on('end', () => {
        seen.refused++;
        seen.bodies.push(n);
        if (how === 'refuse') {
            stream.close(NGHTTP2_REFUSED_STREAM);
            return;
        }
        /* Nothing at or above this stream was processed. (Node replaces a last stream id of 0 with the last stream it
         * processed, this one: the tests make sure an earlier stream came first.) 'leave': and no new connections. */
        stream.session.goaway(NGHTTP2_NO_ERROR, stream.id - 2);
        if (how === 'leave') onLeave();
    });
    return true;
}

/* An h2c front for a gRPC server that turns streams away as planned and relays the others (headers, DATA both ways,
 * trailers), so that a real grpc-js server answers the retry. */
async function grpcFront(target, st = { served: 0, left: false }) {
    const up = http2.connect(`http://127.0.0.1:${target}`);
    up.on('error', () => {});
    const sessions = new Set();
    const server = http2.createServer();
    server.on('session', s => {
        sessions.add(s);
        s.on('close', () => sessions.delete(s));
        s.on('error', () => {});
    });
    server.on('stream', (stream, headers) => {
        stream.on('error', () => {});
        if (turnAway(stream, headers[':path'], () => {
            st.left = true;
            server.close();
        })) return;
        st.served++;
        const h = {};
        for (const [k, v] of Object.entries(headers)) if (k !== ':scheme' || v) h[k] = v;
        const req = up.request(h);
        req.on('error', () => stream.destroy());
        stream.pipe(req);
        let trailers = {};
        req.on('response', rh => {
            const out = { ...rh };
            stream.respond(out, { waitForTrailers: true });
            stream.on('wantTrailers', () => stream.sendTrailers(trailers));
            req.pipe(stream);
        });
        req.on('trailers', t => (trailers = { ...t }));
    });
    await new Promise(r => server.listen(0, '127.0.0.1', r));
    track(
        () =>
            new Promise(r => {
                for (const s of sessions) s.destroy();
                up.destroy();
                server.close(() => r());
            }),
    );
    st.port = server.address().port;
    return st.port;
}

let gw, gw2, gw3, port, grpcPort, admin, be;

before(async () => {
    be = await h2Backend({ onStream: (stream, headers, url) => turnAway(stream, url.pathname) });
    const gs = await grpcServer({ name: 'g1' });
    const front = await grpcFront(gs.port);
    [port, admin] = await Promise.all([freePort(), freePort()]);
    grpcPort = port;
    gw = await startGateway({
        yaml: grpcYaml({
            listeners: [{ name: 'h', port }],
            routes: [
                {
                    name: 'posts',
                    kind: 'HTTPRoute',
                    hostnames: ['web.test'], /* a hostname serves either HTTPRoutes or GRPCRoutes */
                    rules: '  - matches: [{path: {type: PathPrefix, value: /echo}}]\n    backendRefs: [{name: h2be, port: 8080}]\n',
                },
                { name: 'echo', hostnames: ['grpc.test'], rules: `  - matches: [{method: {service: sgtest.Echo}}]\n    backendRefs: [{name: gfront, port: ${front}}]\n` },
            ],
            extra: `${h2Service('h2be', be.port)}---\n${h2cService('gfront', front)}`,
        }),
        args: ['--admin', `127.0.0.1:${admin}`, '--workers', '1'],
        waitPorts: [port],
    });
});

function request(method, path, body, { chunked = false } = {}) {
    return new Promise((resolve, reject) => {
        const headers = { 'content-type': 'text/plain', host: 'web.test' };
        if (!chunked) headers['content-length'] = Buffer.byteLength(body);
        const r = http.request({ host: '127.0.0.1', port, path, method, headers, agent: false }, res => {
            let b = '';
            res.setEncoding('utf8');
            res.on('data', d => (b += d));
            res.on('end', () => resolve({ status: res.statusCode, body: b }));
            res.on('error', reject);
        });
        r.on('error', reject);
        r.setTimeout(15000, () => r.destroy(new Error(`${method} ${path}: no answer`)));
        if (chunked) {
            /* Two chunks: the gateway dechunks them into DATA. */
            r.write(body.slice(0, body.length >> 1));
            r.end(body.slice(body.length >> 1));
        } else {
            r.end(body);
        }
    });
}

const metric = async name => (await scrape(admin)).get(name);

const bodyOf = (n, seed) => Array.from({ length: n }, (_, i) => String.fromCharCode(97 + ((i * 7 + seed) % 26))).join('');

test('a POST refused with REFUSED_STREAM after its body arrived is sent again, body and all', withLogs(() => [gw], async () => {
    const r0 = await metric('ssegate_upstream_h2_retries_total');
    const body = bodyOf(20000, 1);
    plan.set('/echo/refused', ['refuse', 'refuse']);
    const refused0 = seen.refused;
    const r = await request('POST', '/echo/refused', body);
    assert.equal(r.status, 200, r.body);
    const j = JSON.parse(r.body);
    assert.equal(j.method, 'POST');
    assert.equal(j.length, body.length);
    assert.equal(j.body, body, 'the retry carried the whole body, from its first byte');
    assert.equal(seen.refused - refused0, 2, 'refused twice, answered the third time');
    assert.deepEqual(seen.bodies.slice(-2), [body.length, body.length], 'the body had reached the backend each time');
    assert.equal((await metric('ssegate_upstream_h2_retries_total')) - r0, 2);
}));

test('a chunked POST above a GOAWAY\'s last stream id goes again on a new session', withLogs(() => [gw], async () => {
    const sessions0 = be.state.sessions;
    const body = bodyOf(30000, 2);
    plan.set('/echo/goaway', ['goaway']);
    const r = await request('POST', '/echo/goaway', body, { chunked: true });
    assert.equal(r.status, 200, r.body);
    const j = JSON.parse(r.body);
    assert.equal(j.body, body);
    assert.equal(j.headers['content-length'], undefined, 'streamed as DATA without a length, as the client sent it');
    assert.ok(be.state.sessions > sessions0, 'a new session took the stream the old one would not process');
}));

test('a body larger than --h2-upstream-replay cannot be sent again: 503 with a reason', withLogs(() => [gw], async () => {
    const body = bodyOf(100 * 1024, 3);
    plan.set('/echo/big', ['refuse']);
    const r = await request('POST', '/echo/big', body);
    assert.equal(r.status, 503, r.body);
    assert.match(r.body, /refused the request without processing it/);
    assert.deepEqual(plan.get('/echo/big'), [], 'it was refused once');
    /* The session goes on: the same request, not refused this time, is answered. */
    const r2 = await request('POST', '/echo/big', body);
    assert.equal(r2.status, 200);
    assert.equal(JSON.parse(r2.body).length, body.length);
}));

test('a gRPC unary call refused, then above a GOAWAY\'s last id, is answered by the retry', withLogs(() => [gw], async () => {
    const c = client(Echo, grpcPort, { authority: 'grpc.test' });
    const text = bodyOf(3000, 4);
    plan.set('/sgtest.Echo/Unary', ['refuse', 'goaway']);
    const refused0 = seen.refused;
    const out = await unary(c, 'Unary', { text, n: 41 });
    assert.equal(out.err, null, out.err && out.err.message);
    assert.equal(out.res.text, text, 'the message reached the server intact');
    assert.equal(out.res.n, 42);
    assert.equal(out.res.server, 'g1');
    assert.equal(seen.refused - refused0, 2);
}));

test('a gRPC call too large to send again gets UNAVAILABLE (14)', withLogs(() => [gw], async () => {
    const c = client(Echo, grpcPort, { authority: 'grpc.test' });
    plan.set('/sgtest.Echo/Unary', ['refuse']);
    const out = await unary(c, 'Unary', { text: bodyOf(100 * 1024, 5), n: 1 });
    assert.ok(out.err, 'the call failed');
    assert.equal(out.status.code, 14, out.status.details);
    assert.match(out.status.details, /refused the request without processing it/);
    /* And the next call goes through. */
    const ok = await unary(c, 'Unary', { text: 'after', n: 1 });
    assert.equal(ok.err, null);
    assert.equal(ok.res.text, 'after');
}));

test('a backend going away (GOAWAY, then no new connections) loses no POST: another endpoint takes it, body and all',
    withLogs(() => [gw2], async () => {
        /* Two endpoints of one Service. Whichever gets the POST first reads its body, answers GOAWAY naming no
         * stream processed, and stops listening: the refused stream finds its endpoint gone. */
        let leaving = 1;
        const gone = [];
        const mk = async () => {
            const b = await h2Backend({
                onStream(stream, headers, url) {
                    if (url.pathname !== '/echo/leaving' || leaving-- <= 0) return false;
                    stream.resume();
                    stream.on('end', () => {
                        gone.push(b.port);
                        /* The GETs before it were processed, this stream was not. */
                        stream.session.goaway(NGHTTP2_NO_ERROR, stream.id - 2);
                        b.server.close();
                    });
                    return true;
                },
            });
            return b;
        };
        const [b1, b2] = [await mk(), await mk()];
        const p2 = await freePort();
        gw2 = await startGateway({
            yaml: grpcYaml({
                listeners: [{ name: 'h', port: p2 }],
                routes: [{
                    name: 'posts',
                    kind: 'HTTPRoute',
                    rules: '  - backendRefs: [{name: pair, port: 8080}]\n',
                }],
                extra: `apiVersion: v1
kind: Service
metadata: {name: pair}
spec:
  ports: [{name: web, port: 8080, appProtocol: kubernetes.io/h2c}]
${[b1, b2].map((b, i) => `---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: pair-${i}, labels: {kubernetes.io/service-name: pair}}
addressType: IPv4
endpoints: [{addresses: [127.0.0.1]}]
ports: [{name: web, port: ${b.port}}]
`).join('')}`,
            }),
            args: ['--workers', '1'],
            waitPorts: [p2],
        });
        const body = bodyOf(40000, 6);
        const saved = port;
        port = p2;
        let r;
        try {
            /* A session to each endpoint, with a processed stream on it (bounded: the picks are random). */
            for (let i = 0; i < 50 && !(b1.state.streams > 0 && b2.state.streams > 0); i++)
                assert.equal((await request('GET', '/warm', '')).status, 200);
            assert.ok(b1.state.streams > 0 && b2.state.streams > 0, 'both endpoints were used');
            r = await request('POST', '/echo/leaving', body);
        } finally {
            port = saved;
        }
        assert.equal(r.status, 200, r.body);
        assert.equal(JSON.parse(r.body).body, body);
        assert.equal(gone.length, 1, 'one endpoint went away with the request');
        const answered = [b1, b2].find(b => b.port !== gone[0]);
        assert.ok(answered.state.paths.includes('/echo/leaving'), 'the other endpoint answered');
        /* The access log names the endpoint that answered. */
        const line = new RegExp(`path=/echo/leaving status=200 .*backend=127\\.0\\.0\\.1:${answered.port} `);
        await waitFor(() => line.test(gw2.stdout), 5000, 'the access log line');
    }));

test('a gRPC call whose backend goes away (GOAWAY, then no new connections) is answered by another endpoint',
    withLogs(() => [gw3], async () => {
        const gs = await grpcServer({ name: 'g2' });
        const fronts = [{ served: 0, left: false }, { served: 0, left: false }];
        for (const f of fronts) await grpcFront(gs.port, f);
        const p3 = await freePort();
        gw3 = await startGateway({
            yaml: grpcYaml({
                listeners: [{ name: 'g', port: p3 }],
                routes: [{ name: 'echo', rules: '  - backendRefs: [{name: gpair, port: 8080}]\n' }],
                extra: `apiVersion: v1
kind: Service
metadata: {name: gpair}
spec:
  ports: [{name: grpc, port: 8080, appProtocol: kubernetes.io/h2c}]
${fronts.map((f, i) => `---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: gpair-${i}, labels: {kubernetes.io/service-name: gpair}}
addressType: IPv4
endpoints: [{addresses: [127.0.0.1]}]
ports: [{name: grpc, port: ${f.port}}]
`).join('')}`,
            }),
            args: ['--workers', '1'],
            waitPorts: [p3],
        });
        const c = client(Echo, p3);
        /* A processed call on each endpoint first (bounded: the picks are random). */
        for (let i = 0; i < 50 && !fronts.every(f => f.served > 0); i++)
            assert.equal((await unary(c, 'Unary', { text: 'warm', n: 0 })).err, null);
        assert.ok(fronts.every(f => f.served > 0), 'both endpoints were used');
        plan.set('/sgtest.Echo/Unary', ['leave']);
        const text = bodyOf(5000, 7);
        const out = await unary(c, 'Unary', { text, n: 9 });
        assert.equal(out.err, null, out.err && out.err.message);
        assert.equal(out.res.text, text);
        assert.equal(out.res.n, 10);
        assert.equal(fronts.filter(f => f.left).length, 1, 'one endpoint went away with the call');
    }));
