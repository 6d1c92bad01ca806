// hostile-h2-reset.test.mjs: rapid reset (CVE-2023-44487) from a hostile client, and what a backend sees of
// it. HEADERS+RST_STREAM pairs in one read never reach a backend; streams reset after their start spend a
// per-connection budget that ends in GOAWAY ENHANCE_YOUR_CALM; a client address past its budget of new
// upstream exchanges gets REFUSED_STREAM (503 on HTTP/1.1). Each offender is logged at most once per
// interval; a bystander's SSE stream on another backend gets every event. Bounds only: backend connection
// counts, metrics, log-line counts; no timing.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { before, test } from 'node:test';
import { E, F, Probe, T, frame, request, u32 } from '../h2probe/frames.mjs';
import { sseBackend } from './lib/backends.mjs';
import { SLOW, freePort, gatewayYaml, setup, startGateway, track, waitFor, withLogs } from './lib/harness.mjs';
import { scrape } from './lib/prod-util.mjs';

setup();

const BUDGET = 20;      /* --h2-reset-budget */
const RATE = 50;        /* --client-rate */
const MS = 5000 * SLOW;
let gw, port, admin, sse, counted;

/* The attacked backend: counts TCP connections accepted and requests; answers each with an open SSE stream. */
async function countingBackend() {
    const be = { accepts: 0, requests: 0, sockets: new Set() };
    const server = http.createServer((req, res) => {
        be.requests++;
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: hello\n\n');
    });
    server.on('connection', s => {
        be.accepts++;
        be.sockets.add(s);
        s.on('close', () => be.sockets.delete(s));
    });
    await new Promise(r => server.listen(0, '127.0.0.1', r));
    be.port = server.address().port;
    track(() => new Promise(r => {
        for (const s of be.sockets) s.destroy();
        server.close(() => r());
    }));
    return be;
}

before(async () => {
    sse = await sseBackend();
    counted = await countingBackend();
    port = await freePort();
    admin = await freePort();
    gw = await startGateway({
        yaml: gatewayYaml({
            port,
            routes: [
                { name: 'events', path: '/events', backends: [{ name: '127.0.0.1', port: sse.port }] },
                { name: 'attacked', path: '/a', backends: [{ name: '127.0.0.1', port: counted.port }] },
            ],
        }),
        /* One worker: the per-address budget and the log limit are per worker. */
        args: ['--workers', '1', '--access-log', 'off', '--admin', `127.0.0.1:${admin}`,
            '--h2-reset-budget', String(BUDGET), '--client-rate', String(RATE)],
        waitPorts: [port, admin],
    });
});

/* A bystander SSE stream on the other backend, over its own h2 connection from its own address. Returns a
 * check: events sent during the attack all arrive, in order. */
async function bystander(tag) {
    const session = http2.connect(`http://127.0.0.1:${port}`, { localAddress: '127.0.0.100' });
    session.on('error', () => {});
    const before_ = sse.streams.length;
    const req = session.request({ ':path': `/events/bystander-${tag}` });
    let text = '';
    req.setEncoding('utf8');
    req.on('data', d => (text += d));
    req.on('error', () => {});
    const st = await sse.stream(before_);
    let sent = 0;
    const tick = setInterval(() => st.send(`${tag}-${++sent}`), 20);
    track(() => clearInterval(tick));
    return async () => {
        clearInterval(tick);
        st.send(`${tag}-last`);
        await waitFor(() => text.includes(`data: ${tag}-last`), MS, 'the bystander\'s last event');
        const got = [...text.matchAll(new RegExp(`data: ${tag}-(\\d+)`, 'g'))].map(m => Number(m[1]));
        assert.deepEqual(got, Array.from({ length: sent }, (_, i) => i + 1), 'bystander events lost or out of order');
        assert.ok(sent > 0);
        st.end();
        session.close();
    };
}

/* An HTTP/1.1 GET from localAddress: resolves with the response head's status and Retry-After. */
function h1Head(path, localAddress) {
    return new Promise((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path, agent: false, localAddress }, res => {
            resolve({ status: res.statusCode, retryAfter: res.headers['retry-after'] });
            req.destroy();
        });
        req.setTimeout(MS, () => req.destroy(new Error(`GET ${path}: no response head`)));
        req.on('error', e => (e.code === 'ECONNRESET' ? null : reject(e)));
    });
}

