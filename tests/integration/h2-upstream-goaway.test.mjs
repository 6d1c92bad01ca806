// h2-upstream-goaway.test.mjs: an HTTP/2 backend going away. GOAWAY mid-stream: in-flight SSE streams end cleanly at
// an event boundary, streams the backend did not process (above the GOAWAY's last stream id, or refused with
// REFUSED_STREAM) are sent again on another session, and new requests go to a new session. A backend that dies ends
// its SSE streams cleanly too. A slow client of a fast backend holds a bounded number of bytes in the gateway, and the
// other streams of the same session keep flowing. A reload (SIGHUP) leaves running h2 upstream streams alone, and a
// drain (SIGTERM) ends them cleanly and closes the upstream sessions before the process exits.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { before, test } from 'node:test';
import { h2Backend, h2Service } from './lib/h2backends.mjs';
import { freePort, gatewayYaml, setup, sleep, startGateway, waitFor, withLogs, writeTemp } from './lib/harness.mjs';
import { openSse, waitEvents } from './lib/sseclient.mjs';

setup();

function get(port, p) {
    return new Promise((resolve, reject) => {
        const r = http.get({ host: '127.0.0.1', port, path: p, agent: false }, res => {
            let b = '';
            res.setEncoding('utf8');
            res.on('data', d => (b += d));
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: b }));
            /* A response that stops before its end fails the test here, with what had come, rather than hanging. */
            res.on('error', e => reject(new Error(`GET ${p}: ${e.message} after ${b.length} bytes of the body`)));
            res.on('aborted', () => reject(new Error(`GET ${p}: the response stopped after ${b.length} bytes of the body`)));
        });
        r.on('error', reject);
        r.setTimeout(10000, () => r.destroy(new Error('timeout')));
    });
}

async function metrics(admin) {
    return (await get(admin, '/metrics')).body;
}
function metric(text, name) {
    const m = text.split('\n').find(l => l.startsWith(name + ' '));
    return m ? Number(m.slice(name.length + 1)) : NaN;
}

/* Backend behaviours keyed by path, switched on by the tests. */
const hooks = { goawayOn: null, refuseOnce: new Set(), firstSession: null };
let be, dying, port, admin, gw, config, yaml;

before(async () => {
    be = await h2Backend({
        onStream(stream, headers, url) {
            const sess = stream.session;
            if (url.pathname === '/go/new' && hooks.goawayOn === 'new' && sess === hooks.firstSession) {
                /* A stream arrives that the backend will not process: GOAWAY naming the streams before it. */
                sess.goaway(http2.constants.NGHTTP2_NO_ERROR, stream.id - 2);
                return true;
            }
            if (hooks.refuseOnce.has(url.pathname)) {
                hooks.refuseOnce.delete(url.pathname);
                stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
                return true;
            }
            if (url.pathname.startsWith('/go/sse') && !hooks.firstSession) hooks.firstSession = sess;
            return false;
        },
    });
    dying = await h2Backend();
    [port, admin] = await Promise.all([freePort(), freePort()]);
    yaml = gatewayYaml({
        port,
        routes: [
            { name: 'dying', path: '/dying', backends: [{ name: 'dying', port: 8080 }] },
            { name: 'main', path: '/', backends: [{ name: 'h2be', port: 8080 }] },
        ],
        extra: [h2Service('h2be', be.port), h2Service('dying', dying.port)].join('---\n'),
    });
    config = writeTemp('gw.yaml', yaml);
    gw = await startGateway({
        config,
        args: ['--admin', `127.0.0.1:${admin}`, '--workers', '1', '--drain-timeout', '3s', '--drain-spread', '2s'],
        waitPorts: [port],
    });
});

test('GOAWAY mid-stream: in-flight SSE ends cleanly, the unprocessed stream is sent again, new requests succeed',
    withLogs(() => [gw], async () => {
        const m0 = await metrics(admin);
        const sse = [];
        for (let i = 0; i < 3; i++) sse.push(openSse(port, `/go/sse${i}?n=2&every=100`));
        for (const h of sse) await waitEvents(h, 1, 5000);
        const first = hooks.firstSession;
        assert.ok(first);
        hooks.goawayOn = 'new';
        /* This request reaches the first session, which answers GOAWAY without processing it. */
        const r = await get(port, '/go/new');
        assert.equal(r.status, 200, r.body);
        assert.equal(JSON.parse(r.body).path, '/go/new');
        const m1 = await metrics(admin);
        assert.equal(metric(m1, 'ssegate_upstream_h2_goaways_total') - metric(m0, 'ssegate_upstream_h2_goaways_total'), 1);
        assert.ok(metric(m1, 'ssegate_upstream_h2_retries_total') - metric(m0, 'ssegate_upstream_h2_retries_total') >= 1);
        /* The in-flight streams were processed (at or below the last stream id): they go on to their events. */
        for (const h of sse) await waitEvents(h, 2, 5000);
        /* Now the old session goes: the in-flight SSE streams end cleanly, at an event boundary. */
        first.destroy();
        for (const h of sse) {
            const d = await h.done;
            assert.equal(d.complete, true, 'ended with the chunked terminator, not cut');
            assert.ok(h.text.endsWith('\n\n'), 'at an event boundary');
        }
        /* New requests go to the new session. */
        const r2 = await get(port, '/go/after');
        assert.equal(r2.status, 200);
    }));

