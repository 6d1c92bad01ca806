// stream-lifecycle.test.mjs: SSE stream ends and back-pressure: client gone, backend done, HTTP/1.0, slow consumer.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { before, test } from 'node:test';
import { sseBackend } from './lib/backends.mjs';
import { SLOW, freePort, gatewayYaml, setup, sleep, startGateway, waitFor, withLogs } from './lib/harness.mjs';
import { RawConn } from './lib/rawhttp.mjs';
import { openSse } from './lib/sseclient.mjs';

setup();
let gw, be, port;
const logs = () => [gw];

before(async () => {
    be = await sseBackend();
    port = await freePort();
    gw = await startGateway({
        yaml: gatewayYaml({ port, routes: [{ name: 'events', path: '/events', backends: [{ name: '127.0.0.1', port: be.port }] }] }),
        args: ['--access-log', 'off'],
        waitPorts: [port],
    });
});

test(
    'a client that goes away closes the upstream stream promptly',
    withLogs(logs, async () => {
        const first = be.streams.length;
        const h = openSse(port, '/events/gone');
        await h.head;
        const st = await be.stream(first);
        st.send('one');
        await waitFor(() => h.events.length === 1, 2000, 'the first event');
        const t0 = performance.now();
        h.close();
        await waitFor(() => st.closed, 2000 * SLOW, 'the upstream stream to close after the client left');
        assert.ok(st.closedAt - t0 < 1000 * SLOW, `upstream closed ${(st.closedAt - t0).toFixed(0)} ms after the client`);
    }),
);

test(
    'a backend that ends its SSE response ends the client response cleanly (terminating chunk)',
    withLogs(logs, async () => {
        const first = be.streams.length;
        const c = new RawConn(port);
        await c.connected;
        c.write('GET /events/done HTTP/1.1\r\nHost: gw.test\r\nAccept: text/event-stream\r\n\r\n');
        const st = await be.stream(first);
        st.send('a');
        st.send('b');
        await sleep(50);
        st.end();
        const r = await c.response(3000 * SLOW);
        assert.equal(r.status, 200);
        assert.ok(r.chunked, 'SSE to an HTTP/1.1 client is chunked');
        assert.ok(!r.truncated, 'the response was not terminated with the last chunk');
        assert.equal(r.body.toString(), 'id: 1\ndata: a\n\nid: 2\ndata: b\n\n');
        /* the client connection stays usable */
        c.write('GET /events/next HTTP/1.1\r\nHost: gw.test\r\n\r\n');
        const st2 = await be.stream(first + 1);
        st2.end();
        const r2 = await c.response(3000 * SLOW);
        assert.equal(r2.status, 200);
        c.destroy();
    }),
);

test(
    'an HTTP/1.0 client gets the SSE stream without chunked framing, ended by close',
    withLogs(logs, async () => {
        const first = be.streams.length;
        const c = new RawConn(port);
        await c.connected;
        c.write('GET /events/ten HTTP/1.0\r\nHost: gw.test\r\n\r\n');
        const st = await be.stream(first);
        st.send('x');
        await sleep(50);
        st.end();
        assert.ok(await c.waitClose(3000 * SLOW), 'connection not closed at the end of the stream');
        const text = c.buf.toString('latin1');
        const i = text.indexOf('\r\n\r\n');
        assert.match(text, /^HTTP\/1\.[01] 200/);
        assert.doesNotMatch(text.slice(0, i), /transfer-encoding/i, 'chunked sent to an HTTP/1.0 client');
        assert.equal(text.slice(i + 4), 'id: 1\ndata: x\n\n');
    }),
);

test(
    'a 1 MiB event and a burst of 2,000 small events arrive intact and in order',
    withLogs(logs, async () => {
        const first = be.streams.length;
        const h = openSse(port, '/events/big');
        const st = await be.stream(first);
        const big = 'z'.repeat(1 << 20);
        st.send(big);
        for (let i = 0; i < 2000; i++) st.send(`small ${i}`);
        await waitFor(() => h.events.length >= 2001, 10000 * SLOW, 'all events');
        assert.equal(h.events[0].data.length, big.length);
        assert.equal(h.events[0].data, big);
        for (let i = 0; i < 2000; i++) assert.equal(h.events[i + 1].data, `small ${i}`);
        assert.equal(h.events.at(-1).id, '2001');
        h.close();
    }),
);

