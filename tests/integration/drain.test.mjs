// drain.test.mjs: SIGTERM drain with 200 SSE streams: listeners and /ready at once, idle keep-alive closed, requests in
// flight finish with Connection: close, streams end at event boundaries after a retry hint, spread over the window.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { echoBackend } from './lib/backends.mjs';
import { SLOW, freePort, gatewayYaml, setup, sleep, startGateway, withLogs } from './lib/harness.mjs';
import { RawConn } from './lib/rawhttp.mjs';
import { httpGet, openTimedSse, probeConnect, scrape, sequenceBackends, sharedSequence } from './lib/prod-util.mjs';

setup();
const N = 200;
const WINDOW = 4000;
const SPREAD = 2000;

async function gateway(args) {
    const seq = sharedSequence({ interval: 100, half: 30 });
    const sse = await sequenceBackends(1, seq, { retry: null });
    const echo = await echoBackend();
    const port = await freePort();
    const admin = await freePort();
    const gw = await startGateway({
        yaml: gatewayYaml({
            port,
            routes: [
                { name: 'sse', path: '/sse', backends: [{ name: '127.0.0.1', port: sse.ports[0] }] },
                { name: 'echo', path: '/echo', backends: [{ name: '127.0.0.1', port: echo.port }] },
            ],
        }),
        args: ['--access-log', 'off', '--workers', '2', '--admin', `127.0.0.1:${admin}`, ...args],
        waitPorts: [port, admin],
    });
    seq.start();
    return { seq, sse, echo, port, admin, gw };
}

async function openAll(port, n) {
    const hs = [];
    for (let i = 0; i < n; i++) hs.push(openTimedSse(port, `/sse/${i}`));
    await Promise.all(hs.map(h => h.head));
    const deadline = Date.now() + 5000 * SLOW;
    while (hs.some(h => h.events.length < 2)) {
        if (Date.now() > deadline) throw new Error(`${hs.filter(h => h.events.length < 2).length} streams got no events`);
        await sleep(20);
    }
    for (const h of hs) assert.equal(h.status, 200);
    return hs;
}

