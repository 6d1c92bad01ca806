// proxy.test.mjs: ordinary HTTP through the gateway: bodies, keep-alive, pipelining, 404/500/502/504, dying backends.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import { before, describe, test } from 'node:test';
import { blackholeBackend, echoBackend, pattern, rawBackend } from './lib/backends.mjs';
import { SLOW, freePort, gatewayYaml, setup, sleep, startGateway, waitFor, withLogs, writeTemp } from './lib/harness.mjs';
import { RawConn, request } from './lib/rawhttp.mjs';

setup();
let gw, be, port, deadPort, silent, dying, hole;
const logs = () => [gw];
const sha = b => crypto.createHash('sha256').update(b).digest('hex');

before(async () => {
    be = await echoBackend();
    port = await freePort();
    deadPort = await freePort(); /* nothing listens there: connection refused */
    /* accepts and reads, never answers */
    silent = await rawBackend(() => {});
    /* answers with a head and part of the body, then dies */
    dying = await rawBackend(async (sock, conn) => {
        const head = await conn.head();
        if (head.includes('/die/chunked')) {
            sock.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
        } else {
            sock.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nhello');
        }
        setTimeout(() => sock.destroy(), 200);
    });
    hole = await blackholeBackend();
    const be127 = b => [{ name: '127.0.0.1', port: b }];
    gw = await startGateway({
        yaml: gatewayYaml({
            port,
            routes: [
                { name: 'echo', path: '/echo', backends: be127(be.port) },
                { name: 'raw', path: '/raw', type: 'Exact', backends: be127(be.port) },
                { name: 'refused', path: '/refused', backends: be127(deadPort) },
                { name: 'silent', path: '/silent', backends: be127(silent.port), timeout: '1s' },
                { name: 'slow', path: '/slow', backends: be127(be.port), policyTimeout: '1s' },
                { name: 'die', path: '/die', backends: be127(dying.port) },
                { name: 'hole', path: '/hole', backends: be127(hole.port) },
                { name: 'nohost', path: '/nohost', backends: [{ name: 'no-such-host.invalid', port: 80 }] },
            ],
        }),
        args: ['--connect-timeout', '1s', '--access-log', 'off'],
        waitPorts: [port],
    });
});

describe('requests and bodies', () => {
    test(
        'GET is forwarded with its path and query',
        withLogs(logs, async () => {
            const r = await request(port, { path: '/echo/a/b?x=1&y=%20z' });
            assert.equal(r.status, 200);
            const j = JSON.parse(r.body);
            assert.equal(j.method, 'GET');
            assert.equal(j.path, '/echo/a/b?x=1&y=%20z');
            assert.equal(j.host, 'gw.test');
        }),
    );

    test(
        'POST with Content-Length',
        withLogs(logs, async () => {
            const r = await request(port, { method: 'POST', path: '/echo/cl', body: 'hello=world&x=1' });
            assert.equal(r.status, 200);
            const j = JSON.parse(r.body);
            assert.equal(j.method, 'POST');
            assert.equal(j.body, 'hello=world&x=1');
        }),
    );

    test(
        'POST with a chunked body (several chunks, extensions, trailer)',
        withLogs(logs, async () => {
            const c = new RawConn(port);
            await c.connected;
            c.write('POST /echo/chunked HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n');
            c.write('5\r\nhello\r\n');
            await sleep(50);
            c.write('1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n');
            const r = await c.response();
            c.destroy();
            assert.equal(r.status, 200);
            assert.equal(JSON.parse(r.body).body, 'hello 0123456789');
        }),
    );

    test(
        'an empty POST (Content-Length: 0) and a body-less GET do not hang',
        withLogs(logs, async () => {
            const r = await request(port, { method: 'POST', path: '/echo/empty', body: '' });
            assert.equal(r.status, 200);
            assert.equal(JSON.parse(r.body).bodyLength, 0);
        }),
    );

    for (const mode of ['content-length', 'chunked']) {
        test(
            `5 MB request body (${mode}) arrives byte-exact, and a 5 MB response comes back byte-exact`,
            withLogs(logs, async () => {
                const body = pattern(5 * 1024 * 1024);
                const c = new RawConn(port);
                await c.connected;
                if (mode === 'chunked') {
                    c.write('POST /raw HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n');
                    for (let off = 0; off < body.length; off += 100000) {
                        const part = body.subarray(off, off + 100000);
                        c.write(`${part.length.toString(16)}\r\n`);
                        c.write(part);
                        c.write('\r\n');
                    }
                    c.write('0\r\n\r\n');
                } else {
                    c.write(`POST /raw HTTP/1.1\r\nHost: gw.test\r\nContent-Length: ${body.length}\r\n\r\n`);
                    c.write(body);
                }
                const r = await c.response(20000 * SLOW);
                c.destroy();
                assert.equal(r.status, 200);
                assert.equal(r.body.length, body.length);
                assert.equal(sha(r.body), sha(body));
                const seen = be.requests.at(-1);
                assert.equal(seen.body.length, body.length);
                assert.equal(sha(seen.body), sha(body));
            }),
        );
    }
});

