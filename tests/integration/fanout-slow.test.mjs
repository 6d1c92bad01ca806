// fanout-slow.test.mjs: a subscriber that stops reading never holds up the others; past its bound it is fed from the
// ring once it reads again (action replay) or closed at an event boundary with retry: (action close). HTTP/2
// subscribers share the stream with HTTP/1.1 ones.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { before, test } from 'node:test';
import { makeCert, secretYaml } from '../h2probe/tlsconf.mjs';
import { sseBackend } from './lib/backends.mjs';
import { fanoutYaml, ids, range } from './lib/fanout-util.mjs';
import { SLOW, freePort, setup, sleep, startGateway, track, waitFor, withLogs } from './lib/harness.mjs';
import { scrape } from './lib/prod-util.mjs';
import { SseParser, h2Sse, openSse, waitEvents } from './lib/sseclient.mjs';

setup();
const T = 10000 * SLOW;
const N = 300;
const PAD = 'x'.repeat(32 * 1024);
let gw, be, port, admin, tport, cert;
const logs = () => [gw];

before(async () => {
    be = await sseBackend();
    port = await freePort();
    admin = await freePort();
    tport = await freePort();
    cert = makeCert('fan.test');
    const b = [{ service: '127.0.0.1', port: be.port }];
    /* A second listener, HTTPS (h2 by ALPN), for the TLS subscribers. */
    const withTls = y =>
        y.replace(
            `  - {name: http, protocol: HTTP, port: ${port}}\n`,
            `  - {name: http, protocol: HTTP, port: ${port}}\n  - {name: https, protocol: HTTPS, port: ${tport}, tls: {mode: Terminate, certificateRefs: [{kind: Secret, name: fancert}]}}\n`,
        ) + `---\n${secretYaml('fancert', cert)}`;
    gw = await startGateway({
        yaml: withTls(fanoutYaml({
            port,
            routes: [
                { name: 'replay', path: '/replay', backends: b, policy: '{sharing: {enabled: true}, replay: {maxEvents: 2000, maxBytes: 67108864}, slowSubscriber: {action: replay}}' },
                { name: 'close', path: '/close', backends: b, policy: '{sharing: {enabled: true}, replay: {maxEvents: 2000, maxBytes: 67108864}, slowSubscriber: {action: close, maxLagEvents: 50}}' },
            ],
        })),
        args: ['--access-log', 'off', '--workers', '1', '--admin', `127.0.0.1:${admin}`],
        waitPorts: [port, tport, admin],
    });
});

/* A subscriber that stops reading as soon as the head arrives, until resume(). */
function pausedSse(path) {
    const h = { events: [], text: '', ended: false, complete: false };
    const parser = new SseParser(ev => h.events.push(ev));
    h.head = new Promise((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path, agent: false, headers: { accept: 'text/event-stream' } }, res => {
            res.pause();
            res.setEncoding('utf8');
            h.resume = () => {
                res.on('data', d => {
                    h.text += d;
                    parser.push(d);
                });
                res.resume();
            };
            res.on('end', () => ((h.ended = true), (h.complete = res.complete)));
            res.on('close', () => ((h.ended = true), (h.complete = res.complete)));
            resolve(h);
        });
        req.on('error', reject);
        h.close = () => req.destroy();
        track(() => req.destroy());
    });
    return h;
}

async function pump(st) {
    for (let i = 1; i <= N; i++) {
        st.send(`${i} ${PAD}`);
        /* Let the loop breathe every few events so the test does not measure the backend's own buffering. */
        if (i % 20 === 0) await sleep(5);
    }
}

