// fanout-failover.test.mjs: a shared upstream killed mid-event resumes on the other endpoint with Last-Event-ID, the
// partial event discarded, and its subscribers (curl -N, node, the npm eventsource client) see no break, gap or
// duplicate; a reload keeps shared streams on their generation; a drain ends shared subscribers at event boundaries
// with a retry: hint.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { EventSource } from 'eventsource';
import { test } from 'node:test';
import { sseBackend } from './lib/backends.mjs';
import { fanoutYaml, ids, range } from './lib/fanout-util.mjs';
import { SLOW, freePort, setup, sleep, startGateway, track, waitFor, withLogs } from './lib/harness.mjs';
import { scrape, waitLog } from './lib/prod-util.mjs';
import { SseParser, openSse, waitEvents } from './lib/sseclient.mjs';

setup();
const T = 5000 * SLOW;
let gw;
const logs = () => [gw];

/* curl -N as a subscriber: its stdout parsed as events. */
function curlSse(url, headers = {}) {
    const h = { events: [], text: '', ended: false };
    const p = new SseParser(ev => h.events.push(ev));
    const args = ['-sN', url];
    for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
    const c = spawn('curl', args, { stdio: ['ignore', 'pipe', 'ignore'] });
    c.stdout.setEncoding('utf8');
    c.stdout.on('data', d => {
        h.text += d;
        p.push(d);
    });
    h.exited = new Promise(r => c.on('exit', code => r((h.ended = true, code))));
    h.close = () => c.kill('SIGKILL');
    track(h.close);
    return h;
}

test(
    'failover: the backend dies mid-event; the shared stream resumes on the other endpoint after the last complete event',
    { timeout: 30000 * SLOW },
    withLogs(logs, async () => {
        const b1 = await sseBackend({ retry: 200 });
        const b2 = await sseBackend({ retry: 200 });
        const port = await freePort();
        const admin = await freePort();
        gw = await startGateway({
            yaml: fanoutYaml({
                port,
                routes: [{ name: 'live', path: '/live', backends: [{ service: 'svc', port: 80 }], policy: '{sharing: {enabled: true}}' }],
                services: [{ name: 'svc', endpoints: [b1.port, b2.port] }],
            }),
            args: ['--access-log', 'off', '--workers', '1', '--admin', `127.0.0.1:${admin}`],
            waitPorts: [port, admin],
        });
        const node = openSse(port, '/live/f');
        await node.head;
        const curl = curlSse(`http://127.0.0.1:${port}/live/f`);
        const es = new EventSource(`http://127.0.0.1:${port}/live/f`);
        track(() => es.close());
        const esGot = [];
        let opens = 0;
        let errors = 0;
        es.onopen = () => opens++;
        es.onerror = () => errors++;
        es.onmessage = ev => esGot.push(Number(ev.lastEventId));
        await waitFor(() => opens === 1, T, 'eventsource open');
        await waitFor(() => b1.streams.length + b2.streams.length === 1, T, 'one upstream');
        await sleep(200 * SLOW);
        const [A, B] = b1.streams.length ? [b1, b2] : [b2, b1];
        assert.equal(A.streams.length, 1, 'subscribers did not share one upstream');
        const st = A.streams[0];
        for (let i = 1; i <= 3; i++) st.send(`event ${i}`);
        await waitEvents(node, 3, T);
        await waitFor(() => esGot.length === 3 && curl.events.length === 3, T, 'three events everywhere');
        /* Half an event, then the whole backend goes away (its listener too: the endpoint refuses from now on). */
        st.sendRaw('id: 4\ndata: partial ');
        await sleep(100);
        await A.close();
        const nb = await B.stream(0, T * 2);
        assert.equal(nb.lastEventId, '3', 'the shared upstream did not resume after the last complete event');
        for (let i = 0; i < 3; i++) nb.send(`event ${nb.nextId}`);
        await waitEvents(node, 6, T);
        await waitFor(() => esGot.length >= 6 && curl.events.length >= 6, T, 'six events everywhere');
        await sleep(100);
        assert.deepEqual(ids(node), range(1, 6));
        assert.deepEqual(curl.events.map(e => Number(e.id)), range(1, 6));
        assert.deepEqual(esGot, range(1, 6));
        assert.ok(!node.text.includes('partial') && !curl.text.includes('partial'), 'the partial event reached a subscriber');
        assert.equal(node.ended, false, 'the subscriber\'s stream broke');
        assert.equal(opens, 1, 'eventsource had to reconnect');
        assert.equal(errors, 0);
        assert.equal(B.streams.length, 1, 'more than one resumed upstream');
        const m = await scrape(admin);
        assert.equal(m.get('ssegate_fanout_failovers_total'), 1);
        es.close();
        node.close();
        curl.close();
        await gw.stop();
    }),
);