describe('streaming and framing edge cases', () => {
    test(
        'a request body is streamed: the backend gets the first chunk before the client sends the rest',
        withLogs(logs, async () => {
            const from = be.requests.length;
            const c = new RawConn(port);
            await c.connected;
            c.write('POST /echo/stream-up HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
            await waitFor(() => be.requests.slice(from).some(r => r.url === '/echo/stream-up' && r.received >= 5), 2000 * SLOW, 'the first chunk at the backend');
            c.write('6\r\n world\r\n0\r\n\r\n');
            const r = await c.response();
            c.destroy();
            assert.equal(JSON.parse(r.body).body, 'hello world');
        }),
    );

    test(
        'Expect: 100-continue (curl posting 64 KiB) completes without the client waiting for a 100 that never comes',
        withLogs(logs, async () => {
            const file = writeTemp('body.bin', pattern(65536));
            const t0 = performance.now();
            const out = await new Promise((resolve, reject) => {
                const ch = spawn('curl', ['-s', '-o', '-', '-w', '\n%{http_code}', '--data-binary', `@${file}`, '-H', 'Content-Type: application/octet-stream', `http://127.0.0.1:${port}/echo/expect`]);
                let so = '';
                ch.stdout.on('data', d => (so += d));
                ch.on('error', reject);
                ch.on('exit', () => resolve(so));
            });
            const dt = performance.now() - t0;
            const [body, code] = [out.slice(0, out.lastIndexOf('\n')), out.slice(out.lastIndexOf('\n') + 1)];
            assert.equal(code, '200');
            const j = JSON.parse(body);
            assert.equal(j.bodyLength, 65536);
            assert.equal(j.bodySha256, sha(pattern(65536)));
            /* curl waits 1 s for a 100 Continue before sending the body anyway */
            assert.ok(dt < 900, `took ${dt.toFixed(0)} ms: the 100 Continue was not relayed or sent`);
        }),
    );

    test(
        'HEAD and 204 responses carry no body and do not desynchronise the connection',
        withLogs(logs, async () => {
            const c = new RawConn(port);
            await c.connected;
            c.write('HEAD /echo/head HTTP/1.1\r\nHost: gw.test\r\n\r\n');
            await c.until(() => c.buf.indexOf('\r\n\r\n') >= 0, 3000, 'the HEAD response');
            const text = c.buf.toString('latin1');
            assert.match(text, /^HTTP\/1\.1 200/);
            await sleep(200);
            assert.equal(c.buf.length, text.indexOf('\r\n\r\n') + 4, 'bytes after the HEAD response head');
            c.buf = Buffer.alloc(0);
            c.write('GET /echo/nocontent?status=204 HTTP/1.1\r\nHost: gw.test\r\n\r\n');
            const r204 = await c.response();
            assert.equal(r204.status, 204);
            assert.equal(r204.body.length, 0);
            c.write('GET /echo/after-204 HTTP/1.1\r\nHost: gw.test\r\n\r\n');
            const r = await c.response();
            assert.equal(r.status, 200);
            assert.equal(JSON.parse(r.body).path, '/echo/after-204');
            c.destroy();
        }),
    );
});

describe('connections', () => {
    test(
        'keep-alive: two requests on one client socket reuse one backend connection',
        withLogs(logs, async () => {
            /* a fresh backend, so earlier pooled connections do not count */
            const be2 = await echoBackend();
            const p2 = await freePort();
            const g2 = await startGateway({
                yaml: gatewayYaml({ port: p2, routes: [{ name: 'e', backends: [{ name: '127.0.0.1', port: be2.port }] }] }),
                args: ['--workers', '1', '--access-log', 'off'],
                waitPorts: [p2],
            });
            try {
                const c = new RawConn(p2);
                await c.connected;
                c.write('GET /one HTTP/1.1\r\nHost: gw.test\r\n\r\n');
                const r1 = await c.response();
                c.write('GET /two HTTP/1.1\r\nHost: gw.test\r\n\r\n');
                const r2 = await c.response();
                assert.equal(r1.status, 200);
                assert.equal(r2.status, 200);
                assert.equal(JSON.parse(r1.body).path, '/one');
                assert.equal(JSON.parse(r2.body).path, '/two');
                assert.ok(!c.closed, 'gateway closed a keep-alive connection');
                c.destroy();
                /* a second client connection, sequentially, should also use the pooled backend connection */
                const r3 = await request(p2, { path: '/three' });
                assert.equal(r3.status, 200);
                assert.equal(be2.requests.length, 3);
                assert.equal(be2.connections, 1, `backend saw ${be2.connections} TCP connections for 3 sequential requests`);
            } catch (e) {
                e.message += '\n' + g2.logs();
                throw e;
            } finally {
                await g2.stop('SIGKILL');
            }
        }),
    );

    test(
        'pipelining: three requests in one write are answered in order (the first is slowest)',
        withLogs(logs, async () => {
            const c = new RawConn(port);
            await c.connected;
            c.write(
                'GET /echo/p1?delay=300 HTTP/1.1\r\nHost: gw.test\r\n\r\n' +
                    'POST /echo/p2 HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 3\r\n\r\nabc' +
                    'GET /echo/p3 HTTP/1.1\r\nHost: gw.test\r\n\r\n',
            );
            const paths = [];
            for (let i = 0; i < 3; i++) {
                const r = await c.response(5000 * SLOW);
                assert.equal(r.status, 200);
                paths.push(JSON.parse(r.body).path);
            }
            c.destroy();
            assert.deepEqual(paths, ['/echo/p1?delay=300', '/echo/p2', '/echo/p3']);
            assert.equal(be.requests.find(x => x.url === '/echo/p2').body.toString(), 'abc');
        }),
    );

    test(
        'Connection: close is honoured: the gateway closes after the response',
        withLogs(logs, async () => {
            const c = new RawConn(port);
            await c.connected;
            c.write('GET /echo/close HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n');
            const r = await c.response();
            assert.equal(r.status, 200);
            assert.ok(await c.waitClose(2000), 'connection not closed');
        }),
    );

    test(
        'HTTP/1.0 request without keep-alive gets a response and a close',
        withLogs(logs, async () => {
            const c = new RawConn(port);
            await c.connected;
            c.write('GET /echo/ten HTTP/1.0\r\nHost: gw.test\r\n\r\n');
            const r = await c.response();
            assert.equal(r.status, 200);
            assert.equal(JSON.parse(r.body).path, '/echo/ten');
            assert.ok(await c.waitClose(2000), 'connection not closed');
        }),
    );
});

describe('errors', () => {
    test(
        'CONNECT gets 501 (a gateway opens no tunnels), and the backend sees nothing',
        withLogs(logs, async () => {
            const from = be.requests.length;
            const c = new RawConn(port);
            await c.connected;
            c.write(Buffer.from('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 'latin1'));
            const r = await c.response(3000 * SLOW);
            assert.equal(r.status, 501);
            assert.equal(r.body.toString(), 'ssegate: CONNECT not implemented\n');
            assert.equal(be.requests.length, from);
        }),
    );

    test(
        '404 with "ssegate: no route" when nothing matches',
        withLogs(logs, async () => {
            const from = be.requests.length;
            const r = await request(port, { path: '/nothing/here' });
            assert.equal(r.status, 404);
            assert.equal(r.body.toString(), 'ssegate: no route\n');
            assert.equal(be.requests.length, from);
        }),
    );

    test(
        '500 when all backends of the rule are unresolvable',
        withLogs(logs, async () => {
            const r = await request(port, { path: '/nohost' });
            assert.equal(r.status, 500);
        }),
    );

    test(
        '502 with the cause when the backend refuses the connection',
        withLogs(logs, async () => {
            const r = await request(port, { path: '/refused' });
            assert.equal(r.status, 502);
            assert.equal(r.body.toString(), 'ssegate: upstream connection refused\n');
        }),
    );

    test(
        '504 when a backend accepts but never answers within the route timeout (1s)',
        withLogs(logs, async () => {
            const t0 = performance.now();
            const r = await request(port, { path: '/silent', ms: 10000 * SLOW });
            const dt = performance.now() - t0;
            assert.equal(r.status, 504);
            assert.ok(dt >= 900 && dt < 4000 * SLOW, `504 after ${dt.toFixed(0)} ms, want ~1000`);
        }),
    );

    test(
        '504 when the RoutePolicy routeTimeout (1s) passes before a slow response',
        withLogs(logs, async () => {
            const t0 = performance.now();
            const r = await request(port, { path: '/slow?delay=4000', ms: 10000 * SLOW });
            const dt = performance.now() - t0;
            assert.equal(r.status, 504);
            assert.ok(dt >= 900 && dt < 3500 * SLOW, `504 after ${dt.toFixed(0)} ms, want ~1000`);
        }),
    );

    test(
        '504 when connecting to the backend times out (--connect-timeout 1s)',
        withLogs(logs, async () => {
            const t0 = performance.now();
            const r = await request(port, { path: '/hole', ms: 15000 * SLOW });
            const dt = performance.now() - t0;
            assert.equal(r.status, 504);
            assert.ok(dt >= 900 && dt < 4000 * SLOW, `504 after ${dt.toFixed(0)} ms, want ~1000`);
        }),
    );

    test(
        'the gateway keeps serving after error responses on the same connection (404 then 200)',
        withLogs(logs, async () => {
            const c = new RawConn(port);
            await c.connected;
            c.write('GET /nothing HTTP/1.1\r\nHost: gw.test\r\n\r\n');
            assert.equal((await c.response()).status, 404);
            c.write('GET /echo/after HTTP/1.1\r\nHost: gw.test\r\n\r\n');
            const r = await c.response();
            assert.equal(r.status, 200);
            c.destroy();
        }),
    );

    test(
        'a backend dying mid-response (chunked) closes the client connection without the terminating chunk',
        withLogs(logs, async () => {
            const c = new RawConn(port);
            await c.connected;
            c.write('GET /die/chunked HTTP/1.1\r\nHost: gw.test\r\n\r\n');
            const closed = await c.waitClose(5000 * SLOW);
            assert.ok(closed, 'client connection not closed');
            const text = c.buf.toString('latin1');
            assert.match(text, /^HTTP\/1\.1 200/);
            assert.match(text, /hello/);
            assert.doesNotMatch(text, /\r\n0\r\n\r\n$/, 'the truncated response was terminated as if complete');
        }),
    );

    test(
        'a backend dying mid-response (Content-Length) leaves the client response short and closes',
        withLogs(logs, async () => {
            const c = new RawConn(port);
            await c.connected;
            c.write('GET /die/cl HTTP/1.1\r\nHost: gw.test\r\n\r\n');
            const closed = await c.waitClose(5000 * SLOW);
            assert.ok(closed, 'client connection not closed');
            const text = c.buf.toString('latin1');
            assert.match(text, /^HTTP\/1\.1 200/);
            const i = text.indexOf('\r\n\r\n');
            const head = text.slice(0, i);
            const body = text.slice(i + 4);
            const cl = /content-length: *(\d+)/i.exec(head);
            if (cl) assert.ok(body.length < Number(cl[1]), 'the body was completed');
            else assert.doesNotMatch(body, /\r\n0\r\n\r\n$/, 'the truncated response was terminated as if complete');
        }),
    );
});
