// sseclient.mjs: a minimal SSE client over node:http that timestamps the head and every event it receives.
import http from 'node:http';
import { track } from './harness.mjs';

/* Incremental event-stream parser (WHATWG field rules, enough for tests). */
export class SseParser {
    constructor(onEvent) {
        this.onEvent = onEvent;
        this.buf = '';
        this.data = [];
        this.id = undefined;
        this.event = undefined;
        this.lastId = '';
    }

    push(text) {
        this.buf += text;
        for (;;) {
            const m = /\r\n|\r|\n/.exec(this.buf);
            if (!m) break;
            /* a lone trailing CR may be the first half of CRLF */
            if (m[0] === '\r' && m.index === this.buf.length - 1) break;
            const line = this.buf.slice(0, m.index);
            this.buf = this.buf.slice(m.index + m[0].length);
            this.line(line);
        }
    }

    line(line) {
        if (line === '') {
            if (this.id !== undefined) this.lastId = this.id;
            if (this.data.length) this.onEvent({ id: this.lastId, data: this.data.join('\n'), event: this.event || 'message' });
            this.data = [];
            this.event = undefined;
            this.id = undefined;
            return;
        }
        if (line.startsWith(':')) return;
        const i = line.indexOf(':');
        const name = i < 0 ? line : line.slice(0, i);
        let value = i < 0 ? '' : line.slice(i + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (name === 'data') this.data.push(value);
        else if (name === 'id' && !value.includes('\0')) this.id = value;
        else if (name === 'event') this.event = value;
    }
}

/* GET path as an SSE request on the HTTP/2 session ses. Returns a handle: status, events [{id, data, event}], bytes
 * (of the body), ses. */
export function h2Sse(ses, path) {
    const h = { events: [], status: 0, bytes: 0, ses };
    const p = new SseParser(ev => h.events.push(ev));
    const req = ses.request({ ':path': path, accept: 'text/event-stream' });
    req.setEncoding('utf8');
    req.on('response', hd => (h.status = hd[':status']));
    req.on('data', d => {
        h.bytes += Buffer.byteLength(d);
        p.push(d);
    });
    req.on('error', () => {});
    return h;
}

/*
 * Opens GET path on the gateway. Returns a handle: status, headers, headersAt, events [{id, data, event, t}],
 * text (all body bytes), done (promise: {complete, at}), close().
 */
export function openSse(port, path, { headers = {}, host = '127.0.0.1', localAddress } = {}) {
    const h = { events: [], text: '', status: undefined, headersAt: undefined, complete: false, ended: false };
    let resolveHead, rejectHead, resolveDone;
    h.head = new Promise((a, b) => {
        resolveHead = a;
        rejectHead = b;
    });
    h.done = new Promise(r => (resolveDone = r));
    const finish = complete => {
        if (h.ended) return;
        h.ended = true;
        h.complete = complete;
        h.endedAt = performance.now();
        resolveDone({ complete, at: h.endedAt });
    };
    const parser = new SseParser(ev => {
        ev.t = performance.now();
        h.events.push(ev);
        if (h.onEvent) h.onEvent(ev);
    });
    const req = http.get({
        host,
        port,
        path,
        agent: false,
        localAddress,
        headers: { accept: 'text/event-stream', 'cache-control': 'no-cache', ...headers },
    });
    req.on('response', res => {
        h.status = res.statusCode;
        h.headers = res.headers;
        h.rawHeaders = res.rawHeaders;
        h.headersAt = performance.now();
        res.setEncoding('utf8');
        res.on('data', d => {
            h.text += d;
            parser.push(d);
        });
        res.on('end', () => finish(res.complete));
        res.on('aborted', () => finish(false));
        res.on('error', () => finish(false));
        res.on('close', () => finish(res.complete));
        resolveHead(h);
    });
    req.on('error', e => {
        h.error = e;
        rejectHead(e);
        finish(false);
    });
    h.req = req;
    h.close = () => req.destroy();
    track(() => req.destroy());
    return h;
}

/* Resolves when h has at least n events, rejects after ms. */
export async function waitEvents(h, n, ms) {
    const deadline = Date.now() + ms;
    while (h.events.length < n) {
        if (Date.now() > deadline) throw new Error(`got ${h.events.length} of ${n} events in ${ms} ms (status ${h.status}, ended ${h.ended})`);
        if (h.ended) throw new Error(`stream ended after ${h.events.length} of ${n} events`);
        await new Promise(r => setTimeout(r, 10));
    }
}
