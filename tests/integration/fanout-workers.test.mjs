// fanout-workers.test.mjs: one shared upstream per instance, whatever the worker count. With --workers 2 and 3 and
// subscribers spread over every worker (source addresses over 127.0.0.x; ssegate_fanout_worker_subscribers shows
// where each landed), the backend sees exactly one request for the key; every subscriber gets every event once and
// in order, including one that arrives with Last-Event-ID on a worker that does not hold the upstream (served from
// that worker's copy of the ring), across the owner worker losing all its own subscribers (the upstream stays for the
// others, past the linger) and across a backend killed mid-event (failover with Last-Event-ID, driven by a worker with
// no subscriber of its own). Once the last subscriber of the instance leaves, the upstream closes after the linger.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { WebSocketServer } from 'ws';
import { test } from 'node:test';
import { sseBackend } from './lib/backends.mjs';
import { fanoutYaml, ids, perWorker, range } from './lib/fanout-util.mjs';
import { SLOW, freePort, setup, sleep, startGateway, track, waitFor, withLogs } from './lib/harness.mjs';
import { scrape } from './lib/prod-util.mjs';
import { h2Sse, openSse, waitEvents } from './lib/sseclient.mjs';

setup();
const T = 5000 * SLOW;
const LINGER_MS = 400;
let gw;
const logs = () => [gw];

const total = counts => counts.reduce((a, b) => a + b, 0);

/* A gateway with one route /live shared by an SSEPolicy (policy), on `workers` workers, with an admin port. */
async function startShared({ workers, backends, services = [], policy = '{sharing: {enabled: true}}', args = [] }) {
    const port = await freePort();
    const admin = await freePort();
    gw = await startGateway({
        yaml: fanoutYaml({ port, routes: [{ name: 'live', path: '/live', backends, policy }], services }),
        args: ['--access-log', 'off', '--workers', String(workers), '--admin', `127.0.0.1:${admin}`, ...args],
        waitPorts: [port, admin],
    });
    return { port, admin };
}

/* open(headers): a subscriber to path from the next source address (127.0.0.2 on); h.worker is the worker that took
 * it, from the per-worker gauge before (h.before) and after. */
function subscriberOpener({ port, admin }, workers, path) {
    let addr = 2;
    return async headers => {
        const before = await perWorker(admin, workers);
        const h = openSse(port, path, { localAddress: `127.0.0.${addr++}`, headers });
        track(() => h.close());
        let after;
        await waitFor(async () => {
            after = await perWorker(admin, workers);
            return total(after) === total(before) + 1;
        }, T, 'the new subscriber to be counted');
        h.worker = after.findIndex((v, i) => v === before[i] + 1);
        h.before = before;
        return h;
    };
}

/* Opens subscribers until one lands on a worker other than owner (at most 40): {h, opens}. Those that land on the
 * owner are closed and counted out before the next open() takes its "before", or that one would never see its +1. */
async function onOtherWorker(open, admin, workers, headers, owner) {
    for (let opens = 1; opens <= 40; opens++) {
        const h = await open(headers);
        if (h.worker !== owner) return { h, opens };
        h.head.catch(() => {}); /* closed before its head, maybe */
        h.close();
        await waitFor(async () => (await perWorker(admin, workers))[owner] === h.before[owner], T,
            'the closed subscriber to be counted out');
    }
    throw new Error(`no subscriber landed on a worker other than ${owner}`);
}

