// bad-requests.test.mjs: request smuggling and malformed HTTP/1.1: status, close, and that the backend saw nothing.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { before, describe, test } from 'node:test';
import { echoBackend } from './lib/backends.mjs';
import { SLOW, freePort, gatewayYaml, setup, sleep, startGateway, withLogs } from './lib/harness.mjs';
import { RawConn, parseAll } from './lib/rawhttp.mjs';

setup();
const fixture = JSON.parse(fs.readFileSync(new URL('./fixtures/http1-bad-requests.json', import.meta.url), 'utf8'));

function expand(raw) {
    return raw
        .replace(/\{repeat:(.):(\d+)\}/g, (_, ch, n) => ch.repeat(Number(n)))
        .replace(/\{repeat_lines:(.*?)\{i\}(.*?):(\d+)\}/g, (_, a, b, n) =>
            Array.from({ length: Number(n) }, (_, i) => `${a}${i}${b}\r\n`).join(''));
}

let gw, be, port;
const logs = () => [gw];

before(async () => {
    be = await echoBackend();
    port = await freePort();
    gw = await startGateway({
        yaml: gatewayYaml({ port, routes: [{ name: 'all', path: '/', backends: [{ name: '127.0.0.1', port: be.port }] }] }),
        args: ['--header-timeout', '1s', '--access-log', 'off'],
        waitPorts: [port],
    });
});

/*
 * Sends raw (and `then` 150 ms later if still open). Returns when the gateway closed, or when it has answered
 * `want` responses and stayed quiet for a moment, or after ms.
 */
async function send(raw, { then, want = 1, ms = 2000 * SLOW } = {}) {
    const c = new RawConn(port);
    await c.connected;
    c.write(Buffer.from(raw, 'latin1'));
    if (then) {
        await sleep(150);
        if (!c.closed) c.write(Buffer.from(then, 'latin1'));
    }
    const deadline = Date.now() + ms;
    while (!c.closed && Date.now() < deadline) {
        if (parseAll(c.buf, false).length >= want) {
            await c.waitClose(300);
            break;
        }
        await sleep(20);
    }
    /* a close right after the answer still counts as a close */
    if (!c.closed) await c.waitClose(100);
    const out = { buf: c.buf, closed: c.closed, responses: parseAll(c.buf, true) };
    c.destroy();
    return out;
}

/* Waits for the backend to settle (a late forward would show up here) and returns the requests since `from`. */
async function backendSince(from, parseFrom) {
    await sleep(100);
    return { reqs: be.requests.slice(from), parseErrors: be.parseErrors.slice(parseFrom) };
}

function checkNotForwarded(c, reqs, parseErrors) {
    assert.deepEqual(parseErrors, [], `${c.id}: the backend received unparseable bytes`);
    if (c.body_error) {
        /* The head was valid, so a streaming gateway may have begun the upstream request; it must abort it. */
        const completed = reqs.filter(r => r.complete);
        assert.deepEqual(
            completed.map(r => `${r.method} ${r.url} body=${JSON.stringify(String(r.body))}`),
            [],
            `${c.id}: the backend received a complete request`,
        );
    } else {
        assert.deepEqual(reqs.map(r => `${r.method} ${r.url}`), [], `${c.id}: the backend received the request`);
    }
}

describe('http1-bad-requests fixture', () => {
    for (const c of fixture.cases) {
        test(
            `${c.id} (${c.category})`,
            withLogs(logs, async () => {
                const e = c.expect;
                const from = be.requests.length;
                const parseFrom = be.parseErrors.length;
                const r = await send(expand(c.raw), { then: c.then_on_same_connection, want: 1 });
                const statuses = r.responses.map(x => x.status);
                const { reqs, parseErrors } = await backendSince(from, parseFrom);
                if (e.outcome === 'accept') {
                    assert.equal(statuses[0], 200, `${c.id}: status ${statuses[0]}`);
                    const done = reqs.filter(x => x.complete);
                    assert.equal(done.length, 1, `${c.id}: backend requests ${done.length}`);
                    assert.equal(done[0].body.toString('latin1'), e.backend_sees.body);
                    return;
                }
                const normalised = e.outcome === 'reject_or_normalize' && reqs.some(x => x.complete);
                if (normalised) {
                    /* Forwarded: only the one normalised form is acceptable. */
                    const n = e.or_forward_as;
                    const fwd = reqs.find(x => x.complete);
                    if (n.content_length !== undefined && n.content_length !== null) {
                        const cls = fwd.rawHeaders.filter((v, i) => i % 2 === 0 && /^content-length$/i.test(v));
                        assert.equal(cls.length, 1, `${c.id}: forwarded ${cls.length} Content-Length lines`);
                        assert.equal(fwd.headers['content-length'], n.content_length);
                    }
                    if (n.body !== undefined) assert.equal(fwd.body.toString('latin1'), n.body);
                    if (n.header) for (const [k, v] of Object.entries(n.header)) assert.equal(fwd.headers[k.toLowerCase()], v);
                    if (n.transfer_encoding) assert.fail(`${c.id}: forwarded although the normalised body is invalid`);
                    return;
                }
                if (e.outcome === 'reject_or_close') {
                    assert.ok(r.closed, `${c.id}: connection not closed (statuses ${JSON.stringify(statuses)})`);
                    if (statuses.length) assert.ok(e.status.includes(statuses[0]), `${c.id}: status ${statuses[0]}`);
                } else {
                    assert.ok(statuses.length >= 1, `${c.id}: no response; got ${JSON.stringify(r.buf.toString('latin1').slice(0, 200))}`);
                    assert.ok(e.status.includes(statuses[0]), `${c.id}: status ${statuses[0]}, want one of ${e.status}`);
                    if (e.close_connection) assert.ok(r.closed, `${c.id}: connection left open after ${statuses[0]}`);
                }
                if (e.close_connection) {
                    assert.equal(statuses.length, 1, `${c.id}: more than one response: ${JSON.stringify(statuses)} (desync)`);
                }
                if (e.forward_to_backend === false || e.outcome === 'reject_or_close') checkNotForwarded(c, reqs, parseErrors);
            }),
        );
    }
});

