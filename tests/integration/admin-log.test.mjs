// admin-log.test.mjs: the admin listener (/healthz, /ready) and the access log lines on stdout.
import assert from 'node:assert/strict';
import http from 'node:http';
import { before, test } from 'node:test';
import { echoBackend, sseBackend } from './lib/backends.mjs';
import { SLOW, freePort, gatewayYaml, setup, sleep, startGateway, waitFor, withLogs } from './lib/harness.mjs';
import { request } from './lib/rawhttp.mjs';
import { openSse } from './lib/sseclient.mjs';

setup();
let gw, be, sse, port, admin;
const logs = () => [gw];

before(async () => {
    be = await echoBackend();
    sse = await sseBackend();
    port = await freePort();
    admin = await freePort();
    gw = await startGateway({
        yaml: gatewayYaml({
            port,
            routes: [
                { name: 'echo', path: '/echo', backends: [{ name: '127.0.0.1', port: be.port }] },
                { name: 'events', path: '/events', backends: [{ name: '127.0.0.1', port: sse.port }] },
            ],
        }),
        /* no --access-log: stdout is the default */
        args: ['--admin', `127.0.0.1:${admin}`],
        waitPorts: [port, admin],
    });
});

function get(p, path) {
    return new Promise((resolve, reject) => {
        http.get({ host: '127.0.0.1', port: p, path, agent: false }, res => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', d => (body += d));
            res.on('end', () => resolve({ status: res.statusCode, body }));
        }).on('error', reject);
    });
}

/* Access log lines as objects: {time, client, method, path, status, ...}. */
function accessLines() {
    return gw.stdout
        .split('\n')
        .filter(l => / method=/.test(l))
        .map(l => {
            const [time, ...kv] = l.trim().split(/\s+/);
            const o = { time, line: l };
            for (const p of kv) {
                const i = p.indexOf('=');
                if (i > 0) o[p.slice(0, i)] = p.slice(i + 1);
            }
            return o;
        });
}

const findLine = pred => waitFor(() => accessLines().find(pred), 3000 * SLOW, 'the access log line');

test(
    'admin: GET /healthz -> 200 ok, GET /ready -> 200 while serving',
    withLogs(logs, async () => {
        const h = await get(admin, '/healthz');
        assert.equal(h.status, 200);
        assert.equal(h.body.trim(), 'ok');
        const r = await get(admin, '/ready');
        assert.equal(r.status, 200);
        assert.match(gw.stderr, new RegExp(`^ssegate: listening on 127\\.0\\.0\\.1:${port}$`, 'm'));
    }),
);

test(
    'admin requests do not reach the data listener routes, and data requests do not reach admin',
    withLogs(logs, async () => {
        const r = await request(port, { path: '/healthz' });
        assert.equal(r.status, 404);
        const a = await get(admin, '/echo/x');
        assert.equal(a.status, 404);
    }),
);

test(
    'access log: one line per request with every field; rid is the incoming X-Request-Id',
    withLogs(logs, async () => {
        const r = await request(port, { path: '/echo/logged', headers: { 'X-Request-Id': 'rid-it-0001' } });
        assert.equal(r.status, 200);
        const l = await findLine(x => x.rid === 'rid-it-0001');
        assert.ok(!Number.isNaN(Date.parse(l.time)) || /^\d/.test(l.time), `bad time ${l.time}`);
        assert.match(l.client, /^127\.0\.0\.1:\d+$/);
        assert.equal(l.method, 'GET');
        assert.equal(l.proto, 'HTTP/1.1');
        assert.equal(l.path, '/echo/logged');
        assert.equal(l.status, '200');
        /* body bytes, or body plus head: either reading of bytes= is accepted */
        const n = Number(l.bytes);
        assert.ok(n >= r.body.length && n < r.body.length + 1024, `bytes=${l.bytes}, body ${r.body.length}`);
        assert.match(l.dur_ms, /^\d+(\.\d+)?$/);
        assert.equal(l.route, 'default/echo');
        assert.equal(l.backend, `127.0.0.1:${be.port}`);
        assert.equal(accessLines().filter(x => x.rid === 'rid-it-0001').length, 1, 'more than one line for one request');
    }),
);

test(
    'access log: a generated rid equals the X-Request-Id the backend saw; 404 is logged',
    withLogs(logs, async () => {
        const r = await request(port, { path: '/echo/gen' });
        const seen = JSON.parse(r.body).headers['x-request-id'];
        assert.ok(seen, 'backend saw no X-Request-Id');
        const l = await findLine(x => x.path === '/echo/gen');
        assert.equal(l.rid, seen);
        await request(port, { path: '/nowhere' });
        const n = await findLine(x => x.path === '/nowhere');
        assert.equal(n.status, '404');
    }),
);

test(
    'access log: an SSE request is logged with its event count when it ends',
    withLogs(logs, async () => {
        const first = sse.streams.length;
        const h = openSse(port, '/events/counted', { headers: { 'X-Request-Id': 'rid-sse-7' } });
        const st = await sse.stream(first);
        for (let i = 0; i < 7; i++) {
            st.send(`n${i}`);
            await sleep(10);
        }
        await sleep(100);
        st.end();
        await Promise.race([h.done, sleep(3000)]);
        assert.equal(h.events.length, 7);
        const l = await findLine(x => x.rid === 'rid-sse-7');
        assert.equal(l.status, '200');
        assert.equal(l.events, '7');
        assert.equal(l.route, 'default/events');
        assert.ok(Number(l.bytes) >= h.text.length, `bytes=${l.bytes} < ${h.text.length} relayed`);
    }),
);

test(
    '--access-log off writes no access lines; --access-log PATH writes them to the file',
    withLogs(logs, async () => {
        const fs = await import('node:fs');
        const { writeTemp } = await import('./lib/harness.mjs');
        const p1 = await freePort();
        const logPath = writeTemp('access.log', '');
        const yaml = gatewayYaml({ port: p1, routes: [{ name: 'echo', path: '/echo', backends: [{ name: '127.0.0.1', port: be.port }] }] });
        const g1 = await startGateway({ yaml, args: ['--access-log', logPath], waitPorts: [p1] });
        await request(p1, { path: '/echo/tofile', headers: { 'X-Request-Id': 'rid-file' } });
        await waitFor(() => fs.readFileSync(logPath, 'utf8').includes('rid=rid-file'), 3000 * SLOW, 'the line in the file');
        assert.doesNotMatch(g1.stdout, /rid=rid-file/);
        await g1.stop();
        const p2 = await freePort();
        const yaml2 = gatewayYaml({ port: p2, routes: [{ name: 'echo', path: '/echo', backends: [{ name: '127.0.0.1', port: be.port }] }] });
        const g2 = await startGateway({ yaml: yaml2, args: ['--access-log', 'off'], waitPorts: [p2] });
        await request(p2, { path: '/echo/nolog', headers: { 'X-Request-Id': 'rid-off' } });
        await sleep(300);
        await g2.stop();
        assert.doesNotMatch(g2.stdout + g2.stderr, /rid=rid-off/);
    }),
);