for (const WORKERS of [2, 3]) {
    test(
        `--workers ${WORKERS}: one upstream request for the key however the subscribers spread over the workers; ` +
            'ring replay on a follower worker, the owner worker without subscribers, failover',
        { timeout: 60000 * SLOW },
        withLogs(logs, async () => {
            const b1 = await sseBackend({ retry: 200 });
            const b2 = await sseBackend({ retry: 200 });
            const g = await startShared({
                workers: WORKERS,
                backends: [{ service: 'svc', port: 80 }],
                services: [{ name: 'svc', endpoints: [b1.port, b2.port] }],
                policy: `{sharing: {enabled: true, lingerAfterLastSubscriber: ${LINGER_MS}ms}}`,
            });
            const { admin } = g;
            const upstreams = () => b1.streams.length + b2.streams.length;
            const subs = [];
            const open = subscriberOpener(g, WORKERS, '/live/board');

            /* The first subscriber's worker holds the upstream (the owner). */
            const first = await open();
            subs.push(first);
            const owner = first.worker;
            await waitFor(() => upstreams() === 1, T, 'the shared upstream request');
            await first.head;
            const [A, B] = b1.streams.length ? [b1, b2] : [b2, b1];
            const st = A.streams[0];
            /* More subscribers until every worker serves some (bounded). */
            for (let i = 0; i < 80; i++) {
                const counts = await perWorker(admin, WORKERS);
                if (counts.every(c => c >= 2)) break;
                subs.push(await open());
            }
            const counts = await perWorker(admin, WORKERS);
            assert.ok(counts.every(c => c >= 1), `subscribers did not reach every worker: ${counts}`);
            for (const s of subs) await s.head;
            assert.equal(upstreams(), 1, `the backend saw ${upstreams()} requests for one key`);
            assert.equal(A.connections, 1, 'more than one backend connection');

            for (let i = 1; i <= 5; i++) st.send(`event ${i}`);
            for (const s of subs) await waitEvents(s, 5, T);

            /* Last-Event-ID: 3 on a worker that does not hold the upstream: events 4 and 5 from that worker's ring,
             * then live ones, without a second backend request. */
            const { h: lei, opens: leiOpens } = await onOtherWorker(open, admin, WORKERS, { 'last-event-id': '3' }, owner);
            await lei.head;
            await waitEvents(lei, 2, T);
            assert.deepEqual(ids(lei), [4, 5]);
            assert.equal(upstreams(), 1, 'the replay cost a backend request');

            /* Every subscriber of the owner worker leaves: the upstream stays (past the linger) for the others. */
            const gone = subs.filter(s => s.worker === owner);
            const kept = subs.filter(s => s.worker !== owner).concat([lei]);
            for (const s of gone) s.close();
            await waitFor(async () => (await perWorker(admin, WORKERS))[owner] === 0, T, 'the owner worker without subscribers');
            await sleep(LINGER_MS * 3);
            assert.equal(st.closed, false, 'the upstream closed while other workers had subscribers');
            for (let i = 6; i <= 8; i++) st.send(`event ${i}`);
            for (const s of kept) await waitEvents(s, s === lei ? 5 : 8, T);

            /* The backend dies mid-event: the other endpoint resumes after the last complete event. */
            st.sendRaw('id: 9\ndata: partial ');
            await sleep(100);
            await A.close();
            const nb = await B.stream(0, T * 2);
            assert.equal(nb.lastEventId, '8', 'the shared upstream did not resume after the last complete event');
            for (let i = 9; i <= 11; i++) nb.send(`event ${i}`);
            for (const s of kept) await waitEvents(s, s === lei ? 8 : 11, T);
            await sleep(100);
            for (const s of kept) {
                assert.deepEqual(ids(s), s === lei ? range(4, 11) : range(1, 11), `subscriber on worker ${s.worker}`);
                assert.ok(!s.text.includes('partial'), 'the partial event reached a subscriber');
                assert.equal(s.ended, false, 'a subscriber\'s stream broke');
            }
            for (const s of gone) assert.deepEqual(ids(s), range(1, 5));
            assert.equal(A.streams.length + B.streams.length, 2, 'one request, then one resume: nothing else');

            const m = await scrape(admin);
            assert.equal(m.get('ssegate_fanout_streams'), 1, 'shared upstreams open');
            assert.equal(m.get('ssegate_fanout_follower_streams'), new Set(kept.map(s => s.worker)).size);
            assert.equal(m.get('ssegate_fanout_failovers_total'), 1);
            assert.equal(m.get('ssegate_fanout_replays_total', { source: 'ring' }), leiOpens);
            assert.equal(m.get('ssegate_fanout_replays_total', { source: 'backend' }), 0);
            assert.equal(m.get('ssegate_fanout_subscribers'), kept.length);

            /* The last subscriber of the instance leaves: the upstream closes after the linger, not before. */
            for (const s of kept) s.close();
            await waitFor(() => nb.closed, T, 'the upstream to close after the last subscriber');
            const m2 = await scrape(admin);
            assert.equal(m2.get('ssegate_fanout_streams'), 0);
            assert.equal(m2.get('ssegate_fanout_follower_streams'), 0);
            await gw.stop();
        }),
    );
}

