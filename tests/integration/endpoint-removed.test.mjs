// endpoint-removed.test.mjs: SSEPolicy onEndpointRemoved. An SSE stream whose endpoint leaves the config keeps
// running by default; with action Close it ends at an event boundary with a retry: hint (in the second half of
// `after`), and a stream whose endpoint comes back in time keeps running. File mode (SIGHUP) and kube mode (an
// EndpointSlice deleted) alike; a shared stream's upstream fails over to a remaining endpoint without its
// subscribers seeing a break.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { test } from 'node:test';
import { SLOW, freePort, setup, sleep, startGateway, track, withLogs } from './lib/harness.mjs';
import { prodYaml, waitLog } from './lib/prod-util.mjs';
import { gateway, gatewayClass, route, service, slices, startKubeGateway, startSim, waitFor } from './lib/kube-util.mjs';

setup();

/* An SSE backend named `name`: about every 30 ms an event in two writes 10 ms apart (so a cut at a random moment would
 * often fall inside one), ids counting on from the request's Last-Event-ID. */
async function sseBackend(name) {
    const timers = new Set();
    const srv = http.createServer((req, res) => {
        let n = Number(req.headers['last-event-id'] || 0);
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        res.flushHeaders();
        /* One chain of timers, so that an event's second write always comes before the next event's first, even
         * when a loaded machine runs the timers late (an interval and a timeout could then fire out of order). */
        let stopped = false;
        const arm = (fn, ms) => {
            const t = setTimeout(() => {
                timers.delete(t);
                if (!stopped) fn();
            }, ms);
            timers.add(t);
        };
        const first = () => {
            n++;
            res.write(`id: ${n}\ndata: ${name} ${n} first\n`);
            arm(second, 10);
        };
        const second = () => {
            res.write('data: second\n\n');
            arm(first, 20);
        };
        arm(first, 30);
        const stop = () => {
            stopped = true;
        };
        res.on('close', stop);
    });
    srv.keepAliveTimeout = 0;
    await new Promise(r => srv.listen(0, '127.0.0.1', r));
    const close = () =>
        new Promise(r => {
            for (const t of timers) clearTimeout(t);
            srv.closeAllConnections();
            srv.close(() => r());
        });
    track(close);
    return { name, port: srv.address().port, close };
}

/* A client stream: all its bytes, whether it ended, and the backend its first event came from. */
function openStream(port, path) {
    const h = { text: '', ended: false, error: null, from: null, status: 0 };
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, headers: { accept: 'text/event-stream' } }, res => {
        h.status = res.statusCode;
        res.setEncoding('utf8');
        res.on('data', d => {
            h.text += d;
            if (h.from === null) {
                const m = /data: (\S+) \d+ first/.exec(h.text);
                if (m) h.from = m[1];
            }
        });
        res.on('end', () => (h.ended = true));
        res.on('error', e => (h.error = e));
    });
    req.on('error', e => (h.error = e));
    h.close = () => req.destroy();
    track(h.close);
    return h;
}

/* The stream's events (blocks between blank lines), each checked whole; returns {events, retry}. */
function checkWhole(h, label) {
    const blocks = h.text.split('\n\n');
    assert.equal(blocks.pop(), '', `${label}: the stream ended inside an event: ${JSON.stringify(h.text.slice(-80))}`);
    let retry = null;
    const events = [];
    for (const b of blocks) {
        if (/^retry: ?\d+$/.test(b)) {
            retry = b;
            continue;
        }
        if (/^:/.test(b)) continue; /* heartbeat */
        assert.match(b, /^id: (\d+)\ndata: (\S+) \1 first\ndata: second$/, `${label}: a partial or foreign event: ${JSON.stringify(b)}`);
        events.push(b);
    }
    return { events, retry, last: blocks[blocks.length - 1] };
}

function policy(route, action, after) {
    return `apiVersion: ssegate.io/v1alpha1
kind: SSEPolicy
metadata: {name: ${route}-ep}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: ${route}}
  default:
    onEndpointRemoved: {action: ${action}${after ? `, after: ${after}` : ''}}
`;
}