const logLines = re => gw.stderr.split('\n').filter(l => re.test(l)).length;

test('HEADERS+RST_STREAM pairs in one read never reach the backend; reconnecting floods get GOAWAY, logged once',
    { timeout: 60000 * SLOW }, withLogs(() => [gw], async () => {
        const check = await bystander('same-read');
        const m0 = await scrape(admin);
        const accepts0 = counted.accepts;
        let goaways = 0, pairs = 0;
        for (let conn = 0; conn < 10; conn++) {
            const p = await Probe.open(port, { localAddress: '127.0.0.7' });
            /* Each write of 200 pairs (about 12 KB) is one read; a PING round trip separates the writes. */
            let id = 1;
            for (let w = 0; w < 8 && !p.closed && !p.goaway(); w++) {
                const chunks = [];
                for (let i = 0; i < 200; i++, id += 2, pairs++) {
                    chunks.push(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, id, request(`/a/${id}`)));
                    chunks.push(frame(T.RST_STREAM, 0, id, u32(E.CANCEL)));
                }
                p.write(Buffer.concat(chunks));
                const data = Buffer.from([w, conn, 0, 0, 0, 0, 0, 1]);
                p.ping(data);
                await p.until(x => x.pingAck(data) || x.goaway(), MS);
            }
            /* More than nghttp2's 1,000 resets: its limit sends GOAWAY. */
            const g = await p.until(x => x.goaway(), MS);
            assert.ok(g, `connection ${conn}: no GOAWAY after ${pairs} pairs`);
            goaways++;
            p.close();
        }
        assert.equal(goaways, 10);
        assert.equal(counted.accepts - accepts0, 0, 'the backend saw connections for requests reset in the same read');
        assert.equal(counted.requests, 0);
        const m1 = await scrape(admin);
        const unstarted = m1.get('ssegate_h2_streams_reset_total', { started: 'no' }) - (m0.get('ssegate_h2_streams_reset_total', { started: 'no' }) || 0);
        assert.ok(unstarted >= 10 * 1000, `only ${unstarted} streams counted as reset before their start`);
        assert.ok(m1.get('ssegate_h2_reset_flood_goaways_total') - m0.get('ssegate_h2_reset_flood_goaways_total') >= 10);
        /* Ten floods from one address within the log interval: one line, not ten (two if the interval turned). */
        await waitFor(() => logLines(/client 127\.0\.0\.7 reset/) >= 1, MS, 'the reset flood log line');
        const lines = logLines(/client 127\.0\.0\.7 reset/);
        assert.ok(lines >= 1 && lines <= 2, `${lines} log lines for one flooding client`);
        await check();
    }));

test('streams reset after their start spend the connection\'s reset budget: GOAWAY ENHANCE_YOUR_CALM, backend bounded',
    { timeout: 60000 * SLOW }, withLogs(() => [gw], async () => {
        const check = await bystander('started');
        const m0 = await scrape(admin);
        const accepts0 = counted.accepts;
        const p = await Probe.open(port, { localAddress: '127.0.0.8' });
        let started = 0, id = 1;
        for (let i = 0; i < 10 * BUDGET && !p.goaway() && !p.closed; i++, id += 2) {
            p.headers(id, request(`/a/started-${id}`));
            /* The response head proves the exchange reached the backend before the reset. */
            const h = await p.until(x => x.responseHeaders(id) || x.goaway(), MS);
            if (h && h.type === T.HEADERS) started++;
            p.send(T.RST_STREAM, 0, id, u32(E.CANCEL));
            const data = Buffer.from([1, 2, 3, 4, 5, 6, 7, i & 0xff]);
            p.ping(data);
            await p.until(x => x.pingAck(data) || x.goaway(), MS);
        }
        const g = await p.until(x => x.goaway(), MS);
        assert.ok(g, `no GOAWAY after ${started} started streams were reset`);
        assert.equal(g.code, E.ENHANCE_YOUR_CALM);
        assert.ok(await p.until(x => x.closed, MS), 'the connection was not closed');
        /* The budget plus what refills while the test runs (BUDGET per 10 s): far below the 200 tried. */
        assert.ok(started >= BUDGET && started <= 2 * BUDGET, `${started} started streams before GOAWAY`);
        const accepts = counted.accepts - accepts0;
        assert.ok(accepts <= started + 1, `backend accepted ${accepts} connections for ${started} requests`);
        const m1 = await scrape(admin);
        assert.ok(m1.get('ssegate_h2_streams_reset_total', { started: 'yes' }) - (m0.get('ssegate_h2_streams_reset_total', { started: 'yes' }) || 0) >= BUDGET);
        assert.equal(m1.get('ssegate_h2_reset_flood_goaways_total') - m0.get('ssegate_h2_reset_flood_goaways_total'), 1);
        await waitFor(() => logLines(/client 127\.0\.0\.8 reset more started streams than --h2-reset-budget/) === 1, MS,
            'one log line naming the client');
        await check();
    }));