test(
    '--workers 2: a Last-Event-ID that is the first subscriber of a follower worker waits for the owner\'s ring: ring ' +
        'replay, and a dedicated backend replay that merges onto the shared stream',
    { timeout: 60000 * SLOW },
    withLogs(logs, async () => {
        const be = await sseBackend();
        const g = await startShared({ workers: 2, backends: [{ service: '127.0.0.1', port: be.port }] });
        const { admin } = g;
        const open = subscriberOpener(g, 2, '/live/x');
        /* A subscriber on the other worker only, with that header. */
        const onFollower = async (headers, owner) => (await onOtherWorker(open, admin, 2, headers, owner)).h;
        const first = await open();
        const owner = first.worker;
        const st = await be.stream(0, T);
        await first.head;
        for (let i = 1; i <= 5; i++) st.send(`event ${i}`);
        await waitEvents(first, 5, T);

        const lei = await onFollower({ 'last-event-id': '3' }, owner);
        await lei.head;
        await waitEvents(lei, 2, T);
        assert.deepEqual(ids(lei), [4, 5], 'replayed from the follower\'s copy of the ring');
        assert.equal(be.streams.filter(s => !s.lastEventId).length, 1, 'a second shared upstream');
        let m = await scrape(admin);
        assert.equal(m.get('ssegate_fanout_follower_streams'), 1);
        lei.close();
        await waitFor(async () => (await scrape(admin)).get('ssegate_fanout_follower_streams') === 0, T, 'the follower to let go');

        /* An id the ring does not know, on a fresh follower: a dedicated request carries it; when its backend replay
         * reaches an event the ring holds (4), the client moves onto the shared stream (5 from the ring, 6 live). */
        const unk = await onFollower({ 'last-event-id': 'zzz' }, owner);
        const ded = await waitFor(() => be.streams.filter(s => s.lastEventId === 'zzz' && !s.closed).at(-1), T, 'the dedicated replay request');
        await unk.head;
        ded.send('replayed 4', { id: 4 });
        await waitEvents(unk, 2, T);
        await waitFor(() => ded.closed, T, 'the dedicated exchange to close after the merge');
        st.send('event 6');
        await waitEvents(unk, 3, T);
        await waitEvents(first, 6, T);
        assert.deepEqual(ids(unk), [4, 5, 6]);
        assert.deepEqual(ids(first), range(1, 6));
        m = await scrape(admin);
        assert.equal(m.get('ssegate_fanout_merges_total'), 1);
        assert.equal(m.get('ssegate_fanout_streams'), 1);
        assert.equal(be.streams.filter(s => !s.lastEventId).length, 1, 'a second shared upstream');
        first.close();
        unk.close();
        await gw.stop();
    }),
);

test(
    '--workers 2: a drain while the owner worker has no subscriber left: it keeps the upstream up for the other ' +
        'worker, whose subscribers end at their own drain moments, at event boundaries, with a retry: hint',
    { timeout: 60000 * SLOW },
    withLogs(logs, async () => {
        const be = await sseBackend();
        const g = await startShared({
            workers: 2,
            backends: [{ service: '127.0.0.1', port: be.port }],
            args: ['--drain-timeout', '2000ms', '--drain-spread', '1500ms'],
        });
        const { admin } = g;
        const open = subscriberOpener(g, 2, '/live/d');
        const subs = [];
        for (let i = 0; i < 60; i++) {
            subs.push(await open());
            if (subs.filter(s => s.worker !== subs[0].worker).length >= 3) break;
        }
        const owner = subs[0].worker;
        const mine = subs.filter(s => s.worker === owner);
        const others = subs.filter(s => s.worker !== owner);
        assert.ok(others.length >= 3, 'subscribers did not reach the other worker');
        const st = await be.stream(0, T);
        for (const s of subs) await s.head;
        for (const s of mine) {
            s.head.catch(() => {});
            s.close();
        }
        await waitFor(async () => (await perWorker(admin, 2))[owner] === 0, T, 'the owner worker without subscribers');
        let n = 0;
        const timer = setInterval(() => st.send(`tick ${++n}`), 30);
        track(() => clearInterval(timer));
        await waitEvents(others[0], 3, T);
        gw.stopping = true;
        gw.child.kill('SIGTERM');
        await Promise.all(others.map(c => c.done));
        clearInterval(timer);
        const exit = await gw.exited;
        assert.equal(exit.code, 0, `exit ${exit.code} ${exit.signal}`);
        for (const c of others) {
            assert.equal(c.complete, true, 'a subscriber was cut instead of ended');
            /* Had the owner worker left with the upstream, its followers' subscribers would have ended then, without
             * the hint their own drain moment sends. */
            assert.match(c.text, /\n\nretry: \d+\n\n$/, `no retry: hint at an event boundary at the end: ${JSON.stringify(c.text.slice(-80))}`);
            const got = ids(c);
            assert.ok(got.length >= 3);
            assert.deepEqual(got, range(1, got.length), 'events lost or repeated before the drain ended the stream');
        }
        assert.equal(be.streams.length, 1, 'more than one upstream request');
        await waitFor(() => st.closed, T, 'the shared upstream closed once its subscribers were gone');
    }),
);

