// h2attack.mjs: hostile HTTP/2 clients for the hardening suites and bench/attack-h2-window.sh. zeroWindow() opens
// many streams per connection with SETTINGS_INITIAL_WINDOW_SIZE 0 and never sends WINDOW_UPDATE, so a proxy in front
// of a busy SSE backend can send no DATA and has to decide what to hold.
import http2 from 'node:http2';

/*
 * Opens `conns` h2c connections to 127.0.0.1:port (source addresses spread over 127.0.0.x), each with `streams`
 * GETs of `path`. Returns {sessions, streams: [{status, reset, code, closed}], close()}. The client reads nothing:
 * its stream windows stay 0 for the whole run (Node sends WINDOW_UPDATE only for DATA it has received).
 */
export async function zeroWindow({ port, conns = 1, streams = 256, path = '/', host = '127.0.0.1', spread = true }) {
    const out = { sessions: [], streams: [], goaways: 0, sessionsClosed: 0 };
    for (let i = 0; i < conns; i++) {
        const localAddress = spread ? `127.0.0.${2 + (i % 250)}` : undefined;
        const ses = http2.connect(`http://${host}:${port}`, {
            settings: { initialWindowSize: 0, enablePush: false },
            localAddress,
            /* The default (10 MB) counts headers in flight; many sessions in one process stay far below it. */
            maxSessionMemory: 64,
        });
        ses.on('error', () => {});
        ses.on('goaway', () => out.goaways++);
        ses.on('close', () => out.sessionsClosed++);
        await new Promise((resolve, reject) => {
            ses.once('connect', resolve);
            ses.once('error', reject);
        });
        out.sessions.push(ses);
        for (let k = 0; k < streams; k++) {
            const st = { status: 0, reset: false, code: undefined, closed: false };
            const req = ses.request({ ':path': `${path}${path.includes('?') ? '&' : '?'}c=${i}&s=${k}` }, { endStream: true });
            req.on('response', h => (st.status = h[':status']));
            req.on('error', () => {});
            req.on('close', () => {
                st.closed = true;
                st.code = req.rstCode;
                st.reset = req.rstCode !== undefined && req.rstCode !== http2.constants.NGHTTP2_NO_ERROR;
            });
            /* Never read: no DATA can arrive anyway with a zero window, and nothing is given back. */
            req.pause();
            out.streams.push(st);
        }
    }
    out.close = () => {
        for (const s of out.sessions) s.destroy();
    };
    return out;
}
