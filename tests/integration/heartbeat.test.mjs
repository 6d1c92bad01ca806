// heartbeat.test.mjs: --heartbeat 1s puts a ":" comment on idle SSE streams about every second, never inside an event
// (neither mid-line nor between the lines of one event), not on busy streams, and a RoutePolicy can turn it off.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sseBackend } from './lib/backends.mjs';
import { SLOW, freePort, setup, sleep, startGateway, withLogs } from './lib/harness.mjs';
import { openTimedSse, prodYaml } from './lib/prod-util.mjs';

setup();

const comments = (h, from = 0, to = Infinity) => h.lines.filter(l => l.line.startsWith(':') && l.t >= from && l.t <= to);

let gw;
test(
    '--heartbeat 1s: ":" about every second on idle streams, only between events; none on busy streams; RoutePolicy 0s turns it off',
    { timeout: 30000 * SLOW },
    withLogs(() => [gw], async () => {
        const be = await sseBackend();
        const port = await freePort();
        gw = await startGateway({
            yaml: prodYaml({
                port,
                routes: [
                    { name: 'hb', path: '/hb', backends: [{ service: '127.0.0.1', port: be.port }] },
                    { name: 'quiet', path: '/quiet', backends: [{ service: '127.0.0.1', port: be.port }], heartbeat: '0s' },
                ],
            }),
            args: ['--access-log', 'off', '--workers', '2', '--heartbeat', '1s'],
            waitPorts: [port],
        });
        const idle = openTimedSse(port, '/hb/idle');
        const busy = openTimedSse(port, '/hb/busy');
        const quiet = openTimedSse(port, '/quiet/idle');
        await Promise.all([idle.head, busy.head, quiet.head]);
        await be.stream(2);
        const sIdle = be.streams.find(s => s.url === '/hb/idle');
        const sBusy = be.streams.find(s => s.url === '/hb/busy');
        const sQuiet = be.streams.find(s => s.url === '/quiet/idle');

        /* Busy: an event every 300 ms, so it is never idle for a second. */
        let n = 0;
        const busyTimer = setInterval(() => sBusy.send(`busy ${++n}`), 300);
        try {
            sIdle.send('hello');
            sQuiet.send('hello');
            const t0 = performance.now();
            await sleep(3400);
            const hb = comments(idle, t0);
            assert.ok(hb.length >= 2 && hb.length <= 4, `${hb.length} heartbeats in 3.4 s idle: ${hb.map(l => (l.t - t0).toFixed(0)).join(' ')}`);
            assert.ok(idle.lines.filter(l => l.line.startsWith(':')).every(l => l.line === ':'), 'heartbeat is not a bare ":" line');
            const times = [idle.events[0].t, ...hb.map(l => l.t)];
            for (let i = 1; i < times.length; i++) {
                const d = times[i] - times[i - 1];
                assert.ok(d >= 800 && d <= 1500 * SLOW, `heartbeat ${i} came ${d.toFixed(0)} ms after the previous line`);
            }

            /* Half an event, mid-line, 2.5 s idle, then the rest: no ":" may land inside. */
            const h1 = performance.now();
            sIdle.sendRaw('id: 2\ndata: first');
            await sleep(2500);
            sIdle.sendRaw(' half\n\n');
            await sleep(100);
            const h2 = performance.now();
            /* Then a whole first line, 1.6 s idle, then the second line and the end of the event. */
            sIdle.sendRaw('id: 3\ndata: line one\n');
            await sleep(1600);
            sIdle.sendRaw('data: line two\n\n');
            await sleep(1300);
            const h3 = performance.now();

            assert.equal(comments(idle, h1, h2 - 50).length, 0, `":" inside event 2 (mid-line): ${JSON.stringify(idle.text.slice(-200))}`);
            assert.equal(comments(idle, h2, h3 - 1250).length, 0, `":" inside event 3 (between its lines): ${JSON.stringify(idle.text.slice(-200))}`);
            const ev2 = idle.events.find(e => e.id === '2');
            const ev3 = idle.events.find(e => e.id === '3');
            assert.equal(ev2?.data, 'first half', 'event 2 damaged');
            assert.equal(ev3?.data, 'line one\nline two', 'event 3 damaged');
            assert.ok(idle.text.includes('id: 3\ndata: line one\ndata: line two\n\n'), `event 3 not contiguous: ${JSON.stringify(idle.text.slice(-120))}`);
            assert.ok(comments(idle, ev3.t).length >= 1, 'heartbeats did not resume after the event');

            assert.equal(comments(busy).length, 0, `busy stream got heartbeats: ${comments(busy).length}`);
            assert.ok(busy.events.length >= 20, `busy stream got ${busy.events.length} events`);
            assert.equal(comments(quiet).length, 0, 'route with RoutePolicy sse.heartbeatInterval 0s got heartbeats');
            assert.equal(quiet.events.length, 1);
        } finally {
            clearInterval(busyTimer);
        }
        for (const h of [idle, busy, quiet]) h.close();
    }),
);
