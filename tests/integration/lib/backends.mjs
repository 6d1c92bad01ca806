// backends.mjs: test backends behind the gateway: echo (JSON of what arrived), SSE (test-driven events), raw TCP.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { track, sleep } from './harness.mjs';

function listen(server, host) {
    return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, host, () => resolve(server.address().port));
    });
}

function closer(server, sockets) {
    return () =>
        new Promise(resolve => {
            for (const s of sockets) s.destroy();
            server.close(() => resolve());
        });
}

/*
 * Echo backend. Answers 200 with JSON {path, host, method, headers, rawHeaders, body, bodyLength, bodySha256}.
 * Query options: delay=MS waits before answering, status=N, bytes=N answers N bytes of a pattern instead.
 * Path /raw answers the request body itself. `pages` maps a path to {type, body} served as is.
 * Records every request (complete: the body ended) and counts TCP connections.
 */
export async function echoBackend({ host = '127.0.0.1' } = {}) {
    const sockets = new Set();
    const be = { requests: [], connections: 0, parseErrors: [], pages: new Map(), host };
    const server = http.createServer((req, res) => {
        const rec = {
            method: req.method,
            url: req.url,
            headers: req.headers,
            rawHeaders: req.rawHeaders,
            remotePort: req.socket.remotePort,
            connId: req.socket.__id,
            complete: false,
            aborted: false,
            at: performance.now(),
        };
        be.requests.push(rec);
        const parts = [];
        rec.received = 0;
        req.on('data', d => {
            parts.push(d);
            rec.received += d.length;
        });
        req.on('aborted', () => (rec.aborted = true));
        req.on('error', () => (rec.aborted = true));
        req.on('end', async () => {
            rec.complete = true;
            const body = Buffer.concat(parts);
            rec.body = body;
            const u = new URL(req.url, 'http://x');
            const delay = Number(u.searchParams.get('delay') || 0);
            if (delay) await sleep(delay);
            if (res.destroyed) return;
            const status = Number(u.searchParams.get('status') || 200);
            const page = be.pages.get(u.pathname);
            if (page) {
                res.writeHead(200, { 'content-type': page.type || 'text/html; charset=utf-8', 'cache-control': 'no-store' });
                res.end(page.body);
                return;
            }
            if (u.pathname === '/raw') {
                res.writeHead(status, { 'content-type': 'application/octet-stream', 'content-length': body.length });
                res.end(body);
                return;
            }
            if (u.searchParams.get('bytes')) {
                const n = Number(u.searchParams.get('bytes'));
                res.writeHead(status, { 'content-type': 'application/octet-stream', 'content-length': n });
                res.end(pattern(n));
                return;
            }
            const extra = {};
            for (const kv of (req.headers['x-echo-set-header'] || '').split(',').filter(Boolean)) {
                const i = kv.indexOf(':');
                extra[kv.slice(0, i).trim()] = kv.slice(i + 1).trim();
            }
            const json = JSON.stringify({
                path: req.url,
                host: req.headers.host,
                method: req.method,
                headers: req.headers,
                rawHeaders: req.rawHeaders,
                body: body.length <= 65536 ? body.toString('utf8') : null,
                bodyLength: body.length,
                bodySha256: crypto.createHash('sha256').update(body).digest('hex'),
            });
            res.writeHead(status, { 'content-type': 'application/json', ...extra });
            res.end(json);
        });
    });
    let seq = 0;
    server.on('connection', s => {
        s.__id = ++seq;
        be.connections++;
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
    });
    server.on('clientError', (err, s) => {
        /* Only parser errors mean the gateway sent bytes that are not HTTP; resets are the gateway's business. */
        if (err.code && err.code.startsWith('HPE_')) be.parseErrors.push(err.code);
        s.destroy();
    });
    server.keepAliveTimeout = 60000;
    server.requestTimeout = 0;
    server.headersTimeout = 60000;
    be.port = await listen(server, host);
    be.server = server;
    be.close = track(closer(server, sockets));
    /* What the backend received that could be a request: handler invocations and unparseable bytes. */
    be.hits = () => be.requests.length + be.parseErrors.length;
    return be;
}

export function pattern(n) {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 8)) & 0xff;
    return b;
}

/*
 * SSE backend. Every request becomes a stream the test drives: stream.send(data, {id}) writes one event and
 * records when; ids continue from Last-Event-ID + 1 when the client sent one. Options: retry (ms, sent
 * first as a `retry:` field), onStream(stream) to drive streams automatically, delayHeaders (ms).
 */
