// fanout.test.mjs: SSEPolicy sharing: one upstream stream per sharing key (counted at the backend), sharing off, the
// credentials rule, the sharing key (query and named headers), replay from the ring at its edges, the metrics and
// the access log.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { before, test } from 'node:test';
import { sseBackend } from './lib/backends.mjs';
import { fanoutYaml, ids, range } from './lib/fanout-util.mjs';
import { SLOW, freePort, runGateway, setup, sleep, startGateway, waitFor, withLogs, writeTemp } from './lib/harness.mjs';
import { scrape } from './lib/prod-util.mjs';
import { openSse, waitEvents } from './lib/sseclient.mjs';
import { wsBackend, wsConnect, wsMessages } from './lib/wsutil.mjs';

setup();
let gw, be, port, admin, logFile;
const logs = () => [gw];
const T = 5000 * SLOW;

before(async () => {
    be = await sseBackend();
    port = await freePort();
    admin = await freePort();
    const b = [{ service: '127.0.0.1', port: be.port }];
    logFile = writeTemp('access.log', '');
    gw = await startGateway({
        yaml: fanoutYaml({
            port,
            routes: [
                { name: 'live', path: '/live', backends: b, policy: '{sharing: {enabled: true, keyHeaders: [x-tenant]}, replay: {maxEvents: 5}}' },
                { name: 'pub', path: '/pub', backends: b, policy: '{sharing: {enabled: true, public: true}}' },
                { name: 'plain', path: '/plain', backends: b },
                { name: 'golive', path: '/golive', backends: b, policy: '{sharing: {enabled: true}, replay: {maxEvents: 5, onTooOld: live}}' },
                { name: 'stay', path: '/stay', backends: b, policy: '{sharing: {enabled: true, lingerAfterLastSubscriber: 1h}}' },
                { name: 'gone', path: '/gone', backends: b, policy: '{sharing: {enabled: true, lingerAfterLastSubscriber: 0s}}' },
            ],
        }),
        args: ['--access-log', logFile, '--workers', '1', '--admin', `127.0.0.1:${admin}`],
        waitPorts: [port, admin],
    });
});

/* Streams the backend opened for url since index from. */
const upstreams = (url, from = 0) => be.streams.slice(from).filter(s => s.url === url);

async function settle() {
    /* Requests that would open an upstream have done so well within this (one loop turn + a loopback connect). */
    await sleep(300 * SLOW);
}

test(
    'sharing on: four clients, one upstream stream; every client gets every event once; sharing off: one upstream each',
    withLogs(logs, async () => {
        const from = be.streams.length;
        const cs = [1, 2, 3, 4].map(() => openSse(port, '/live/a'));
        await Promise.all(cs.map(c => c.head));
        await settle();
        assert.equal(upstreams('/live/a', from).length, 1, 'shared clients opened more than one upstream');
        const st = upstreams('/live/a', from)[0];
        for (let i = 0; i < 3; i++) st.send(`tick ${i + 1}`);
        for (const c of cs) await waitEvents(c, 3, T);
        for (const c of cs) {
            assert.equal(c.status, 200);
            assert.match(c.headers['content-type'], /^text\/event-stream/);
            assert.deepEqual(ids(c), [1, 2, 3]);
            assert.deepEqual(c.events.map(e => e.data), ['tick 1', 'tick 2', 'tick 3']);
        }
        const m = await scrape(admin);
        assert.equal(m.get('ssegate_fanout_streams'), 1);
        assert.equal(m.get('ssegate_fanout_subscribers'), 4);
        assert.equal(m.get('ssegate_fanout_ring_events'), 3);
        assert.equal(m.get('ssegate_fanout_route_streams', { route: 'default/live' }), 1);
        assert.equal(m.get('ssegate_fanout_route_subscribers', { route: 'default/live' }), 4);
        for (const c of cs) c.close();

        const pf = be.streams.length;
        const ps = [1, 2, 3].map(() => openSse(port, '/plain/a'));
        await Promise.all(ps.map(c => c.head));
        await settle();
        assert.equal(upstreams('/plain/a', pf).length, 3, 'a route without SSEPolicy shared its upstream');
        for (const c of ps) c.close();
    }),
);

