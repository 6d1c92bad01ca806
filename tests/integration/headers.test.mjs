// headers.test.mjs: hop-by-hop removal both ways, X-Forwarded-* and X-Request-Id, end-to-end headers untouched.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { echoBackend, rawBackend } from './lib/backends.mjs';
import { freePort, gatewayYaml, setup, startGateway, withLogs } from './lib/harness.mjs';
import { RawConn } from './lib/rawhttp.mjs';

setup();
let gw, be, raw, port;
const logs = () => [gw];

before(async () => {
    be = await echoBackend();
    /* answers with hop-by-hop headers of its own */
    raw = await rawBackend(async (sock, conn) => {
        await conn.head();
        sock.write(
            'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n' +
                'Connection: keep-alive, X-Resp-Hop\r\nX-Resp-Hop: 1\r\nKeep-Alive: timeout=7\r\n' +
                'Proxy-Connection: keep-alive\r\nUpgrade: foo/1\r\nX-End: yes\r\nCache-Control: no-cache\r\n' +
                'Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nok',
        );
    });
    port = await freePort();
    gw = await startGateway({
        yaml: gatewayYaml({
            port,
            routes: [
                { name: 'echo', path: '/', backends: [{ name: '127.0.0.1', port: be.port }] },
                { name: 'resp', path: '/resp', backends: [{ name: '127.0.0.1', port: raw.port }] },
            ],
        }),
        args: ['--access-log', 'off'],
        waitPorts: [port],
    });
});

async function roundTrip(head, body = '') {
    const c = new RawConn(port);
    await c.connected;
    c.write(head + body);
    const r = await c.response();
    c.destroy();
    return r;
}

function lines(rawHeaders) {
    const out = [];
    for (let i = 0; i < rawHeaders.length; i += 2) out.push([rawHeaders[i].toLowerCase(), rawHeaders[i + 1]]);
    return out;
}

test(
    'request hop-by-hop headers are removed, including those named in Connection',
    withLogs(logs, async () => {
        const r = await roundTrip(
            'POST /hop HTTP/1.1\r\nHost: gw.test\r\nConnection: keep-alive, X-Hop-A, x-hop-b\r\nX-Hop-A: 1\r\nX-Hop-B: 2\r\n' +
                'Keep-Alive: timeout=5\r\nTE: trailers\r\nUpgrade: foo/1\r\nProxy-Connection: keep-alive\r\n' +
                'Transfer-Encoding: chunked\r\nX-End: kept\r\n\r\n',
            '5\r\nhello\r\n0\r\n\r\n',
        );
        assert.equal(r.status, 200);
        const j = JSON.parse(r.body);
        const h = j.headers;
        for (const name of ['x-hop-a', 'x-hop-b', 'keep-alive', 'te', 'upgrade', 'proxy-connection']) {
            assert.equal(h[name], undefined, `${name} was forwarded: ${h[name]}`);
        }
        /* The gateway may keep its own upstream connection alive, but must not copy the client's tokens. */
        assert.doesNotMatch(h.connection || '', /x-hop/i);
        /* The body may be re-framed by the gateway: one framing header of its own at most, never the client's copy twice. */
        const framing = lines(j.rawHeaders).filter(([k]) => k === 'transfer-encoding' || k === 'content-length');
        assert.ok(framing.length === 1, `framing headers at the backend: ${JSON.stringify(framing)}`);
        if (framing[0][0] === 'transfer-encoding') assert.equal(framing[0][1].toLowerCase(), 'chunked');
        else assert.equal(framing[0][1], '5');
        assert.equal(j.body, 'hello');
        assert.equal(h['x-end'], 'kept');
    }),
);

