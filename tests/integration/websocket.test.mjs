// websocket.test.mjs: WebSocket over HTTP/1.1 through ssegate with the npm `ws` package on both sides: text and
// binary echo, fragmented messages, messages of several MiB, ping/pong, the close handshake both ways, the bytes
// relayed exactly, back-pressure each way, routing and filters on the handshake, malformed handshakes, metrics,
// and timeouts (none by default; --ws-idle-timeout and an explicit route timeout close with 1001).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import { test } from 'node:test';
import { SLOW, freePort, gatewayYaml, setup, sleep, startGateway, withLogs } from './lib/harness.mjs';
import { scrape } from './lib/prod-util.mjs';
import { rawHandshake, wsBackend, wsConnect, wsMessages } from './lib/wsutil.mjs';

setup();

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

async function gateway(routes, args = [], extra = '') {
    const port = await freePort();
    const admin = await freePort();
    const gw = await startGateway({
        yaml: gatewayYaml({ port, routes, extra }),
        args: ['--workers', '2', '--admin', `127.0.0.1:${admin}`, ...args],
        waitPorts: [port, admin],
    });
    return { gw, port, admin };
}

/* A masked client frame. */
function frame(op, payload, { fin = true, mask = crypto.randomBytes(4) } = {}) {
    const p = Buffer.from(payload);
    let h;
    if (p.length < 126) h = Buffer.from([(fin ? 0x80 : 0) | op, 0x80 | p.length]);
    else if (p.length < 65536) h = Buffer.from([(fin ? 0x80 : 0) | op, 0x80 | 126, p.length >> 8, p.length & 255]);
    else {
        h = Buffer.alloc(10);
        h[0] = (fin ? 0x80 : 0) | op;
        h[1] = 0x80 | 127;
        h.writeBigUInt64BE(BigInt(p.length), 2);
    }
    const m = Buffer.from(p.map((x, i) => x ^ mask[i & 3]));
    return Buffer.concat([h, mask, m]);
}

let ctx;
const logs = () => [ctx?.gw];

test('ws: text, binary, fragmented, multi-MiB messages, ping/pong and the close handshake both ways',
    { timeout: 60000 * SLOW }, withLogs(logs, async () => {
        const b = await wsBackend();
        ctx = await gateway([{ name: 'ws', path: '/', backends: [{ name: '127.0.0.1', port: b.port }] }]);
        const url = `ws://127.0.0.1:${ctx.port}/chat`;
        const ws = await wsConnect(url);
        ws.send('hello');
        ws.send(Buffer.from([0, 1, 2, 255]));
        /* a message in three fragments, with a ping between two of them */
        const pongs = [];
        ws.on('pong', d => pongs.push(d.toString()));
        ws.send('frag-', { fin: false });
        ws.ping(Buffer.from('between'));
        ws.send('men-', { fin: false });
        ws.send('ted', { fin: true });
        const big = [crypto.randomBytes(3 << 20), crypto.randomBytes((1 << 20) + 7)];
        for (const x of big) ws.send(x);
        ws.ping(Buffer.from('are you there'));
        const m = await wsMessages(ws, 5, 20000 * SLOW);
        assert.equal(m[0].data.toString(), 'hello');
        assert.equal(m[0].isBinary, false);
        assert.deepEqual([...m[1].data], [0, 1, 2, 255]);
        assert.equal(m[1].isBinary, true);
        assert.equal(m[2].data.toString(), 'frag-men-ted');
        assert.ok(m[3].data.equals(big[0]), 'the 3 MiB message came back changed');
        assert.ok(m[4].data.equals(big[1]), 'the 1 MiB + 7 message came back changed');
        for (let i = 0; i < 100 && pongs.length < 2; i++) await sleep(20);
        assert.deepEqual(pongs, ['between', 'are you there']);
        /* the backend pings, the client's pong reaches it */
        const srv = b.sockets[0];
        const spong = new Promise(r => srv.once('pong', d => r(d.toString())));
        srv.ping(Buffer.from('backend ping'));
        assert.equal(await spong, 'backend ping');
        /* the client closes: code and reason reach the backend, and its echo of them comes back */
        ws.close(4001, 'client bye');
        assert.deepEqual(await srv.closeInfo, { code: 4001, reason: 'client bye' });
        assert.deepEqual(await ws.closeInfo, { code: 4001, reason: 'client bye' });

        /* the backend closes */
        const ws2 = await wsConnect(url);
        await sleep(50);
        const srv2 = b.sockets[1];
        srv2.close(4002, 'server bye');
        assert.deepEqual(await ws2.closeInfo, { code: 4002, reason: 'server bye' });
        assert.deepEqual(await srv2.closeInfo, { code: 4002, reason: 'server bye' });

        /* the access log names the switch */
        await sleep(100);
        assert.match(ctx.gw.stdout, /proto=HTTP\/1\.1 method=GET path=\/chat status=101 .*route=default\/ws/);
        await ctx.gw.stop();
    }));