test(
    'credentials: Authorization or Cookie get a stream of their own, unless the policy declares the stream public',
    withLogs(logs, async () => {
        const from = be.streams.length;
        const anon = openSse(port, '/live/cred');
        const auth = openSse(port, '/live/cred', { headers: { authorization: 'Bearer alice' } });
        const cookie = openSse(port, '/live/cred', { headers: { cookie: 'session=bob' } });
        const anon2 = openSse(port, '/live/cred');
        await Promise.all([anon, auth, cookie, anon2].map(c => c.head));
        await settle();
        const ups = upstreams('/live/cred', from);
        assert.equal(ups.length, 3, `expected anon (shared), alice and bob: ${ups.length} upstreams`);
        assert.equal(ups.filter(s => s.headers.authorization === 'Bearer alice').length, 1);
        assert.equal(ups.filter(s => s.headers.cookie === 'session=bob').length, 1);
        assert.equal(ups.filter(s => !s.headers.authorization && !s.headers.cookie).length, 1);

        const pf = be.streams.length;
        const p1 = openSse(port, '/pub/x', { headers: { authorization: 'Bearer alice' } });
        const p2 = openSse(port, '/pub/x', { headers: { authorization: 'Bearer carol' } });
        const p3 = openSse(port, '/pub/x');
        await Promise.all([p1, p2, p3].map(c => c.head));
        await settle();
        assert.equal(upstreams('/pub/x', pf).length, 1, 'a public stream was not shared across credentials');
        const st = upstreams('/pub/x', pf)[0];
        st.send('for all');
        for (const c of [p1, p2, p3]) await waitEvents(c, 1, T);
        for (const c of [anon, auth, cookie, anon2, p1, p2, p3]) c.close();
    }),
);

test(
    'the sharing key: the query and the headers the policy names split streams; other headers do not',
    withLogs(logs, async () => {
        const from = be.streams.length;
        const a1 = openSse(port, '/live/k?room=1');
        const a2 = openSse(port, '/live/k?room=1', { headers: { 'x-other': 'ignored' } });
        const b1 = openSse(port, '/live/k?room=2');
        const t1 = openSse(port, '/live/k?room=1', { headers: { 'x-tenant': 'acme' } });
        const t2 = openSse(port, '/live/k?room=1', { headers: { 'x-tenant': 'acme' } });
        const t3 = openSse(port, '/live/k?room=1', { headers: { 'x-tenant': 'globex' } });
        const all = [a1, a2, b1, t1, t2, t3];
        await Promise.all(all.map(c => c.head));
        await settle();
        const ups = [...upstreams('/live/k?room=1', from), ...upstreams('/live/k?room=2', from)];
        assert.equal(ups.length, 4, `keys: room=1, room=2, room=1+acme, room=1+globex; got ${ups.length}`);
        assert.equal(ups.filter(s => s.headers['x-tenant'] === 'acme').length, 1);
        assert.equal(ups.filter(s => s.headers['x-tenant'] === 'globex').length, 1);
        /* Each upstream's events reach exactly its own subscribers. */
        for (const s of ups) s.send(`${s.url} ${s.headers['x-tenant'] || '-'}`);
        for (const c of all) await waitEvents(c, 1, T);
        await sleep(100);
        assert.equal(a1.events.length, 1);
        assert.equal(a1.events[0].data, '/live/k?room=1 -');
        assert.equal(a2.events[0].data, '/live/k?room=1 -');
        assert.equal(b1.events[0].data, '/live/k?room=2 -');
        assert.equal(t1.events[0].data, '/live/k?room=1 acme');
        assert.equal(t2.events[0].data, '/live/k?room=1 acme');
        assert.equal(t3.events[0].data, '/live/k?room=1 globex');
        for (const c of all) c.close();
    }),
);

