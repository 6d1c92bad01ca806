// hostile-fd.test.mjs: issue 11, items 3 and 5. At its descriptor limit the gateway degrades instead of
// spinning (bounded log lines, /healthz answers, it serves again once connections go), and input quoted in a
// config error or an access-log line cannot split the line or carry raw control or non-UTF-8 bytes.
// Bounds only (line counts, statuses, counters); no time is asserted.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import { test } from 'node:test';
import { echoBackend } from './lib/backends.mjs';
import { SLOW, freePort, gatewayYaml, runGateway, setup, sleep, startGateway, waitFor, withLogs, writeTemp } from './lib/harness.mjs';
import { httpGet, scrape } from './lib/prod-util.mjs';
import { request } from './lib/rawhttp.mjs';

setup();

const NOFILE = 128;
const HOLD = 260; /* connections held open: twice what the gateway can have */

/* Opens one idle connection from 127.0.0.(2 + i % 200); resolves with the socket once connected (or failed). */
function openIdle(port, i) {
    return new Promise(resolve => {
        const s = net.connect({ port, host: '127.0.0.1', localAddress: `127.0.0.${2 + (i % 200)}` });
        s.on('error', () => {});
        s.once('connect', () => resolve(s));
        s.once('error', () => resolve(s));
    });
}

async function status(port, path) {
    try {
        return (await httpGet(port, path, { ms: 3000 * SLOW })).status;
    } catch {
        return 0;
    }
}

test(
    'at the descriptor limit: /healthz answers, the error log stays bounded, and serving resumes once connections go',
    async () => {
        const be = await echoBackend();
        const port = await freePort();
        const admin = await freePort();
        let gw;
        await withLogs(() => [gw], async () => {
            gw = await startGateway({
                yaml: gatewayYaml({ port, routes: [{ name: 'echo', path: '/', backends: [{ name: '127.0.0.1', port: be.port }] }] }),
                args: ['--workers', '1', '--admin', `127.0.0.1:${admin}`, '--access-log', 'off', '--header-timeout', '5m'],
                waitPorts: [port, admin],
                nofile: NOFILE,
            });
            assert.equal(await status(port, '/before'), 200);
            const held = [];
            try {
                for (let i = 0; i < HOLD; i += 20) {
                    const batch = [];
                    for (let k = i; k < Math.min(HOLD, i + 20); k++) batch.push(openIdle(port, k));
                    held.push(...(await Promise.all(batch)));
                }
                /* The worker ran out of descriptors. */
                await waitFor(() => /Too many open files/.test(gw.stderr), 10000 * SLOW, 'an accept failing with EMFILE');
                const mark = gw.stderr.length;
                /* Stay at the limit through several failed accepts, read through the admin listener (itself at the
                 * limit). Each failure pauses the listener, so the counter climbs one by one as it is polled; a
                 * listener left in epoll would fail thousands of times between two polls. */
                let failed = 0;
                await waitFor(async () => {
                    failed = (await scrape(admin)).get('ssegate_accept_fd_limit_total', { listener: 'traffic' });
                    return failed >= 5;
                }, 20000 * SLOW, 'five failed accepts (five pauses)');
                assert.ok(failed <= 50, `${failed} failed accepts at the first poll past 5: the listener spins`);
                /* The lifeline answers every time while the limit is hit. */
                const probes = [];
                for (let i = 0; i < 20; i++) probes.push(await status(admin, '/healthz'));
                assert.deepEqual(probes, Array(20).fill(200), `/healthz at the fd limit: ${probes.join(',')}`);
                const m = await scrape(admin);
                assert.ok(m.get('ssegate_admin_reserve_accepts_total') >= 1, 'no probe needed the reserve: the limit was not hit');
                /* Bounded: each call site writes at most 10 lines per 10 s; before, this was ~130,000 lines/s. */
                const lines = gw.stderr.slice(mark).split('\n').filter(Boolean);
                const acceptLines = lines.filter(l => /accept on/.test(l));
                assert.ok(acceptLines.length <= 11, `${acceptLines.length} accept lines:\n${lines.slice(0, 30).join('\n')}`);
                assert.ok(lines.length <= 40, `${lines.length} error-log lines at the fd limit`);
                assert.ok(gw.running(), 'the gateway exited at its fd limit');
            } finally {
                for (const s of held) s.destroy();
            }
            /* Descriptors free again: the paused listener resumes and requests are served. */
            await waitFor(async () => (await status(port, '/after')) === 200, 10000 * SLOW, 'a request served after release');
            assert.equal(await status(admin, '/healthz'), 200);
        })();
        be.close?.();
    },
);

