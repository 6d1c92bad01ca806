// many-streams.test.mjs: 1,000 concurrent SSE streams through the gateway for 10 s, every event in order.
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { test } from 'node:test';
import { SLOW, freePort, gatewayYaml, setup, sleep, startGateway, track, withLogs } from './lib/harness.mjs';
import { openSse } from './lib/sseclient.mjs';

setup();
const N = Number(process.env.SG_IT_STREAMS || 1000);
const SECONDS = 10;
const TICK_MS = 200;

function rpc(child, msg) {
    return new Promise(resolve => {
        child.once('message', resolve);
        child.send(msg);
    });
}

let gw;
test(
    `${N} concurrent SSE streams for ${SECONDS} s: each gets every event, ids contiguous`,
    { timeout: 120000 * SLOW },
    withLogs(() => [gw], async () => {
        /* The origin runs in its own process so 1,000 + 1,000 sockets do not share one event loop. */
        const origin = fork(new URL('./lib/fanout-backend.mjs', import.meta.url), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        track(() => origin.kill('SIGKILL'));
        const { port: originPort } = await new Promise(r => origin.once('message', r));
        const port = await freePort();
        gw = await startGateway({
            yaml: gatewayYaml({ port, routes: [{ name: 'fan', path: '/fan', backends: [{ name: '127.0.0.1', port: originPort }] }] }),
            args: ['--access-log', 'off', '--workers', '2'],
            waitPorts: [port],
        });

        /* Open in batches; spread source addresses over 127.0.0.2-51. */
        const t0 = performance.now();
        const clients = [];
        for (let i = 0; i < N; i += 100) {
            const batch = [];
            for (let j = i; j < Math.min(N, i + 100); j++) {
                const h = openSse(port, `/fan/stream?c=${j}`, { localAddress: `127.0.0.${2 + (j % 50)}` });
                h.c = j;
                batch.push(h);
            }
            await Promise.all(batch.map(h => Promise.race([h.head, sleep(15000 * SLOW).then(() => null)])));
            clients.push(...batch);
        }
        const failed = clients.filter(h => h.status !== 200);
        assert.equal(failed.length, 0, `${failed.length} streams without a 200 head: ${failed.slice(0, 3).map(h => h.error?.message || h.status)}`);
        const setupMs = performance.now() - t0;

        await rpc(origin, { cmd: 'start', interval: TICK_MS });
        await sleep(SECONDS * 1000);
        const { sent, open, total } = await rpc(origin, { cmd: 'stop' });
        assert.equal(total, N, `origin saw ${total} streams`);
        assert.equal(open, N, `origin has ${open} of ${N} streams open after ${SECONDS} s`);

        /* Let the last tick drain through the gateway. */
        const deadline = Date.now() + 5000 * SLOW;
        const behind = () => clients.filter(h => h.events.length < sent[h.c]);
        while (behind().length && Date.now() < deadline) await sleep(50);

        const problems = [];
        for (const h of clients) {
            const want = sent[h.c];
            const ids = h.events.map(e => Number(e.id));
            if (h.ended) problems.push(`c=${h.c}: stream ended`);
            if (ids.length !== want) problems.push(`c=${h.c}: ${ids.length} of ${want} events`);
            for (let k = 0; k < ids.length; k++) {
                if (ids[k] !== k + 1) {
                    problems.push(`c=${h.c}: id ${ids[k]} at position ${k + 1}`);
                    break;
                }
            }
        }
        const minSent = Math.min(...Object.values(sent));
        for (const h of clients) h.close();
        assert.ok(minSent >= (SECONDS * 1000) / TICK_MS / 2, `origin sent only ${minSent} events on some stream`);
        assert.deepEqual(problems.slice(0, 10), [], `${problems.length} problems (setup ${setupMs.toFixed(0)} ms)`);
        await gw.stop('SIGKILL');
    }),
);