/* Limits and rules of ssegate's own contract that the fixture does not cover. */
describe('contract limits and line rules', () => {
    const cases = [
        { id: 'request line > 8 KiB -> 414', raw: `GET /${'a'.repeat(9000)} HTTP/1.1\r\nHost: h.test\r\n\r\n`, status: [414] },
        {
            id: 'header section > 16 KiB -> 431',
            raw: `GET / HTTP/1.1\r\nHost: h.test\r\n${Array.from({ length: 20 }, (_, i) => `X-Big-${i}: ${'v'.repeat(1000)}\r\n`).join('')}\r\n`,
            status: [431],
        },
        {
            id: 'more than 100 header fields -> 431',
            raw: `GET / HTTP/1.1\r\nHost: h.test\r\n${Array.from({ length: 101 }, (_, i) => `X-H-${i}: v\r\n`).join('')}\r\n`,
            status: [431],
        },
        { id: 'bare LF line endings -> 400', raw: 'GET / HTTP/1.1\nHost: h.test\n\n', status: [400] },
        { id: 'obs-fold in an ordinary header -> 400', raw: 'GET / HTTP/1.1\r\nHost: h.test\r\nX-A: a\r\n b\r\n\r\n', status: [400] },
        { id: 'bad token in method -> 400', raw: 'G(T / HTTP/1.1\r\nHost: h.test\r\n\r\n', status: [400] },
        { id: 'CL + chunked TE -> 400', raw: 'POST / HTTP/1.1\r\nHost: h.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', status: [400] },
        { id: 'space before colon in Host -> 400', raw: 'GET / HTTP/1.1\r\nHost : h.test\r\n\r\n', status: [400] },
    ];
    for (const c of cases) {
        test(
            c.id,
            withLogs(logs, async () => {
                const from = be.requests.length;
                const parseFrom = be.parseErrors.length;
                const r = await send(c.raw);
                const statuses = r.responses.map(x => x.status);
                assert.ok(c.status.includes(statuses[0]), `status ${statuses[0]}, want ${c.status}`);
                assert.ok(r.closed, 'connection left open');
                const { reqs, parseErrors } = await backendSince(from, parseFrom);
                checkNotForwarded(c, reqs, parseErrors);
            }),
        );
    }

    test(
        'limits are not off by much: 8000-byte target and 90 fields pass',
        withLogs(logs, async () => {
            const raw = `GET /${'a'.repeat(8000)} HTTP/1.1\r\nHost: h.test\r\n${Array.from({ length: 90 }, (_, i) => `X-H-${i}: v\r\n`).join('')}\r\n`;
            const r = await send(raw);
            assert.equal(r.responses[0]?.status, 200);
            const body = JSON.parse(r.responses[0].body.toString());
            assert.equal(body.path.length, 8001);
            assert.equal(body.headers['x-h-89'], 'v');
        }),
    );

    test(
        'an incomplete head gets 408 after --header-timeout (1s) and the connection closes',
        withLogs(logs, async () => {
            const from = be.requests.length;
            const c = new RawConn(port);
            await c.connected;
            const t0 = performance.now();
            c.write('GET / HTTP/1.1\r\nHost: h.test\r\n');
            const closed = await c.waitClose(5000 * SLOW);
            const dt = performance.now() - t0;
            const res = parseAll(c.buf, true);
            c.destroy();
            assert.ok(closed, 'connection not closed');
            assert.equal(res[0]?.status, 408);
            assert.ok(dt >= 900 && dt < 3000 * SLOW, `closed after ${dt.toFixed(0)} ms, want ~1000`);
            assert.equal(be.requests.length, from);
        }),
    );

    test(
        'a slow but steady head is not cut before the header timeout, and a kept-alive connection is not cut by it',
        withLogs(logs, async () => {
            const c = new RawConn(port);
            await c.connected;
            c.write('GET /first HTTP/1.1\r\n');
            await sleep(400);
            c.write('Host: h.test\r\n\r\n');
            const r1 = await c.response();
            assert.equal(r1.status, 200);
            /* idle between requests longer than the header timeout: the idle timeout (default) applies, not 408 */
            await sleep(1300);
            assert.ok(!c.closed || c.buf.length === 0, 'unexpected bytes');
            if (!c.closed) {
                c.write('GET /second HTTP/1.1\r\nHost: h.test\r\n\r\n');
                const r2 = await c.response();
                assert.equal(r2.status, 200);
                assert.equal(JSON.parse(r2.body.toString()).path, '/second');
            }
            c.destroy();
        }),
    );
});
