// signals.test.mjs: SIGTERM and SIGINT stop the gateway cleanly with exit code 0.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { echoBackend } from './lib/backends.mjs';
import { SLOW, freePort, gatewayYaml, setup, startGateway, withLogs } from './lib/harness.mjs';
import { request } from './lib/rawhttp.mjs';

setup();
let be;
before(async () => {
    be = await echoBackend();
});

for (const sig of ['SIGTERM', 'SIGINT']) {
    test(`${sig}: exits 0 promptly after serving`, async () => {
        const port = await freePort();
        const gw = await startGateway({
            yaml: gatewayYaml({ port, routes: [{ name: 'r', path: '/', backends: [{ name: '127.0.0.1', port: be.port }] }] }),
            args: ['--access-log', 'off', '--drain-timeout', '1s', '--workers', '2'],
            waitPorts: [port],
        });
        await withLogs([gw], async () => {
            const r = await request(port, { path: '/before-signal' });
            assert.equal(r.status, 200);
            const t0 = performance.now();
            const { code, signal } = await gw.stop(sig, 8000 * SLOW);
            const dt = performance.now() - t0;
            assert.equal(signal, null, `killed by ${signal} (did not exit on ${sig} in time)`);
            assert.equal(code, 0);
            assert.ok(dt < 3000 * SLOW, `took ${dt.toFixed(0)} ms to exit`);
            assert.doesNotMatch(gw.stderr, /AddressSanitizer|LeakSanitizer|runtime error:/);
        })();
    });
}
