// wsutil.mjs: WebSocket helpers for the tests: an npm `ws` backend (echo, and hooks on the handshake), a client
// through the gateway, and a raw handshake on a socket.
import http from 'node:http';
import net from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { track } from './harness.mjs';

/*
 * A `ws` backend on an HTTP server. Echoes every message as it came (text or binary). Every handshake's request
 * (url, headers) is kept in `handshakes`; `onUpgrade(req, socket, head)` may answer it itself (return true);
 * plain requests get 200 "plain <url>" (and are kept in `plain`), or the HTML of `pages` (url -> text). `sockets` are the server-side WebSockets.
 */
export async function wsBackend({ host = '127.0.0.1', onUpgrade, onConnection, perMessageDeflate = false } = {}) {
    const server = http.createServer((req, res) => {
        if (b.pages.has(req.url)) {
            res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
            return res.end(b.pages.get(req.url));
        }
        b.plain.push({ url: req.url, headers: req.headers, httpVersion: req.httpVersion });
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`plain ${req.url}`);
    });
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate, maxPayload: 256 << 20 });
    const b = { handshakes: [], plain: [], sockets: [], pages: new Map(), server, wss };
    const raw = new Set();
    server.on('upgrade', (req, socket, head) => {
        raw.add(socket);
        socket.on('close', () => raw.delete(socket));
        b.handshakes.push({ url: req.url, headers: req.headers });
        if (onUpgrade && onUpgrade(req, socket, head)) return;
        wss.handleUpgrade(req, socket, head, ws => {
            b.sockets.push(ws);
            ws.closeInfo = new Promise(r => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
            if (onConnection) onConnection(ws, req);
            else ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
        });
    });
    await new Promise(r => server.listen(0, host, r));
    b.port = server.address().port;
    track(
        () =>
            new Promise(r => {
                for (const ws of wss.clients) ws.terminate();
                for (const s of raw) s.destroy();
                server.closeAllConnections?.();
                server.close(() => r());
            }),
    );
    return b;
}

/* Opens a `ws` client through the gateway; resolves once open (rejects on an error or an unexpected response). */
export function wsConnect(url, opts = {}) {
    return new Promise((resolve, reject) => {
        const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 256 << 20, ...opts });
        track(() => ws.terminate());
        ws.messages = [];
        ws.closeInfo = new Promise(r => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
        ws.on('message', (data, isBinary) => {
            ws.messages.push({ data, isBinary });
            const w = ws.waiters || [];
            ws.waiters = [];
            for (const f of w) f();
        });
        ws.once('open', () => resolve(ws));
        ws.once('unexpected-response', (req, res) => {
            let body = '';
            res.on('data', d => (body += d));
            res.on('end', () => reject(Object.assign(new Error(`unexpected response ${res.statusCode}`), { status: res.statusCode, headers: res.headers, body })));
        });
        ws.once('error', reject);
    });
}

/* Waits until ws holds n messages (or ms passes: rejects). */
export async function wsMessages(ws, n, ms = 5000) {
    const deadline = Date.now() + ms;
    while (ws.messages.length < n) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`got ${ws.messages.length} of ${n} messages in ${ms} ms`);
        await new Promise(r => {
            const t = setTimeout(r, left);
            (ws.waiters ||= []).push(() => {
                clearTimeout(t);
                r();
            });
        });
    }
    return ws.messages;
}

/* A raw HTTP/1.x request on a socket; resolves with {status, head, rest, sock} once the head is in, or on close. */
export function rawHandshake(port, lines, { host = '127.0.0.1', ms = 5000 } = {}) {
    return new Promise((resolve, reject) => {
        const sock = net.connect({ port, host });
        track(() => sock.destroy());
        let buf = Buffer.alloc(0);
        const t = setTimeout(() => reject(new Error(`no answer in ${ms} ms; got ${JSON.stringify(buf.toString('latin1'))}`)), ms);
        const done = closed => {
            const i = buf.indexOf('\r\n\r\n');
            if (i < 0 && !closed) return;
            clearTimeout(t);
            sock.removeAllListeners('data');
            const head = i < 0 ? buf.toString('latin1') : buf.subarray(0, i).toString('latin1');
            const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] || 0);
            resolve({ status, head, rest: i < 0 ? Buffer.alloc(0) : buf.subarray(i + 4), sock, closed });
        };
        sock.on('data', d => {
            buf = Buffer.concat([buf, d]);
            done(false);
        });
        sock.on('close', () => done(true));
        sock.on('error', () => {});
        sock.write(lines.join('\r\n') + '\r\n\r\n');
    });
}
