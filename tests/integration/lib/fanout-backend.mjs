// fanout-backend.mjs: SSE origin in its own process for the many-streams test; driven over IPC by the test.
//   messages in:  {cmd: 'start', interval}  start ticking: every stream gets its next id each tick; replies {started}
//                 {cmd: 'stop'}             stop ticking; replies {sent: {client: lastId}, open}
// Replies {port} once listening. Each request names its client with ?c=N.
import http from 'node:http';

const streams = new Map();
let timer = null;
const server = http.createServer((req, res) => {
    const c = new URL(req.url, 'http://x').searchParams.get('c');
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    const st = { res, n: 0, open: true };
    streams.set(c, st);
    res.on('close', () => (st.open = false));
});
server.keepAliveTimeout = 120000;
server.requestTimeout = 0;
server.timeout = 0;
server.maxConnections = 100000;
server.listen(0, '127.0.0.1', 4096, () => process.send({ port: server.address().port }));

process.on('message', m => {
    if (m.cmd === 'start') {
        timer = setInterval(() => {
            for (const st of streams.values()) {
                if (!st.open) continue;
                st.n++;
                st.res.write(`id: ${st.n}\ndata: tick ${st.n}\n\n`);
            }
        }, m.interval);
        process.send({ started: streams.size });
    } else if (m.cmd === 'stop') {
        clearInterval(timer);
        const sent = {};
        let open = 0;
        for (const [c, st] of streams) {
            sent[c] = st.n;
            if (st.open) open++;
        }
        process.send({ sent, open, total: streams.size });
    }
});
process.on('disconnect', () => process.exit(0));
