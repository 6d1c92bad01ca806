// fanout-scalein.test.mjs: two ssegate instances (same config, different ports) in front of one SSE backend, behind
// a small TCP front that sends each new connection to a live instance (as a Service would). Instance A drains
// (SIGTERM): its streams end at event boundaries with a retry hint, the clients (npm eventsource and Chromium's
// EventSource) reconnect through the front to B with Last-Event-ID, and B replays what they missed, from its own
// ring or through the backend. Every client must get every event exactly once while the backend keeps publishing.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { after, test } from 'node:test';
import { EventSource } from 'eventsource';
import { chromium } from 'playwright-core';
import { SLOW, freePort, gatewayYaml, runGateway, setup, sleep, startGateway, track, withLogs, writeTemp } from './lib/harness.mjs';
import { scrape } from './lib/prod-util.mjs';

setup();
const CHROMIUM = process.env.SG_CHROMIUM || '/usr/lib/chromium/chromium';
const NODE_CLIENTS = 16;
const BROWSER_CLIENTS = 4;    // EventSources in one page: Chromium allows 6 HTTP/1.1 connections per host
const INTERVAL = 100;         // ms between events
const DRAIN = ['--drain-timeout', '1500ms', '--drain-spread', '1000ms'];

/*
 * The SSE backend: events id 1, 2, ... every INTERVAL ms once started, `data: tick <id>`, each in one write.
 * replay: a request with Last-Event-ID n first gets n+1.. from the history (else it joins live).
 * It also serves the browser's page.
 */
async function backend({ replay }) {
    const be = { history: [], subs: new Set(), requests: [], timer: null };
    const page = `<!doctype html><title>scale-in</title><script>
window.__es = [];
for (let k = 0; k < ${BROWSER_CLIENTS}; k++) {
    const st = { ids: [], bad: [], opens: 0, errors: 0 };
    window.__es.push(st);
    const es = new EventSource('/feed');
    es.onopen = () => st.opens++;
    es.onerror = () => st.errors++;
    es.onmessage = e => { st.ids.push(Number(e.lastEventId)); if (e.data !== 'tick ' + e.lastEventId) st.bad.push(e.data); };
}
</script>`;
    const server = http.createServer((req, res) => {
        if (req.url === '/page') {
            res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'no-store' });
            res.end(page);
            return;
        }
        const lei = req.headers['last-event-id'];
        be.requests.push({ url: req.url, lastEventId: lei, at: Date.now() });
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        res.flushHeaders();
        if (replay && lei !== undefined) {
            for (let id = Number(lei) + 1; id <= be.history.length; id++) res.write(`id: ${id}\ndata: tick ${id}\n\n`);
        }
        be.subs.add(res);
        res.on('close', () => be.subs.delete(res));
    });
    const sockets = new Set();
    server.on('connection', s => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
    });
    server.keepAliveTimeout = 60000;
    await new Promise(r => server.listen(0, '127.0.0.1', r));
    be.port = server.address().port;
    be.start = () => {
        be.timer = setInterval(() => {
            const id = be.history.length + 1;
            be.history.push(id);
            for (const res of be.subs) res.write(`id: ${id}\ndata: tick ${id}\n\n`);
        }, INTERVAL);
    };
    be.stop = () => clearInterval(be.timer);
    track(() => {
        be.stop();
        for (const s of sockets) s.destroy();
        return new Promise(r => server.close(r));
    });
    return be;
}

/*
 * The front: each new connection goes to the instance its policy names ('first': A while it listens, else B;
 * 'alternate': A and B in turn), and to the other one if that refuses. It notes which instance each SSE request
 * (GET /feed) went to.
 */
async function front(ports, policy) {
    const fr = { feeds: [0, 0], conns: [0, 0], next: 0 };
    const sockets = new Set();
    const server = net.createServer(client => {
        sockets.add(client);
        client.on('close', () => sockets.delete(client));
        client.on('error', () => {});
        client.pause();
        let order = [0, 1];
        if (policy === 'alternate') {
            order = fr.next === 0 ? [0, 1] : [1, 0];
            fr.next ^= 1;
        }
        const attempt = k => {
            if (k >= order.length) {
                client.destroy();
                return;
            }
            const i = order[k];
            const up = net.connect({ port: ports[i], host: '127.0.0.1' });
            sockets.add(up);
            up.on('close', () => sockets.delete(up));
            let connected = false;
            up.once('connect', () => {
                connected = true;
                fr.conns[i]++;
                /* every request on the connection, keep-alive ones too (Chromium may reuse the page's) */
                client.on('data', d => {
                    fr.feeds[i] += (d.toString('latin1').match(/(^|\n)GET \/feed/g) || []).length;
                });
                client.pipe(up);
                up.pipe(client);
                client.resume();
            });
            up.on('error', () => {
                if (!connected) attempt(k + 1);
                else client.destroy();
            });
            up.on('close', () => connected && client.end());
            client.on('close', () => up.destroy());
        };
        attempt(0);
    });
    await new Promise(r => server.listen(0, '127.0.0.1', r));
    fr.port = server.address().port;
    track(() => {
        for (const s of sockets) s.destroy();
        return new Promise(r => server.close(r));
    });
    return fr;
}