test('RST_STREAM REFUSED_STREAM: the request is sent again, transparently', withLogs(() => [gw], async () => {
    const m0 = await metrics(admin);
    hooks.refuseOnce.add('/refuse/me');
    const r = await get(port, '/refuse/me');
    assert.equal(r.status, 200, r.body);
    assert.equal(JSON.parse(r.body).path, '/refuse/me');
    const m1 = await metrics(admin);
    assert.equal(metric(m1, 'ssegate_upstream_h2_retries_total') - metric(m0, 'ssegate_upstream_h2_retries_total'), 1);
}));

test('a backend that dies: SSE streams end cleanly, then requests get 502', withLogs(() => [gw], async () => {
    const hs = [];
    for (let i = 0; i < 4; i++) hs.push(openSse(port, `/dying/sse${i}?n=1`));
    for (const h of hs) await waitEvents(h, 1, 5000);
    await dying.close();
    for (const h of hs) {
        const d = await h.done;
        assert.equal(d.complete, true);
        assert.equal(h.events.length, 1);
    }
    const r = await get(port, '/dying/x');
    assert.equal(r.status, 502);
}));

test('a slow client of a fast h2 backend: the gateway holds a bounded number of bytes, and the session goes on',
    withLogs(() => [gw], async () => {
        const sent0 = be.state.bigSent;
        /* A client that sends its request and never reads. */
        const sock = net.connect(port, '127.0.0.1');
        await new Promise(r => sock.once('connect', r));
        sock.pause();
        sock.write('GET /big/slow?kb=65536 HTTP/1.1\r\nHost: gw.test\r\n\r\n');
        await waitFor(() => be.state.bigSent - sent0 > 0, 5000, 'the backend to start sending');
        /* Until the backend is held back by the window: nothing more leaves it. */
        let last = -1;
        await waitFor(async () => {
            const now = be.state.bigSent - sent0;
            const still = now === last;
            last = now;
            await sleep(300);
            return still;
        }, 15000, 'the backend to be held back');
        const held = be.state.bigSent - sent0;
        /* 64 MiB were asked for; what left the backend is bounded by the stream window, the gateway's client queue
         * and the two kernels' socket buffers, whatever the body's size. */
        assert.ok(held < 16 * 1024 * 1024, `${held} bytes left the backend for a client that reads nothing`);
        /* The same session still carries other streams: the stalled one holds only its own window. */
        const r = await get(port, '/big/other?kb=2048');
        assert.equal(r.status, 200);
        assert.equal(r.body.length, 2048 * 1024);
        const m = await metrics(admin);
        assert.equal(metric(m, 'ssegate_upstream_h2_sessions'), 1, 'one session to this backend');
        sock.destroy();
    }));

test('a reload (SIGHUP) leaves running h2 upstream streams alone; new streams use the new config',
    withLogs(() => [gw], async () => {
        const hs = [];
        for (let i = 0; i < 5; i++) hs.push(openSse(port, `/reload/sse${i}?n=30&every=50`));
        for (const h of hs) await waitEvents(h, 2, 5000);
        gw.child.kill('SIGHUP');
        await waitFor(() => /reload/i.test(gw.stderr), 5000, 'the reload');
        for (const h of hs) await waitEvents(h, 30, 10000);
        for (const h of hs) {
            assert.deepEqual(h.events.map(e => Number(e.id)), Array.from({ length: 30 }, (_, i) => i + 1));
            assert.equal(h.ended, false);
            h.close();
        }
        const r = await get(port, '/after/reload');
        assert.equal(r.status, 200);
    }));

test('SIGTERM with h2 upstream streams open: each ends cleanly at an event boundary, the process exits 0',
    withLogs(() => [gw], async () => {
        const hs = [];
        for (let i = 0; i < 6; i++) hs.push(openSse(port, `/drain/sse${i}?n=100000&every=40`));
        for (const h of hs) await waitEvents(h, 2, 5000);
        const sessionsBefore = be.sessions.size;
        assert.ok(sessionsBefore >= 1);
        gw.stopping = true; /* the harness: this exit is the test's */
        gw.child.kill('SIGTERM');
        for (const h of hs) {
            const d = await h.done;
            assert.equal(d.complete, true, 'ended with the chunked terminator');
            assert.ok(h.text.endsWith('\n\n'));
            assert.match(h.text, /retry: \d+/, 'a retry hint before the end');
        }
        const { code } = await gw.exited;
        assert.equal(code, 0, gw.logs());
        assert.doesNotMatch(gw.stderr, /AddressSanitizer|LeakSanitizer|runtime error/);
        await waitFor(() => be.sessions.size === 0, 5000, 'the upstream sessions to close');
    }));