test(
    'replay at the edges of the ring (maxEvents 5): inside, at its base, just outside and unknown ids; onTooOld: live',
    withLogs(logs, async () => {
        const from = be.streams.length;
        const keeper = openSse(port, '/live/r');
        await keeper.head;
        const st = await be.stream(from, T);
        for (let i = 1; i <= 10; i++) st.send(`e${i}`);
        await waitEvents(keeper, 10, T);
        /* The ring holds 6..10; 5 left last, so everything after 5 is still held. */
        const m0 = await scrape(admin);
        const inside = openSse(port, '/live/r', { headers: { 'last-event-id': '7' } });
        const oldest = openSse(port, '/live/r', { headers: { 'last-event-id': '6' } });
        const base = openSse(port, '/live/r', { headers: { 'last-event-id': '5' } });
        const newest = openSse(port, '/live/r', { headers: { 'last-event-id': '10' } });
        await Promise.all([inside, oldest, base, newest].map(c => c.head));
        await waitEvents(inside, 3, T);
        await waitEvents(oldest, 4, T);
        await waitEvents(base, 5, T);
        await settle();
        assert.equal(be.streams.length, from + 1, 'a replay the ring could serve went to the backend');
        st.send('e11');
        await waitEvents(inside, 4, T);
        await waitEvents(oldest, 5, T);
        await waitEvents(base, 6, T);
        await waitEvents(newest, 1, T);
        await sleep(100);
        assert.deepEqual(ids(inside), range(8, 11), 'after 7: 8..10 from the ring, then 11 live');
        assert.deepEqual(ids(oldest), range(7, 11));
        assert.deepEqual(ids(base), range(6, 11));
        assert.deepEqual(ids(newest), [11]);

        /* 4 left the ring before 5 did: too old. An unknown id cannot be ordered: too old as well. */
        const outside = openSse(port, '/live/r', { headers: { 'last-event-id': '4' } });
        const unknown = openSse(port, '/live/r', { headers: { 'last-event-id': 'no-such-id' } });
        await Promise.all([outside.head, unknown.head]);
        const own = await be.stream(from + 2, T);
        await be.stream(from + 1, T);
        const dedicated = be.streams.slice(from + 1);
        assert.deepEqual(dedicated.map(s => s.lastEventId).sort(), ['4', 'no-such-id'], 'the backend was not asked to replay');
        own.send('from the backend');
        const m1 = await scrape(admin);
        assert.equal(m1.get('ssegate_fanout_replays_total', { source: 'ring' }) - m0.get('ssegate_fanout_replays_total', { source: 'ring' }), 4);
        assert.equal(m1.get('ssegate_fanout_replays_total', { source: 'backend' }) - m0.get('ssegate_fanout_replays_total', { source: 'backend' }), 2);

        /* onTooOld: live joins the shared stream at its live edge instead. */
        const lf = be.streams.length;
        const k2 = openSse(port, '/golive/r');
        await k2.head;
        const st2 = await be.stream(lf, T);
        for (let i = 1; i <= 8; i++) st2.send(`g${i}`);
        await waitEvents(k2, 8, T);
        const late = openSse(port, '/golive/r', { headers: { 'last-event-id': '1' } });
        await late.head;
        await settle();
        st2.send('g9');
        await waitEvents(late, 1, T);
        await sleep(100);
        assert.deepEqual(ids(late), [9]);
        assert.equal(be.streams.length, lf + 1, 'onTooOld: live still asked the backend');
        for (const c of [keeper, inside, oldest, base, newest, outside, unknown, k2, late]) c.close();
    }),
);