/* Whether this build serves the SSEPolicy kind (sharing); the ring variant needs it. */
async function sharingSupported(yaml) {
    const r = await runGateway(['--check', '-c', writeTemp('check.yaml', yaml)]);
    return r.code === 0;
}

function sharedPolicy() {
    return `apiVersion: ssegate.io/v1alpha1
kind: SSEPolicy
metadata: {name: feed-sharing}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: feed}
  default:
    sharing: {enabled: true}
`;
}

function configFor(port, bePort, shared) {
    return gatewayYaml({
        port,
        routes: [
            { name: 'feed', path: '/feed', backends: [{ name: '127.0.0.1', port: bePort }] },
            { name: 'page', path: '/page', backends: [{ name: '127.0.0.1', port: bePort }] },
        ],
        extra: shared ? sharedPolicy() : '',
    });
}

let browser = null;
after(async () => {
    if (browser) await browser.close();
});

/* Checks one client's ids: exactly 1..last, each once, in order. */
function checkIds(who, ids, last, problems) {
    if (ids.length === last && ids.every((id, k) => id === k + 1)) return;
    const seen = new Set();
    const dups = ids.filter(id => (seen.has(id) ? true : (seen.add(id), false)));
    const missing = [];
    for (let id = 1; id <= last; id++) if (!seen.has(id)) missing.push(id);
    const order = ids.findIndex((id, k) => k > 0 && id <= ids[k - 1]);
    problems.push(
        `${who}: ${ids.length} events for ${last}; missing [${missing.slice(0, 10)}]${missing.length > 10 ? '...' : ''}, ` +
            `duplicates [${dups.slice(0, 10)}], out of order at ${order}`,
    );
}

async function scaleIn(t, { replay, policy, shared }) {
    const be = await backend({ replay });
    const portA = await freePort();
    const portB = await freePort();
    const cfgA = configFor(portA, be.port, shared);
    const cfgB = configFor(portB, be.port, shared);
    const A = await startGateway({ yaml: cfgA, args: ['--access-log', 'off', '--workers', '2', ...DRAIN], waitPorts: [portA] });
    const adminB = await freePort();
    const B = await startGateway({
        yaml: cfgB,
        args: ['--access-log', 'off', '--workers', '2', '--admin', `127.0.0.1:${adminB}`, ...DRAIN],
        waitPorts: [portB, adminB],
    });
    t.gws = [A, B];
    const fr = await front([portA, portB], policy);
    const url = `http://127.0.0.1:${fr.port}/feed`;

    /* Clients: npm eventsource ... */
    const nodes = [];
    for (let i = 0; i < NODE_CLIENTS; i++) {
        const c = { ids: [], bad: [], opens: 0, errors: 0 };
        c.es = new EventSource(url);
        track(() => c.es.close());
        c.es.onopen = () => c.opens++;
        c.es.onerror = () => c.errors++;
        c.es.onmessage = e => {
            c.ids.push(Number(e.lastEventId));
            if (e.data !== `tick ${e.lastEventId}`) c.bad.push(e.data);
        };
        nodes.push(c);
    }
    /* ... and Chromium's EventSource, BROWSER_CLIENTS of them in one page loaded through the front. */
    browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
            '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    const page = await browser.newPage();
    const resp = await page.goto(`http://127.0.0.1:${fr.port}/page`);
    assert.equal(resp.status(), 200);
    const browserState = () => page.evaluate(() => window.__es.map(s => ({ ids: s.ids, bad: s.bad, opens: s.opens, errors: s.errors })));

    const N = NODE_CLIENTS + BROWSER_CLIENTS;
    const deadline = Date.now() + 15000 * SLOW;
    for (;;) {
        const bs = await browserState();
        if (nodes.every(c => c.opens >= 1) && bs.every(s => s.opens >= 1) && fr.feeds[0] + fr.feeds[1] >= N) break;
        if (Date.now() > deadline) throw new Error(`clients not all open: front saw ${fr.feeds} SSE requests`);
        await sleep(50);
    }
    if (policy === 'alternate') assert.ok(fr.feeds[0] > 0 && fr.feeds[1] > 0, `feeds per instance ${fr.feeds}`);
    else assert.equal(fr.feeds[1], 0, 'a client reached B before the scale-in');
    const onA = fr.feeds[0];

    /* The backend publishes throughout; A drains a second in. */
    be.start();
    await sleep(1000);
    const feedsBBefore = fr.feeds[1];
    const upstreamBefore = be.requests.length;
    A.stopping = true;
    A.child.kill('SIGTERM');
    const exit = await Promise.race([A.exited, sleep(10000 * SLOW).then(() => null)]);
    assert.ok(exit, 'instance A still running 10 s after SIGTERM');
    assert.equal(exit.code, 0, `instance A exit code ${exit.code} (signal ${exit.signal})`);

    /* Every client that was on A reconnects through the front to B (its retry hint is 1..5 s). */
    const deadline2 = Date.now() + 15000 * SLOW;
    while (fr.feeds[1] - feedsBBefore < onA) {
        if (Date.now() > deadline2) throw new Error(`only ${fr.feeds[1] - feedsBBefore} of ${onA} clients reconnected to B`);
        await sleep(50);
    }
    /* A few more events after the last reconnect, then the backend stops at `last`. */
    await sleep(10 * INTERVAL);
    be.stop();
    const last = be.history.length;
    const deadline3 = Date.now() + 10000 * SLOW;
    let bs;
    for (;;) {
        bs = await browserState();
        const all = [...nodes.map(c => c.ids), ...bs.map(s => s.ids)];
        if (all.every(ids => ids.length && ids[ids.length - 1] >= last)) break;
        if (Date.now() > deadline3) break;
        await sleep(50);
    }
    await sleep(3 * INTERVAL); // a duplicate would arrive after the last id

    const problems = [];
    nodes.forEach((c, i) => {
        checkIds(`eventsource client ${i}`, c.ids, last, problems);
        if (c.bad.length) problems.push(`eventsource client ${i}: bad data ${c.bad.slice(0, 3)}`);
    });
    bs = await browserState();
    bs.forEach((s, i) => {
        checkIds(`Chromium EventSource ${i}`, s.ids, last, problems);
        if (s.bad.length) problems.push(`Chromium EventSource ${i}: bad data ${s.bad.slice(0, 3)}`);
    });
    assert.deepEqual(problems, [], `${problems.length} clients did not get events 1..${last} exactly once`);

    /* The clients that were on A did reconnect (to B), and the events they missed came with Last-Event-ID. */
    const reopened = nodes.filter(c => c.opens >= 2).length + bs.filter(s => s.opens >= 2).length;
    assert.equal(reopened, onA, `${reopened} clients reconnected; ${onA} were on A`);
    const resumed = be.requests.slice(upstreamBefore).filter(r => r.url.startsWith('/feed') && r.lastEventId !== undefined);
    const metricsB = await scrape(adminB);
    return { be, fr, A, B, onA, last, resumed, metricsB };
}