test(
    'X-Forwarded-For/-Proto/-Host and X-Request-Id are added',
    withLogs(logs, async () => {
        const r = await roundTrip('GET /xf HTTP/1.1\r\nHost: front.example:8080\r\n\r\n');
        const h = JSON.parse(r.body).headers;
        assert.equal(h['x-forwarded-for'], '127.0.0.1');
        assert.equal(h['x-forwarded-proto'], 'http');
        assert.equal(h['x-forwarded-host'], 'front.example:8080');
        assert.match(h['x-request-id'] || '', /^\S{8,}$/, 'X-Request-Id missing or too short');
        assert.equal(h.host, 'front.example:8080', 'Host must reach the backend as the client sent it');
        /* and it is unique per request */
        const r2 = await roundTrip('GET /xf HTTP/1.1\r\nHost: front.example:8080\r\n\r\n');
        assert.notEqual(JSON.parse(r2.body).headers['x-request-id'], h['x-request-id']);
    }),
);

test(
    'an incoming X-Forwarded-For keeps the client address last; an incoming X-Request-Id is kept',
    withLogs(logs, async () => {
        const r = await roundTrip(
            'GET /xf2 HTTP/1.1\r\nHost: gw.test\r\nX-Forwarded-For: 10.1.2.3\r\nX-Request-Id: abc-123-def\r\n\r\n',
        );
        const h = JSON.parse(r.body).headers;
        const parts = h['x-forwarded-for'].split(',').map(s => s.trim());
        assert.equal(parts.at(-1), '127.0.0.1');
        assert.equal(h['x-request-id'], 'abc-123-def');
    }),
);

test(
    'Last-Event-ID and other end-to-end headers reach the backend unchanged',
    withLogs(logs, async () => {
        const r = await roundTrip(
            'GET /e2e HTTP/1.1\r\nHost: gw.test\r\nLast-Event-ID: 42-\u00e2\u0080\u00a6x\r\nAccept: text/event-stream\r\n' +
                'Cache-Control: no-cache\r\nAuthorization: Bearer t0k3n\r\nCookie: a=1; b=2\r\nX-Custom:  spaced   value\r\n' +
                'X-Dup: one\r\nX-Dup: two\r\nUser-Agent: it/1.0\r\n\r\n',
        );
        const j = JSON.parse(r.body);
        const h = j.headers;
        /* UTF-8 bytes of U+2026 (as a browser sends a non-ASCII id); both sides treat bytes as latin-1 */
        assert.equal(h['last-event-id'], '42-\u00e2\u0080\u00a6x');
        assert.equal(h.accept, 'text/event-stream');
        assert.equal(h['cache-control'], 'no-cache');
        assert.equal(h.authorization, 'Bearer t0k3n');
        assert.equal(h.cookie, 'a=1; b=2');
        assert.equal(h['x-custom'], 'spaced   value');
        assert.equal(h['user-agent'], 'it/1.0');
        const dups = lines(j.rawHeaders).filter(([k]) => k === 'x-dup').map(([, v]) => v);
        assert.equal(dups.join(','), 'one,two');
    }),
);

test(
    'response hop-by-hop headers are removed; end-to-end response headers are kept',
    withLogs(logs, async () => {
        const r = await roundTrip('GET /resp HTTP/1.1\r\nHost: gw.test\r\n\r\n');
        assert.equal(r.status, 200);
        assert.equal(r.body.toString(), 'ok');
        assert.equal(r.headers['x-resp-hop'], undefined);
        assert.equal(r.headers['proxy-connection'], undefined);
        assert.equal(r.headers.upgrade, undefined);
        assert.ok(!(r.headers['keep-alive'] || []).some(v => v.includes('timeout=7')), 'backend Keep-Alive forwarded');
        assert.doesNotMatch((r.headers.connection || []).join(','), /x-resp-hop/i);
        assert.deepEqual(r.headers['x-end'], ['yes']);
        assert.deepEqual(r.headers['cache-control'], ['no-cache']);
        assert.deepEqual(r.headers['set-cookie'], ['a=1', 'b=2']);
    }),
);