test(
    '--workers 2: HTTP/2 subscribers on both workers share the one upstream; each event is queued by reference on ' +
        'both workers (the atomic count of a buffer several threads hold)',
    { timeout: 60000 * SLOW },
    withLogs(logs, async () => {
        const be = await sseBackend();
        const { port, admin } = await startShared({ workers: 2, backends: [{ service: '127.0.0.1', port: be.port }] });
        const subs = [];
        for (let i = 0; i < 60; i++) {
            const counts = await perWorker(admin, 2);
            if (counts.every(c => c >= 3)) break;
            const ses = http2.connect(`http://127.0.0.1:${port}`, { localAddress: `127.0.0.${2 + i}` });
            ses.on('error', () => {});
            track(() => ses.destroy());
            /* Two streams on each connection: they land on the connection's worker. */
            for (let k = 0; k < 2; k++) subs.push(h2Sse(ses, '/live/h2'));
            await waitFor(async () => total(await perWorker(admin, 2)) === subs.length, T, 'the streams to be counted');
        }
        const counts = await perWorker(admin, 2);
        assert.ok(counts.every(c => c >= 1), `HTTP/2 subscribers did not reach both workers: ${counts}`);
        const st = await be.stream(0, T);
        await waitFor(() => subs.every(s => s.status === 200), T, 'h2 heads');
        const big = 'x'.repeat(20000);
        for (let i = 1; i <= 20; i++) st.send(i % 5 === 0 ? `h2 ${i} ${big}` : `h2 ${i}`);
        await waitFor(() => subs.every(s => s.events.length >= 20), T, 'every event on every HTTP/2 stream');
        for (const s of subs) assert.deepEqual(s.events.map(e => Number(e.id)), range(1, 20));
        assert.ok(subs.every(s => s.events[4].data.endsWith(big)), 'a large event arrived altered');
        assert.equal(be.streams.length, 1, 'more than one upstream request');
        const m = await scrape(admin);
        assert.equal(m.get('ssegate_fanout_streams'), 1);
        assert.equal(m.get('ssegate_fanout_follower_streams'), 1);
        for (const s of new Set(subs.map(x => x.ses))) s.destroy();
        await gw.stop();
    }),
);

test(
    'HTTP/2 subscribers share after a WebSocket handshake on the same worker (the request state the two ' +
        'protocols share is reset for each HTTP/2 request)',
    { timeout: 60000 * SLOW },
    withLogs(logs, async () => {
        const be = await sseBackend();
        const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
        await new Promise(r => wss.on('listening', r));
        track(() => new Promise(r => wss.close(() => r())));
        const port = await freePort();
        gw = await startGateway({
            yaml: fanoutYaml({
                port,
                routes: [
                    { name: 'live', path: '/live', backends: [{ service: '127.0.0.1', port: be.port }], policy: '{sharing: {enabled: true}}' },
                    { name: 'ws', path: '/ws', backends: [{ service: '127.0.0.1', port: wss.address().port }] },
                ],
            }),
            args: ['--access-log', 'off', '--workers', '1'],
            waitPorts: [port],
        });
        /* A WebSocket handshake on the one worker: the client's request and the backend's 101 both carry the upgrade
         * headers through the worker's request state. */
        const answer = await new Promise((resolve, reject) => {
            const s = net.connect(port, '127.0.0.1');
            track(() => s.destroy());
            let got = '';
            s.setEncoding('latin1');
            s.on('data', d => {
                got += d;
                if (got.includes('\r\n\r\n')) {
                    s.destroy();
                    resolve(got);
                }
            });
            s.on('error', reject);
            s.on('close', () => resolve(got));
            s.write('GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
                'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
        });
        assert.match(answer, /^HTTP\/1\.1 101 /, 'the WebSocket handshake failed');
        const before = be.streams.length;
        const ses = http2.connect(`http://127.0.0.1:${port}`);
        ses.on('error', () => {});
        track(() => ses.destroy());
        const subs = [h2Sse(ses, '/live/h2'), h2Sse(ses, '/live/h2')];
        const st = await be.stream(before, T);
        await waitFor(() => subs.every(s => s.status === 200), T, 'h2 heads');
        for (let i = 1; i <= 3; i++) st.send(`e ${i}`);
        await waitFor(() => subs.every(s => s.events.length >= 3), T, 'every event on both streams');
        /* Give a second, unshared upstream request the time to arrive, were there one. */
        await sleep(300);
        assert.equal(be.streams.length, before + 1, 'an HTTP/2 request after an upgrade was not shared');
        ses.destroy();
        await gw.stop();
    }),
);