let ctx;
test(
    `drain: ${N} SSE streams, --drain-timeout 4s --drain-spread 2s`,
    { timeout: 40000 * SLOW },
    withLogs(() => [ctx?.gw], async () => {
        ctx = await gateway(['--drain-timeout', `${WINDOW}ms`, '--drain-spread', `${SPREAD}ms`]);
        const { gw, port, admin, echo } = ctx;
        const streams = await openAll(port, N);

        /* An idle keep-alive connection, and an ordinary slow request that will be in flight at the signal. */
        const idle = new RawConn(port);
        await idle.connected;
        idle.write('GET /echo/idle HTTP/1.1\r\nHost: gw.test\r\n\r\n');
        const r0 = await idle.response(3000 * SLOW);
        assert.equal(r0.status, 200);
        const slow = new RawConn(port);
        await slow.connected;
        const nBefore = echo.requests.length;
        slow.write('GET /echo/slow?delay=1000 HTTP/1.1\r\nHost: gw.test\r\n\r\n');
        while (echo.requests.length === nBefore) await sleep(5);
        assert.equal((await httpGet(admin, '/ready')).status, 200);

        const t0 = performance.now();
        gw.stopping = true;
        gw.child.kill('SIGTERM');

        /* At once: new connections refused, /ready 503. */
        let refusedAt = null;
        while (performance.now() - t0 < 1000 * SLOW) {
            if ((await probeConnect(port)) === 'refused') {
                refusedAt = performance.now() - t0;
                break;
            }
            await sleep(5);
        }
        assert.ok(refusedAt !== null && refusedAt < 300 * SLOW, `new connections not refused soon after SIGTERM (${refusedAt} ms)`);
        const ready = await httpGet(admin, '/ready');
        assert.equal(ready.status, 503, `/ready answered ${ready.status} while draining`);
        const readyAt = performance.now() - t0;
        assert.ok(readyAt < 400 * SLOW, `/ready 503 only after ${readyAt.toFixed(0)} ms`);

        /* The idle keep-alive connection is closed at once. */
        assert.ok(await idle.waitClose(500 * SLOW), 'idle keep-alive connection still open 500 ms into the drain');
        assert.equal(idle.buf.length, 0, `idle connection got bytes: ${idle.buf.toString('latin1').slice(0, 200)}`);

        /* Metrics during the drain. */
        const m = await scrape(admin);
        assert.equal(m.get('ssegate_draining'), 1);
        assert.ok(m.get('ssegate_drain_connections_remaining') >= N, `drain_connections_remaining ${m.get('ssegate_drain_connections_remaining')}`);

        /* The request in flight completes, with Connection: close, and the connection then closes. */
        const rs = await slow.response(3000 * SLOW);
        assert.equal(rs.status, 200);
        assert.match((rs.headers.connection || []).join(','), /close/i, 'response under way did not carry Connection: close');
        assert.ok(await slow.waitClose(1000 * SLOW), 'connection of the finished request not closed');

        /* Streams keep flowing until the spread starts. */
        const exit = await Promise.race([gw.exited, sleep(WINDOW + 3000 * SLOW).then(() => null)]);
        const exitAt = performance.now() - t0;
        assert.ok(exit, `gateway still running ${exitAt.toFixed(0)} ms after SIGTERM`);
        assert.equal(exit.signal, null);
        assert.equal(exit.code, 0, 'exit code after the drain');
        assert.ok(exitAt < WINDOW + 700 * SLOW, `exited ${exitAt.toFixed(0)} ms after SIGTERM (window ${WINDOW} ms)`);
        await Promise.race([Promise.all(streams.map(h => h.done)), sleep(2000)]);

        const closeAt = [];
        const retries = [];
        for (const [i, h] of streams.entries()) {
            const who = `stream ${i}`;
            assert.ok(h.ended, `${who} still open after the gateway exited`);
            assert.equal(h.complete, true, `${who} did not end with a clean chunked end; tail ${JSON.stringify(h.text.slice(-80))}`);
            const end = h.endedAt - t0;
            closeAt.push(end);
            assert.ok(end >= WINDOW - SPREAD - 50, `${who} closed ${end.toFixed(0)} ms after SIGTERM, before the spread began`);
            assert.ok(end <= WINDOW + 300 * SLOW, `${who} closed ${end.toFixed(0)} ms after SIGTERM, after the window`);
            const late = h.events.filter(e => e.t - t0 >= 1000 && e.t - t0 <= WINDOW - SPREAD - 100).length;
            assert.ok(late >= 5, `${who} got only ${late} events between 1 s and the spread start`);
            /* every event whole and in sequence: a cut mid-event would leave a half ("tick" without its number) */
            const ids = h.events.map(e => Number(e.id));
            for (const [k, e] of h.events.entries()) {
                assert.equal(e.data, `tick ${e.id}`, `${who}: event ${k} is damaged: ${JSON.stringify(e)}`);
                if (k) assert.equal(ids[k], ids[k - 1] + 1, `${who}: gap between ids ${ids[k - 1]} and ${ids[k]}`);
            }
            /* The stream ends: ...complete event \n\n, then the retry field (and at most a blank line). */
            const m2 = /\n\n(retry: ?(\d+)\r?\n)(\r?\n)?$/.exec(h.text);
            assert.ok(m2, `${who} does not end with a retry field after a complete event; tail ${JSON.stringify(h.text.slice(-80))}`);
            const n = Number(m2[2]);
            assert.ok(n >= 1000 && n <= 5000, `${who}: retry ${n} outside 1000..5000`);
            retries.push(n);
            assert.equal(h.partialAtEnd, '', `${who} ended inside a line`);
        }
        closeAt.sort((a, b) => a - b);
        const span = closeAt[closeAt.length - 1] - closeAt[0];
        assert.ok(span >= SPREAD / 2, `close times span only ${span.toFixed(0)} ms of a ${SPREAD} ms spread`);
        const buckets = new Set(closeAt.map(t => Math.floor(t / 100)));
        assert.ok(buckets.size >= 12, `closes fall in only ${buckets.size} of 20 100-ms slots: ${closeAt.map(t => t.toFixed(0)).join(' ')}`);
        let maxIn10 = 0;
        for (let a = 0, b = 0; b < closeAt.length; b++) {
            while (closeAt[b] - closeAt[a] > 10) a++;
            maxIn10 = Math.max(maxIn10, b - a + 1);
        }
        assert.ok(maxIn10 <= N / 5, `${maxIn10} streams closed within one 10 ms window`);
        assert.ok(new Set(retries).size >= 20, `retry values not jittered: ${[...new Set(retries)].join(',')}`);

        if (process.env.SG_IT_VERBOSE) console.log({ refusedAt, readyAt, exitAt, span, buckets: buckets.size, maxIn10, retries: new Set(retries).size });
        assert.match(gw.stderr, /draining: listeners closed/);
        assert.match(gw.stderr, /draining: \d+ connections remain/);
        assert.match(gw.stderr, /drain complete, exiting/);
    }),
);

let ctx2;
test(
    'drain: a second SIGTERM stops at once, exit 0',
    { timeout: 20000 * SLOW },
    withLogs(() => [ctx2?.gw], async () => {
        ctx2 = await gateway(['--drain-timeout', '30s', '--drain-spread', '10s']);
        const { gw, port } = ctx2;
        const streams = await openAll(port, 10);
        gw.stopping = true;
        gw.child.kill('SIGTERM');
        await sleep(400);
        assert.ok(gw.running(), 'gateway exited on the first SIGTERM with streams open and a 30 s window');
        const counts = streams.map(h => h.events.length);
        await sleep(300);
        for (const [i, h] of streams.entries()) {
            assert.ok(!h.ended, `stream ${i} ended during the drain window`);
            assert.ok(h.events.length > counts[i], `stream ${i} stopped getting events during the drain`);
        }
        const t1 = performance.now();
        gw.stopping = true;
        gw.child.kill('SIGTERM');
        const exit = await Promise.race([gw.exited, sleep(3000 * SLOW).then(() => null)]);
        const dt = performance.now() - t1;
        assert.ok(exit, 'gateway still running 3 s after the second SIGTERM');
        assert.equal(exit.signal, null);
        assert.equal(exit.code, 0);
        assert.ok(dt < 1000 * SLOW, `second SIGTERM took ${dt.toFixed(0)} ms to stop the gateway`);
        await Promise.race([Promise.all(streams.map(h => h.done)), sleep(1000)]);
        for (const [i, h] of streams.entries()) assert.ok(h.ended, `stream ${i} still open after the gateway stopped`);
    }),
);
