// h2-probes.test.mjs: HTTP/2 protocol-error probes with raw frames (h2spec's check list, restated as our own
// cases), and nghttp2's abuse limits: rapid reset, CONTINUATION flood, HPACK bomb, SETTINGS and PING floods.
// Each abusive client gets GOAWAY and is closed while another connection's SSE stream goes on.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { before, test } from 'node:test';
import {
    E, F, Probe, S, T, block, connectionError, frame, hpackInt, literal, literalIndexed, pingAlive, request,
    responseOn, settingsPayload, streamError, u32,
} from '../h2probe/frames.mjs';
import { echoBackend, sseBackend } from './lib/backends.mjs';
import { SLOW, freePort, gatewayYaml, setup, sleep, startGateway, waitFor, withLogs } from './lib/harness.mjs';

setup();

let gw, port, sse;

before(async () => {
    const echo = await echoBackend();
    sse = await sseBackend();
    port = await freePort();
    gw = await startGateway({
        yaml: gatewayYaml({
            port,
            routes: [
                { name: 'events', path: '/events', backends: [{ name: '127.0.0.1', port: sse.port }] },
                { name: 'echo', path: '/', backends: [{ name: '127.0.0.1', port: echo.port }] },
            ],
        }),
        args: ['--workers', '2', '--access-log', 'off'],
        waitPorts: [port],
    });
});

const MS = 3000 * SLOW;
const open = opts => Probe.open(port, opts);
const ok = (what, v) => assert.ok(v, `expected ${what}; got frames ${JSON.stringify(lastFrames)}`);
let lastFrames = [];

