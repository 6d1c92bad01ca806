// h2-upstream-ping.test.mjs: PING liveness of HTTP/2 backend sessions. A backend that stops reading and answering
// without closing (here: a TCP relay in front of it that freezes the connections it holds) is found by the session's
// PING (--h2-upstream-ping, --h2-upstream-ping-timeout): the session is closed, an SSE stream on it ends cleanly at an
// event boundary, a request caught on it gets an answer (504) instead of hanging, and new streams go to a new
// connection that works. Waits are bounded; nothing asserts a duration.
import assert from 'node:assert/strict';
import net from 'node:net';
import { before, test } from 'node:test';
import { h2Backend, h2Service } from './lib/h2backends.mjs';
import { SLOW, freePort, gatewayYaml, setup, sleep, startGateway, track, withLogs } from './lib/harness.mjs';
import { httpGet, scrape } from './lib/prod-util.mjs';
import { openSse, waitEvents } from './lib/sseclient.mjs';

setup();

/* A TCP relay to `port` whose live connections can be frozen: neither side is read any more, nothing is closed. New
 * connections relay normally. */
async function freezableRelay(port) {
    const pairs = new Set();
    const st = { accepted: 0, frozen: 0 };
    const server = net.createServer(c => {
        st.accepted++;
        const u = net.connect(port, '127.0.0.1');
        const pair = { c, u };
        pairs.add(pair);
        const drop = () => {
            pairs.delete(pair);
            c.destroy();
            u.destroy();
        };
        c.on('error', drop);
        u.on('error', drop);
        c.on('close', drop);
        u.on('close', drop);
        c.pipe(u);
        u.pipe(c);
    });
    await new Promise(r => server.listen(0, '127.0.0.1', r));
    const close = () =>
        new Promise(r => {
            for (const p of pairs) {
                p.c.destroy();
                p.u.destroy();
            }
            server.close(() => r());
        });
    track(close);
    return {
        port: server.address().port,
        st,
        pairs,
        freeze() {
            for (const p of pairs) {
                p.c.unpipe(p.u);
                p.u.unpipe(p.c);
                p.c.pause();
                p.u.pause();
                p.frozen = true;
                st.frozen++;
            }
        },
    };
}

const get = (p, path) => httpGet(p, path, { ms: 15000 * SLOW });
const metric = async (admin, name) => (await scrape(admin)).get(name);

let gw, port, admin, relay;

before(async () => {
    const be = await h2Backend();
    relay = await freezableRelay(be.port);
    [port, admin] = await Promise.all([freePort(), freePort()]);
    gw = await startGateway({
        yaml: gatewayYaml({
            port,
            routes: [{ name: 'main', path: '/', backends: [{ name: 'h2be', port: 8080 }] }],
            extra: h2Service('h2be', relay.port),
        }),
        args: ['--admin', `127.0.0.1:${admin}`, '--workers', '1', '--h2-upstream-ping', '200ms',
            '--h2-upstream-ping-timeout', `${2000 * SLOW}ms`],
        waitPorts: [port],
    });
});

test('a session that answers its PINGs stays: requests reuse it', withLogs(() => [gw], async () => {
    assert.equal((await get(port, '/a')).status, 200);
    const accepted = relay.st.accepted;
    /* Several PING rounds go by (the backend answers each); the session is still the one in use. */
    const t0 = await metric(admin, 'ssegate_upstream_h2_ping_timeouts_total');
    await sleep(1000);
    assert.equal((await get(port, '/b')).status, 200);
    assert.equal(relay.st.accepted, accepted, 'no new connection');
    assert.equal(await metric(admin, 'ssegate_upstream_h2_ping_timeouts_total'), t0);
}));

test('a backend that stops reading is found by PING: its SSE stream ends cleanly, new streams go to a new connection',
    withLogs(() => [gw], async () => {
        const t0 = await metric(admin, 'ssegate_upstream_h2_ping_timeouts_total');
        const sse = openSse(port, '/sse/live?n=2');
        await waitEvents(sse, 2, 5000 * SLOW);
        const accepted = relay.st.accepted;
        relay.freeze();
        /* Requests keep coming while the backend is stuck, more often than the PING interval: they must not put the
         * PING's deadline off. The first is caught on the frozen session and answered (504) once the PING fails, not
         * left hanging; later ones may find the new session. */
        const caught = [];
        for (let i = 0; i < 100 * SLOW && !sse.ended; i++) {
            caught.push(get(port, `/caught${i}`));
            await sleep(100);
        }
        assert.ok(sse.ended, 'the stuck session was found while requests kept coming');
        const answers = await Promise.all(caught);
        assert.equal(answers[0].status, 504, answers[0].body);
        assert.match(answers[0].body, /the upstream stopped answering/);
        for (const a of answers) assert.ok(a.status === 504 || a.status === 200, `${a.status} ${a.body}`);
        const d = await sse.done;
        assert.equal(d.complete, true, 'the SSE stream ended with its terminator, not cut');
        assert.ok(sse.text.endsWith('\n\n'), 'at an event boundary');
        assert.equal(sse.events.length, 2);
        assert.ok((await metric(admin, 'ssegate_upstream_h2_ping_timeouts_total')) > t0);
        const open = await metric(admin, 'ssegate_upstream_h2_sessions');
        assert.ok(open <= 1, `${open} sessions: the frozen one is closed (a new one may be open)`);
        /* A new request opens a new session through the relay, which works. */
        const r = await get(port, '/after');
        assert.equal(r.status, 200);
        assert.equal(JSON.parse(r.body).path, '/after');
        assert.ok(relay.st.accepted > accepted, 'on a new connection');
    }));
