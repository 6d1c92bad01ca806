// slow-consumer.test.mjs: a client that stops reading while the backend pushes as fast as it can is closed after
// --stall-timeout and counted; a slow but steady reader is not; the gateway's RSS does not grow with what the backend
// keeps sending (the upstream is paused at the client queue's high watermark).
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { SLOW, freePort, gatewayYaml, setup, sleep, startGateway, track, withLogs } from './lib/harness.mjs';
import { rssKiB, scrape } from './lib/prod-util.mjs';

setup();
const LIMIT = 200 * 1024 * 1024;
const STALL = 2000;

/* SSE backend that pushes 8 KiB events as fast as the connection takes them, up to LIMIT bytes per stream. */
async function firehose() {
    const be = { streams: [] };
    const sockets = new Set();
    const event = Buffer.from(`data: ${'x'.repeat(8180)}\n\n`);
    const server = http.createServer((req, res) => {
        req.resume();
        const st = { url: req.url, handed: 0, closed: false };
        be.streams.push(st);
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.on('close', () => {
            st.closed = true;
            st.closedAt = performance.now();
        });
        const pump = () => {
            while (!st.closed && st.handed < LIMIT) {
                st.handed += event.length;
                if (!res.write(event)) return res.once('drain', pump);
            }
            if (!st.closed) res.end();
        };
        pump();
    });
    server.on('connection', s => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
    });
    await new Promise(r => server.listen(0, '127.0.0.1', r));
    be.port = server.address().port;
    track(
        () =>
            new Promise(r => {
                for (const s of sockets) s.destroy();
                server.close(() => r());
            }),
    );
    return be;
}

/* A raw client that sends the request and then reads only when told. */
async function rawClient(port, path) {
    const c = { bytes: 0, ended: false, closed: false };
    const sock = net.connect({ port, host: '127.0.0.1' });
    track(() => sock.destroy());
    c.sock = sock;
    await new Promise((resolve, reject) => {
        sock.once('connect', resolve);
        sock.once('error', reject);
    });
    sock.on('error', e => (c.error = e));
    sock.on('data', d => (c.bytes += d.length));
    sock.on('end', () => (c.ended = true));
    sock.on('close', () => (c.closed = true));
    sock.write(`GET ${path} HTTP/1.1\r\nHost: gw.test\r\n\r\n`);
    return c;
}

let gw;
test(
    'slow consumer: stalled client closed after --stall-timeout 2s and counted, steady slow reader kept, RSS bounded',
    { timeout: 40000 * SLOW },
    withLogs(() => [gw], async () => {
        const be = await firehose();
        const port = await freePort();
        const admin = await freePort();
        gw = await startGateway({
            yaml: gatewayYaml({ port, routes: [{ name: 'fast', path: '/', backends: [{ name: '127.0.0.1', port: be.port }] }] }),
            args: ['--access-log', 'off', '--workers', '2', '--admin', `127.0.0.1:${admin}`, '--stall-timeout', `${STALL}ms`],
            /* ASan's quarantine would hold freed memory and count it as growth */
            env: { ASAN_OPTIONS: 'detect_leaks=1:quarantine_size_mb=1' },
            waitPorts: [port, admin],
        });
        const pid = gw.child.pid;
        await sleep(200);
        const rss0 = rssKiB(pid);
        const m0 = await scrape(admin);
        assert.equal(m0.get('ssegate_slow_consumer_closes_total'), 0);

        /* The stalled client never reads; the steady one takes whatever waits every 500 ms. */
        const stalled = await rawClient(port, '/stalled');
        stalled.sock.pause();
        const t0 = performance.now();
        const steady = await rawClient(port, '/steady');
        steady.sock.pause();
        const ticker = setInterval(() => {
            steady.sock.resume();
            setTimeout(() => steady.sock.pause(), 30);
        }, 500);
        track(() => clearInterval(ticker));

        let rssMax = rss0;
        let closedAt = null;
        const deadline = t0 + STALL + 3000 * SLOW;
        while (performance.now() < deadline) {
            rssMax = Math.max(rssMax, rssKiB(pid));
            const m = await scrape(admin);
            if (closedAt === null && m.get('ssegate_slow_consumer_closes_total') >= 1) closedAt = performance.now() - t0;
            if (closedAt !== null && performance.now() - t0 > STALL + 1500) break;
            await sleep(100);
        }
        clearInterval(ticker);
        const sStalled = be.streams.find(s => s.url === '/stalled');
        const sSteady = be.streams.find(s => s.url === '/steady');
        assert.ok(closedAt !== null, `stalled client not closed ${(STALL + 3000 * SLOW) / 1000} s after it stopped reading`);
        assert.ok(closedAt >= STALL, `closed ${closedAt.toFixed(0)} ms after the request, before ${STALL} ms of stall were possible`);
        assert.ok(sStalled.closed, 'the stalled client\'s upstream stream is still open');
        assert.match(gw.stderr, /slow consumer/, 'no log line for the slow consumer');

        /* Bounded: the backend could hand over only what fits in socket buffers and the queue, not its 200 MB. */
        const handedMB = sStalled.handed / 1048576;
        assert.ok(handedMB < 48, `the backend pushed ${handedMB.toFixed(1)} MB into a stream whose client read nothing`);
        const growth = (rssMax - rss0) / 1024;
        assert.ok(growth < 10, `gateway RSS grew ${growth.toFixed(1)} MB (from ${(rss0 / 1024).toFixed(1)} MB) with a stalled client`);

        if (process.env.SG_IT_VERBOSE) console.log({ closedAt, handedMB, growth, rss0, steady: steady.bytes, steadyHanded: sSteady.handed });
        /* The steady reader, which took bytes every 500 ms, is alive and was not counted. */
        assert.ok(!steady.closed && !steady.ended && !sSteady.closed, 'the steady slow reader was closed');
        assert.ok(steady.bytes > 1048576, `steady reader got only ${steady.bytes} bytes`);
        const m1 = await scrape(admin);
        assert.equal(m1.get('ssegate_slow_consumer_closes_total'), 1);

        /* Reading again, the stalled client finds its connection closed after what was queued. */
        stalled.sock.resume();
        const d2 = Date.now() + 3000 * SLOW;
        while (!stalled.closed && Date.now() < d2) await sleep(20);
        assert.ok(stalled.closed, 'the stalled client\'s socket was not closed by the gateway');
        steady.sock.destroy();
    }),
);