test('ws: the bytes each way are relayed exactly (fragments, control frames, after-head bytes)',
    { timeout: 30000 * SLOW }, withLogs(logs, async () => {
        /* a raw backend: answers the handshake, then records every byte and sends its own frames */
        const got = [];
        let bsock;
        const server = net.createServer(s => {
            bsock = s;
            let head = Buffer.alloc(0);
            let switched = false;
            s.on('data', d => {
                if (switched) return got.push(d);
                head = Buffer.concat([head, d]);
                const i = head.indexOf('\r\n\r\n');
                if (i < 0) return;
                switched = true;
                const key = /sec-websocket-key: *(\S+)/i.exec(head.subarray(0, i).toString())[1];
                const acc = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
                s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acc}\r\n\r\n`);
                if (head.length > i + 4) got.push(head.subarray(i + 4));
                /* unmasked server frames: a fragmented text message with a ping inside, then a 70000-byte binary */
                s.write(Buffer.from([0x01, 3, 0x61, 0x62, 0x63, 0x89, 1, 0x50, 0x80, 2, 0x64, 0x65]));
                const big = Buffer.alloc(70010, 9);
                big[0] = 0x82;
                big[1] = 127;
                big.writeBigUInt64BE(70000n, 2);
                s.write(big);
            });
        });
        await new Promise(r => server.listen(0, '127.0.0.1', r));
        ctx = await gateway([{ name: 'raw', path: '/', backends: [{ name: '127.0.0.1', port: server.address().port }] }]);
        const first = frame(1, 'sent with the head');
        const hs = await rawHandshake(ctx.port, ['GET /raw HTTP/1.1', 'Host: gw.test', 'Upgrade: websocket', 'Connection: Upgrade',
            `Sec-WebSocket-Key: ${KEY}`, 'Sec-WebSocket-Version: 13', '', first.toString('latin1')].slice(0, 6));
        assert.equal(hs.status, 101, hs.head);
        assert.match(hs.head, /\r\nupgrade: websocket/i);
        assert.match(hs.head, /\r\nconnection: upgrade/i);
        assert.match(hs.head, /sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/i);
        assert.doesNotMatch(hs.head, /transfer-encoding|content-length/i);
        const sent = Buffer.concat([frame(1, 'a', { fin: false }), frame(9, 'p'), frame(0, 'b'), frame(2, crypto.randomBytes(100000)),
            frame(8, Buffer.from([0x03, 0xe8]))]);
        /* written in odd pieces */
        for (let o = 0; o < sent.length; o += 4093) hs.sock.write(sent.subarray(o, o + 4093));
        let down = hs.rest;
        hs.sock.on('data', d => (down = Buffer.concat([down, d])));
        const want = 12 + 70010;
        for (let i = 0; i < 400 && (Buffer.concat(got).length < sent.length || down.length < want); i++) await sleep(25);
        assert.ok(Buffer.concat(got).equals(sent), `backend got ${Buffer.concat(got).length} bytes, not the ${sent.length} sent`);
        assert.equal(down.length, want);
        assert.deepEqual([...down.subarray(0, 12)], [0x01, 3, 0x61, 0x62, 0x63, 0x89, 1, 0x50, 0x80, 2, 0x64, 0x65]);
        bsock.destroy();
        server.close();
        await ctx.gw.stop();
    }));

test('ws: back-pressure each way: a stalled reader holds the sender back, then everything arrives',
    { timeout: 90000 * SLOW }, withLogs(logs, async () => {
        const b = await wsBackend({ onConnection: () => {} });
        ctx = await gateway([{ name: 'ws', path: '/', backends: [{ name: '127.0.0.1', port: b.port }] }]);
        const N = 64;
        const msg = i => Buffer.alloc(1 << 20, i);
        const check = ms => {
            assert.equal(ms.length, N);
            for (let i = 0; i < N; i++) assert.ok(ms[i].equals(msg(i)), `message ${i} changed`);
        };

        /* backend -> client, with the client not reading */
        const ws = await wsConnect(`ws://127.0.0.1:${ctx.port}/down`);
        await sleep(50);
        const srv = b.sockets[0];
        ws._socket.pause();
        for (let i = 0; i < N; i++) srv.send(msg(i));
        await sleep(1500 * SLOW);
        const held = srv.bufferedAmount;
        assert.ok(held > 24 << 20, `the backend could write ${((N << 20) - held) >> 20} MiB of ${N} to a stalled client (gateway buffering, not back-pressure)`);
        ws._socket.resume();
        check((await wsMessages(ws, N, 30000 * SLOW)).map(x => x.data));

        /* client -> backend, with the backend not reading */
        const got = [];
        srv.on('message', d => got.push(d));
        srv._socket.pause();
        for (let i = 0; i < N; i++) ws.send(msg(i));
        await sleep(1500 * SLOW);
        const held2 = ws.bufferedAmount;
        assert.ok(held2 > 24 << 20, `the client could write ${((N << 20) - held2) >> 20} MiB of ${N} to a stalled backend`);
        srv._socket.resume();
        for (let i = 0; i < 600 && got.length < N; i++) await sleep(50);
        check(got);
        ws.close();
        await ctx.gw.stop();
    }));

test('ws: routing, request and response header filters and URL rewrite apply to the handshake',
    { timeout: 30000 * SLOW }, withLogs(logs, async () => {
        const a = await wsBackend();
        const o = await wsBackend();
        const extra = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: filtered}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /ws-a}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: X-Route, value: a}], remove: [X-Secret]}
    - type: ResponseHeaderModifier
      responseHeaderModifier: {add: [{name: X-Resp, value: switched}]}
    - type: URLRewrite
      urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /inner}}
    backendRefs: [{name: 127.0.0.1, port: ${a.port}}]
