// websocket-drain.test.mjs: open WebSockets across a reload (SIGHUP: they keep running on their backend) and a drain
// (SIGTERM: each is closed with 1001 Going Away to both sides, at frame boundaries while messages flow both ways,
// at moments spread over the drain's last part).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { SLOW, freePort, gatewayYaml, setup, sleep, startGateway, withLogs } from './lib/harness.mjs';
import { scrape, waitLog } from './lib/prod-util.mjs';
import { wsBackend, wsConnect, wsMessages } from './lib/wsutil.mjs';

setup();
const N = 20;
const WINDOW = 3000;
const SPREAD = 2000;

/* Message i of a stream: its length varies, so that reads end inside frames; every byte says which it is. */
const msg = (i, tag) => Buffer.alloc(5000 + ((i * 7919) % 60000), (i + tag) & 255);

let gw;
test(`ws drain: ${N} WebSockets with messages both ways: a reload keeps them, SIGTERM closes each with 1001 to both sides`,
    { timeout: 60000 * SLOW }, withLogs(() => [gw], async () => {
        /* Each backend socket streams messages to its client and counts what it gets back. */
        const b = await wsBackend({
            onConnection: ws => {
                ws.got = [];
                ws.on('message', d => ws.got.push(d));
                let i = 0;
                ws.timer = setInterval(() => {
                    if (ws.readyState !== 1) return clearInterval(ws.timer);
                    ws.send(msg(i++, 1));
                }, 15);
            },
        });
        const b2 = await wsBackend();
        const port = await freePort();
        const admin = await freePort();
        const yaml = be => gatewayYaml({ port, routes: [{ name: 'ws', path: '/', backends: [{ name: '127.0.0.1', port: be }] }] });
        gw = await startGateway({
            yaml: yaml(b.port),
            args: ['--workers', '2', '--admin', `127.0.0.1:${admin}`, '--drain-timeout', `${WINDOW}ms`, '--drain-spread', `${SPREAD}ms`,
                '--access-log', 'off'],
            waitPorts: [port, admin],
        });
        const clients = [];
        for (let k = 0; k < N; k++) {
            const ws = await wsConnect(`ws://127.0.0.1:${port}/room/${k}`);
            ws.sent = 0;
            ws.timer = setInterval(() => {
                if (ws.readyState !== 1) return clearInterval(ws.timer);
                ws.send(msg(ws.sent++, 2));
            }, 15);
            clients.push(ws);
        }
        await sleep(300);
        for (const ws of clients) assert.ok(ws.messages.length >= 3, 'messages do not flow before the reload');

        /* Reload to a config whose route goes to another backend: open WebSockets stay on theirs. */
        const mark = gw.stderr.length;
        fs.writeFileSync(gw.config, yaml(b2.port));
        gw.child.kill('SIGHUP');
        await waitLog(gw, /config reloaded \(generation 2\)/, 3000 * SLOW, mark);
        const counts = clients.map(ws => ws.messages.length);
        await sleep(300);
        for (const [k, ws] of clients.entries()) {
            assert.equal(ws.readyState, 1, `WebSocket ${k} closed by the reload`);
            assert.ok(ws.messages.length > counts[k], `WebSocket ${k} stopped getting messages after the reload`);
        }
        const fresh = await wsConnect(`ws://127.0.0.1:${port}/after-reload`);
        fresh.send('new backend');
        assert.equal((await wsMessages(fresh, 1)).at(0).data.toString(), 'new backend');
        assert.equal(b2.handshakes.length, 1, 'a new WebSocket after the reload did not follow the new route');
        fresh.close();
        await fresh.closeInfo;
        assert.equal((await scrape(admin)).get('ssegate_websockets_active'), N);

        /* Drain. */
        const t0 = performance.now();
        const closedAt = clients.map(() => null);
        clients.forEach((ws, k) => ws.closeInfo.then(() => (closedAt[k] = performance.now() - t0)));
        gw.stopping = true;
        gw.child.kill('SIGTERM');
        await sleep(WINDOW - SPREAD - 300);
        for (const [k, ws] of clients.entries()) assert.equal(ws.readyState, 1, `WebSocket ${k} closed before the drain's spread`);
        const exit = await Promise.race([gw.exited, sleep(WINDOW + 5000 * SLOW).then(() => null)]);
        assert.ok(exit, 'gateway still running well after the drain window');
        assert.equal(exit.code, 0);
        const infos = await Promise.all(clients.map(ws => ws.closeInfo));
        const srvInfos = await Promise.all(b.sockets.map(s => s.closeInfo));
        for (const [k, c] of infos.entries()) assert.deepEqual(c, { code: 1001, reason: 'going away' }, `WebSocket ${k}: the client got ${JSON.stringify(c)}`);
        for (const [k, c] of srvInfos.entries()) assert.equal(c.code, 1001, `backend socket ${k} got ${JSON.stringify(c)}`);
        /* Every message that arrived is whole, each way (a close frame put inside a frame would break the framing:
         * ws reports 1002 or 1006, never 1001). */
        for (const [k, ws] of clients.entries()) {
            assert.ok(ws.messages.length > counts[k]);
            ws.messages.forEach((m, i) => assert.ok(m.data.equals(msg(i, 1)), `WebSocket ${k}: message ${i} damaged`));
        }
        for (const s of b.sockets) s.got.forEach((m, i) => assert.ok(m.equals(msg(i, 2)), `backend got a damaged message ${i}`));
        const times = closedAt.filter(t => t !== null).sort((x, y) => x - y);
        assert.equal(times.length, N);
        assert.ok(times[0] >= WINDOW - SPREAD - 100, `first close ${times[0].toFixed(0)} ms after SIGTERM, before the spread`);
        assert.ok(times.at(-1) - times[0] >= SPREAD / 4, `closes span only ${(times.at(-1) - times[0]).toFixed(0)} ms of a ${SPREAD} ms spread`);
        for (const s of b.sockets) clearInterval(s.timer);
    }));