test(
    'a replay by the backend moves onto the shared stream where the two meet: behind the ring, and ahead of it',
    withLogs(logs, async () => {
        const from = be.streams.length;
        const keeper = openSse(port, '/live/m');
        await keeper.head;
        const st = await be.stream(from, T);
        for (let i = 1; i <= 10; i++) st.send(`m${i}`);
        await waitEvents(keeper, 10, T);
        const m0 = await scrape(admin);
        /* Behind: 2 is older than the ring (6..10). The backend replays 3.. on a dedicated exchange; at 6 (held by
         * the ring) the client moves to the shared stream and gets 7..10 from the ring. */
        const behind = openSse(port, '/live/m', { headers: { 'last-event-id': '2' } });
        await behind.head;
        const own = await be.stream(from + 1, T);
        assert.equal(own.lastEventId, '2');
        for (let i = 3; i <= 6; i++) own.send(`m${i}`);
        await waitEvents(behind, 8, T);
        await waitFor(() => own.closed, T, 'the dedicated exchange closed after the merge');
        st.send('m11');
        await waitEvents(behind, 9, T);
        assert.deepEqual(ids(behind), range(3, 11));
        /* Ahead: 12 is not in the ring yet (this instance is behind the client). The backend has nothing after 12
         * yet; when the shared stream gets 12, the client goes on from 13, shared. */
        const ahead = openSse(port, '/live/m', { headers: { 'last-event-id': '12' } });
        await ahead.head;
        const own2 = await be.stream(from + 2, T);
        assert.equal(own2.lastEventId, '12');
        await settle();
        st.send('m12');
        await waitFor(() => own2.closed, T, 'the second dedicated exchange closed after the merge');
        st.send('m13');
        await waitEvents(ahead, 1, T);
        await sleep(100);
        assert.deepEqual(ids(ahead), [13]);
        const m1 = await scrape(admin);
        assert.equal(m1.get('ssegate_fanout_merges_total') - (m0.get('ssegate_fanout_merges_total') || 0), 2);
        assert.equal(be.streams.length, from + 3);
        for (const c of [keeper, behind, ahead]) c.close();
    }),
);

test(
    'lingerAfterLastSubscriber: the upstream outlives its last subscriber that long (a returning client reuses it), 0s closes it',
    withLogs(logs, async () => {
        const from = be.streams.length;
        const first = openSse(port, '/stay/x');
        await first.head;
        const st = await be.stream(from, T);
        st.send('s1');
        await waitEvents(first, 1, T);
        first.close();
        await settle();
        assert.equal(st.closed, false, 'the upstream closed within its linger');
        const back = openSse(port, '/stay/x', { headers: { 'last-event-id': '1' } });
        await back.head;
        st.send('s2');
        await waitEvents(back, 1, T);
        assert.deepEqual(ids(back), [2]);
        assert.equal(upstreams('/stay/x', from).length, 1, 'a client within the linger opened a new upstream');
        back.close();

        const g = openSse(port, '/gone/x');
        await g.head;
        await waitFor(() => upstreams('/gone/x', from).length === 1, T, 'the /gone upstream');
        g.close();
        await waitFor(() => upstreams('/gone/x', from)[0].closed, T, 'linger 0s: the upstream closed with its last subscriber');
    }),
);

test(
    'a shared request answered with something else than an event stream: every waiting client gets that answer',
    withLogs(logs, async () => {
        const other = await sseBackend({ contentType: 'application/json', delayHeaders: 300 });
        const p2 = await freePort();
        const gw2 = await startGateway({
            yaml: fanoutYaml({ port: p2, routes: [{ name: 'json', path: '/', backends: [{ service: '127.0.0.1', port: other.port }], policy: '{sharing: {enabled: true}}' }] }),
            args: ['--access-log', 'off', '--workers', '1'],
            waitPorts: [p2],
        });
        const get = () =>
            new Promise((resolve, reject) => {
                http.get({ host: '127.0.0.1', port: p2, path: '/j', agent: false }, res => {
                    let body = '';
                    res.setEncoding('utf8');
                    res.on('data', d => (body += d));
                    res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'], body, complete: res.complete }));
                }).on('error', reject);
            });
        const waiting = [get(), get(), get()];
        const st = await other.stream(0, T);
        st.sendRaw('{"a": 1}');
        st.end();
        const got = await Promise.all(waiting);
        for (const r of got) assert.deepEqual(r, { status: 200, type: 'application/json', body: '{"a": 1}', complete: true });
        assert.equal(other.streams.length, 1, 'the waiting clients did not share the one exchange');
        /* That answer is not kept: the next request asks the backend again. */
        const next = get();
        const st2 = await other.stream(1, T);
        st2.sendRaw('{"a": 2}');
        st2.end();
        assert.equal((await next).body, '{"a": 2}');
        await gw2.stop();
    }),
);

