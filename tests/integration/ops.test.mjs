// ops.test.mjs: operations features: SIGHUP reload (live streams keep their backend), heartbeats, stall timeout.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { echoBackend, sseBackend } from './lib/backends.mjs';
import { SLOW, freePort, gatewayYaml, setup, sleep, startGateway, waitFor, withLogs, writeTemp } from './lib/harness.mjs';
import { RawConn, request } from './lib/rawhttp.mjs';
import { openSse, waitEvents } from './lib/sseclient.mjs';

setup();
let gw;
const logs = () => [gw];

test(
    'SIGHUP reload: new requests use the new routes, a live SSE stream keeps its backend, a bad config is refused',
    withLogs(logs, async () => {
        const a = await echoBackend();
        const b = await echoBackend();
        const s1 = await sseBackend();
        const s2 = await sseBackend();
        const port = await freePort();
        const cfg = (echo, sse) =>
            gatewayYaml({
                port,
                routes: [
                    { name: 'echo', path: '/echo', backends: [{ name: '127.0.0.1', port: echo.port }] },
                    { name: 'events', path: '/events', backends: [{ name: '127.0.0.1', port: sse.port }] },
                ],
            });
        const file = writeTemp('reload.yaml', cfg(a, s1));
        gw = await startGateway({ config: file, args: ['--access-log', 'off'], waitPorts: [port] });

        assert.equal((await request(port, { path: '/echo/before' })).status, 200);
        assert.equal(a.requests.length, 1);
        const h = openSse(port, '/events/live');
        const st = await s1.stream(0);
        st.send('before reload');
        await waitEvents(h, 1, 2000);

        fs.writeFileSync(file, cfg(b, s2));
        gw.child.kill('SIGHUP');
        await waitFor(
            async () => {
                await request(port, { path: '/echo/probe' });
                return b.requests.length > 0;
            },
            5000 * SLOW,
            'new requests to reach the new backend after SIGHUP',
        );
        const aBefore = a.requests.length;
        assert.equal((await request(port, { path: '/echo/after' })).status, 200);
        assert.equal(a.requests.length, aBefore, 'a request after the reload went to the old backend');
        assert.equal(b.requests.at(-1).url, '/echo/after');

        /* the stream opened before the reload still flows from its original backend */
        st.send('after reload');
        await waitEvents(h, 2, 2000);
        assert.equal(h.events[1].data, 'after reload');
        assert.equal(h.ended, false);
        const h2 = openSse(port, '/events/new');
        await s2.stream(0, 3000);
        assert.equal(s1.streams.length, 1, 'a new stream went to the old SSE backend');

        /* a broken config is refused and the running one stays */
        fs.writeFileSync(file, cfg(a, s1).replace(/port: (\d+)\}/, 'port: notaport}'));
        const errLen = gw.stderr.length;
        gw.child.kill('SIGHUP');
        await waitFor(() => /:\d+:\d+: /.test(gw.stderr.slice(errLen)), 3000 * SLOW, 'the reload error with its position');
        assert.ok(gw.running(), 'the gateway exited on a bad reload');
        const bBefore = b.requests.length;
        assert.equal((await request(port, { path: '/echo/still' })).status, 200);
        assert.equal(b.requests.length, bBefore + 1, 'the refused config took effect');
        h.close();
        h2.close();
    }),
);

for (const firstEvent of [false, true]) {
    test(
        `--heartbeat 500ms: comments on an idle SSE stream (${firstEvent ? 'after an event' : 'before any event'}), never inside an event`,
        withLogs(logs, async () => {
            const s = await sseBackend();
            const port = await freePort();
            gw = await startGateway({
                yaml: gatewayYaml({ port, routes: [{ name: 'events', path: '/events', backends: [{ name: '127.0.0.1', port: s.port }] }] }),
                args: ['--access-log', 'off', '--heartbeat', '500ms'],
                waitPorts: [port],
            });
            const h = openSse(port, '/events/hb');
            const st = await s.stream(0);
            await h.head;
            if (firstEvent) {
                st.send('first');
                await waitEvents(h, 1, 2000);
            }
            const before = h.text.length;
            await sleep(1700);
            const idle = h.text.slice(before);
            const comments = idle.split('\n').filter(l => l.startsWith(':')).length;
            assert.ok(comments >= 2, `${comments} heartbeat comments in 1.7 s idle: ${JSON.stringify(idle)}`);
            /* an event split over 1.2 s must not get a heartbeat in its middle */
            const mark = h.text.length;
            st.sendRaw('data: par');
            await sleep(1200);
            st.sendRaw('tial\n\n');
            await waitEvents(h, firstEvent ? 2 : 1, 2000);
            assert.equal(h.events.at(-1).data, 'partial');
            assert.match(h.text.slice(mark), /^data: partial\n\n/, `heartbeat inside the event: ${JSON.stringify(h.text.slice(mark))}`);
            h.close();
        }),
    );
}

test(
    '--stall-timeout 1s: a client that reads nothing while bytes wait is closed, and so is its upstream',
    withLogs(logs, async () => {
        const s = await sseBackend();
        const port = await freePort();
        gw = await startGateway({
            yaml: gatewayYaml({ port, routes: [{ name: 'events', path: '/events', backends: [{ name: '127.0.0.1', port: s.port }] }] }),
            args: ['--access-log', 'off', '--stall-timeout', '1s'],
            waitPorts: [port],
        });
        const c = new RawConn(port);
        await c.connected;
        c.write('GET /events/stall HTTP/1.1\r\nHost: gw.test\r\n\r\n');
        const st = await s.stream(0);
        await c.until(() => c.buf.length > 0, 3000, 'the head');
        c.sock.pause();
        const t0 = performance.now();
        const payload = 'y'.repeat(8000);
        /* fill every buffer on the way, then keep a little flowing */
        for (let i = 0; i < 4000 && !st.closed; i++) {
            if (!st.res.write(`data: ${payload}\n\n`)) await Promise.race([new Promise(r => st.res.once('drain', r)), sleep(200)]);
            if (performance.now() - t0 > 8000 * SLOW) break;
        }
        await waitFor(() => st.closed, 8000 * SLOW, 'the stalled client and its upstream to be closed');
        const dt = st.closedAt - t0;
        assert.ok(dt >= 900, `closed after ${dt.toFixed(0)} ms, before the stall timeout`);
        c.destroy();
    }),
);
