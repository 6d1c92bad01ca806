// h2fan-client.mjs: HTTP/2 (h2c) subscribers for bench/h2fancpu.sh: CONNS connections x STREAMS streams, each a GET of
// PATH on 127.0.0.1:PORT. Prints "ready" once every stream has its 200 head, then "done N" once every stream has
// received EVENTS complete events (blank-line terminated), or "timeout" after LIMIT_S seconds (bounded); it exits on
// SIGTERM or after LIMIT_S.
// With H1=1: CONNS x STREAMS HTTP/1.1 subscribers instead, one connection each.
// Usage: node bench/h2fan-client.mjs PORT PATH CONNS STREAMS EVENTS LIMIT_S
import http from 'node:http';
import http2 from 'node:http2';

const [port, path, conns, streams, events, limitS] = process.argv.slice(2);
const C = Number(conns), S = Number(streams), K = Number(events);
let heads = 0, done = 0, total = 0;
const sessions = [];
function watch(res) {
    let tail = '', got = 0, counted = false;
    res.setEncoding('utf8');
    res.on('data', d => {
        const t = tail + d;
        const parts = t.split('\n\n');
        tail = parts.pop();
        for (const p of parts) if (/^id: /m.test(p)) got++;
        total += d.length;
        if (got >= K && !counted) {
            counted = true;
            /* Connections stay open until SIGTERM, so that closing them is not counted. */
            if (++done === C * S) console.log(`done ${total}`);
        }
    });
    res.on('error', e => console.error(`stream: ${e.message}`));
}
function head(status) {
    if (status !== 200) console.error(`status ${status}`);
    if (++heads === C * S) console.log('ready');
}
if (process.env.H1 === '1') {
    for (let i = 0; i < C * S; i++) {
        const req = http.get({ host: '127.0.0.1', port, path, agent: false, localAddress: `127.0.0.${2 + (i % 200)}`,
            headers: { accept: 'text/event-stream' } }, res => {
            head(res.statusCode);
            watch(res);
        });
        req.on('error', e => console.error(`request: ${e.message}`));
    }
} else {
    for (let c = 0; c < C; c++) {
        const ses = http2.connect(`http://127.0.0.1:${port}`, { settings: { initialWindowSize: 16 * 1024 * 1024 } });
        ses.on('error', e => console.error(`session: ${e.message}`));
        sessions.push(ses);
        for (let s = 0; s < S; s++) {
            const req = ses.request({ ':path': path, accept: 'text/event-stream' });
            req.on('response', h => head(h[':status']));
            watch(req);
        }
    }
}
process.on('SIGTERM', () => process.exit(0));
setTimeout(() => {
    if (done < C * S) console.log(`timeout heads ${heads} done ${done}`);
    process.exit(1);
}, Number(limitS) * 1000);