`;
        ctx = await gateway([{ name: 'other', path: '/other', backends: [{ name: '127.0.0.1', port: o.port }] }], [], extra);
        const res = new Promise(r => setTimeout(r, 0));
        void res;
        const ws = await new Promise((resolve, reject) => {
            const w = wsConnect(`ws://127.0.0.1:${ctx.port}/ws-a/room?x=1`, { headers: { 'X-Secret': 'nope' } });
            w.then(resolve, reject);
        });
        ws.send('to a');
        assert.equal((await wsMessages(ws, 1)).at(0).data.toString(), 'to a');
        assert.equal(a.handshakes.length, 1);
        assert.equal(a.handshakes[0].url, '/inner/room?x=1');
        assert.equal(a.handshakes[0].headers['x-route'], 'a');
        assert.equal(a.handshakes[0].headers['x-secret'], undefined);
        assert.equal(a.handshakes[0].headers['x-forwarded-for'], '127.0.0.1');
        assert.equal(o.handshakes.length, 0);
        /* the response header filter applies to the 101 */
        const hs = await rawHandshake(ctx.port, ['GET /ws-a/x HTTP/1.1', 'Host: gw.test', 'Upgrade: websocket', 'Connection: Upgrade',
            `Sec-WebSocket-Key: ${KEY}`, 'Sec-WebSocket-Version: 13']);
        assert.equal(hs.status, 101);
        assert.match(hs.head, /\r\nX-Resp: switched\r\n/i);
        hs.sock.destroy();
        const wo = await wsConnect(`ws://127.0.0.1:${ctx.port}/other/y`);
        wo.send('to other');
        assert.equal((await wsMessages(wo, 1)).at(0).data.toString(), 'to other');
        assert.equal(o.handshakes[0].url, '/other/y');
        /* no route: 404 from the gateway */
        await assert.rejects(wsConnect(`ws://127.0.0.1:${ctx.port}/nowhere`), e => e.status === 404);
        ws.close();
        wo.close();
        await ctx.gw.stop();
    }));

