// hostile-h2-window.test.mjs: HTTP/2 clients that open many streams with SETTINGS_INITIAL_WINDOW_SIZE 0 and never
// send WINDOW_UPDATE, in front of a busy SSE backend. What the gateway buffers for a connection stays under
// --h2-conn-buffer (the metrics say so, and RSS agrees), the streams are reset after --stall-timeout, a connection
// whose every stream is so stalled is closed with GOAWAY, and a bystander on another connection keeps its events.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import http2 from 'node:http2';
import { test } from 'node:test';
import { zeroWindow } from './lib/h2attack.mjs';
import { SLOW, freePort, gatewayYaml, setup, sleep, startGateway, track, waitFor, withLogs } from './lib/harness.mjs';
import { rssKiB, scrape } from './lib/prod-util.mjs';

setup();

const CONNS = 4;
const STREAMS = 128;
const BUDGET = 512 * 1024;
const STALL = 1500;
/* What one connection may hold beyond its budget: the stream that crosses it adds one upstream read (a pooled
 * 20 KiB chunk at most), and each started stream may add one more before it is paused. */
const SLACK = 64 * 1024;

/* An SSE backend: /zw streams push 8 KiB events as fast as the gateway takes them (until it stops reading);
 * /calm streams send a small event every 50 ms. Counts open TCP connections. */
