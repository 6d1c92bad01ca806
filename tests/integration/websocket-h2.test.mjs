// websocket-h2.test.mjs: WebSocket over HTTP/2 (RFC 8441) with node's http2 client on h2c: SETTINGS_ENABLE_CONNECT_PROTOCOL,
// an extended CONNECT bridged to an HTTP/1.1 upgrade (echo both ways in DATA frames), flow control as back-pressure,
// END_STREAM and RST_STREAM to the backend and the backend's close back, and malformed extended CONNECTs.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http2 from 'node:http2';
import { test } from 'node:test';
import { SLOW, freePort, gatewayYaml, setup, sleep, startGateway, track, withLogs } from './lib/harness.mjs';
import { scrape } from './lib/prod-util.mjs';
import { wsBackend } from './lib/wsutil.mjs';

setup();

function frame(op, payload, fin = true) {
    const p = Buffer.from(payload);
    const mask = crypto.randomBytes(4);
    let h;
    if (p.length < 126) h = Buffer.from([(fin ? 0x80 : 0) | op, 0x80 | p.length]);
    else if (p.length < 65536) h = Buffer.from([(fin ? 0x80 : 0) | op, 0x80 | 126, p.length >> 8, p.length & 255]);
    else {
        h = Buffer.alloc(10);
        h[0] = (fin ? 0x80 : 0) | op;
        h[1] = 0x80 | 127;
        h.writeBigUInt64BE(BigInt(p.length), 2);
    }
    return Buffer.concat([h, mask, Buffer.from(p.map((x, i) => x ^ mask[i & 3]))]);
}

/* Parses unmasked server frames as they come: returns [{op, fin, payload}] and keeps the rest. */
function frames(st) {
    const out = [];
    let o = 0;
    const b = st.buf;
    while (b.length - o >= 2) {
        let len = b[o + 1] & 0x7f;
        let hl = 2;
        if (len === 126) {
            if (b.length - o < 4) break;
            len = b.readUInt16BE(o + 2);
            hl = 4;
        } else if (len === 127) {
            if (b.length - o < 10) break;
            len = Number(b.readBigUInt64BE(o + 2));
            hl = 10;
        }
        if (b.length - o < hl + len) break;
        out.push({ op: b[o] & 15, fin: !!(b[o] & 0x80), payload: b.subarray(o + hl, o + hl + len) });
        o += hl + len;
    }
    st.buf = b.subarray(o);
    return out;
}

async function session(port) {
    const c = http2.connect(`http://127.0.0.1:${port}`);
    track(() => c.destroy());
    c.on('error', () => {});
    await new Promise((r, j) => {
        c.once('remoteSettings', r);
        c.once('error', j);
    });
    return c;
}

function open(c, path, headers = {}) {
    const all = { ':method': 'CONNECT', ':protocol': 'websocket', ':path': path, ':scheme': 'http', ':authority': 'gw.test',
        'sec-websocket-version': '13', ...headers };
    for (const k of Object.keys(all)) if (all[k] === null) delete all[k];
    const st = c.request(all);
    st.buf = Buffer.alloc(0);
    st.got = [];
    st.on('data', d => {
        st.buf = Buffer.concat([st.buf, d]);
        st.got.push(...frames(st));
    });
    st.on('error', () => {});
    st.ended = new Promise(r => st.on('close', () => r({ rst: st.rstCode })));
    st.response = new Promise(r => st.once('response', r));
    return st;
}

async function until(pred, ms, what) {
    const deadline = Date.now() + ms;
    while (!pred()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await sleep(10);
    }
}

