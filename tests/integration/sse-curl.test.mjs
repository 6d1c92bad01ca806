// sse-curl.test.mjs: SSE through the gateway with curl -N: per-event latency, headers before the first event.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { before, test } from 'node:test';
import { sseBackend } from './lib/backends.mjs';
import { freePort, gatewayYaml, setup, sleep, startGateway, track, withLogs } from './lib/harness.mjs';
import { SseParser } from './lib/sseclient.mjs';

setup();
let gw, be, be2, port;
const logs = () => [gw];

before(async () => {
    be = await sseBackend();
    be2 = await sseBackend({ contentType: 'Text/Event-Stream; charset=utf-8' });
    port = await freePort();
    gw = await startGateway({
        yaml: gatewayYaml({
            port,
            routes: [
                { name: 'events', path: '/events', backends: [{ name: '127.0.0.1', port: be.port }] },
                { name: 'params', path: '/params', backends: [{ name: '127.0.0.1', port: be2.port }] },
            ],
        }),
        args: ['--access-log', 'off'],
        waitPorts: [port],
    });
});

/*
 * Runs curl -N -v: the response head is timestamped from curl's verbose trace on stderr (curl holds the -i copy
 * on stdout until body bytes come), every event as it appears on stdout.
 */
function curl(url) {
    const out = { head: '', headAt: undefined, events: [], body: '', exited: undefined };
    const child = spawn('curl', ['-N', '-s', '-v', '--max-time', '30', url], { stdio: ['ignore', 'pipe', 'pipe'] });
    track(() => child.kill('SIGKILL'));
    let trace = '';
    child.stderr.setEncoding('latin1');
    child.stderr.on('data', d => {
        trace += d;
        if (out.headAt !== undefined) return;
        const lines = trace.split('\n').filter(l => l.startsWith('< '));
        const end = lines.findIndex(l => l === '< \r');
        if (end < 0) return;
        out.headAt = performance.now();
        out.head = lines.slice(0, end).map(l => l.slice(2).replace(/\r$/, '')).join('\r\n');
    });
    const parser = new SseParser(ev => out.events.push({ ...ev, t: performance.now() }));
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', d => {
        out.body += d;
        parser.push(d);
    });
    out.exited = new Promise(r => child.on('exit', r));
    out.kill = () => child.kill('SIGKILL');
    return out;
}

test(
    'curl -N: every event arrives within 100 ms of the backend writing it (20 events, irregular gaps)',
    withLogs(logs, async () => {
        const gaps = [0, 37, 211, 5, 90, 300, 12, 150, 60, 1, 240, 45, 130, 8, 75, 190, 20, 100, 3, 55];
        const c = curl(`http://127.0.0.1:${port}/events/latency`);
        const st = await be.stream(be.streams.length);
        for (let i = 0; i < gaps.length; i++) {
            await sleep(gaps[i]);
            st.send(`e${i}`);
        }
        const deadline = Date.now() + 3000;
        while (c.events.length < gaps.length && Date.now() < deadline) await sleep(10);
        c.kill();
        assert.equal(c.events.length, gaps.length, `curl saw ${c.events.length} of ${gaps.length} events`);
        const lat = c.events.map((ev, i) => {
            assert.equal(ev.data, `e${i}`);
            return ev.t - st.writes.find(w => w.id === ev.id).t;
        });
        const worst = Math.max(...lat);
        assert.ok(worst < 100, `worst event latency ${worst.toFixed(1)} ms; all: ${lat.map(x => x.toFixed(1)).join(' ')}`);
        assert.match(c.head, /^HTTP\/1\.1 200/);
        assert.match(c.head, /content-type: text\/event-stream/i);
        assert.match(c.head, /transfer-encoding: chunked/i, 'SSE to an HTTP/1.1 client is sent chunked');
    }),
);

test(
    'response headers reach the client before the first event (backend waits 1 s after its headers)',
    withLogs(logs, async () => {
        const c = curl(`http://127.0.0.1:${port}/events/headers-first`);
        const st = await be.stream(be.streams.length);
        await sleep(1000);
        const headAtWrite = c.headAt;
        st.send('first');
        const deadline = Date.now() + 3000;
        while (c.events.length < 1 && Date.now() < deadline) await sleep(10);
        c.kill();
        assert.ok(headAtWrite !== undefined, 'no response head before the first event was written');
        assert.ok(headAtWrite - st.headersAt < 300, `head reached the client ${(headAtWrite - st.headersAt).toFixed(0)} ms after the backend sent it`);
        assert.equal(c.events.length, 1);
        assert.equal(c.events[0].data, 'first');
    }),
);

test(
    'a comment line and a partial event are relayed at once, without waiting for the event to complete',
    withLogs(logs, async () => {
        const c = curl(`http://127.0.0.1:${port}/events/partial`);
        const st = await be.stream(be.streams.length);
        await sleep(100);
        st.sendRaw(': ping\n\n');
        st.sendRaw('data: par');
        const tp = performance.now();
        while (!c.body.includes('data: par') && performance.now() - tp < 1000) await sleep(5);
        assert.ok(c.body.includes(': ping'), `comment not relayed: ${JSON.stringify(c.body)}`);
        assert.ok(c.body.includes('data: par'), 'partial event held back for 1 s');
        assert.ok(performance.now() - tp < 100, `partial event took ${(performance.now() - tp).toFixed(0)} ms`);
        await sleep(200);
        const t0 = performance.now();
        st.sendRaw('tial\n\n');
        const deadline = Date.now() + 3000;
        while (c.events.length < 1 && Date.now() < deadline) await sleep(5);
        c.kill();
        assert.equal(c.events.length, 1);
        assert.equal(c.events[0].data, 'partial');
        assert.ok(c.events[0].t - t0 < 100, `completed event took ${(c.events[0].t - t0).toFixed(0)} ms`);
    }),
);

test(
    'a Content-Type with parameters and other case (Text/Event-Stream; charset=utf-8) is relayed unbuffered too',
    withLogs(logs, async () => {
        const c = curl(`http://127.0.0.1:${port}/params/x`);
        const st = await be2.stream(be2.streams.length);
        await sleep(100);
        st.sendRaw('data: par');
        const tp = performance.now();
        while (!c.body.includes('data: par') && performance.now() - tp < 1000) await sleep(5);
        assert.ok(c.body.includes('data: par'), 'partial event held back for 1 s');
        const dt = performance.now() - tp;
        st.sendRaw('tial\n\n');
        const deadline = Date.now() + 3000;
        while (c.events.length < 1 && Date.now() < deadline) await sleep(5);
        c.kill();
        assert.ok(dt < 100, `partial event took ${dt.toFixed(0)} ms`);
        assert.equal(c.events[0]?.data, 'partial');
    }),
);