export async function sseBackend({ host = '127.0.0.1', retry, onStream, delayHeaders = 0, contentType = 'text/event-stream' } = {}) {
    const sockets = new Set();
    const be = { streams: [], connections: 0, waiters: [] };
    const server = http.createServer(async (req, res) => {
        const lei = req.headers['last-event-id'];
        const st = {
            index: be.streams.length,
            url: req.url,
            headers: req.headers,
            lastEventId: lei,
            nextId: lei !== undefined && /^\d+$/.test(lei) ? Number(lei) + 1 : 1,
            writes: [],
            closed: false,
            res,
            req,
            openedAt: performance.now(),
        };
        res.on('close', () => {
            st.closed = true;
            st.closedAt = performance.now();
        });
        st.sendRaw = text => {
            if (st.closed) return false;
            res.write(text);
            st.writes.push({ text, t: performance.now() });
            return true;
        };
        st.send = (data, { id = st.nextId, event } = {}) => {
            st.nextId = Number(id) + 1;
            const text = `${event ? `event: ${event}\n` : ''}id: ${id}\ndata: ${data}\n\n`;
            const ok = st.sendRaw(text);
            st.writes[st.writes.length - 1].id = String(id);
            return ok;
        };
        st.end = () => res.end();
        st.destroy = () => req.socket.destroy();
        if (delayHeaders) await sleep(delayHeaders);
        res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-cache' });
        if (retry !== undefined) res.write(`retry: ${retry}\n\n`);
        res.flushHeaders();
        st.headersAt = performance.now();
        be.streams.push(st);
        const w = be.waiters;
        be.waiters = [];
        for (const f of w) f();
        if (onStream) onStream(st);
    });
    server.on('connection', s => {
        be.connections++;
        sockets.add(s);
        s.setNoDelay(true);
        s.on('close', () => sockets.delete(s));
    });
    server.keepAliveTimeout = 60000;
    server.requestTimeout = 0;
    server.timeout = 0;
    be.port = await listen(server, host);
    be.server = server;
    be.close = track(closer(server, sockets));
    /* Resolves with stream number n (0-based) once it exists. */
    be.stream = async (n, ms = 5000) => {
        const deadline = Date.now() + ms;
        while (be.streams.length <= n) {
            if (Date.now() > deadline) throw new Error(`SSE backend: stream #${n} did not arrive in ${ms} ms (have ${be.streams.length})`);
            await new Promise(r => {
                const t = setTimeout(r, 50);
                be.waiters.push(() => {
                    clearTimeout(t);
                    r();
                });
            });
        }
        return be.streams[n];
    };
    return be;
}

/*
 * Raw TCP backend for misbehaving cases. onConnection(sock, conn) decides what to do; conn.data is everything
 * received, conn.head() resolves once a full request head arrived.
 */
export async function rawBackend(onConnection, { host = '127.0.0.1' } = {}) {
    const sockets = new Set();
    const be = { conns: [] };
    const server = net.createServer(sock => {
        sockets.add(sock);
        sock.on('close', () => sockets.delete(sock));
        sock.on('error', () => {});
        const conn = { data: Buffer.alloc(0), sock, waiters: [] };
        be.conns.push(conn);
        sock.on('data', d => {
            conn.data = Buffer.concat([conn.data, d]);
            const w = conn.waiters;
            conn.waiters = [];
            for (const f of w) f();
        });
        conn.head = () =>
            new Promise(resolve => {
                const check = () => {
                    const i = conn.data.indexOf('\r\n\r\n');
                    if (i >= 0) resolve(conn.data.subarray(0, i).toString('latin1'));
                    else conn.waiters.push(check);
                };
                check();
            });
        onConnection(sock, conn);
    });
    be.port = await listen(server, host);
    be.close = track(closer(server, sockets));
    return be;
}

/*
 * A listening socket that never accepts, with its accept queue filled, so a connect() to it hangs (SYNs are
 * dropped): the way to provoke a connect timeout on a loopback-only machine. Uses python3 because Node
 * always accepts.
 */
export async function blackholeBackend() {
    const py = spawn(
        '/usr/bin/python3',
        ['-c', 'import socket,sys,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(3600)'],
        { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const port = await new Promise((resolve, reject) => {
        py.stdout.once('data', d => resolve(Number(String(d).trim())));
        py.once('error', reject);
    });
    const fillers = [];
    track(() => {
        for (const f of fillers) f.destroy();
        py.kill('SIGKILL');
    });
    /* Fill the queue: connections that complete now occupy it; later SYNs are dropped and connect() hangs. */
    for (let i = 0; i < 8; i++) {
        const s = net.connect({ port, host: '127.0.0.1' });
        s.on('error', () => {});
        fillers.push(s);
    }
    await sleep(300);
    return { port, pid: py.pid };
}