async function openOnBoth(port, path, names, n = 6) {
    const streams = [];
    for (let i = 0; i < n; i++) streams.push(openStream(port, `${path}/${i}`));
    await waitFor(() => streams.every(h => h.from !== null), 5000 * SLOW, 'every stream has its first event');
    for (const nm of names) assert.ok(streams.some(h => h.from === nm), `no stream landed on ${nm}`);
    return streams;
}

let gw;
test('file mode: streams keep running by default; Close ends those on a removed endpoint at an event boundary with retry:',
    { timeout: 60000 * SLOW },
    withLogs(() => [gw], async () => {
        const A = await sseBackend('A');
        const B = await sseBackend('B');
        const port = await freePort();
        const conf = (eps, extra = '') =>
            prodYaml({ port, routes: [{ name: 'r', path: '/', backends: [{ service: 's' }] }], services: [{ name: 's', endpoints: eps }], extra });
        gw = await startGateway({ yaml: conf([A.port, B.port]), args: ['--access-log', 'off', '--workers', '1'], waitPorts: [port] });
        let gen = 1;
        const reload = async yaml => {
            fs.writeFileSync(gw.config, yaml);
            const mark = gw.stderr.length;
            gw.child.kill('SIGHUP');
            gen++;
            await waitLog(gw, new RegExp(`config reloaded \\(generation ${gen}\\)`), 5000 * SLOW, mark);
            await sleep(100); /* the worker adopts it when it next wakes */
        };
        const streams = await openOnBoth(port, '/s', ['A', 'B']);
        const onA = streams.filter(h => h.from === 'A');
        const onB = streams.filter(h => h.from === 'B');

        /* Default (no policy): B leaves the config, its streams go on (B still runs). */
        await reload(conf([A.port]));
        let lenB = onB.map(h => h.text.length);
        await sleep(1200);
        for (const h of streams) assert.ok(!h.ended && !h.error, 'a stream ended with the default (Keep)');
        onB.forEach((h, i) => assert.ok(h.text.length > lenB[i], 'a stream on the removed endpoint stopped flowing'));

        /* Close, with B back: nothing to close. */
        await reload(conf([A.port, B.port], policy('r', 'Close', '300ms')));
        /* B leaves and comes back before its streams' moments (within 2 s): they keep running. */
        await reload(conf([A.port], policy('r', 'Close', '2s')));
        await reload(conf([A.port, B.port], policy('r', 'Close', '2s')));
        await waitLog(gw, new RegExp(`generation ${gen - 1}: ${onB.length} SSE streams on removed endpoints end within`), 3000 * SLOW);
        await waitLog(gw, new RegExp(`generation ${gen}: ${onB.length} SSE streams keep running \\(their endpoints are back\\)`), 3000 * SLOW);
        lenB = onB.map(h => h.text.length);
        await sleep(2500);
        for (const h of streams) assert.ok(!h.ended && !h.error, 'a stream ended though its endpoint came back in time');
        onB.forEach((h, i) => assert.ok(h.text.length > lenB[i], 'a stream on B stopped flowing'));

        /* B leaves for good: its streams end whole, with a retry: hint; those on A go on. */
        await reload(conf([A.port], policy('r', 'Close', '300ms')));
        await waitFor(() => onB.every(h => h.ended || h.error), 5000 * SLOW, 'the streams on B ended');
        for (const [i, h] of onB.entries()) {
            assert.equal(h.error, null, `stream ${i} on B was cut instead of ended`);
            const { events, retry, last } = checkWhole(h, `stream ${i} on B`);
            assert.ok(events.length > 10, 'too few events before the end');
            assert.ok(retry !== null && last === retry, `stream ${i} on B did not end with a retry: hint`);
        }
        const lenA = onA.map(h => h.text.length);
        await sleep(500);
        for (const [i, h] of onA.entries()) {
            assert.ok(!h.ended && !h.error, `stream ${i} on A (still in the config) ended`);
            assert.ok(h.text.length > lenA[i], `stream ${i} on A stopped flowing`);
            checkWhole({ text: h.text.slice(0, h.text.lastIndexOf('\n\n') + 2) }, `stream ${i} on A`);
        }
        for (const h of streams) h.close();
        await gw.stop();
    }));