function rssKiB(pid) {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return Number(m[1]);
}

test(
    'a slow consumer: back-pressure reaches the backend, gateway memory stays bounded, every byte arrives in order',
    withLogs(logs, async () => {
        const first = be.streams.length;
        const c = new RawConn(port);
        await c.connected;
        c.write('GET /events/slow HTTP/1.1\r\nHost: gw.test\r\n\r\n');
        const st = await be.stream(first);
        await c.until(() => c.buf.length > 0, 3000, 'the response head');
        c.sock.pause();
        const rss0 = rssKiB(gw.child.pid);
        /* 64 MiB of events, written as fast as the backend socket takes them */
        const payload = 'x'.repeat(8000);
        const total = 8192;
        let written = 0;
        let blocked = false;
        const writer = (async () => {
            for (; written < total && !st.closed; written++) {
                const ok = st.res.write(`id: ${written + 1}\ndata: ${payload}\n\n`);
                if (!ok) {
                    blocked = true;
                    await new Promise(r => st.res.once('drain', r));
                }
            }
        })();
        await sleep(2000);
        const stalledAt = written;
        const rss1 = rssKiB(gw.child.pid);
        assert.ok(blocked, 'the backend never saw back-pressure');
        assert.ok(stalledAt < total / 2, `backend wrote ${stalledAt} of ${total} events (~${((stalledAt * 8) / 1024).toFixed(0)} MiB) while the client read nothing`);
        if (SLOW === 1) assert.ok(rss1 - rss0 < 32 * 1024, `gateway RSS grew by ${((rss1 - rss0) / 1024).toFixed(1)} MiB while the client stalled`);
        /* resume: everything arrives, in order (dechunked incrementally: 64 MiB is too much to re-concatenate) */
        const ids = [];
        let raw = '';
        let body = '';
        let left = -1; /* bytes left in the current chunk; -1: expecting a size line */
        const feed = d => {
            raw += d;
            for (;;) {
                if (left < 0) {
                    const e = raw.indexOf('\r\n');
                    if (e < 0) break;
                    left = parseInt(raw.slice(0, e), 16);
                    raw = raw.slice(e + 2);
                    if (Number.isNaN(left)) assert.fail(`bad chunk size line ${JSON.stringify(raw.slice(0, 20))}`);
                }
                if (raw.length < left + 2) {
                    if (left > 0 && raw.length > 0) {
                        const take = Math.min(raw.length, left);
                        body += raw.slice(0, take);
                        raw = raw.slice(take);
                        left -= take;
                    }
                    break;
                }
                body += raw.slice(0, left);
                raw = raw.slice(left + 2);
                left = -1;
            }
            let k;
            while ((k = body.indexOf('\n\n')) >= 0) {
                const m = /^id: (\d+)\n/.exec(body.slice(0, k));
                if (m) ids.push(Number(m[1]));
                body = body.slice(k + 2);
            }
        };
        c.sock.removeAllListeners('data');
        const headEnd = c.buf.indexOf('\r\n\r\n');
        assert.match(c.buf.subarray(0, headEnd).toString('latin1'), /transfer-encoding: chunked/i);
        c.sock.setEncoding('latin1');
        c.sock.on('data', feed);
        feed(c.buf.subarray(headEnd + 4).toString('latin1'));
        c.sock.resume();
        await writer;
        await waitFor(() => ids.length >= total, 20000 * SLOW, `all ${total} events (have ${ids.length})`);
        c.destroy();
        for (let k = 0; k < total; k++) if (ids[k] !== k + 1) assert.fail(`event ${k + 1} arrived as id ${ids[k]}`);
    }),
);
