// frames.mjs: a raw HTTP/2 client for protocol probes: writes any frame (valid or not) over net.Socket or TLS,
// parses what comes back, and a minimal HPACK encoder (literals without indexing, no Huffman).
import net from 'node:net';
import tls from 'node:tls';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
export const T = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PUSH_PROMISE: 5, PING: 6, GOAWAY: 7,
    WINDOW_UPDATE: 8, CONTINUATION: 9 };
export const F = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 };
export const E = { NO_ERROR: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2, FLOW_CONTROL_ERROR: 3, SETTINGS_TIMEOUT: 4,
    STREAM_CLOSED: 5, FRAME_SIZE_ERROR: 6, REFUSED_STREAM: 7, CANCEL: 8, COMPRESSION_ERROR: 9, CONNECT_ERROR: 10,
    ENHANCE_YOUR_CALM: 11, INADEQUATE_SECURITY: 12, HTTP_1_1_REQUIRED: 13 };
export const S = { HEADER_TABLE_SIZE: 1, ENABLE_PUSH: 2, MAX_CONCURRENT_STREAMS: 3, INITIAL_WINDOW_SIZE: 4,
    MAX_FRAME_SIZE: 5, MAX_HEADER_LIST_SIZE: 6 };

export function frame(type, flags, streamId, payload = Buffer.alloc(0), { length } = {}) {
    const h = Buffer.alloc(9);
    const len = length ?? payload.length;
    h.writeUIntBE(len, 0, 3);
    h[3] = type;
    h[4] = flags;
    h.writeUInt32BE(streamId >>> 0, 5);
    return Buffer.concat([h, payload]);
}

export function settingsPayload(pairs) {
    const b = Buffer.alloc(pairs.length * 6);
    pairs.forEach(([id, v], i) => {
        b.writeUInt16BE(id, i * 6);
        b.writeUInt32BE(v >>> 0, i * 6 + 2);
    });
    return b;
}

export function u32(v) {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0);
    return b;
}

/* HPACK integer with an n-bit prefix; first holds the pattern bits above the prefix. */
export function hpackInt(v, n, first = 0) {
    const max = (1 << n) - 1;
    if (v < max) return Buffer.from([first | v]);
    const out = [first | max];
    v -= max;
    while (v >= 128) {
        out.push((v % 128) + 128);
        v = Math.floor(v / 128);
    }
    out.push(v);
    return Buffer.from(out);
}

function hpackStr(s) {
    const b = Buffer.from(s);
    return Buffer.concat([hpackInt(b.length, 7, 0), b]);
}

/* Literal without indexing, new name (0x00). */
export function literal(name, value) {
    return Buffer.concat([Buffer.from([0]), hpackStr(name), hpackStr(value)]);
}

/* Literal with incremental indexing, new name (0x40): enters the dynamic table. */
export function literalIndexed(name, value) {
    return Buffer.concat([Buffer.from([0x40]), hpackStr(name), hpackStr(value)]);
}

export function block(headers) {
    return Buffer.concat(headers.map(([n, v]) => literal(n, v)));
}

export function request(path = '/', { method = 'GET', authority = 'probe.test', extra = [] } = {}) {
    return block([[':method', method], [':scheme', 'http'], [':path', path], [':authority', authority], ...extra]);
}

export function parseFrames(buf) {
    const frames = [];
    let off = 0;
    while (buf.length - off >= 9) {
        const len = buf.readUIntBE(off, 3);
        if (buf.length - off < 9 + len) break;
        frames.push({ type: buf[off + 3], flags: buf[off + 4], streamId: buf.readUInt32BE(off + 5) & 0x7fffffff,
            payload: buf.subarray(off + 9, off + 9 + len) });
        off += 9 + len;
    }
    return { frames, rest: buf.subarray(off) };
}

