// watch.mjs: kubesim's WATCH responses: history replay from a resourceVersion, initial events, bookmarks,
// timeoutSeconds, the in-band 410, and the chunk-level faults (split, merge, rechunk, cut, stall, in-band error).
import { rkeyOf, gv } from './kinds.mjs';
import { status } from './store.mjs';

const sleep = ms => new Promise(r => setTimeout(r, ms));

/*
 * Writes event lines to a chunked response, shaped by a fault (or none). Every write is one HTTP chunk; with
 * socket.setNoDelay and a gap between writes each chunk also arrives in its own read.
 *   split {size, gapMs}:   each event line cut into `size`-byte chunks (size 1: every byte, so mid-UTF-8 too)
 *   merge {count, flushMs}: `count` events per chunk (a partial group is flushed after flushMs)
 *   rechunk {size, flushMs}: the byte stream re-cut into `size`-byte chunks regardless of event boundaries
 *   cut {afterEvents, midEvent}: after N events, (half of the next event and) the connection is destroyed
 *   stall {afterEvents}:   after N events nothing more is ever written (no bookmarks, no end at timeout)
 *   error {afterEvents, code}: after N events an in-band ERROR Status (default 500) and the end of the response
 *   withHead:              the response head is not flushed on its own: it goes out with the first event
 */
export class WatchWriter {
    constructor(res, fault, kill) {
        this.res = res;
        this.kill = kill;
        this.f = fault || null;
        this.n = 0;
        this.dead = false;
        this.chain = Promise.resolve();
        this.pending = [];
        this.timer = null;
    }

    raw(buf) {
        this.chain = this.chain.then(async () => {
            if (this.res.destroyed || this.res.writableEnded || this.res.stream?.destroyed) return;
            this.res.write(buf);
            if (this.f?.gapMs || this.f?.action === 'split') await sleep(this.f.gapMs ?? 2);
        });
    }

    send(ev) {
        if (this.dead) return;
        const line = Buffer.from(`${JSON.stringify(ev)}\n`);
        this.n++;
        const f = this.f;
        const after = f?.afterEvents ?? 0;
        if (f && this.n > after) {
            if (f.action === 'stall') {
                this.dead = true;
                return;
            }
            if (f.action === 'cut') {
                this.dead = true;
                this.chain.then(() => {
                    if (f.midEvent) this.res.write(line.subarray(0, Math.max(1, line.length >> 1)));
                    setTimeout(() => this.kill(f.scope), 20);
                });
                return;
            }
            if (f.action === 'error') {
                this.dead = true;
                const err = { type: 'ERROR', object: status(f.code || 500, f.reason || 'InternalError', f.message || 'an error on the server ("injected") has prevented the request from succeeding') };
                this.chain.then(() => this.res.end(`${JSON.stringify(err)}\n`));
                return;
            }
        }
        if (f?.action === 'split') {
            const size = Math.max(1, f.size || 1);
            for (let i = 0; i < line.length; i += size) this.raw(line.subarray(i, i + size));
        } else if (f?.action === 'merge' || f?.action === 'rechunk') {
            this.pending.push(line);
            this.pump(false);
        } else this.raw(line);
    }

    pump(force) {
        const f = this.f;
        if (f.action === 'merge') {
            const count = Math.max(2, f.count || 3);
            while (this.pending.length >= count) this.raw(Buffer.concat(this.pending.splice(0, count)));
        } else {
            const size = Math.max(1, f.size || 7);
            let buf = Buffer.concat(this.pending);
            this.pending = [];
            while (buf.length >= size) {
                this.raw(buf.subarray(0, size));
                buf = buf.subarray(size);
            }
            if (buf.length) this.pending.push(buf);
        }
        if (force && this.pending.length) this.raw(Buffer.concat(this.pending.splice(0)));
        clearTimeout(this.timer);
        if (this.pending.length) this.timer = setTimeout(() => this.pump(true), f.flushMs ?? 50);
    }

    /* Ends the response after what is queued. A stalled writer ends too (the server closing a hung watch). */
    end(ev) {
        if (this.dead) {
            if (!this.ended) this.chain.then(() => this.res.end());
            this.ended = true;
            return;
        }
        if (ev) this.send(ev);
        if (this.dead) return;
        if (this.pending.length) this.pump(true);
        clearTimeout(this.timer);
        this.dead = true;
        this.ended = true;
        this.chain.then(() => this.res.end());
    }
}