test(
    'a WebSocket upgrade on a shared route is a tunnel of its own, never a subscriber',
    withLogs(logs, async () => {
        const wb = await wsBackend();
        const p3 = await freePort();
        const gw3 = await startGateway({
            yaml: fanoutYaml({ port: p3, routes: [{ name: 'mixed', path: '/', backends: [{ service: '127.0.0.1', port: wb.port }], policy: '{sharing: {enabled: true}}' }] }),
            args: ['--access-log', 'off', '--workers', '1'],
            waitPorts: [p3],
        });
        const a = await wsConnect(`ws://127.0.0.1:${p3}/room`);
        const b = await wsConnect(`ws://127.0.0.1:${p3}/room`);
        a.send('from a');
        b.send('from b');
        assert.equal((await wsMessages(a, 1))[0].data.toString(), 'from a');
        assert.equal((await wsMessages(b, 1))[0].data.toString(), 'from b');
        assert.equal(wb.handshakes.length, 2, 'two WebSockets, two handshakes at the backend');
        a.close();
        b.close();
        await gw3.stop();
    }),
);

test(
    'access log: shared subscribers are logged shared=1 with how they were replayed',
    withLogs(logs, async () => {
        await waitFor(() => /shared=1 replay=ring/.test(fs.readFileSync(logFile, 'utf8')), 3000 * SLOW, 'a replay=ring log line');
        const text = fs.readFileSync(logFile, 'utf8');
        assert.match(text, /path=\/live\/a status=200 .*backend=shared events=3 shared=1 replay=- /);
        assert.match(text, /path=\/live\/r status=200 .*shared=1 replay=ring /);
    }),
);

test('RoutePolicy sse.heartbeatInterval still works, with a deprecation warning; SSEPolicy errors are FILE:LINE:COL', async () => {
    const p = await freePort();
    const base = fanoutYaml({ port: p, routes: [{ name: 'r', path: '/', backends: [{ service: '127.0.0.1', port: 9 }], heartbeat: '5s' }] });
    const r = await runGateway(['--check', '-c', writeTemp('dep.yaml', base)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr + r.stdout, /warning: RoutePolicy default\/r-policy: sse\.heartbeatInterval is deprecated; set heartbeatInterval in an SSEPolicy/);

    const bad = fanoutYaml({
        port: p,
        routes: [{ name: 'r', path: '/', backends: [{ service: '127.0.0.1', port: 9 }], policy: '{sharing: {enabled: true, sharing: 1}, replay: {onTooOld: maybe}}' }],
    });
    const b = await runGateway(['--check', '-c', writeTemp('bad.yaml', bad)]);
    assert.notEqual(b.code, 0);
    assert.match(b.stderr, /bad\.yaml:\d+:\d+: SSEPolicy sharing: unknown field "sharing"/);
    assert.match(b.stderr, /bad\.yaml:\d+:\d+: SSEPolicy replay\.onTooOld: "maybe"/);

    const nosec = fanoutYaml({
        port: p,
        routes: [{ name: 'r', path: '/', backends: [{ service: '127.0.0.1', port: 9 }], policy: '{sharing: {enabled: true}}', policySection: 'nope', ruleName: 'main' }],
    });
    const n = await runGateway(['--check', '-c', writeTemp('nosec.yaml', nosec)]);
    assert.notEqual(n.code, 0);
    assert.match(n.stderr, /SSEPolicy default\/r-sse: HTTPRoute default\/r has no rule named "nope"/);
});
