// tls-threads.test.mjs: TLS handshakes run on their own threads (--tls-threads, default one per worker) so that a
// key exchange never holds up a worker loop's streams; with 0 they run on the loops. Either way every handshake
// completes and is counted (ssegate_tls_handshakes_total), and a stop with handshakes in flight is clean (the pool
// still holds some of them when the workers close their connections).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import { test } from 'node:test';
import { makeCert, secretYaml, tlsGatewayYaml } from '../h2probe/tlsconf.mjs';
import { echoBackend } from './lib/backends.mjs';
import { SLOW, freePort, setup, sleep, startGateway, waitFor, withLogs } from './lib/harness.mjs';
import { scrape } from './lib/prod-util.mjs';

setup();

function threadNames(pid) {
    return fs.readdirSync(`/proc/${pid}/task`).map(t => fs.readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim());
}

/* Nice values of the threads with this name (field 19 of /proc/PID/task/TID/stat; comm has no spaces here). */
function niceOf(pid, name) {
    return fs.readdirSync(`/proc/${pid}/task`)
        .filter(t => fs.readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim() === name)
        .map(t => Number(fs.readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8').split(' ')[18]));
}

function get(port, path, agent) {
    return new Promise((resolve, reject) => {
        const req = https.get({ host: '127.0.0.1', port, path, servername: 'a.test', rejectUnauthorized: false, agent, headers: { host: 'a.test' } }, res => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', d => (body += d));
            res.on('end', () => resolve({ status: res.statusCode, body }));
        });
        req.on('error', reject);
        req.setTimeout(10000 * SLOW, () => req.destroy(new Error('timeout')));
    });
}

let gw;
async function gateway(args) {
    const echo = await echoBackend();
    const port = await freePort();
    const admin = await freePort();
    const cert = makeCert('a.test');
    gw = await startGateway({
        yaml: tlsGatewayYaml({
            listeners: [{ name: 'https', port, hostname: 'a.test', certs: ['cert-a'] }],
            routes: [{ name: 'echo', path: '/', port: echo.port }],
            extra: [secretYaml('cert-a', cert)],
        }),
        args: ['--workers', '2', '--access-log', 'off', '--admin', `127.0.0.1:${admin}`, ...args],
        waitPorts: [port, admin],
    });
    return { port, admin };
}

for (const [args, pool] of [[[], 2], [['--tls-threads', '3'], 3], [['--tls-threads', '0'], 0]]) {
    test(`${args.join(' ') || 'default'}: ${pool} handshake threads, and 40 handshakes (10 at a time) all complete`,
        withLogs(() => [gw], async () => {
            const { port, admin } = await gateway(args);
            /* Each thread names itself as it starts, which can come after the ports listen (under ASan, it did). */
            await waitFor(() => {
                const n = threadNames(gw.child.pid);
                return n.filter(x => x === 'ssegate-tls').length === pool && n.includes('ssegate-w0') && n.includes('ssegate-w1');
            }, 5000 * SLOW, `${pool} ssegate-tls threads and two workers named`);
            const names = threadNames(gw.child.pid);
            assert.equal(names.filter(n => n === 'ssegate-tls').length, pool, names.join(','));
            assert.ok(names.includes('ssegate-w0') && names.includes('ssegate-w1'), names.join(','));
            /* Handshakes yield the CPU to the workers: nice +10 against the workers' 0. */
            /* Each thread lowers its own priority as it starts: wait for them. */
            await waitFor(() => niceOf(gw.child.pid, 'ssegate-tls').every(n => n === 10), 5000 * SLOW, 'nice +10');
            assert.deepEqual(niceOf(gw.child.pid, 'ssegate-tls'), Array(pool).fill(10));
            assert.deepEqual(niceOf(gw.child.pid, 'ssegate-w0'), [0]);
            /* The harness's readiness probe connected and left without a handshake: one failure, once counted. */
            const failed = async () => (await scrape(admin)).get('ssegate_tls_handshakes_total', { result: 'failed' });
            await waitFor(async () => (await failed()) === 1, 5000 * SLOW, 'the probe counted as a failed handshake');
            for (let round = 0; round < 4; round++) {
                /* A fresh agent per request: no session reuse, every request a full handshake. */
                const rs = await Promise.all(Array.from({ length: 10 }, (_, i) =>
                    get(port, `/hs/${round}/${i}`, new https.Agent({ keepAlive: false, maxCachedSessions: 0 }))));
                for (const r of rs) assert.equal(r.status, 200);
            }
            const m = await scrape(admin);
            assert.equal(m.get('ssegate_tls_handshakes_total', { result: 'ok' }), 40);
            assert.equal(m.get('ssegate_tls_handshakes_total', { result: 'failed' }), 1);
        }));
}

test('a stop with handshakes in flight exits cleanly', withLogs(() => [gw], async () => {
    const { port } = await gateway([]);
    const socks = [];
    for (let i = 0; i < 200; i++) {
        const s = tls.connect({ port, host: '127.0.0.1', servername: 'a.test', rejectUnauthorized: false });
        s.on('error', () => {});
        socks.push(s);
    }
    await sleep(20);
    const r = await gw.stop('SIGINT');
    for (const s of socks) s.destroy();
    assert.equal(r.code, 0, gw.logs());
    assert.doesNotMatch(gw.stderr, /AddressSanitizer|LeakSanitizer|runtime error/);
}));