/*
 * Serves one WATCH. ctx: {res, kind, version, ns, q, match, resources, fault, bookmarkMs, defaultTimeout, onEnd}.
 * Returns {close()} or throws ApiError before any byte is written.
 */
export function serveWatch(ctx) {
    const { res, kind, version, q, match, resources } = ctx;
    const st = resources.store;
    const rkey = rkeyOf(kind);
    const apiVersion = gv(kind.group, version);
    const bookmarks = q.allowWatchBookmarks === 'true' || q.allowWatchBookmarks === '1';
    const initial = q.sendInitialEvents === 'true';
    const rvParam = q.resourceVersion;
    const out = o => resources.out(kind, o, version);
    let timeoutS = q.timeoutSeconds !== undefined ? Number(q.timeoutSeconds) : ctx.defaultTimeout();
    if (ctx.maxWatchSeconds > 0 && !(timeoutS > 0 && timeoutS < ctx.maxWatchSeconds)) timeoutS = ctx.maxWatchSeconds;

    /* No Content-Length: HTTP/1.1 gets chunked transfer encoding, HTTP/2 DATA frames. */
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', ...ctx.headers });
    /* Fault withHead: the head waits for the first event and goes out in the same write (one TLS record), as a server
     * that buffers its head until the first flush sends it; a client then has that event before it reads again. */
    if (ctx.fault?.action !== 'withHead') res.flushHeaders();
    if (!res.stream) res.socket?.setNoDelay(true);
    const w = new WatchWriter(res, ctx.fault, ctx.kill);
    let lastRv = st.rv;
    const bookmark = extra => {
        const md = { resourceVersion: String(Math.max(lastRv, st.rv)) };
        if (extra) md.annotations = extra;
        w.send({ type: 'BOOKMARK', object: { kind: kind.kind, apiVersion, metadata: md } });
    };
    const handle = e => {
        if (e.rkey !== rkey) return;
        const was = e.prev ? match(e.prev) : false;
        if (e.type === 'DELETED') {
            if (match(e.obj)) w.send({ type: 'DELETED', object: out(e.obj) });
        } else {
            const is = match(e.obj);
            if (is) w.send({ type: was && e.type === 'MODIFIED' ? 'MODIFIED' : 'ADDED', object: out(e.obj) });
            else if (was) w.send({ type: 'DELETED', object: out(e.obj) });
        }
        lastRv = e.rv;
    };

    const n = rvParam === undefined || rvParam === '' ? null : Number(rvParam);
    if (n !== null && !initial && n !== 0) {
        if (n < st.compacted) {
            const e = status(410, 'Expired', `too old resource version: ${n} (${st.compacted})`);
            w.end({ type: 'ERROR', object: e });
            ctx.onEnd('expired');
            return { close() {} };
        }
        for (const e of st.since(rkey, n)) handle(e);
    } else {
        /* "" and "0": synthetic ADDED events for the current state, then changes; likewise sendInitialEvents. */
        for (const [, o] of st.snapshot(rkey, Infinity, kind.namespaced ? ctx.ns || null : null)) if (match(o)) w.send({ type: 'ADDED', object: out(o) });
        lastRv = st.rv;
        if (initial) bookmark({ 'k8s.io/initial-events-end': 'true' });
    }
    st.listeners.add(handle);
    const timers = [];
    if (bookmarks && ctx.bookmarkMs > 0) timers.push(setInterval(() => bookmark(), ctx.bookmarkMs));
    let closed = false;
    const close = (why, graceful) => {
        if (closed) return;
        closed = true;
        st.listeners.delete(handle);
        for (const t of timers) clearInterval(t), clearTimeout(t);
        if (graceful) w.end();
        ctx.onEnd(why);
    };
    if (timeoutS > 0) {
        timers.push(setTimeout(() => {
            if (w.dead) return; /* a stalled watch stays open: that is the hang a client must detect */
            if (bookmarks) bookmark();
            close('timeout', true);
        }, timeoutS * 1000));
    }
    res.on('close', () => close('client'));
    return { close: (graceful = false) => { close('server', graceful); if (!graceful) ctx.kill(); }, writer: w };
}