let gw;
test('ws over h2: extended CONNECT echo, END_STREAM, RST_STREAM, backend close, refused handshakes',
    { timeout: 60000 * SLOW }, withLogs(() => [gw], async () => {
        const b = await wsBackend({
            onUpgrade(req, socket) {
                if (!req.url.startsWith('/deny')) return false;
                socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\ndeny');
                return true;
            },
        });
        const port = await freePort();
        const admin = await freePort();
        gw = await startGateway({
            yaml: gatewayYaml({ port, routes: [{ name: 'ws', path: '/', backends: [{ name: '127.0.0.1', port: b.port }] }] }),
            args: ['--workers', '1', '--admin', `127.0.0.1:${admin}`],
            waitPorts: [port, admin],
        });
        const c = await session(port);
        assert.equal(c.remoteSettings.enableConnectProtocol, true);

        const st = open(c, '/chat?x=1');
        const h = await st.response;
        assert.equal(h[':status'], 200);
        assert.equal(h['sec-websocket-accept'], undefined);
        const big = crypto.randomBytes(300000);
        st.write(Buffer.concat([frame(1, 'over h2'), frame(2, big), frame(1, 'fr', false), frame(0, 'ag')]));
        await until(() => st.got.length >= 3, 10000 * SLOW, 'three echoes');
        assert.equal(st.got[0].payload.toString(), 'over h2');
        assert.ok(st.got[1].payload.equals(big));
        assert.equal(st.got[2].payload.toString(), 'frag');
        assert.equal(b.handshakes[0].url, '/chat?x=1');
        assert.equal(b.handshakes[0].headers.upgrade, 'websocket');
        /* the client closes: close frame, then END_STREAM; the backend answers and closes; the stream ends cleanly */
        st.end(frame(8, Buffer.from([0x0f, 0xa0, 0x62, 0x79, 0x65])));
        assert.deepEqual(await b.sockets[0].closeInfo, { code: 4000, reason: 'bye' });
        assert.equal((await st.ended).rst, 0, 'the stream was reset, not ended');
        assert.ok(st.got.some(f => f.op === 8), 'the backend\'s close frame did not reach the client');

        /* RST_STREAM from the client: the backend connection goes */
        const s2 = open(c, '/reset');
        await s2.response;
        await until(() => b.sockets.length === 2, 5000, 'second backend socket');
        s2.close(http2.constants.NGHTTP2_CANCEL);
        assert.equal((await b.sockets[1].closeInfo).code, 1006);

        /* the backend closes: close frame and END_STREAM reach the client */
        const s3 = open(c, '/server-closes');
        await s3.response;
        await until(() => b.sockets.length === 3, 5000, 'third backend socket');
        b.sockets[2].close(4003, 'srv');
        await until(() => s3.got.some(f => f.op === 8), 5000, 'the close frame');
        const cf = s3.got.find(f => f.op === 8);
        assert.equal(cf.payload.readUInt16BE(0), 4003);
        s3.end(frame(8, cf.payload));
        assert.equal((await s3.ended).rst, 0);

        /* refused: no version (400), another version (426), a backend's 403 relayed, a plain CONNECT (501) */
        let s = open(c, '/x', { 'sec-websocket-version': null });
        assert.equal((await s.response)[':status'], 400);
        s = open(c, '/x', { 'sec-websocket-version': '8' });
        const r426 = await s.response;
        assert.equal(r426[':status'], 426);
        assert.equal(r426['sec-websocket-version'], '13');
        s = open(c, '/deny');
        assert.equal((await s.response)[':status'], 403);
        const pc = c.request({ ':method': 'CONNECT', ':authority': 'example.com:443' });
        pc.on('error', () => {});
        assert.equal((await new Promise(r => pc.once('response', r)))[':status'], 501);

        const m = await scrape(admin);
        assert.equal(m.get('ssegate_websocket_upgrades_total', { route: 'default/ws', result: 'switched' }), 3);
        assert.equal(m.get('ssegate_websocket_upgrades_total', { route: 'default/ws', result: 'rejected' }), 3);
        assert.equal(m.get('ssegate_websockets_active', { route: 'default/ws' }), 0);
        c.close();
        await gw.stop();
    }));