test('a config value holding a newline and an escape byte gives exactly one escaped FILE:LINE:COL line', async () => {
    const port = await freePort();
    const yaml = gatewayYaml({
        port,
        routes: [{ name: 'r', path: '/', backends: [{ name: '127.0.0.1', port: 9 }], timeout: '"5s\\nforged.yaml:1:1: fake \\e[31m"' }],
    });
    const f = writeTemp('esc.yaml', yaml);
    const r = await runGateway(['--check', '-c', f]);
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stderr.split('\n').filter(Boolean);
    assert.equal(lines.length, 1, `expected one line:\n${r.stderr}`);
    assert.match(lines[0], /^[^:]+esc\.yaml:\d+:\d+: .*invalid duration "5s\\nforged\.yaml:1:1: fake \\x1b\[31m"/);
    assert.doesNotMatch(r.stderr, /\x1b/);
    assert.doesNotMatch(r.stderr, /^forged/m);
});

test('client bytes reach the access log escaped: X-Request-Id with spaces, quotes, tabs and bytes that are not UTF-8', async () => {
    const be = await echoBackend();
    const port = await freePort();
    const logPath = writeTemp('access.log', '');
    let gw;
    await withLogs(() => [gw], async () => {
        gw = await startGateway({
            yaml: gatewayYaml({ port, routes: [{ name: 'echo', path: '/', backends: [{ name: '127.0.0.1', port: be.port }] }] }),
            args: ['--access-log', logPath],
            waitPorts: [port],
        });
        /* HTTP/1.1 field values may carry SP, HTAB and obs-text (0x80-0xff), so the client's request id can. */
        const rid = 'mark1 status=999\t"q"\\\u00ff\u00fe';
        const r = await request(port, { path: '/esc', headers: { 'X-Request-Id': rid } });
        assert.equal(r.status, 200);
        const buf = await waitFor(() => {
            const b = fs.readFileSync(logPath);
            return b.includes('mark1') ? b : null;
        }, 5000 * SLOW, 'the access line');
        for (const byte of buf) assert.ok(byte === 0x0a || (byte >= 0x20 && byte < 0x7f), `raw byte 0x${byte.toString(16)} in the access log`);
        const lines = buf.toString('utf8').split('\n').filter(l => l.includes('mark1'));
        assert.equal(lines.length, 1);
        assert.match(lines[0], / rid=mark1\\x20status=999\\t\\x22q\\x22\\x5c\\xff\\xfe$/);
        /* The forged field did not become a field. */
        assert.match(lines[0], / status=200 /);
        assert.equal(lines[0].match(/ status=/g).length, 1);

        /* HTTP/2: nghttp2 lets obs-text through in :path; it reaches the log escaped, printable UTF-8 does not. */
        const client = http2.connect(`http://127.0.0.1:${port}`);
        client.on('error', () => {});
        try {
            const st = await new Promise((resolve, reject) => {
                const req = client.request({ ':path': Buffer.from('/h2mark/caf\u00e9/\u00ff', 'latin1').toString('latin1') });
                req.on('response', h => resolve(h[':status']));
                req.on('error', reject);
                req.resume();
                req.end();
            });
            assert.ok(st > 0);
            const b2 = await waitFor(() => {
                const b = fs.readFileSync(logPath);
                return b.includes('h2mark') ? b : null;
            }, 5000 * SLOW, 'the h2 access line');
            for (const byte of b2) assert.ok(byte === 0x0a || (byte >= 0x20 && byte < 0x7f) || byte >= 0x80, 'control byte');
            const l2 = b2.toString('latin1').split('\n').find(l => l.includes('h2mark'));
            assert.match(l2, / path=\/h2mark\/caf\\xe9\/\\xff /);
        } finally {
            client.close();
        }
    })();
    be.close?.();
});
