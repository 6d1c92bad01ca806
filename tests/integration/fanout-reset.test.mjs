// fanout-reset.test.mjs: a client that resets its connection (TCP RST) while its subscriber waits is counted out
// (ssegate_fanout_worker_subscribers) on whichever worker it landed, in each state, on the owner worker and on a
// follower: the shared stream's head not in yet; a Last-Event-ID the ring cannot serve, on a dedicated replay whose
// head is not in; a ring replay and the live edge once live. Each follower subscriber is reset as soon as it is
// counted, often before its fresh follower hub has the owner's ring (that moment is not forced). The follower lets
// go, the dedicated requests close, and the upstream closes after the linger once the last one is gone.
// Why: a reset after the request head, with nothing to write, raises only EPOLLERR and EPOLLHUP, and the connection
// code handed those to the protocol's read, which does nothing while the protocol is not reading (its request is
// in): the subscriber was never counted out, and its worker spun on the level-triggered error. HTTP/2 subscribers
// (a stream reset, a connection reset) and an ordinary proxied SSE stream of a route without sharing are covered too.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { test } from 'node:test';
import { fanoutYaml, gatedBackend, perWorker } from './lib/fanout-util.mjs';
import { SLOW, freePort, setup, startGateway, track, waitFor, withLogs } from './lib/harness.mjs';
import { scrape } from './lib/prod-util.mjs';

setup();
const T = 5000 * SLOW;
const LINGER_MS = 300;
let gw;
const logs = () => [gw];

