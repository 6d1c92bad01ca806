// backend-framing.test.mjs: a raw TCP backend answers with each kind of bad framing; the client gets 502 (or, when the
// fault comes after the head, a cut response), the error log names the endpoint and the reason, and a good response on
// the same backend still goes through. Restates the request-side strictness for what a faulty backend sends.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { SLOW, freePort, setup, startGateway, track, withLogs } from './lib/harness.mjs';
import { httpGet, prodYaml, waitLog } from './lib/prod-util.mjs';

setup();

/* id -> [raw response, reason the log must give]. The path /case/ID picks the answer. */
const BAD = {
    'te-gzip-chunked': ['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n', 'transfer coding other than chunked'],
    'te-gzip-two-fields': ['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n', 'transfer coding other than chunked'],
    'te-chunked-gzip': ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nhello', 'transfer coding other than chunked'],
    'te-gzip': ['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhello', 'transfer coding other than chunked'],
    'te-identity': ['HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nhello', 'invalid Transfer-Encoding (empty, identity, or chunked twice)'],
    'te-http10': ['HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n', 'Transfer-Encoding in an HTTP/1.0 response'],
    'te-cl': ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n', 'both Content-Length and Transfer-Encoding'],
    'cl-dup': ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello', 'repeated Content-Length'],
    'cl-list': ['HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello', 'invalid Content-Length'],
    'obs-fold': ['HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 5\r\n\r\nhello', 'obs-fold or whitespace before a field name'],
    'sp-before-colon': ['HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello', "whitespace between a field name and ':'"],
    'bare-lf': ['HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 5\r\n\r\nhello', 'bare LF in a field value'],
    'bare-cr': ['HTTP/1.1 200 OK\r\nX-A: 1\rX-B: 2\r\nContent-Length: 5\r\n\r\nhello', 'bare CR in a field value'],
    'nul': ['HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 5\r\n\r\nhello', 'control character in a field value'],
    'status-4digit': ['HTTP/1.1 2000 OK\r\nContent-Length: 5\r\n\r\nhello', 'malformed status code'],
    'http2-version': ['HTTP/2.0 200 OK\r\nContent-Length: 5\r\n\r\nhello', 'not an HTTP/1.0 or HTTP/1.1 status line'],
    'switching-protocols': ['HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n', '101 Switching Protocols to a request that asked for no upgrade'],
    'interim-flood': ['HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n'.repeat(40) + 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello', 'too many 1xx interim responses'],
    'huge-head': [`HTTP/1.1 200 OK\r\nX-Big: ${'b'.repeat(40000)}\r\nContent-Length: 5\r\n\r\nhello`, 'header section too large'],
};
/* Faults after a valid head: the head has gone to the client, so the response is cut, never completed. */
const CUT = {
    'chunk-size-bad': ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nmore\r\n0\r\n\r\n', 'invalid chunk size'],
    'chunk-ext-flood': ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' + `1;e=${'v'.repeat(4000)}\r\nx\r\n`.repeat(8) + '0\r\n\r\n', 'too many chunk-extension bytes'],
};
const GOOD = {
    'ok-chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n',
    'ok-103-then-200': 'HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello',
    'ok-204-cl0': 'HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n',
};

/* A backend that reads one request head per connection and writes the raw answer its path names, then closes. */
async function rawBackend() {
    const conns = new Set();
    let accepted = 0;
    const server = net.createServer(sock => {
        accepted++;
        conns.add(sock);
        sock.on('close', () => conns.delete(sock));
        sock.on('error', () => {});
        let buf = '';
        sock.setEncoding('latin1');
        sock.on('data', d => {
            buf += d;
            const end = buf.indexOf('\r\n\r\n');
            if (end < 0) return;
            const id = /^GET \/case\/([^ ]+) /.exec(buf)?.[1];
            buf = buf.slice(end + 4);
            const raw = BAD[id]?.[0] ?? CUT[id]?.[0] ?? GOOD[id];
            if (raw === undefined) return sock.destroy();
            sock.end(Buffer.from(raw, 'latin1'));
        });
    });
    await new Promise(r => server.listen(0, '127.0.0.1', r));
    track(
        () =>
            new Promise(r => {
                for (const s of conns) s.destroy();
                server.close(() => r());
            }),
    );
    return { port: server.address().port, accepted: () => accepted };
}

/* GET that resolves {status, body, complete} even when the response is cut (complete: false). */
function getLoose(port, path) {
    return httpGet(port, path).then(
        r => ({ ...r, complete: true }),
        e => ({ status: null, body: '', complete: false, error: e.message }),
    );
}

let gw;
test(
    'backend framing: every bad framing from a backend is a 502 (or a cut response) with its reason in the log',
    { timeout: 60000 * SLOW },
    withLogs(() => [gw], async () => {
        const be = await rawBackend();
        const port = await freePort();
        /* Error-log lines are rate-limited per place in the code (10 per 10 s): a fresh gateway every 8 cases, so
         * that each case's line is written and can be checked. */
        const start = async () => {
            if (gw) await gw.stop();
            gw = await startGateway({
                yaml: prodYaml({ port, routes: [{ name: 'r', path: '/case', backends: [{ service: 'raw' }] }], services: [{ name: 'raw', endpoints: [be.port] }] }),
                args: ['--access-log', 'off', '--workers', '1'],
                waitPorts: [port],
            });
        };
        const label = `127.0.0.1:${be.port}`;
        let cases = 0;
        const next = async () => {
            if (cases++ % 8 === 0) await start();
        };

        for (const [id, [, why]] of Object.entries(BAD)) {
            await next();
            const mark = gw.stderr.length;
            const r = await httpGet(port, `/case/${id}`);
            assert.equal(r.status, 502, `${id}: status ${r.status}, body ${JSON.stringify(r.body.slice(0, 80))}`);
            assert.ok(!r.body.includes('hello'), `${id}: the backend's body reached the client`);
            const line = `upstream ${label}: invalid response (${why}): answered 502`;
            await waitLog(gw, new RegExp(line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 3000 * SLOW, mark);
            /* one line per bad response, not one per retry or per read */
            assert.equal(gw.stderr.slice(mark).split('\n').filter(l => l.includes('invalid response')).length, 1, `${id}: log lines`);
        }
        for (const [id, [, why]] of Object.entries(CUT)) {
            await next();
            const mark = gw.stderr.length;
            const r = await getLoose(port, `/case/${id}`);
            assert.equal(r.complete, false, `${id}: a response whose body framing broke was relayed as complete`);
            const line = `upstream ${label}: invalid response (${why}): response cut`;
            await waitLog(gw, new RegExp(line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 3000 * SLOW, mark);
        }
        for (const id of Object.keys(GOOD)) {
            const r = await httpGet(port, `/case/${id}`);
            assert.equal(r.status, id === 'ok-204-cl0' ? 204 : 200, `${id}: status ${r.status}`);
            if (id !== 'ok-204-cl0') assert.equal(r.body, 'hello', `${id}: body`);
        }
        assert.ok(gw.running(), 'ssegate exited');
        /* each request reached the backend once or twice (a pooled connection gets one retry), never more */
        const n = Object.keys(BAD).length + Object.keys(CUT).length + Object.keys(GOOD).length;
        assert.ok(be.accepted() <= 2 * n, `backend connections ${be.accepted()} for ${n} requests`);
    }),
);