export class Probe {
    /* Opens a connection; by default sends the preface and an empty SETTINGS and acks the server's. */
    static open(port, { host = '127.0.0.1', tlsOpts, preface = true, settings = [], ack = true, localAddress } = {}) {
        return new Promise((resolve, reject) => {
            const p = new Probe();
            const onConnect = () => {
                if (preface) p.write(Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0, settingsPayload(settings))]));
                resolve(p);
            };
            const sock = tlsOpts
                ? tls.connect({ port, host, localAddress, rejectUnauthorized: false, ALPNProtocols: ['h2'], ...tlsOpts }, onConnect)
                : net.connect({ port, host, localAddress }, onConnect);
            p.sock = sock;
            p.autoAck = ack;
            sock.on('error', e => {
                p.error = e;
                if (!p.connected) reject(e);
            });
            sock.on('data', d => p.onData(d));
            sock.on('close', () => {
                p.closed = true;
                p.wake();
            });
            sock.on('connect', () => (p.connected = true));
            sock.on('secureConnect', () => (p.connected = true));
        });
    }

    constructor() {
        this.buf = Buffer.alloc(0);
        this.frames = [];
        this.closed = false;
        this.waiters = [];
        this.bytes = 0;
    }

    onData(d) {
        this.bytes += d.length;
        this.buf = Buffer.concat([this.buf, d]);
        const { frames, rest } = parseFrames(this.buf);
        this.buf = rest;
        for (const f of frames) {
            this.frames.push(f);
            if (this.autoAck && f.type === T.SETTINGS && !(f.flags & F.ACK)) this.write(frame(T.SETTINGS, F.ACK, 0));
        }
        this.wake();
    }

    wake() {
        const w = this.waiters;
        this.waiters = [];
        for (const f of w) f();
    }

    write(b) {
        if (!this.sock.destroyed) this.sock.write(b);
    }

    send(type, flags, streamId, payload, opts) {
        this.write(frame(type, flags, streamId, payload, opts));
    }

    headers(streamId, hblock, { endStream = true, endHeaders = true } = {}) {
        this.send(T.HEADERS, (endStream ? F.END_STREAM : 0) | (endHeaders ? F.END_HEADERS : 0), streamId, hblock);
    }

    ping(data = Buffer.from('sgprobe!')) {
        this.send(T.PING, 0, 0, data);
        return data;
    }

    /* Resolves with pred's value once truthy (checked on every frame and at close), or null after ms. */
    until(pred, ms = 3000) {
        return new Promise(resolve => {
            const deadline = setTimeout(() => resolve(null), ms);
            const check = () => {
                const v = pred(this);
                if (v) {
                    clearTimeout(deadline);
                    resolve(v);
                } else if (this.closed) {
                    clearTimeout(deadline);
                    resolve(pred(this) || null);
                } else {
                    this.waiters.push(check);
                }
            };
            check();
        });
    }

    goaway() {
        const f = this.frames.find(x => x.type === T.GOAWAY);
        return f ? { lastStreamId: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4) } : null;
    }

    rst(streamId) {
        const f = this.frames.find(x => x.type === T.RST_STREAM && x.streamId === streamId);
        return f ? f.payload.readUInt32BE(0) : null;
    }

    responseHeaders(streamId) {
        return this.frames.find(x => x.type === T.HEADERS && x.streamId === streamId) || null;
    }

    pingAck(data) {
        return this.frames.find(x => x.type === T.PING && x.flags & F.ACK && (!data || x.payload.equals(data))) || null;
    }

    settingsAck() {
        return this.frames.find(x => x.type === T.SETTINGS && x.flags & F.ACK) || null;
    }

    close() {
        this.sock.destroy();
    }
}

/*
 * Outcome checks, in h2spec's terms. Each resolves to a string describing what was seen when it matches,
 * or null.
 */
export async function connectionError(p, codes, ms = 3000) {
    /* A GOAWAY with one of the codes; the connection must then close. */
    const g = await p.until(x => x.goaway(), ms);
    if (!g || !codes.includes(g.code)) return null;
    const closed = await p.until(x => x.closed, ms);
    return closed ? `GOAWAY ${g.code}, closed` : null;
}

export async function streamError(p, streamId, codes, ms = 3000) {
    /* RST_STREAM on the stream, or GOAWAY, with one of the codes. */
    const v = await p.until(x => {
        const r = x.rst(streamId);
        if (r !== null) return { kind: 'RST_STREAM', code: r };
        const g = x.goaway();
        if (g) return { kind: 'GOAWAY', code: g.code };
        return null;
    }, ms);
    return v && codes.includes(v.code) ? `${v.kind} ${v.code}` : null;
}

export async function pingAlive(p, ms = 3000) {
    const data = p.ping(Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]));
    return (await p.until(x => x.pingAck(data), ms)) ? 'PING ACK' : null;
}

export async function responseOn(p, streamId, ms = 3000) {
    const f = await p.until(x => x.responseHeaders(streamId), ms);
    return f ? 'HEADERS' : null;
}