async function busyBackend() {
    const be = { open: 0, accepted: 0, handed: 0 };
    const sockets = new Set();
    const event = Buffer.from(`data: ${'x'.repeat(8180)}\n\n`);
    const server = http.createServer((req, res) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        let closed = false;
        res.on('close', () => (closed = true));
        if (req.url.startsWith('/calm')) {
            let n = 0;
            const t = setInterval(() => (closed ? clearInterval(t) : res.write(`id: ${++n}\ndata: calm\n\n`)), 50);
            track(() => clearInterval(t));
            return;
        }
        const pump = () => {
            while (!closed) {
                be.handed += event.length;
                if (!res.write(event)) return res.once('drain', pump);
            }
        };
        pump();
    });
    server.on('connection', s => {
        be.open++;
        be.accepted++;
        sockets.add(s);
        s.on('close', () => {
            be.open--;
            sockets.delete(s);
        });
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

/* A well-behaved HTTP/2 client reading one SSE stream; counts the events it gets. */
async function bystander(port) {
    const b = { events: 0, reset: false, closed: false };
    const ses = http2.connect(`http://127.0.0.1:${port}`);
    ses.on('error', () => {});
    track(() => ses.destroy());
    const req = ses.request({ ':path': '/calm' }, { endStream: true });
    req.setEncoding('utf8');
    req.on('data', d => (b.events += (d.match(/data: calm/g) || []).length));
    req.on('error', () => {});
    req.on('close', () => {
        b.closed = true;
        b.reset = req.rstCode !== undefined && req.rstCode !== http2.constants.NGHTTP2_NO_ERROR;
    });
    return b;
}

let gw;
test(
    'zero-window clients: buffered bytes stay under --h2-conn-buffer, stalled streams are reset, connections closed',
    { timeout: 90000 * SLOW },
    withLogs(() => [gw], async () => {
        const be = await busyBackend();
        const port = await freePort();
        const admin = await freePort();
        gw = await startGateway({
            yaml: gatewayYaml({ port, routes: [{ name: 'busy', path: '/', backends: [{ name: '127.0.0.1', port: be.port }] }] }),
            args: ['--access-log', 'off', '--workers', '2', '--admin', `127.0.0.1:${admin}`,
                '--stall-timeout', `${STALL}ms`, '--h2-conn-buffer', String(BUDGET)],
            /* ASan's quarantine would hold freed memory and count it as growth */
            env: { ASAN_OPTIONS: 'detect_leaks=1:quarantine_size_mb=1' },
            waitPorts: [port, admin],
        });
        const pid = gw.child.pid;
        await sleep(200);
        const rss0 = rssKiB(pid);
        const by = await bystander(port);

        const atk = await zeroWindow({ port, conns: CONNS, streams: STREAMS, path: '/zw' });
        track(() => atk.close());

        /* Until every connection has filled its budget once: the peak of what is held, sampled all along. */
        let maxBuffered = 0;
        let maxRss = rss0;
        const sample = async () => {
            const m = await scrape(admin);
            maxBuffered = Math.max(maxBuffered, m.get('ssegate_h2_buffered_bytes'));
            maxRss = Math.max(maxRss, rssKiB(pid));
            return m;
        };
        await waitFor(async () => (await sample()).get('ssegate_h2_buffer_pauses_total') >= CONNS, 20000 * SLOW,
            'every attacking connection to fill its buffer budget');
        /* Hold the attack a while longer: a gateway without the budget keeps taking bytes meanwhile. */
        for (let i = 0; i < 10; i++) {
            await sample();
            await sleep(50);
        }

        /* Then the stall clock runs out: streams are reset, and connections with nothing else are closed. */
        const m = await waitFor(async () => {
            const x = await sample();
            return x.get('ssegate_h2_stall_closes_total') >= CONNS && x ;
        }, 60000 * SLOW, 'every attacking connection to be closed for stalling');
        await waitFor(() => atk.streams.every(s => s.closed) && atk.sessionsClosed >= CONNS, 10000 * SLOW,
            'the client to see every stream and connection closed');

        if (process.env.SG_IT_VERBOSE)
            console.log({ maxBuffered, growthMiB: (maxRss - rss0) / 1024, handedMiB: be.handed / 1048576, resets: m.get('ssegate_h2_stall_resets_total') });
        assert.ok(maxBuffered > 0, 'nothing was ever buffered: the attack did not reach the gateway');
        assert.ok(maxBuffered <= CONNS * (BUDGET + SLACK),
            `${maxBuffered} bytes buffered for ${CONNS} connections with a budget of ${BUDGET} each`);
        /* Without the budget each stream holds about 290 KiB: 512 streams took ~145 MB. */
        const growthMiB = (maxRss - rss0) / 1024;
        assert.ok(growthMiB < 24, `gateway RSS grew ${growthMiB.toFixed(1)} MiB under ${CONNS}x${STREAMS} zero-window streams`);

        assert.ok(atk.streams.every(s => s.status === 200), 'some attacking stream got no response head');
        assert.ok(atk.streams.every(s => s.reset || s.closed), 'an attacking stream was left open');
        assert.ok(atk.goaways >= CONNS, `${atk.goaways} GOAWAYs for ${CONNS} stalled connections`);
        const resets = m.get('ssegate_h2_stall_resets_total');
        assert.ok(resets >= 1 && resets <= CONNS * STREAMS, `${resets} streams reset for ${CONNS * STREAMS} opened`);
        assert.equal(m.get('ssegate_h2_stall_closes_total'), CONNS);
        /* One log line per closed connection, none per stream. */
        const lines = gw.stderr.split('\n').filter(l => /blocked by flow control/.test(l));
        assert.equal(lines.length, CONNS, `log lines about stalled connections:\n${lines.join('\n')}`);

        /* Everything is given back: no byte buffered, no stream open, every upstream closed but the bystander's. */
        const after = await waitFor(async () => {
            const x = await scrape(admin);
            return x.get('ssegate_h2_buffered_bytes') === 0 && be.open <= 1 && x;
        }, 10000 * SLOW, 'the buffers and upstream connections to be released');
        assert.equal(after.get('ssegate_h2_buffered_bytes'), 0);
        assert.ok(be.open <= 1, `${be.open} backend connections still open`);

        /* The bystander on its own connection was never paused or reset by the attack on the others. */
        const before = by.events;
        await waitFor(() => by.events >= before + 5, 5000 * SLOW, 'the bystander to keep getting events');
        assert.ok(!by.reset && !by.closed, 'the bystander stream was reset or closed');
    }),
);

test('--h2-conn-buffer below one DATA frame or above 1 GiB is refused', () => {
    for (const v of ['16383', '1073741825', 'x', '-1']) {
        const r = spawnSync(process.env.SSEGATE_BIN || './ssegate', ['-c', '/nonexistent.yaml', '--h2-conn-buffer', v], { encoding: 'utf8' });
        assert.equal(r.status, 2, `--h2-conn-buffer ${v}`);
        assert.match(r.stderr, /--h2-conn-buffer: expected a number from 16384 to 1073741824/);
    }
});