test('a client address past --client-rate gets REFUSED_STREAM (h2) and 503 (HTTP/1.1); the backend sees the budget only',
    { timeout: 60000 * SLOW }, withLogs(() => [gw], async () => {
        const check = await bystander('rate');
        const m0 = await scrape(admin);
        const accepts0 = counted.accepts;
        const N = 3 * RATE;
        const p = await Probe.open(port, { localAddress: '127.0.0.9' });
        const chunks = [];
        for (let i = 0, id = 1; i < N; i++, id += 2) chunks.push(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, id, request(`/a/rate-${id}`)));
        p.write(Buffer.concat(chunks));
        const answered = id => p.responseHeaders(id) || p.rst(id) !== null;
        await p.until(x => Array.from({ length: N }, (_, i) => 1 + 2 * i).every(id => answered(id)) || x.closed, MS);
        let ok = 0, refused = 0;
        for (let i = 0, id = 1; i < N; i++, id += 2) {
            if (p.responseHeaders(id)) ok++;
            else if (p.rst(id) === E.REFUSED_STREAM) refused++;
        }
        assert.equal(ok + refused, N, `${ok} answered and ${refused} refused of ${N}`);
        /* The burst, plus what refills while the requests are read (RATE per second): not the N asked for. */
        assert.ok(ok >= RATE && ok <= 2 * RATE, `${ok} exchanges started`);
        assert.ok(refused >= N - 2 * RATE, `${refused} refused`);
        /* HTTP/1.1: the same budget, answered 503 with Retry-After (admitted requests get the backend's open
         * SSE stream, so only the response heads are awaited). */
        const heads = await Promise.all(Array.from({ length: N }, (_, i) => h1Head(`/a/h1-${i}`, '127.0.0.11')));
        const h1refused = heads.filter(h => h.status === 503);
        assert.equal(heads.filter(h => h.status === 200).length + h1refused.length, N, JSON.stringify(heads.slice(0, 3)));
        assert.ok(h1refused.length >= N - 2 * RATE, `${h1refused.length} HTTP/1.1 requests refused of ${N}`);
        assert.ok(h1refused.every(h => h.retryAfter === '1'));
        /* Another address has its own budget. */
        const other = await Probe.open(port, { localAddress: '127.0.0.10' });
        other.headers(1, request('/a/other'));
        assert.ok(await other.until(x => x.responseHeaders(1), MS), 'another client address was refused too');
        other.close();
        const accepts = counted.accepts - accepts0;
        const admitted = ok + (N - h1refused.length) + 1;
        assert.ok(accepts <= admitted, `backend accepted ${accepts} connections for ${admitted} admitted requests`);
        const m1 = await scrape(admin);
        assert.ok(m1.get('ssegate_client_rate_refused_total') - m0.get('ssegate_client_rate_refused_total') >= refused + h1refused.length);
        /* Dozens of refusals, one log line for the client. */
        await waitFor(() => logLines(/client 127\.0\.0\.9: over --client-rate/) >= 1, MS, 'the client-rate log line');
        assert.ok(logLines(/client 127\.0\.0\.9: over --client-rate/) <= 2);
        p.close();
        await check();
    }));
