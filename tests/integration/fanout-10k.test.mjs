// fanout-10k.test.mjs: 10,000 subscribers on one shared SSE stream (an SSEPolicy with sharing on): each gets every
// event of a bounded run, ids in order, none twice; the backend sees one stream for the instance (its WORKERS workers
// share one upstream), and the gateway's metrics (ssegate_fanout_subscribers, ssegate_fanout_streams) count the same.
// The subscribers are bench/fanload (C, source addresses over 127.0.0.2-250), the backend bench/fanorigin.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BIN, SLOW, freePort, gatewayYaml, run, runGateway, setup, sleep, startGateway, track, withLogs, writeTemp } from './lib/harness.mjs';
import { scrape } from './lib/prod-util.mjs';

setup();
const N = Number(process.env.SG_IT_FAN_SUBS || 10000);
const EVENTS = 20;
const RATE = 10;
const WORKERS = 2;
const BUILD = process.env.SG_BUILD_DIR || path.join(path.dirname(BIN), 'build');
const FANLOAD = path.join(BUILD, 'bench/fanload');
const FANORIGIN = path.join(BUILD, 'bench/fanorigin');

function hardLimit() {
    return Number(execFileSync('bash', ['-c', 'ulimit -Hn']).toString().trim()) || 0;
}

function yamlFor(port, originPort) {
    return gatewayYaml({
        port,
        routes: [{ name: 'board', path: '/board', backends: [{ name: '127.0.0.1', port: originPort }] }],
        extra: `apiVersion: ssegate.io/v1alpha1
kind: SSEPolicy
metadata: {name: board-sharing}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: board}
  default:
    sharing: {enabled: true}
`,
    });
}

/* Why the test cannot run here, or false. */
async function why() {
    for (const f of [FANLOAD, FANORIGIN]) if (!fs.existsSync(f)) return `${f} not built (make)`;
    const need = N + 200;
    const hard = hardLimit();
    if (hard < need) return `the descriptor hard limit is ${hard}; ${N} subscribers need ${need} in the client and in ssegate`;
    const r = await runGateway(['--check', '-c', writeTemp('check.yaml', yamlFor(1, 2))]);
    if (r.code !== 0) return `this build refuses the SSEPolicy kind (no shared streams): ${r.stderr.trim().split('\n')[0]}`;
    return false;
}