test(
    'the backend ends the shared stream: resumed on the same endpoint with Last-Event-ID; a 204 then ends it for all',
    { timeout: 30000 * SLOW },
    withLogs(logs, async () => {
        const be = await sseBackend({ retry: 100 });
        const port = await freePort();
        gw = await startGateway({
            yaml: fanoutYaml({ port, routes: [{ name: 'live', path: '/live', backends: [{ service: '127.0.0.1', port: be.port }], policy: '{sharing: {enabled: true}, heartbeatInterval: 1s}' }] }),
            args: ['--access-log', 'off', '--workers', '1'],
            waitPorts: [port],
        });
        const a = openSse(port, '/live/e');
        const b = curlSse(`http://127.0.0.1:${port}/live/e`);
        await a.head;
        const s0 = await be.stream(0, T);
        await sleep(200 * SLOW);
        s0.send('one');
        s0.send('two');
        await waitEvents(a, 2, T);
        s0.end();
        const s1 = await be.stream(1, T);
        assert.equal(s1.lastEventId, '2');
        s1.send('three');
        await waitEvents(a, 3, T);
        await waitFor(() => b.events.length === 3, T, 'curl got three events');
        assert.deepEqual(ids(a), [1, 2, 3]);
        assert.deepEqual(b.events.map(e => Number(e.id)), [1, 2, 3]);
        assert.equal(a.ended, false);
        /* An idle shared stream gets the hub's heartbeats (heartbeatInterval 1s), between events. */
        await waitFor(() => /\n\n:\n/.test(a.text), 5000 * SLOW, 'a heartbeat comment on the idle shared stream');
        /* Now the backend says "no more" (204) to the resumed request: every subscriber ends cleanly. */
        be.server.removeAllListeners('request');
        be.server.on('request', (req, res) => {
            res.writeHead(204);
            res.end();
        });
        s1.end();
        await a.done;
        await b.exited;
        assert.equal(a.complete, true, 'a 204 on resume should end subscribers cleanly');
        assert.deepEqual(ids(a), [1, 2, 3]);
        await gw.stop();
    }),
);

test(
    'an HTTP/1.0 subscriber (no chunked framing) shares the stream with HTTP/1.1 ones',
    { timeout: 30000 * SLOW },
    withLogs(logs, async () => {
        const be = await sseBackend();
        const port = await freePort();
        gw = await startGateway({
            yaml: fanoutYaml({ port, routes: [{ name: 'live', path: '/live', backends: [{ service: '127.0.0.1', port: be.port }], policy: '{sharing: {enabled: true}}' }] }),
            args: ['--access-log', 'off', '--workers', '1'],
            waitPorts: [port],
        });
        const h11 = openSse(port, '/live/o');
        await h11.head;
        const old = spawn('curl', ['-sN', '--http1.0', `http://127.0.0.1:${port}/live/o`], { stdio: ['ignore', 'pipe', 'ignore'] });
        track(() => old.kill('SIGKILL'));
        let text = '';
        old.stdout.setEncoding('utf8');
        old.stdout.on('data', d => (text += d));
        const st = await be.stream(0, T);
        await sleep(300 * SLOW);
        for (let i = 1; i <= 3; i++) st.send(`v${i}`);
        await waitEvents(h11, 3, T);
        await waitFor(() => text.includes('data: v3\n\n'), T, 'the HTTP/1.0 subscriber got the events');
        assert.equal(text, 'id: 1\ndata: v1\n\nid: 2\ndata: v2\n\nid: 3\ndata: v3\n\n', 'HTTP/1.0 body is the raw events');
        assert.equal(be.streams.length, 1);
        old.kill('SIGKILL');
        h11.close();
        await gw.stop();
    }),
);