/* An HTTP/1.1 subscriber on a raw socket, so that it can be reset (RST) rather than closed. */
function rawSub(port, path, { lei, localAddress } = {}) {
    const sock = net.connect({ port, host: '127.0.0.1', localAddress });
    track(() => sock.destroy());
    const h = { sock, data: '' };
    sock.setEncoding('utf8');
    sock.on('data', d => (h.data += d));
    sock.on('error', () => {});
    sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n` +
        `${lei ? `Last-Event-ID: ${lei}\r\n` : ''}\r\n`);
    h.reset = () => sock.resetAndDestroy();
    return h;
}

test(
    '--workers 2: subscribers reset by their clients (head not in, dedicated replay, ring replay, live; on the owner ' +
        'and on a follower) are counted out on their worker; the follower lets go; the upstream closes after the linger',
    { timeout: 120000 * SLOW },
    withLogs(logs, async () => {
        const be = await gatedBackend();
        const port = await freePort();
        const admin = await freePort();
        gw = await startGateway({
            yaml: fanoutYaml({
                port,
                routes: [{
                    name: 'live', path: '/live', backends: [{ service: '127.0.0.1', port: be.port }],
                    policy: `{heartbeatInterval: 0s, sharing: {enabled: true, lingerAfterLastSubscriber: ${LINGER_MS}ms}}`,
                }],
            }),
            args: ['--access-log', 'off', '--workers', '2', '--admin', `127.0.0.1:${admin}`],
            waitPorts: [port, admin],
        });
        let addr = 2;
        /* Opens a subscriber from the next source address; resolves once counted, with the worker that took it. */
        const open = async opts => {
            const before = await perWorker(admin, 2);
            const h = rawSub(port, '/live/x', { ...opts, localAddress: `127.0.0.${addr++}` });
            let after;
            await waitFor(async () => {
                after = await perWorker(admin, 2);
                return after[0] + after[1] === before[0] + before[1] + 1;
            }, T, 'the new subscriber to be counted');
            h.worker = after.findIndex((v, i) => v === before[i] + 1);
            h.before = before;
            return h;
        };
        /* Subscribers in one state until one was reset on each worker (bounded): each is counted out before the next. */
        const resetOnEach = async (what, opts) => {
            const seen = new Set();
            for (let i = 0; i < 40 && seen.size < 2; i++) {
                const h = await open(opts);
                seen.add(h.worker);
                h.reset();
                await waitFor(async () => {
                    const now = await perWorker(admin, 2);
                    return now[0] === h.before[0] && now[1] === h.before[1];
                }, T, `a reset subscriber (${what}, worker ${h.worker}) to be counted out`);
            }
            assert.equal(seen.size, 2, `no ${what} subscriber landed on one of the workers`);
        };

        /* The first subscriber's worker owns the key; the backend holds the shared stream's head. */
        const first = await open();
        const owner = first.worker;
        const up = await waitFor(() => be.reqs.find(r => r.lei === undefined), T, 'the shared upstream request');

        await resetOnEach('head not in yet', {});
        await resetOnEach('dedicated replay, head not in yet', { lei: 'zzz' });
        assert.equal((await scrape(admin)).get('ssegate_fanout_follower_streams'), 0, 'a follower did not let go');

        up.answer();
        for (let id = 1; id <= 5; id++) up.send(id);
        await waitFor(() => first.data.includes('id: 5\n'), T, 'the first subscriber\'s events');
        await resetOnEach('ring replay', { lei: '3' });
        await resetOnEach('dedicated replay of a live stream', { lei: 'zzz' });
        await resetOnEach('live edge', {});

        /* Every dedicated request that reached the backend (a subscriber reset first may have cut it before) closes. */
        const ded = be.reqs.filter(r => r.lei === 'zzz');
        await waitFor(() => ded.every(r => r.closed), T, 'the dedicated replay requests of reset subscribers to close');
        assert.equal(be.reqs.filter(r => r.lei === undefined).length, 1, 'a second shared upstream request');
        await waitFor(async () => (await scrape(admin)).get('ssegate_fanout_follower_streams') === 0, T, 'the follower to let go');
        assert.deepEqual(await perWorker(admin, 2), owner === 0 ? [1, 0] : [0, 1]);
        assert.equal(up.closed, false, 'the upstream closed while its first subscriber was there');

        /* The last subscriber goes the same way: the upstream closes after the linger. */
        first.reset();
        await waitFor(async () => (await scrape(admin)).get('ssegate_fanout_subscribers') === 0, T, 'the last subscriber to be counted out');
        await waitFor(() => up.closed, T, 'the upstream to close after the last subscriber');
        const m = await scrape(admin);
        assert.equal(m.get('ssegate_fanout_streams'), 0);
        assert.equal(m.get('ssegate_fanout_follower_streams'), 0);
        await gw.stop();
    }),
);

test(
    'HTTP/2 subscribers waiting for the shared head or a dedicated replay: a stream reset and a connection reset ' +
        'count them out',
    { timeout: 60000 * SLOW },
    withLogs(logs, async () => {
        const be = await gatedBackend();
        const port = await freePort();
        const admin = await freePort();
        gw = await startGateway({
            yaml: fanoutYaml({
                port,
                routes: [{
                    name: 'live', path: '/live', backends: [{ service: '127.0.0.1', port: be.port }],
                    policy: `{heartbeatInterval: 0s, sharing: {enabled: true, lingerAfterLastSubscriber: ${LINGER_MS}ms}}`,
                }],
            }),
            args: ['--access-log', 'off', '--workers', '2', '--admin', `127.0.0.1:${admin}`],
            waitPorts: [port, admin],
        });
        const subs = async () => (await scrape(admin)).get('ssegate_fanout_subscribers');
        let sock;
        const ses = http2.connect(`http://127.0.0.1:${port}`, {
            createConnection: () => (sock = net.connect({ port, host: '127.0.0.1' })),
        });
        ses.on('error', () => {});
        track(() => ses.destroy());
        const get = lei => {
            const req = ses.request({ ':path': '/live/x', accept: 'text/event-stream', ...(lei ? { 'last-event-id': lei } : {}) });
            req.on('error', () => {});
            return req;
        };
        get();
        const up = await waitFor(() => be.reqs.find(r => r.lei === undefined), T, 'the shared upstream request');
        const b = get('zzz');
        get();
        await waitFor(async () => (await subs()) === 3, T, 'three subscribers counted');
        await waitFor(() => be.reqs.some(r => r.lei === 'zzz'), T, 'the dedicated replay request');

        b.close(http2.constants.NGHTTP2_CANCEL);
        await waitFor(async () => (await subs()) === 2, T, 'the reset stream to be counted out');
        await waitFor(() => be.reqs.filter(r => r.lei === 'zzz').every(r => r.closed), T, 'its dedicated request to close');

        sock.resetAndDestroy();
        await waitFor(async () => (await subs()) === 0, T, 'the reset connection\'s subscribers to be counted out');
        await waitFor(() => up.closed, T, 'the upstream to close after the linger');
        await gw.stop();
    }),
);

test(
    'a route without sharing: an SSE client that resets its connection while the backend holds the head ends the ' +
        'proxied exchange',
    { timeout: 30000 * SLOW },
    withLogs(logs, async () => {
        const be = await gatedBackend();
        const port = await freePort();
        gw = await startGateway({
            yaml: fanoutYaml({ port, routes: [{ name: 'plain', path: '/plain', backends: [{ service: '127.0.0.1', port: be.port }] }] }),
            args: ['--access-log', 'off'],
            waitPorts: [port],
        });
        const h = rawSub(port, '/plain/x');
        const r = await waitFor(() => be.reqs[0], T, 'the proxied request');
        h.reset();
        await waitFor(() => r.closed, T, 'the proxied exchange to end after the client reset');
        await gw.stop();
    }),
);
