// rawclient.mjs: a byte-level HTTPS/1.1 client for kubesim tests: it keeps every TCP read and every HTTP chunk of a
// response as they arrived, so tests can check chunk boundaries, truncation and hangs.
import tls from 'node:tls';

/*
 * rawRequest(sim, path, {method='GET', token=sim.token, headers={}, body, until, timeoutMs=5000}) resolves with
 * {status, headers, reads: [Buffer], chunks: [Buffer], body: Buffer, lines: [object], complete, closed, timedOut}.
 *   complete: the response ended properly (last chunk, or Content-Length reached)
 *   closed:   the server closed the connection (before `complete`, that is a cut)
 *   timedOut: nothing ended it before timeoutMs (a hang); `until(state)` returning true also ends the wait
 * lines: the JSON objects of the newline-separated body (a watch stream), parsed as they complete.
 */
export function rawRequest(sim, path, { method = 'GET', token = sim.token, headers = {}, body, until, timeoutMs = 5000 } = {}) {
    return new Promise(resolve => {
        const st = { status: 0, headers: {}, reads: [], chunks: [], body: Buffer.alloc(0), lines: [], complete: false, closed: false, timedOut: false };
        let buf = Buffer.alloc(0);
        let headDone = false;
        let chunked = false;
        let clen = -1;
        let lineBuf = Buffer.alloc(0);
        let done = false;
        const sock = tls.connect({ host: '127.0.0.1', port: sim.port, ca: sim.caPem, servername: 'localhost', ALPNProtocols: ['http/1.1'] });
        const finish = () => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            sock.destroy();
            resolve(st);
        };
        const timer = setTimeout(() => {
            st.timedOut = true;
            finish();
        }, timeoutMs);
        const addBody = b => {
            st.body = Buffer.concat([st.body, b]);
            lineBuf = Buffer.concat([lineBuf, b]);
            let i;
            while ((i = lineBuf.indexOf(10)) >= 0) {
                const line = lineBuf.subarray(0, i).toString('utf8');
                lineBuf = lineBuf.subarray(i + 1);
                if (line.trim()) {
                    try {
                        st.lines.push(JSON.parse(line));
                    } catch {
                        st.lines.push({ unparsable: line });
                    }
                }
            }
        };
        const parse = () => {
            if (!headDone) {
                const i = buf.indexOf('\r\n\r\n');
                if (i < 0) return;
                const head = buf.subarray(0, i).toString('latin1').split('\r\n');
                st.status = Number(head[0].split(' ')[1]);
                for (const l of head.slice(1)) {
                    const c = l.indexOf(':');
                    st.headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
                }
                chunked = /chunked/i.test(st.headers['transfer-encoding'] || '');
                clen = st.headers['content-length'] !== undefined ? Number(st.headers['content-length']) : -1;
                headDone = true;
                buf = buf.subarray(i + 4);
            }
            if (chunked) {
                for (;;) {
                    const i = buf.indexOf('\r\n');
                    if (i < 0) return;
                    const size = parseInt(buf.subarray(0, i).toString('latin1'), 16);
                    if (buf.length < i + 2 + size + 2) return;
                    const data = buf.subarray(i + 2, i + 2 + size);
                    buf = buf.subarray(i + 2 + size + 2);
                    if (size === 0) {
                        st.complete = true;
                        return;
                    }
                    st.chunks.push(Buffer.from(data));
                    addBody(data);
                }
            } else if (buf.length) {
                addBody(buf);
                buf = Buffer.alloc(0);
                if (clen >= 0 && st.body.length >= clen) st.complete = true;
            }
        };
        sock.on('data', d => {
            st.reads.push(Buffer.from(d));
            buf = Buffer.concat([buf, d]);
            parse();
            if (st.complete || (until && until(st))) finish();
        });
        sock.on('error', () => {});
        sock.on('close', () => {
            st.closed = true;
            finish();
        });
        sock.on('secureConnect', () => {
            const h = { Host: `127.0.0.1:${sim.port}`, Accept: 'application/json', 'User-Agent': 'kubesim-rawclient', ...headers };
            if (token) h.Authorization = `Bearer ${token}`;
            const payload = body === undefined ? null : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
            if (payload) {
                h['Content-Length'] = payload.length;
                h['Content-Type'] ||= 'application/json';
            }
            sock.write(`${method} ${path} HTTP/1.1\r\n${Object.entries(h).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`);
            if (payload) sock.write(payload);
        });
    });
}