const checkYaml = configFor(1, 2, true);
const shared = await sharingSupported(checkYaml);
const noChromium = fs.existsSync(CHROMIUM) ? false : `no chromium at ${CHROMIUM}`;

let ctx = {};
test(
    `scale-in, replay through the backend: all clients on A, A drains, they resume on B with Last-Event-ID` +
        ` (${shared ? 'shared stream' : 'unshared: this build has no SSEPolicy'})`,
    { skip: noChromium, timeout: 90000 * SLOW },
    withLogs(() => ctx.gws || [], async () => {
        const r = await scaleIn(ctx, { replay: true, policy: 'first', shared });
        /* B had no stream of its own: what the clients missed came from the backend, asked with Last-Event-ID. */
        assert.ok(r.resumed.length >= 1, 'no request to the backend carried Last-Event-ID');
        if (shared) {
            const viaBackend = r.metricsB.get('ssegate_fanout_replays_total', { source: 'backend' });
            assert.ok(viaBackend >= 1, `B counted ${viaBackend} replays through the backend`);
        }
        await browser.close();
        browser = null;
    }),
);

let ctx2 = {};
test(
    'scale-in, replay from B\'s own ring: clients on A and B, the backend ignores Last-Event-ID, A drains',
    {
        skip: noChromium || (shared ? false : 'this build refuses the SSEPolicy kind: no shared stream, no ring to replay from'),
        timeout: 90000 * SLOW,
    },
    withLogs(() => ctx2.gws || [], async () => {
        /* The backend replays nothing, so the events the clients of A missed can only come from B's ring. */
        const r = await scaleIn(ctx2, { replay: false, policy: 'alternate', shared: true });
        /* B held the stream for its own clients, so it answered the resumes from its ring without asking. */
        assert.equal(r.resumed.length, 0, `requests to the backend with Last-Event-ID: ${JSON.stringify(r.resumed)}`);
        const fromRing = r.metricsB.get('ssegate_fanout_replays_total', { source: 'ring' });
        assert.ok(fromRing >= r.onA, `B counted ${fromRing} replays from its ring; ${r.onA} clients came from A`);
        await browser.close();
        browser = null;
    }),
);