const skip = await why();
let gw;
test(
    `${N} subscribers on one shared stream: every subscriber gets events 1..${EVENTS} once, in order; one backend stream for the instance`,
    { skip, timeout: 120000 * SLOW },
    withLogs(() => [gw], async () => {
        const dir = fs.mkdtempSync(path.join(path.dirname(writeTemp('x', '')), 'fan10k-'));
        const stats = path.join(dir, 'origin.stats');
        const originPort = await freePort();
        const origin = spawn(FANORIGIN, ['--port', String(originPort), '--events', String(EVENTS), '--rate', String(RATE),
            '--stats', stats], { stdio: ['ignore', 'ignore', 'pipe'] });
        let originErr = '';
        origin.stderr.on('data', d => (originErr += d));
        track(() => origin.kill('SIGKILL'));
        const t0 = Date.now();
        while (!fs.existsSync(stats)) {
            if (Date.now() - t0 > 5000 * SLOW) throw new Error(`fanorigin did not start: ${originErr}`);
            await sleep(20);
        }

        const port = await freePort();
        const admin = await freePort();
        gw = await startGateway({
            yaml: yamlFor(port, originPort),
            args: ['--access-log', 'off', '--workers', String(WORKERS), '--admin', `127.0.0.1:${admin}`],
            waitPorts: [port, admin],
        });
        /* The gateway's own view while the run goes on: subscribers and shared streams, at their highest. */
        const seen = { subscribers: 0, streams: 0, followers: 0, busiest: 0, scrapes: 0 };
        let polling = true;
        const poller = (async () => {
            while (polling) {
                try {
                    const m = await scrape(admin);
                    seen.subscribers = Math.max(seen.subscribers, m.get('ssegate_fanout_subscribers') || 0);
                    seen.streams = Math.max(seen.streams, m.get('ssegate_fanout_streams') || 0);
                    seen.followers = Math.max(seen.followers, m.get('ssegate_fanout_follower_streams') || 0);
                    for (let i = 0; i < WORKERS; i++)
                        seen.busiest = Math.max(seen.busiest, m.get('ssegate_fanout_worker_subscribers', { worker: String(i) }) || 0);
                    seen.scrapes++;
                } catch {
                    /* a scrape that times out on a busy machine is only a missed sample */
                }
                await sleep(200);
            }
        })();

        /* fanload subscribes N times, starts the origin (SIGUSR1) once all are in, and checks every id of every
         * subscriber; it exits 0 only if each got 1..EVENTS exactly once, in order. */
        const r = await run('bash', ['-c', 'ulimit -n "$(ulimit -Hn)" && exec "$@"', 'fanload', FANLOAD, '--port', String(port),
            '--path', '/board/scores', '--subs', String(N), '--events', String(EVENTS), '--threads', '2',
            '--src-first', '2', '--src-last', '250', '--start-pid', String(origin.pid), '--settle', '2',
            '--drain', String(5 * SLOW), '--connect-timeout', String(40 * SLOW), '--label', 'fanout-10k'],
        { timeout: 100000 * SLOW });
        polling = false;
        await poller;
        const line = r.stdout.split('\n').find(l => l.startsWith('RESULT ')) || '';
        const res = Object.fromEntries(line.split(' ').slice(1).map(kv => kv.split('=')));
        const st = Object.fromEntries(fs.readFileSync(stats, 'utf8').trim().split(' ').map(kv => kv.split('=')));
        const ctxt = `fanload: ${line || r.stderr.slice(-2000)}\norigin: ${JSON.stringify(st)}`;

        assert.equal(Number(res.connected), N, `subscribed: ${ctxt}`);
        assert.equal(Number(st.published), EVENTS, `the origin published ${st.published} events: ${ctxt}`);
        assert.equal(Number(res.complete_subs), N, `subscribers with every event: ${ctxt}`);
        assert.equal(Number(res.gaps), 0, `gaps: ${ctxt}`);
        assert.equal(Number(res.dups), 0, `duplicates: ${ctxt}`);
        assert.equal(Number(res.closed), 0, `streams closed under way: ${ctxt}`);
        assert.equal(Number(res.deliveries), N * EVENTS, `deliveries: ${ctxt}`);
        assert.equal(r.code, 0, `fanload exit ${r.code}: ${ctxt}`);
        /* The backend load: one upstream stream for the instance, however many subscribers on however many workers. */
        assert.equal(Number(st.max_live), 1, `backend streams open at most: ${st.max_live}; ${ctxt}`);
        assert.equal(Number(st.accepted), 1, `backend connections accepted: ${st.accepted}; ${ctxt}`);
        assert.equal(Number(st.requests), 1, `backend requests: ${st.requests}; ${ctxt}`);
        assert.ok(gw.running(), 'ssegate exited');
        /* ... and the gateway counted them: N subscribers on one shared stream, fed to both workers. */
        assert.ok(seen.scrapes > 0, 'no /metrics scrape succeeded during the run');
        assert.equal(seen.subscribers, N, `ssegate_fanout_subscribers at most ${seen.subscribers}`);
        assert.equal(seen.streams, 1, `ssegate_fanout_streams at most ${seen.streams}`);
        assert.equal(seen.followers, WORKERS - 1, `ssegate_fanout_follower_streams at most ${seen.followers}`);
        assert.ok(seen.busiest < N, `one worker held every subscriber (${seen.busiest}): the run did not span the workers`);
    }),
);
