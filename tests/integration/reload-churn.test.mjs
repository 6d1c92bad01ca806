// reload-churn.test.mjs: reloads through many endpoint sets (pods coming and going) leave the health table bounded:
// entries of endpoints that left the config are freed once no generation in use names them, while a live stream keeps
// the entries of its own generation; RSS stays flat across the reloads.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { test } from 'node:test';
import { SLOW, freePort, setup, track, withLogs, startGateway } from './lib/harness.mjs';
import { httpGet, prodYaml, rssKiB, scrape } from './lib/prod-util.mjs';

setup();

const RELOADS = 800;
const CHURN_PORTS = [20001, 20002, 20003, 20004];

/* An SSE backend that sends one event and keeps the stream open. */
async function sseBackend() {
    const res = new Set();
    const server = http.createServer((req, r) => {
        r.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
        r.write('data: hello\n\n');
        res.add(r);
        r.on('close', () => res.delete(r));
    });
    await new Promise(r => server.listen(0, '127.0.0.1', r));
    track(
        () =>
            new Promise(r => {
                for (const x of res) x.destroy();
                server.closeAllConnections?.();
                server.close(() => r());
            }),
    );
    return server.address().port;
}

function config(port, live, i) {
    /* 4 endpoints at 127.1.x.y: a new address set for every reload; nothing listens there (connects are refused). */
    return prodYaml({
        port,
        routes: [
            { name: 'live', path: '/sse', backends: [{ service: 'live' }] },
            { name: 'churn', path: '/churn', backends: [{ service: 'churn' }] },
        ],
        services: [
            { name: 'live', endpoints: [live] },
            { name: 'churn', host: `127.1.${(i >> 8) & 255}.${(i & 255) || 1}`, endpoints: CHURN_PORTS },
        ],
    });
}

/* Opens an SSE stream and resolves once its first event arrived; returns a closer. */
function openStream(port) {
    return new Promise((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path: '/sse/a', agent: false }, res => {
            res.setEncoding('utf8');
            res.on('data', d => d.includes('hello') && resolve(() => req.destroy()));
            res.on('error', () => {});
        });
        req.on('error', reject);
        track(() => req.destroy());
    });
}

/* Until /metrics says generation n is in force. */
async function waitGeneration(admin, n, ms) {
    const deadline = Date.now() + ms;
    for (;;) {
        const g = (await scrape(admin)).get('ssegate_config_generation');
        if (g >= n) return;
        if (Date.now() > deadline) throw new Error(`generation ${n} not in force after ${ms} ms (at ${g})`);
        await new Promise(r => setTimeout(r, 2));
    }
}

let gw;
test(
    'reload churn: the health table stays bounded, entries of a live stream\'s generation survive, RSS stays flat',
    { timeout: 120000 * SLOW },
    withLogs(() => [gw], async () => {
        const live = await sseBackend();
        const port = await freePort();
        const admin = await freePort();
        gw = await startGateway({
            yaml: config(port, live, 0),
            args: ['--access-log', 'off', '--workers', '2', '--admin', `127.0.0.1:${admin}`],
            waitPorts: [port, admin],
        });
        /* A stream that starts on generation 1 and stays open through every reload. */
        const close = await openStream(port);
        let rssAt300 = 0;
        for (let i = 1; i <= RELOADS; i++) {
            fs.writeFileSync(gw.config + '.tmp', config(port, live, i));
            fs.renameSync(gw.config + '.tmp', gw.config);
            gw.child.kill('SIGHUP');
            /* The reload is acknowledged by the generation gauge: the "config reloaded" log line is rate-limited
             * (10 per 10 s from one place), so after the first few it no longer appears for each reload. */
            await waitGeneration(admin, i + 1, 5000 * SLOW);
            /* now and then a request to the churning endpoints: refused connects go through the upstream pools */
            if (i % 100 === 0) assert.equal((await httpGet(port, '/churn/x')).status, 502);
            if (i === 300) rssAt300 = rssKiB(gw.child.pid);
        }
        const m = await scrape(admin);
        const entries = m.get('ssegate_health_entries');
        /* the config's 1 + 4, and the 4 that generation 1 names while the stream holds it */
        assert.ok(entries <= 9, `health entries after ${RELOADS} reloads: ${entries}`);
        const pruned = m.get('ssegate_health_entries_pruned_total');
        assert.ok(pruned >= 4 * (RELOADS - 10), `entries pruned: ${pruned}`);
        const lines = (m.text.match(/^ssegate_endpoint_healthy\{/gm) || []).length;
        assert.ok(lines <= 9, `${lines} endpoint series in /metrics`);
        /* The stream's generation kept its entries: its endpoint is still listed. */
        assert.ok(m.text.includes(`ssegate_endpoint_healthy{endpoint="127.0.0.1:${live}"}`), 'the live endpoint vanished');
        if (SLOW === 1) {
            /* ASan keeps freed memory in quarantine, so RSS means something only in the plain build. Before the
             * pruning, the table grew by about 1 KiB per reload (bench/reload-churn.mjs: 1,004 KiB per 1,000). */
            const growth = rssKiB(gw.child.pid) - rssAt300;
            assert.ok(growth < 256, `RSS grew ${growth} KiB over ${RELOADS - 300} reloads`);
        }
        /* Once the stream ends, generation 1 is released and its churn entries go too. */
        close();
        const deadline = Date.now() + 5000 * SLOW;
        let after;
        do {
            await new Promise(r => setTimeout(r, 100));
            after = (await scrape(admin)).get('ssegate_health_entries');
        } while (after > 5 && Date.now() < deadline);
        assert.equal(after, 5, 'entries of a released generation were not pruned');
    }),
);