test(
    'action replay: the stalled subscriber does not hold up the fast one, then gets every event once from the ring',
    { timeout: 60000 * SLOW },
    withLogs(logs, async () => {
        const from = be.streams.length;
        const fast = openSse(port, '/replay/s');
        const slow = await pausedSse('/replay/s');
        await fast.head;
        const st = await be.stream(from, T);
        await pump(st);
        await waitEvents(fast, N, T);
        assert.deepEqual(ids(fast), range(1, N), 'the fast subscriber lost or repeated events');
        const m = await scrape(admin);
        assert.ok(m.get('ssegate_fanout_slow_subscribers_total', { action: 'replay' }) >= 1, 'the stalled subscriber was not moved to the ring');
        slow.resume();
        await waitFor(() => slow.events.length >= N, T, `the slow subscriber caught up (${slow.events.length})`);
        st.send('live again');
        await waitFor(() => slow.events.length === N + 1, T, 'the slow subscriber got the live event');
        assert.deepEqual(ids(slow), range(1, N + 1), 'the slow subscriber lost or repeated events');
        assert.equal(slow.ended, false);
        fast.close();
        slow.close();
    }),
);

test(
    'action close: past maxLagEvents the stalled subscriber is closed at an event boundary with retry:, the others go on',
    { timeout: 60000 * SLOW },
    withLogs(logs, async () => {
        const from = be.streams.length;
        const fast = openSse(port, '/close/s');
        const slow = await pausedSse('/close/s');
        await fast.head;
        const st = await be.stream(from, T);
        await pump(st);
        await waitEvents(fast, N, T);
        assert.deepEqual(ids(fast), range(1, N));
        const m = await scrape(admin);
        assert.equal(m.get('ssegate_fanout_slow_subscribers_total', { action: 'close' }), 1);
        slow.resume();
        await waitFor(() => slow.ended, T, 'the slow subscriber\'s response ended');
        assert.equal(slow.complete, true, 'closed mid-event instead of at a boundary');
        assert.match(slow.text, /\n\nretry: \d+\n\n$/);
        const got = ids(slow);
        assert.ok(got.length < N, `the slow subscriber got all ${got.length} events although it was closed`);
        assert.deepEqual(got, range(1, got.length), 'not a gapless prefix');
        st.send('still live');
        await waitEvents(fast, N + 1, T);
        fast.close();
    }),
);

test(
    'HTTP/2 subscribers (two streams of one connection, another connection) and HTTP/1.1 share one upstream',
    { timeout: 30000 * SLOW },
    withLogs(logs, async () => {
        const from = be.streams.length;
        const sessions = [http2.connect(`http://127.0.0.1:${port}`), http2.connect(`http://127.0.0.1:${port}`)];
        for (const s of sessions) track(() => s.destroy());
        const subs = [];
        for (const [si, n] of [[0, 2], [1, 1]]) {
            for (let i = 0; i < n; i++) subs.push(h2Sse(sessions[si], '/replay/h2'));
        }
        const h1 = openSse(port, '/replay/h2');
        await h1.head;
        await waitFor(() => subs.every(s => s.status === 200), T, 'h2 heads');
        await sleep(200 * SLOW);
        assert.equal(be.streams.slice(from).filter(s => s.url === '/replay/h2').length, 1, 'h2 subscribers did not share');
        const st = be.streams.slice(from).find(s => s.url === '/replay/h2');
        const m0 = await scrape(admin);
        const b0 = subs.reduce((a, s) => a + s.bytes, 0);
        /* Events of at least SG_H2_REF_MIN (1 KiB) go by reference; the last one is larger than a DATA frame
         * (16 KiB), so its frames are ranges of it. */
        const text = i => `h2 ${i} ${'y'.repeat(i === 5 ? 40000 : 1100 * i)}`;
        for (let i = 1; i <= 5; i++) st.send(text(i));
        await waitEvents(h1, 5, T);
        await waitFor(() => subs.every(s => s.events.length >= 5), T, 'h2 events');
        // Each HTTP/2 subscriber's DATA carries the shared event's bytes by reference: none is copied per subscriber.
        const m1 = await scrape(admin);
        const got = subs.reduce((a, s) => a + s.bytes, 0) - b0;
        const ref = m1.get('ssegate_h2_data_bytes_total', { how: 'reference' }) - m0.get('ssegate_h2_data_bytes_total', { how: 'reference' });
        const copied = m1.get('ssegate_h2_data_bytes_total', { how: 'copied' }) - m0.get('ssegate_h2_data_bytes_total', { how: 'copied' });
        assert.ok(got > 3 * 40000, `h2 subscribers got ${got} bytes`);
        assert.ok(ref >= got, `${ref} DATA bytes by reference, the h2 subscribers received ${got}`);
        assert.equal(copied, 0, 'DATA payload bytes were copied for shared events');
        for (const s of subs) assert.deepEqual(s.events.map(e => Number(e.id)), range(1, 5));
        for (const s of subs) s.events.forEach((e, i) => assert.equal(e.data, text(i + 1)));
        assert.deepEqual(ids(h1), range(1, 5));
        // A small event is copied into the frame instead: many small references cost more than the copy.
        const m2 = await scrape(admin);
        st.send('small');
        await waitFor(() => subs.every(s => s.events.length >= 6), T, 'the small event');
        const m3 = await scrape(admin);
        const dd = how => m3.get('ssegate_h2_data_bytes_total', { how }) - m2.get('ssegate_h2_data_bytes_total', { how });
        assert.equal(dd('reference'), 0);
        assert.ok(dd('copied') >= 3 * 'id: 6\ndata: small\n\n'.length, `${dd('copied')} bytes copied`);
        h1.close();
        for (const s of sessions) s.destroy();
    }),
);