test(
    'reload: shared streams keep their generation and upstream; new subscribers get a stream of the new one',
    { timeout: 30000 * SLOW },
    withLogs(logs, async () => {
        const be = await sseBackend();
        const port = await freePort();
        const routes = [{ name: 'live', path: '/live', backends: [{ service: '127.0.0.1', port: be.port }], policy: '{sharing: {enabled: true}}' }];
        gw = await startGateway({ yaml: fanoutYaml({ port, routes }), args: ['--access-log', 'off', '--workers', '1'], waitPorts: [port] });
        const old1 = openSse(port, '/live/r');
        const old2 = openSse(port, '/live/r');
        await Promise.all([old1.head, old2.head]);
        const s0 = await be.stream(0, T);
        s0.send('before');
        await waitEvents(old1, 1, T);
        await waitEvents(old2, 1, T);
        const mark = gw.stderr.length;
        fs.writeFileSync(gw.config, fanoutYaml({ port, routes: [...routes, { name: 'other', path: '/other', backends: [{ service: '127.0.0.1', port: be.port }] }] }));
        gw.child.kill('SIGHUP');
        await waitLog(gw, /config reloaded \(generation 2\)/, 3000 * SLOW, mark);
        s0.send('after');
        await waitEvents(old1, 2, T);
        await waitEvents(old2, 2, T);
        const fresh = openSse(port, '/live/r');
        await fresh.head;
        const s1 = await be.stream(1, T);
        s1.send('new generation', { id: 100 });
        s0.send('old generation');
        await waitEvents(fresh, 1, T);
        await waitEvents(old1, 3, T);
        await sleep(150);
        assert.deepEqual(old1.events.map(e => e.data), ['before', 'after', 'old generation']);
        assert.deepEqual(old2.events.map(e => e.data), ['before', 'after', 'old generation']);
        assert.deepEqual(fresh.events.map(e => e.data), ['new generation']);
        assert.equal(old1.ended || old2.ended, false, 'a reload cut a shared stream');
        assert.equal(be.streams.length, 2);
        for (const c of [old1, old2, fresh]) c.close();
        await gw.stop();
    }),
);

test(
    'drain: shared subscribers end at an event boundary with a retry: hint, and the gateway exits',
    { timeout: 30000 * SLOW },
    withLogs(logs, async () => {
        const be = await sseBackend();
        const port = await freePort();
        gw = await startGateway({
            yaml: fanoutYaml({ port, routes: [{ name: 'live', path: '/live', backends: [{ service: '127.0.0.1', port: be.port }], policy: '{sharing: {enabled: true}}' }] }),
            args: ['--access-log', 'off', '--workers', '1', '--drain-timeout', '1500ms', '--drain-spread', '1000ms'],
            waitPorts: [port],
        });
        const cs = [1, 2, 3].map(() => openSse(port, '/live/d'));
        await Promise.all(cs.map(c => c.head));
        const st = await be.stream(0, T);
        let n = 0;
        const timer = setInterval(() => st.send(`tick ${++n}`), 30);
        track(() => clearInterval(timer));
        await waitEvents(cs[0], 3, T);
        gw.stopping = true;
        gw.child.kill('SIGTERM');
        await Promise.all(cs.map(c => c.done));
        clearInterval(timer);
        const exit = await gw.exited;
        assert.equal(exit.code, 0, `exit ${exit.code} ${exit.signal}`);
        for (const c of cs) {
            assert.equal(c.complete, true, 'a shared subscriber was cut instead of ended');
            assert.match(c.text, /\n\nretry: \d+\n\n$/, `no retry: hint at an event boundary at the end: ${JSON.stringify(c.text.slice(-80))}`);
            const got = ids(c);
            assert.deepEqual(got, range(1, got.length), 'events lost or repeated before the drain ended the stream');
        }
        await waitFor(() => st.closed, T, 'the shared upstream closed once its subscribers were gone');
    }),
);