test('file mode: a shared stream whose endpoint is removed fails over to a remaining one, subscribers see no break',
    { timeout: 60000 * SLOW },
    withLogs(() => [gw], async () => {
        const A = await sseBackend('A');
        const B = await sseBackend('B');
        const port = await freePort();
        const pol = `apiVersion: ssegate.io/v1alpha1
kind: SSEPolicy
metadata: {name: shared}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}
  default:
    sharing: {enabled: true}
    onEndpointRemoved: {action: Close, after: 200ms}
`;
        const conf = eps => prodYaml({ port, routes: [{ name: 'r', path: '/', backends: [{ service: 's' }] }], services: [{ name: 's', endpoints: eps }], extra: pol });
        gw = await startGateway({ yaml: conf([B.port]), args: ['--access-log', 'off', '--workers', '1'], waitPorts: [port] });
        const subs = [];
        for (let i = 0; i < 3; i++) subs.push(openStream(port, '/shared'));
        await waitFor(() => subs.every(h => h.from === 'B'), 5000 * SLOW, 'every subscriber on B');
        fs.writeFileSync(gw.config, conf([A.port]));
        const mark = gw.stderr.length;
        gw.child.kill('SIGHUP');
        await waitLog(gw, /config reloaded \(generation 2\)/, 5000 * SLOW, mark);
        await waitFor(() => subs.every(h => /data: A \d+ first/.test(h.text)), 5000 * SLOW, 'events from A on every subscriber');
        await sleep(300);
        for (const [i, h] of subs.entries()) {
            assert.ok(!h.ended && !h.error, `subscriber ${i} saw its stream end`);
            const { events, retry } = checkWhole({ text: h.text.slice(0, h.text.lastIndexOf('\n\n') + 2) }, `subscriber ${i}`);
            assert.equal(retry, null, `subscriber ${i} got the upstream's retry: hint`);
            const ids = events.map(e => Number(/^id: (\d+)/.exec(e)[1]));
            for (let k = 1; k < ids.length; k++) assert.equal(ids[k], ids[k - 1] + 1, `subscriber ${i}: ids jump ${ids[k - 1]} -> ${ids[k]}`);
        }
        for (const h of subs) h.close();
        await gw.stop();
    }));

test('kube mode: an EndpointSlice deleted ends the Close streams on its endpoint; the others run on', { timeout: 60000 * SLOW },
    withLogs(() => [gw], async () => {
        const A = await sseBackend('A');
        const B = await sseBackend('B');
        const sim = await startSim();
        const port = await freePort();
        sim.apply([gatewayClass(), gateway('gw', port), route('r', [{ path: '/', service: 's' }]), service('s'),
            ...slices('s', [{ port: A.port }, { port: B.port }]),
            { apiVersion: 'ssegate.io/v1alpha1', kind: 'SSEPolicy', metadata: { name: 'ep', namespace: 'default' },
                spec: { targetRef: { group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'r' },
                    default: { onEndpointRemoved: { action: 'Close', after: '300ms' } } } }]);
        gw = await startKubeGateway(sim, { args: ['--workers', '1'] });
        await waitFor(async () => {
            const h = openStream(port, '/probe');
            await waitFor(() => h.from !== null || h.status >= 400 || h.error, 2000 * SLOW, 'probe');
            h.close();
            return h.from !== null;
        }, 10000 * SLOW, 'route served', gw);
        const streams = await openOnBoth(port, '/s', ['A', 'B']);
        const onA = streams.filter(h => h.from === 'A');
        const onB = streams.filter(h => h.from === 'B');
        sim.delete('EndpointSlice', 'default', `s-${B.port}`);
        await waitFor(() => onB.every(h => h.ended || h.error), 10000 * SLOW, 'the streams on B ended', gw);
        for (const [i, h] of onB.entries()) {
            assert.equal(h.error, null, `stream ${i} on B was cut instead of ended`);
            const { retry, last } = checkWhole(h, `stream ${i} on B`);
            assert.ok(retry !== null && last === retry, `stream ${i} on B did not end with a retry: hint`);
        }
        const lenA = onA.map(h => h.text.length);
        await sleep(500);
        for (const [i, h] of onA.entries()) {
            assert.ok(!h.ended && !h.error, `stream ${i} on A ended`);
            assert.ok(h.text.length > lenA[i], `stream ${i} on A stopped flowing`);
        }
        for (const h of streams) h.close();
        await gw.stop();
    }));