test(
    'HTTP/2 subscribers over TLS share the stream; the event is copied once into each connection\'s output (the records are made from it), never by reference',
    { timeout: 30000 * SLOW },
    withLogs(logs, async () => {
        const from = be.streams.length;
        const sessions = [0, 1].map(() => http2.connect(`https://127.0.0.1:${tport}`, { ca: cert.crt, servername: 'fan.test' }));
        for (const s of sessions) track(() => s.destroy());
        const subs = [];
        for (const ses of sessions) {
            for (let i = 0; i < 2; i++) subs.push(h2Sse(ses, '/replay/tls'));
        }
        await waitFor(() => subs.every(s => s.status === 200), T, 'h2 heads');
        await sleep(200 * SLOW);
        assert.equal(be.streams.slice(from).filter(s => s.url === '/replay/tls').length, 1, 'TLS h2 subscribers did not share');
        const st = be.streams.slice(from).find(s => s.url === '/replay/tls');
        const m0 = await scrape(admin);
        const b0 = subs.reduce((a, s) => a + s.bytes, 0);
        /* Events of 20 KiB: frames are split by the 16 KiB frame size, so a frame starts inside an event. */
        for (let i = 1; i <= 5; i++) st.send(`tls ${i} ${'z'.repeat(20000)}`);
        await waitFor(() => subs.every(s => s.events.length >= 5), T, 'TLS h2 events');
        for (const s of subs) {
            assert.deepEqual(s.events.map(e => Number(e.id)), range(1, 5));
            s.events.forEach((e, i) => assert.equal(e.data, `tls ${i + 1} ${'z'.repeat(20000)}`));
        }
        const m1 = await scrape(admin);
        const got = subs.reduce((a, s) => a + s.bytes, 0) - b0;
        const d = how => m1.get('ssegate_h2_data_bytes_total', { how }) - m0.get('ssegate_h2_data_bytes_total', { how });
        assert.ok(got >= 4 * 5 * 20000, `TLS subscribers got ${got} bytes`);
        assert.ok(d('copied') >= got, `${d('copied')} DATA bytes copied, the TLS subscribers received ${got}`);
        assert.equal(d('reference'), 0, 'a reference chunk per frame on TLS would cost a record each');
        for (const s of sessions) s.destroy();
    }),
);