/* Each case: id (from the checklist), what it sends, and the outcome it must see. */
const cases = [
    ['H2-http2-3.5-053', 'client preface and SETTINGS: server SETTINGS and ACK', async p => {
        ok('SETTINGS ACK', await p.until(x => x.settingsAck(), MS));
        return x => x.frames.find(f => f.type === T.SETTINGS && !(f.flags & F.ACK));
    }],
    ['H2-generic-4-026', 'GET request', async p => {
        p.headers(1, request('/get'));
        return responseOn(p, 1, MS);
    }],
    ['H2-generic-4-027', 'HEAD request', async p => {
        p.headers(1, request('/head', { method: 'HEAD' }));
        return responseOn(p, 1, MS);
    }],
    ['H2-generic-4-028', 'POST request with a body', async p => {
        p.headers(1, request('/post', { method: 'POST', extra: [['content-length', '4']] }), { endStream: false });
        p.send(T.DATA, F.END_STREAM, 1, Buffer.from('test'));
        return responseOn(p, 1, MS);
    }],
    ['H2-generic-4-029', 'POST request with trailers', async p => {
        p.headers(1, request('/post', { method: 'POST' }), { endStream: false });
        p.send(T.DATA, 0, 1, Buffer.from('test'));
        p.headers(1, block([['x-trailer', 'yes']]), { endStream: true });
        return responseOn(p, 1, MS);
    }],
    ['H2-generic-3.10-008', 'HEADERS then several CONTINUATION frames', async p => {
        const hb = request('/cont');
        const a = hb.subarray(0, 10), b = hb.subarray(10, 20), c = hb.subarray(20);
        p.send(T.HEADERS, F.END_STREAM, 1, a);
        p.send(T.CONTINUATION, 0, 1, b);
        p.send(T.CONTINUATION, F.END_HEADERS, 1, c);
        return responseOn(p, 1, MS);
    }],
    ['H2-generic-3.1-011', 'DATA frame with padding', async p => {
        p.headers(1, request('/pad', { method: 'POST', extra: [['content-length', '4']] }), { endStream: false });
        p.send(T.DATA, F.END_STREAM | F.PADDED, 1, Buffer.concat([Buffer.from([3]), Buffer.from('test'), Buffer.alloc(3)]));
        return responseOn(p, 1, MS);
    }],
    ['H2-http2-4.1-055', 'frame of unknown type is ignored', async p => {
        p.send(0x16, 0, 0, Buffer.from('unknown'));
        return pingAlive(p, MS);
    }],
    ['H2-http2-4.1-056', 'PING with an undefined flag', async p => {
        const d = Buffer.from('flagged!');
        p.send(T.PING, 0x16, 0, d);
        return p.until(x => x.pingAck(d), MS);
    }],
    ['H2-http2-4.1-057', 'frame header with the reserved bit set', async p => {
        const d = Buffer.from('reserved');
        p.send(T.PING, 0, 0x80000000, d);
        return p.until(x => x.pingAck(d), MS);
    }],
    ['H2-http2-4.2-058', 'DATA frame of 2^14 octets', async p => {
        p.headers(1, request('/big', { method: 'POST', extra: [['content-length', '16384']] }), { endStream: false });
        p.send(T.DATA, F.END_STREAM, 1, Buffer.alloc(16384, 0x61));
        return responseOn(p, 1, MS);
    }],
    ['H2-http2-4.2-059', 'DATA frame above SETTINGS_MAX_FRAME_SIZE', async p => {
        p.headers(1, request('/big', { method: 'POST' }), { endStream: false });
        p.send(T.DATA, F.END_STREAM, 1, Buffer.alloc(16385, 0x61));
        return streamError(p, 1, [E.FRAME_SIZE_ERROR], MS);
    }],
    ['H2-http2-4.2-060', 'HEADERS frame above SETTINGS_MAX_FRAME_SIZE', async p => {
        p.headers(1, request('/big', { extra: [['x-big', 'a'.repeat(16500)]] }));
        return connectionError(p, [E.FRAME_SIZE_ERROR], MS);
    }],
    ['H2-http2-4.3-061', 'invalid header block fragment', async p => {
        p.headers(1, Buffer.from([0x00, 0x01, 0x61, 0x7f]));
        return connectionError(p, [E.COMPRESSION_ERROR], MS);
    }],
    ['H2-http2-4.3-062', 'PRIORITY in the middle of a header block', async p => {
        p.send(T.HEADERS, F.END_STREAM, 1, request('/'));
        p.send(T.PRIORITY, 0, 1, Buffer.from([0, 0, 0, 0, 16]));
        return connectionError(p, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-4.3-063', 'HEADERS for another stream in the middle of a header block', async p => {
        p.send(T.HEADERS, F.END_STREAM, 1, request('/'));
        p.headers(3, request('/'));
        return connectionError(p, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-5.1.1-064', 'even-numbered stream identifier', async p => {
        p.headers(2, request('/'));
        return connectionError(p, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-5.1-067', 'idle stream: DATA', async p => {
        p.send(T.DATA, F.END_STREAM, 1, Buffer.from('x'));
        return connectionError(p, [E.PROTOCOL_ERROR, E.STREAM_CLOSED], MS);
    }],
    ['H2-http2-5.1-068', 'idle stream: RST_STREAM', async p => {
        p.send(T.RST_STREAM, 0, 1, u32(E.CANCEL));
        return connectionError(p, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-5.1-069', 'idle stream: WINDOW_UPDATE', async p => {
        p.send(T.WINDOW_UPDATE, 0, 1, u32(100));
        return connectionError(p, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-5.1-070', 'idle stream: CONTINUATION', async p => {
        p.send(T.CONTINUATION, F.END_HEADERS, 1, request('/'));
        return connectionError(p, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-5.1-071', 'half-closed (remote): DATA', async p => {
        p.headers(1, request('/events/half'));
        ok('response', await responseOn(p, 1, MS));
        p.send(T.DATA, 0, 1, Buffer.from('x'));
        return streamError(p, 1, [E.STREAM_CLOSED], MS);
    }],
    ['H2-http2-5.1-072', 'half-closed (remote): HEADERS', async p => {
        p.headers(1, request('/events/half'));
        ok('response', await responseOn(p, 1, MS));
        p.headers(1, request('/events/half'));
        return streamError(p, 1, [E.STREAM_CLOSED], MS);
    }],
    ['H2-http2-5.3.1-080', 'HEADERS that depends on itself', async p => {
        p.send(T.HEADERS, F.END_STREAM | F.END_HEADERS | F.PRIORITY, 1,
            Buffer.concat([u32(1), Buffer.from([15]), request('/')]));
        return streamError(p, 1, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-5.3.1-081', 'PRIORITY that depends on itself', async p => {
        p.send(T.PRIORITY, 0, 1, Buffer.concat([u32(1), Buffer.from([15])]));
        return streamError(p, 1, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-5.5-085', 'unknown frame type in the middle of a header block', async p => {
        p.send(T.HEADERS, F.END_STREAM, 1, request('/'));
        p.send(0x16, 0, 1, Buffer.from('x'));
        return connectionError(p, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-6.10-087', 'CONTINUATION followed by a frame other than CONTINUATION', async p => {
        const hb = request('/');
        p.send(T.HEADERS, F.END_STREAM, 1, hb.subarray(0, 5));
        p.send(T.CONTINUATION, 0, 1, hb.subarray(5, 10));
        p.send(T.DATA, 0, 1, Buffer.from('x'));
        return connectionError(p, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-6.10-088', 'CONTINUATION with stream identifier 0', async p => {
        const hb = request('/');
        p.send(T.HEADERS, F.END_STREAM, 1, hb.subarray(0, 5));
        p.send(T.CONTINUATION, F.END_HEADERS, 0, hb.subarray(5));
        return connectionError(p, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-6.10-089', 'CONTINUATION after HEADERS with END_HEADERS', async p => {
        p.headers(1, request('/events/x'));
        p.send(T.CONTINUATION, F.END_HEADERS, 1, block([['x-a', 'b']]));
        return connectionError(p, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-6.10-091', 'CONTINUATION after DATA', async p => {
        p.headers(1, request('/', { method: 'POST' }), { endStream: false });
        p.send(T.DATA, 0, 1, Buffer.from('x'));
        p.send(T.CONTINUATION, F.END_HEADERS, 1, block([['x-a', 'b']]));
        return connectionError(p, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-6.1-092', 'DATA on stream 0', async p => {
        p.send(T.DATA, F.END_STREAM, 0, Buffer.from('x'));
        return connectionError(p, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-6.1-094', 'DATA with a pad length beyond the payload', async p => {
        p.headers(1, request('/', { method: 'POST' }), { endStream: false });
        p.send(T.DATA, F.END_STREAM | F.PADDED, 1, Buffer.from([6, 0x61, 0x62]));
        return connectionError(p, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-6.2-097', 'HEADERS on stream 0', async p => {
        p.headers(0, request('/'));
        return connectionError(p, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-6.3-099', 'PRIORITY on stream 0', async p => {
        p.send(T.PRIORITY, 0, 0, Buffer.concat([u32(1), Buffer.from([15])]));
        return connectionError(p, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-6.3-100', 'PRIORITY with a length other than 5', async p => {
        p.send(T.PRIORITY, 0, 1, Buffer.from([0, 0, 0, 3]));
        return streamError(p, 1, [E.FRAME_SIZE_ERROR], MS);
    }],
    ['H2-http2-6.4-101', 'RST_STREAM on stream 0', async p => {
        p.send(T.RST_STREAM, 0, 0, u32(E.CANCEL));
        return connectionError(p, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-6.4-103', 'RST_STREAM with a length other than 4', async p => {
        p.headers(1, request('/events/rst'));
        p.send(T.RST_STREAM, 0, 1, Buffer.from([0, 0, 0]));
        return connectionError(p, [E.FRAME_SIZE_ERROR], MS);
    }],
    ['H2-http2-6.5.2-104', 'SETTINGS_ENABLE_PUSH of 2', async p => {
        p.send(T.SETTINGS, 0, 0, settingsPayload([[S.ENABLE_PUSH, 2]]));
        return connectionError(p, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-6.5.2-105', 'SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1', async p => {
        p.send(T.SETTINGS, 0, 0, settingsPayload([[S.INITIAL_WINDOW_SIZE, 0x80000000]]));
        return connectionError(p, [E.FLOW_CONTROL_ERROR], MS);
    }],
    ['H2-http2-6.5.2-106', 'SETTINGS_MAX_FRAME_SIZE below 16384', async p => {
        p.send(T.SETTINGS, 0, 0, settingsPayload([[S.MAX_FRAME_SIZE, 16383]]));
        return connectionError(p, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-6.5.2-107', 'SETTINGS_MAX_FRAME_SIZE above 2^24-1', async p => {
        p.send(T.SETTINGS, 0, 0, settingsPayload([[S.MAX_FRAME_SIZE, 16777216]]));
        return connectionError(p, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-6.5.2-108', 'SETTINGS with an unknown identifier', async p => {
        p.send(T.SETTINGS, 0, 0, settingsPayload([[0xff, 1]]));
        return pingAlive(p, MS);
    }],
    ['H2-http2-6.5-111', 'SETTINGS ACK with a payload', async p => {
        await p.until(x => x.settingsAck(), MS);
        p.send(T.SETTINGS, F.ACK, 0, settingsPayload([[S.ENABLE_PUSH, 0]]));
        return connectionError(p, [E.FRAME_SIZE_ERROR], MS);
    }],
    ['H2-http2-6.5-112', 'SETTINGS on a stream other than 0', async p => {
        p.send(T.SETTINGS, 0, 1, settingsPayload([[S.ENABLE_PUSH, 0]]));
        return connectionError(p, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-6.5-113', 'SETTINGS with a length not a multiple of 6', async p => {
        p.send(T.SETTINGS, 0, 0, Buffer.from([0, 2, 0]));
        return connectionError(p, [E.FRAME_SIZE_ERROR], MS);
    }],
    ['H2-http2-6.7-114', 'PING gets a PING ACK with the same data', async p => pingAlive(p, MS)],
    ['H2-http2-6.7-115', 'PING with ACK is not answered', async p => {
        p.send(T.PING, F.ACK, 0, Buffer.from('unsolic!'));
        const v = await pingAlive(p, MS);
        return v && !p.frames.some(f => f.type === T.PING && f.payload.equals(Buffer.from('unsolic!'))) ? v : null;
    }],
    ['H2-http2-6.7-116', 'PING on a stream other than 0', async p => {
        p.send(T.PING, 0, 1, Buffer.alloc(8));
        return connectionError(p, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-6.7-117', 'PING with a length other than 8', async p => {
        p.send(T.PING, 0, 0, Buffer.alloc(6));
        return connectionError(p, [E.FRAME_SIZE_ERROR], MS);
    }],
    ['H2-http2-6.8-118', 'GOAWAY on a stream other than 0', async p => {
        p.send(T.GOAWAY, 0, 1, Buffer.concat([u32(0), u32(0)]));
        return connectionError(p, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-6.9-125', 'WINDOW_UPDATE of 0 on the connection', async p => {
        p.send(T.WINDOW_UPDATE, 0, 0, u32(0));
        return connectionError(p, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-6.9-126', 'WINDOW_UPDATE of 0 on a stream', async p => {
        p.headers(1, request('/events/wu'));
        p.send(T.WINDOW_UPDATE, 0, 1, u32(0));
        return streamError(p, 1, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-6.9-127', 'WINDOW_UPDATE with a length other than 4', async p => {
        p.send(T.WINDOW_UPDATE, 0, 0, Buffer.from([0, 0, 1]));
        return connectionError(p, [E.FRAME_SIZE_ERROR], MS);
    }],
    ['H2-http2-6.9.1-120', 'WINDOW_UPDATEs taking the connection window above 2^31-1', async p => {
        p.send(T.WINDOW_UPDATE, 0, 0, u32(0x7fffffff));
        p.send(T.WINDOW_UPDATE, 0, 0, u32(0x7fffffff));
        return connectionError(p, [E.FLOW_CONTROL_ERROR], MS);
    }],
    ['H2-http2-8.1.2.1-130', 'unknown pseudo-header field', async p => {
        p.headers(1, Buffer.concat([request('/'), literal(':foo', 'bar')]));
        return streamError(p, 1, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-8.1.2.1-131', 'response pseudo-header in a request', async p => {
        p.headers(1, Buffer.concat([request('/'), literal(':status', '200')]));
        return streamError(p, 1, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-8.1.2.1-133', 'pseudo-header after a regular field', async p => {
        p.headers(1, block([[':method', 'GET'], [':scheme', 'http'], ['x-a', 'b'], [':path', '/']]));
        return streamError(p, 1, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-8.1.2.2-134', 'connection-specific header field', async p => {
        p.headers(1, request('/', { extra: [['connection', 'keep-alive']] }));
        return streamError(p, 1, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-8.1.2.2-135', 'TE other than "trailers"', async p => {
        p.headers(1, request('/', { extra: [['te', 'gzip']] }));
        return streamError(p, 1, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-8.1.2.3-136', 'empty :path', async p => {
        p.headers(1, request(''));
        return streamError(p, 1, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-8.1.2.3-137', ':method missing', async p => {
        p.headers(1, block([[':scheme', 'http'], [':path', '/'], [':authority', 'a']]));
        return streamError(p, 1, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-8.1.2.3-140', ':method twice', async p => {
        p.headers(1, block([[':method', 'GET'], [':method', 'POST'], [':scheme', 'http'], [':path', '/']]));
        return streamError(p, 1, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-8.1.2.6-143', 'content-length unlike the DATA length', async p => {
        p.headers(1, request('/', { method: 'POST', extra: [['content-length', '1']] }), { endStream: false });
        p.send(T.DATA, F.END_STREAM, 1, Buffer.from('test'));
        return streamError(p, 1, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-8.1.2-145', 'upper-case header field name', async p => {
        p.headers(1, request('/', { extra: [['X-Upper', 'a']] }));
        return streamError(p, 1, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-http2-8.2-147', 'PUSH_PROMISE from a client', async p => {
        p.send(T.PUSH_PROMISE, F.END_HEADERS, 1, Buffer.concat([u32(2), request('/')]));
        return connectionError(p, [E.PROTOCOL_ERROR], MS);
    }],
    ['H2-hpack-2.3.3-045', 'indexed field with an invalid index', async p => {
        p.headers(1, Buffer.concat([request('/'), hpackInt(100, 7, 0x80)]));
        return connectionError(p, [E.COMPRESSION_ERROR], MS);
    }],
    ['H2-hpack-6.1-051', 'indexed field with index 0', async p => {
        p.headers(1, Buffer.concat([request('/'), Buffer.from([0x80])]));
        return connectionError(p, [E.COMPRESSION_ERROR], MS);
    }],
    ['H2-hpack-4.2-047', 'dynamic table size update at the end of a header block', async p => {
        p.headers(1, Buffer.concat([request('/'), hpackInt(0, 5, 0x20)]));
        return connectionError(p, [E.COMPRESSION_ERROR], MS);
    }],
    ['H2-hpack-6.3-052', 'dynamic table size update above SETTINGS_HEADER_TABLE_SIZE', async p => {
        p.headers(1, Buffer.concat([hpackInt(4097, 5, 0x20), request('/')]));
        return connectionError(p, [E.COMPRESSION_ERROR], MS);
    }],
];

for (const [id, what, run] of cases) {
    test(`${id}: ${what}`, withLogs(() => [gw], async () => {
        const p = await open();
        try {
            const r = await run(p);
            const v = typeof r === 'function' ? await p.until(r, MS) : r;
            lastFrames = p.frames.map(f => [f.type, f.flags, f.streamId, f.payload.length]);
            ok(what, v);
        } finally {
            p.close();
        }
    }));
}

/* ---- abuse limits: GOAWAY and close for the abuser, nothing for a bystander ---- */

/* A bystander: an SSE stream on its own h2 connection; returns a check that it still gets events. */
async function bystander(tag) {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => {});
    const before = sse.streams.length;
    const req = session.request({ ':path': `/events/bystander-${tag}` });
    let text = '';
    req.setEncoding('utf8');
    req.on('data', d => (text += d));
    req.on('error', () => {});
    const st = await sse.stream(before);
    st.send('before');
    await waitFor(() => text.includes('data: before'), MS, 'bystander event before');
    return async () => {
        st.send('after');
        await waitFor(() => text.includes('data: after'), MS, 'bystander event after the abuse');
        st.end();
        session.close();
    };
}

async function abused(p, code) {
    const g = await p.until(x => x.goaway(), 10000 * SLOW);
    assert.ok(g, 'no GOAWAY for the abusive client');
    assert.equal(g.code, code, `GOAWAY code ${g.code}`);
    assert.ok(await p.until(x => x.closed, 10000 * SLOW), 'the abusive connection was not closed');
}

test('rapid reset (CVE-2023-44487): HEADERS + RST_STREAM in a loop gets GOAWAY', withLogs(() => [gw], async () => {
    const check = await bystander('rst');
    const p = await open();
    const chunks = [];
    for (let i = 0, id = 1; i < 2000; i++, id += 2) {
        chunks.push(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, id, request('/events/rapid')));
        chunks.push(frame(T.RST_STREAM, 0, id, u32(E.CANCEL)));
    }
    p.write(Buffer.concat(chunks));
    const g = await p.until(x => x.goaway(), 10000 * SLOW);
    assert.ok(g, 'no GOAWAY');
    assert.ok([E.ENHANCE_YOUR_CALM, E.INTERNAL_ERROR, E.PROTOCOL_ERROR].includes(g.code), `code ${g.code}`);
    assert.ok(await p.until(x => x.closed, 10000 * SLOW), 'not closed');
    await check();
}));

test('CONTINUATION flood gets GOAWAY ENHANCE_YOUR_CALM', withLogs(() => [gw], async () => {
    const check = await bystander('cont');
    const p = await open();
    const chunks = [frame(T.HEADERS, F.END_STREAM, 1, request('/'))];
    for (let i = 0; i < 200; i++) chunks.push(frame(T.CONTINUATION, 0, 1, literal(`x-f${i}`, 'v')));
    p.write(Buffer.concat(chunks));
    await abused(p, E.ENHANCE_YOUR_CALM);
    await check();
}));

test('HPACK header-list bomb (one big entry referenced many times) gets GOAWAY', withLogs(() => [gw], async () => {
    const check = await bystander('hpack');
    const p = await open();
    /* 4,000 bytes into the dynamic table, then 3,000 one-byte references to it: 12 MB once decoded. */
    const hb = Buffer.concat([request('/'), literalIndexed('x-bomb', 'b'.repeat(4000)), Buffer.alloc(3000, 0x80 | 62)]);
    const chunks = [frame(T.HEADERS, F.END_STREAM, 1, hb.subarray(0, 16000))];
    chunks.push(frame(T.CONTINUATION, F.END_HEADERS, 1, hb.subarray(16000)));
    p.write(Buffer.concat(chunks));
    await abused(p, E.ENHANCE_YOUR_CALM);
    await check();
}));

test('header list over 16 KiB but not a bomb: 431 on that stream, the connection lives', withLogs(() => [gw], async () => {
    const p = await open();
    const extra = [];
    for (let i = 0; i < 10; i++) extra.push([`x-h${i}`, 'v'.repeat(2000)]);
    const hb = request('/big-headers', { extra });
    p.send(T.HEADERS, F.END_STREAM, 1, hb.subarray(0, 16000));
    p.send(T.CONTINUATION, F.END_HEADERS, 1, hb.subarray(16000));
    const h = await p.until(x => x.responseHeaders(1), MS);
    assert.ok(h, 'no response');
    ok('alive', await pingAlive(p, MS));
    p.close();
}));

test('SETTINGS flood gets GOAWAY ENHANCE_YOUR_CALM', withLogs(() => [gw], async () => {
    const check = await bystander('settings');
    const p = await open();
    const one = frame(T.SETTINGS, 0, 0, settingsPayload([[S.ENABLE_PUSH, 0]]));
    p.write(Buffer.concat(Array(20000).fill(one)));
    await abused(p, E.ENHANCE_YOUR_CALM);
    await check();
}));

test('PING flood gets GOAWAY ENHANCE_YOUR_CALM', withLogs(() => [gw], async () => {
    const check = await bystander('ping');
    const p = await open();
    const one = frame(T.PING, 0, 0, Buffer.alloc(8, 7));
    p.write(Buffer.concat(Array(20000).fill(one)));
    await abused(p, E.ENHANCE_YOUR_CALM);
    await check();
}));

test('more streams than SETTINGS_MAX_CONCURRENT_STREAMS (256): the extra one is refused', withLogs(() => [gw], async () => {
    const p = await open();
    ok('SETTINGS ACK', await p.until(x => x.settingsAck(), MS));
    const chunks = [];
    for (let i = 0; i < 257; i++) chunks.push(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1 + 2 * i, request(`/events/cap-${i}`)));
    p.write(Buffer.concat(chunks));
    const v = await streamError(p, 1 + 2 * 256, [E.REFUSED_STREAM, E.PROTOCOL_ERROR], 10000 * SLOW);
    ok('RST_STREAM REFUSED_STREAM on stream 513', v);
    p.close();
    await sleep(100);
}));

test('after all the probes the gateway still answers over HTTP/2', withLogs(() => [gw], async () => {
    const p = await open();
    p.headers(1, request('/final'));
    ok('response', await responseOn(p, 1, MS));
    p.close();
    assert.ok(gw.running());
}));

test('a request head left incomplete (HEADERS without END_HEADERS) is cut by the header timeout', { timeout: 20000 * SLOW },
    withLogs(() => [gw], async () => {
        const p2 = await freePort();
        const g2 = await startGateway({
            yaml: gatewayYaml({ port: p2, routes: [{ name: 'ev', path: '/', backends: [{ name: '127.0.0.1', port: sse.port }] }] }),
            args: ['--workers', '1', '--header-timeout', '1s', '--access-log', 'off'],
            waitPorts: [p2],
        });
        const p = await Probe.open(p2);
        /* SETTINGS are exchanged first: an ACK inside the open header block would be a protocol error. */
        ok('SETTINGS ACK', await p.until(x => x.settingsAck() && x.frames.some(f => f.type === T.SETTINGS && !(f.flags & F.ACK)), MS));
        await sleep(50);
        const t0 = Date.now();
        p.send(T.HEADERS, F.END_STREAM, 1, request('/slow'));
        const g = await p.until(x => x.goaway(), 5000 * SLOW);
        assert.ok(g, 'GOAWAY');
        assert.ok(await p.until(x => x.closed, 5000 * SLOW), 'closed');
        const ms = Date.now() - t0;
        assert.ok(ms >= 900 && ms < 4000 * SLOW, `after ${ms} ms`);
        /* A connection that completes its head in time is not affected: it answers. */
        const q = await Probe.open(p2);
        q.headers(1, request('/ok'));
        ok('response', await responseOn(q, 1, MS));
        q.close();
        await g2.stop();
    }));