test('ws over h2: the stream window is the back-pressure: a client that does not read holds the backend back',
    { timeout: 60000 * SLOW }, withLogs(() => [gw], async () => {
        const b = await wsBackend({ onConnection: () => {} });
        const port = await freePort();
        gw = await startGateway({
            yaml: gatewayYaml({ port, routes: [{ name: 'ws', path: '/', backends: [{ name: '127.0.0.1', port: b.port }] }] }),
            args: ['--workers', '1'],
            waitPorts: [port],
        });
        const c = await session(port);
        const st = open(c, '/big');
        await st.response;
        await until(() => b.sockets.length === 1, 5000, 'backend socket');
        st.pause();
        const N = 48;
        const msg = i => Buffer.alloc(1 << 20, i);
        for (let i = 0; i < N; i++) b.sockets[0].send(msg(i));
        await sleep(1500 * SLOW);
        const held = b.sockets[0].bufferedAmount;
        assert.ok(held > 16 << 20, `the backend wrote ${((N << 20) - held) >> 20} of ${N} MiB to a client that reads nothing`);
        st.resume();
        await until(() => st.got.length === N, 30000 * SLOW, `${N} messages`);
        st.got.forEach((f, i) => assert.ok(f.payload.equals(msg(i)), `message ${i} changed`));
        c.destroy();
        await gw.stop();
    }));

test('ws over h2: a drain closes the tunnel with 1001 to both sides (the client\'s in DATA, then END_STREAM)',
    { timeout: 60000 * SLOW }, withLogs(() => [gw], async () => {
        const b = await wsBackend();
        const port = await freePort();
        gw = await startGateway({
            yaml: gatewayYaml({ port, routes: [{ name: 'ws', path: '/', backends: [{ name: '127.0.0.1', port: b.port }] }] }),
            args: ['--workers', '1', '--drain-timeout', '1500ms', '--drain-spread', '1000ms'],
            waitPorts: [port],
        });
        const c = await session(port);
        const st = open(c, '/drain');
        await st.response;
        st.write(frame(1, 'before'));
        await until(() => st.got.length === 1, 5000, 'the echo');
        gw.stopping = true;
        gw.child.kill('SIGTERM');
        await until(() => st.got.some(f => f.op === 8), 10000 * SLOW, 'a close frame');
        const cf = st.got.find(f => f.op === 8);
        assert.equal(cf.payload.readUInt16BE(0), 1001);
        assert.equal(cf.payload.subarray(2).toString(), 'going away');
        assert.equal((await b.sockets[0].closeInfo).code, 1001);
        st.end(frame(8, cf.payload));
        assert.equal((await st.ended).rst, 0);
        const exit = await Promise.race([gw.exited, sleep(10000 * SLOW).then(() => null)]);
        assert.ok(exit, 'the gateway did not exit after the drain');
        assert.equal(exit.code, 0);
    }));

test('ws: a WebSocket to a Service port marked kubernetes.io/h2c goes as an HTTP/1.1 upgrade',
    { timeout: 30000 * SLOW }, withLogs(() => [gw], async () => {
        const b = await wsBackend();
        const port = await freePort();
        gw = await startGateway({
            yaml: gatewayYaml({
                port,
                routes: [{ name: 'ws', path: '/', backends: [{ name: 'wsvc', port: 8080 }] }],
                extra: [`apiVersion: v1
kind: Service
metadata: {name: wsvc}
spec:
  ports: [{name: web, port: 8080, appProtocol: kubernetes.io/h2c}]
`, `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: wsvc-1
  labels: {kubernetes.io/service-name: wsvc}
addressType: IPv4
endpoints: [{addresses: [127.0.0.1]}]
ports: [{name: web, port: ${b.port}}]
`].join('---\n'),
            }),
            args: ['--workers', '1'],
            waitPorts: [port],
        });
        /* from an HTTP/2 client (extended CONNECT) */
        const c = await session(port);
        const st = open(c, '/h2c-port');
        assert.equal((await st.response)[':status'], 200);
        st.write(frame(1, 'via h2c port'));
        await until(() => st.got.length === 1, 5000, 'the echo');
        assert.equal(st.got[0].payload.toString(), 'via h2c port');
        assert.equal(b.handshakes[0].headers.upgrade, 'websocket');
        st.close(http2.constants.NGHTTP2_CANCEL);
        c.close();
        await gw.stop();
    }));