test('ws: malformed handshakes get a clear answer, h2c and lone Connection: upgrade stay plain requests',
    { timeout: 30000 * SLOW }, withLogs(logs, async () => {
        const b = await wsBackend({
            onUpgrade(req, socket) {
                if (req.url.startsWith('/ok200')) {
                    socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok');
                    return true;
                }
                if (req.url.startsWith('/forbidden')) {
                    socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n\r\nno room');
                    return true;
                }
                if (req.url.startsWith('/badaccept')) {
                    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n');
                    return true;
                }
                return false;
            },
        });
        ctx = await gateway([{ name: 'ws', path: '/', backends: [{ name: '127.0.0.1', port: b.port }] }]);
        const { port } = ctx;
        const up = ['Host: gw.test', 'Upgrade: websocket', 'Connection: Upgrade'];
        /* no key */
        let r = await rawHandshake(port, ['GET /a HTTP/1.1', ...up, 'Sec-WebSocket-Version: 13']);
        assert.equal(r.status, 400);
        assert.match(r.head + r.rest.toString(), /Sec-WebSocket-Key/);
        /* a key that is not 16 bytes of base64 */
        r = await rawHandshake(port, ['GET /a HTTP/1.1', ...up, 'Sec-WebSocket-Key: short', 'Sec-WebSocket-Version: 13']);
        assert.equal(r.status, 400);
        /* an unknown version: 426 naming the one we speak */
        r = await rawHandshake(port, ['GET /a HTTP/1.1', ...up, `Sec-WebSocket-Key: ${KEY}`, 'Sec-WebSocket-Version: 8']);
        assert.equal(r.status, 426);
        assert.match(r.head, /\r\nSec-WebSocket-Version: 13/i);
        /* a POST */
        r = await rawHandshake(port, ['POST /a HTTP/1.1', ...up, `Sec-WebSocket-Key: ${KEY}`, 'Sec-WebSocket-Version: 13', 'Content-Length: 0']);
        assert.equal(r.status, 400);
        assert.equal(b.handshakes.length, 0, 'a malformed handshake reached the backend');
        /* the backend answers 200 to the upgrade: 502, with a reason in the log */
        r = await rawHandshake(port, ['GET /ok200 HTTP/1.1', ...up, `Sec-WebSocket-Key: ${KEY}`, 'Sec-WebSocket-Version: 13']);
        assert.equal(r.status, 502);
        /* the backend refuses (403): relayed as it is */
        r = await rawHandshake(port, ['GET /forbidden HTTP/1.1', ...up, `Sec-WebSocket-Key: ${KEY}`, 'Sec-WebSocket-Version: 13']);
        assert.equal(r.status, 403);
        /* a 101 to another protocol: 502 */
        r = await rawHandshake(port, ['GET /badaccept HTTP/1.1', ...up, `Sec-WebSocket-Key: ${KEY}`, 'Sec-WebSocket-Version: 13']);
        assert.equal(r.status, 502);
        /* HTTP/1.0: Upgrade is ignored (RFC 9110 7.8), a plain request */
        r = await rawHandshake(port, ['GET /old HTTP/1.0', ...up, `Sec-WebSocket-Key: ${KEY}`, 'Sec-WebSocket-Version: 13']);
        assert.equal(r.status, 200);
        assert.equal(b.plain.at(-1).url, '/old');
        assert.equal(b.plain.at(-1).headers.upgrade, undefined);
        /* h2c upgrade: stripped, a plain request as before */
        r = await rawHandshake(port, ['GET /h2c HTTP/1.1', 'Host: gw.test', 'Upgrade: h2c', 'Connection: Upgrade, HTTP2-Settings', 'HTTP2-Settings: AAMAAABkAAQAAP__']);
        assert.equal(r.status, 200);
        assert.equal(b.plain.at(-1).url, '/h2c');
        assert.equal(b.plain.at(-1).headers.upgrade, undefined);
        assert.equal(b.plain.at(-1).headers['http2-settings'], undefined);
        /* Connection: upgrade without Upgrade */
        r = await rawHandshake(port, ['GET /lone HTTP/1.1', 'Host: gw.test', 'Connection: upgrade']);
        assert.equal(r.status, 200);
        assert.equal(b.plain.at(-1).url, '/lone');
        for (let i = 0; i < 40 && !/did not switch|2xx/.test(ctx.gw.stderr); i++) await sleep(25);
        assert.match(ctx.gw.stderr, /WebSocket handshake failed \(the backend answered the upgrade with a 2xx/);
        assert.match(ctx.gw.stderr, /WebSocket handshake failed \(101 without Upgrade: websocket\)/);

        /* metrics by result */
        const m = await scrape(ctx.admin);
        assert.equal(m.get('ssegate_websocket_upgrades_total', { route: 'default/ws', result: 'rejected' }), 5);
        assert.equal(m.get('ssegate_websocket_upgrades_total', { route: 'default/ws', result: 'failed' }), 2);
        assert.equal(m.get('ssegate_websocket_upgrades_total', { route: 'default/ws', result: 'switched' }), 0);
        await ctx.gw.stop();
    }));

test('ws: metrics count switches and open WebSockets per route', { timeout: 30000 * SLOW }, withLogs(logs, async () => {
    const b = await wsBackend();
    ctx = await gateway([
        { name: 'ws', path: '/ws', backends: [{ name: '127.0.0.1', port: b.port }] },
        { name: 'ws2', path: '/two', backends: [{ name: '127.0.0.1', port: b.port }] },
    ]);
    const open = [];
    for (let i = 0; i < 5; i++) open.push(await wsConnect(`ws://127.0.0.1:${ctx.port}/ws/${i}`));
    open.push(await wsConnect(`ws://127.0.0.1:${ctx.port}/two`));
    let m = await scrape(ctx.admin);
    assert.equal(m.get('ssegate_websockets_active', { route: 'default/ws' }), 5);
    assert.equal(m.get('ssegate_websockets_active', { route: 'default/ws2' }), 1);
    assert.equal(m.get('ssegate_websocket_upgrades_total', { route: 'default/ws', result: 'switched' }), 5);
    for (const w of open.slice(0, 3)) {
        w.close();
        await w.closeInfo;
    }
    for (let i = 0; i < 40; i++) {
        m = await scrape(ctx.admin);
        if (m.get('ssegate_websockets_active', { route: 'default/ws' }) === 2) break;
        await sleep(25);
    }
    assert.equal(m.get('ssegate_websockets_active', { route: 'default/ws' }), 2);
    assert.equal(m.get('ssegate_websocket_upgrades_total', { route: 'default/ws', result: 'switched' }), 5);
    for (const w of open.slice(3)) w.close();
    await Promise.all(open.map(w => w.closeInfo));
    await ctx.gw.stop();
}));

test('ws: no default timeout cuts an idle WebSocket; --ws-idle-timeout and an explicit route timeout close it with 1001',
    { timeout: 60000 * SLOW }, withLogs(logs, async () => {
        const b = await wsBackend();
        ctx = await gateway([
            { name: 'ws', path: '/ws', backends: [{ name: '127.0.0.1', port: b.port }] },
            { name: 'timed', path: '/timed', timeout: '1500ms', backends: [{ name: '127.0.0.1', port: b.port }] },
        ], ['--response-timeout', '400ms', '--idle-timeout', '400ms']);
        const ws = await wsConnect(`ws://127.0.0.1:${ctx.port}/ws/idle`);
        let closed = null;
        ws.closeInfo.then(c => (closed = c));
        await sleep(2000);
        assert.equal(closed, null, `an idle WebSocket was closed past --response-timeout and --idle-timeout: ${JSON.stringify(closed)}`);
        ws.send('still here');
        assert.equal((await wsMessages(ws, 1)).at(0).data.toString(), 'still here');

        /* an explicit route timeout (HTTPRoute timeouts.request) bounds the WebSocket as it bounds SSE */
        const wt = await wsConnect(`ws://127.0.0.1:${ctx.port}/timed/x`);
        const srvT = b.sockets.at(-1);
        assert.deepEqual(await wt.closeInfo, { code: 1001, reason: 'going away' });
        assert.equal((await srvT.closeInfo).code, 1001);
        ws.close();
        await ctx.gw.stop();

        /* --ws-idle-timeout: both sides get 1001; traffic keeps it open */
        ctx = await gateway([{ name: 'ws', path: '/ws', backends: [{ name: '127.0.0.1', port: b.port }] }], ['--ws-idle-timeout', '800ms']);
        const busy = await wsConnect(`ws://127.0.0.1:${ctx.port}/ws/busy`);
        const idle = await wsConnect(`ws://127.0.0.1:${ctx.port}/ws/idle`);
        const srvIdle = b.sockets.at(-1);
        let busyClosed = null;
        busy.closeInfo.then(c => (busyClosed = c));
        const t = setInterval(() => busy.send('tick'), 200);
        assert.deepEqual(await idle.closeInfo, { code: 1001, reason: 'going away' });
        assert.equal((await srvIdle.closeInfo).code, 1001);
        assert.equal(busyClosed, null, 'a WebSocket with traffic was closed by the idle timeout');
        clearInterval(t);
        busy.close();
        await ctx.gw.stop();
    }));

test('ws: a client\'s half close reaches the backend, whose last bytes still reach the client', { timeout: 30000 * SLOW },
    withLogs(logs, async () => {
        const b = await wsBackend();
        ctx = await gateway([{ name: 'ws', path: '/', backends: [{ name: '127.0.0.1', port: b.port }] }]);
        const hs = await rawHandshake(ctx.port, ['GET /half HTTP/1.1', 'Host: gw.test', 'Upgrade: websocket', 'Connection: Upgrade',
            `Sec-WebSocket-Key: ${KEY}`, 'Sec-WebSocket-Version: 13']);
        assert.equal(hs.status, 101);
        let down = hs.rest;
        const closed = new Promise(r => hs.sock.on('close', r));
        hs.sock.on('data', d => (down = Buffer.concat([down, d])));
        /* a message, then FIN at once: the backend echoes it and, seeing the FIN, closes; the echo comes back first */
        hs.sock.end(frame(1, 'last words'));
        const info = await b.sockets[0].closeInfo;
        assert.equal(info.code, 1006, 'the backend did not see the FIN as an abnormal close');
        await Promise.race([closed, sleep(5000 * SLOW)]);
        assert.ok(hs.sock.destroyed || hs.sock.readableEnded, 'the client connection was not closed after the backend closed');
        assert.deepEqual([...down.subarray(0, 2)], [0x81, 10]);
        assert.equal(down.subarray(2, 12).toString(), 'last words');
        await ctx.gw.stop();
    }));
