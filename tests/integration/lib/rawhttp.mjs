// rawhttp.mjs: byte-exact HTTP/1.1 client side for tests: raw sockets, an incremental response parser.
import net from 'node:net';
import { track } from './harness.mjs';

/*
 * Parses one response from buf (a Buffer) starting at 0. Returns null when incomplete, else
 * {status, reason, headers: {lower: [values]}, rawHeaders: [[name, value]], body, chunked, used}.
 * eof: the peer closed, so a body without framing ends here.
 */
export function parseResponse(buf, eof = false) {
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return null;
    const head = buf.subarray(0, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(head[0]);
    if (!m) throw new Error(`bad status line: ${JSON.stringify(head[0])}`);
    const headers = {};
    const rawHeaders = [];
    for (const line of head.slice(1)) {
        const i = line.indexOf(':');
        const name = line.slice(0, i);
        const value = line.slice(i + 1).trim();
        rawHeaders.push([name, value]);
        (headers[name.toLowerCase()] ||= []).push(value);
    }
    const status = Number(m[1]);
    let pos = end + 4;
    const res = { status, reason: m[2] || '', headers, rawHeaders, chunked: false };
    const te = (headers['transfer-encoding'] || []).join(',').toLowerCase();
    if (status === 204 || status === 304 || (status >= 100 && status < 200)) {
        res.body = Buffer.alloc(0);
    } else if (te.includes('chunked')) {
        res.chunked = true;
        const parts = [];
        for (;;) {
            const le = buf.indexOf('\r\n', pos);
            if (le < 0) return eof ? { ...res, body: Buffer.concat(parts), used: buf.length, truncated: true } : null;
            const size = parseInt(buf.subarray(pos, le).toString('latin1').split(';')[0], 16);
            if (Number.isNaN(size)) throw new Error('bad chunk size in response');
            if (size === 0) {
                /* trailers until an empty line */
                let tp = le + 2;
                for (;;) {
                    const tl = buf.indexOf('\r\n', tp);
                    if (tl < 0) return eof ? { ...res, body: Buffer.concat(parts), used: buf.length, truncated: true } : null;
                    if (tl === tp) {
                        pos = tl + 2;
                        break;
                    }
                    tp = tl + 2;
                }
                break;
            }
            if (buf.length < le + 2 + size + 2) {
                if (!eof) return null;
                parts.push(buf.subarray(le + 2, Math.min(buf.length, le + 2 + size)));
                return { ...res, body: Buffer.concat(parts), used: buf.length, truncated: true };
            }
            parts.push(buf.subarray(le + 2, le + 2 + size));
            pos = le + 2 + size + 2;
        }
        res.body = Buffer.concat(parts);
    } else if (headers['content-length']) {
        const n = Number(headers['content-length'][0]);
        if (buf.length < pos + n) {
            if (!eof) return null;
            return { ...res, body: buf.subarray(pos), used: buf.length, truncated: true };
        }
        res.body = buf.subarray(pos, pos + n);
        pos += n;
    } else {
        if (!eof) return null;
        res.body = buf.subarray(pos);
        pos = buf.length;
    }
    res.used = pos;
    return res;
}

/* Parses every complete response in buf. */
export function parseAll(buf, eof = true) {
    const out = [];
    let rest = buf;
    while (rest.length) {
        const r = parseResponse(rest, eof);
        if (!r) break;
        out.push(r);
        rest = rest.subarray(r.used);
        if (r.truncated) break;
    }
    return out;
}

/* A client connection that reads responses one at a time. */
export class RawConn {
    constructor(port, host = '127.0.0.1', localAddress) {
        this.buf = Buffer.alloc(0);
        this.closed = false;
        this.waiters = [];
        this.sock = net.connect({ port, host, localAddress });
        this.sock.setNoDelay(true);
        this.connected = new Promise((resolve, reject) => {
            this.sock.once('connect', resolve);
            this.sock.once('error', reject);
        });
        this.sock.on('error', e => (this.error = e));
        this.sock.on('data', d => {
            this.buf = Buffer.concat([this.buf, d]);
            this.wake();
        });
        this.sock.on('close', () => {
            this.closed = true;
            this.closedAt = performance.now();
            this.wake();
        });
        this.closePromise = new Promise(r => this.sock.once('close', r));
        track(() => this.sock.destroy());
    }

    wake() {
        const w = this.waiters;
        this.waiters = [];
        for (const f of w) f();
    }

    write(data) {
        this.sock.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
    }

    /* Resolves when pred() is true, or rejects after ms. */
    async until(pred, ms, what) {
        const deadline = Date.now() + ms;
        while (!pred()) {
            const left = deadline - Date.now();
            if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}; got ${JSON.stringify(this.buf.toString('latin1').slice(0, 400))}`);
            await new Promise(r => {
                const t = setTimeout(r, left);
                this.waiters.push(() => {
                    clearTimeout(t);
                    r();
                });
            });
        }
    }

    /* Next complete response (consumed from the buffer). */
    async response(ms = 5000) {
        let r = null;
        await this.until(
            () => {
                r = parseResponse(this.buf, this.closed);
                return r || this.closed;
            },
            ms,
            'a response',
        );
        if (!r) throw new Error(`connection closed without a (complete) response; got ${JSON.stringify(this.buf.toString('latin1').slice(0, 400))}`);
        this.buf = this.buf.subarray(r.used);
        return r;
    }

    /* Resolves true when the peer closes within ms, false otherwise. */
    async waitClose(ms) {
        try {
            await this.until(() => this.closed, ms, 'close');
            return true;
        } catch {
            return false;
        }
    }

    destroy() {
        this.sock.destroy();
    }
}

/* Opens a connection, writes data, collects everything for up to ms (or until close). */
export async function exchange(port, data, { ms = 1500, host = '127.0.0.1', then, thenDelay = 150 } = {}) {
    const c = new RawConn(port, host);
    await c.connected;
    c.write(data);
    if (then) {
        await new Promise(r => setTimeout(r, thenDelay));
        if (!c.closed) c.write(then);
    }
    const closed = await c.waitClose(ms);
    const buf = c.buf;
    c.destroy();
    return { buf, closed, responses: parseAll(buf, true) };
}

/* Sends a simple request on a fresh connection and returns the parsed response (body as Buffer). */
export async function request(port, { method = 'GET', path = '/', headers = {}, body, host = 'gw.test', ms = 5000 } = {}) {
    const c = new RawConn(port);
    await c.connected;
    const lines = [`${method} ${path} HTTP/1.1`, `Host: ${host}`];
    for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
    if (body !== undefined && !Object.keys(headers).some(k => /^(content-length|transfer-encoding)$/i.test(k))) {
        lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
    }
    lines.push('Connection: close');
    c.write(Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'), body === undefined ? Buffer.alloc(0) : Buffer.from(body)]));
    try {
        return await c.response(ms);
    } finally {
        c.destroy();
    }
}
