// gatewayapi.test.mjs: every Gateway API conformance case of fixtures/gatewayapi-cases.json through the real binary, HTTP/1.1 and h2c.
/*
 * The fixture is a converted copy of ../shared/conformance/gatewayapi-cases.jsonl (regenerate it with
 * `node tests/conformance/run-gatewayapi.mjs --write-fixture`); this file never reads ../shared.
 * One ssegate per config_id, listener ports 80/8080/443 mapped to free loopback ports, backendRefs
 * backend-v1..v3 resolved through Service + EndpointSlice documents to the echo backends.
 * HTTPS listeners get a Secret with a certificate made at test time (lib/echo-backends.mjs), and the cases
 * whose scheme is https are sent over TLS (SNI from Host).
 * Every case runs twice on the same gateway: over HTTP/1.1, then over HTTP/2 (h2c with prior knowledge, or
 * h2 over TLS for https cases) with Node's http2 client.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, test } from 'node:test';
import { freePort, repoRoot, setup, startGateway, withLogs } from './lib/harness.mjs';
import { listenerPorts, localConfig, runCase, startEchoBackends } from './lib/echo-backends.mjs';

setup();
const here = path.dirname(fileURLToPath(import.meta.url));
const fx = JSON.parse(fs.readFileSync(path.join(here, 'fixtures/gatewayapi-cases.json'), 'utf8'));

/* Cases that cannot pass for a reason outside the gateway's routing, each with the reason (none today). */
const SKIP = {};

const H2 = fs.existsSync(path.join(repoRoot, 'src/http/h2.c')) ? false : 'no src/http/h2.c in this tree: ssegate has no HTTP/2 yet';

let backends;
before(async () => {
    backends = await startEchoBackends();
});

test('the fixture is complete: 152 cases, every skip names a case of it', () => {
    assert.equal(fx.cases.length, 152);
    const ids = new Set(fx.cases.map(c => c.id));
    assert.equal(ids.size, fx.cases.length, 'duplicate case ids');
    for (const id of Object.keys(SKIP)) assert.ok(ids.has(id), `skip list names unknown case ${id}`);
    for (const c of fx.cases) assert.ok(fx.configs[c.config_id], `${c.id}: no config ${c.config_id}`);
});

const byConfig = new Map();
for (const c of fx.cases) {
    if (!byConfig.has(c.config_id)) byConfig.set(c.config_id, []);
    byConfig.get(c.config_id).push(c);
}

for (const [cid, cases] of byConfig) {
    test(`config ${cid} (${cases.length} cases)`, async t => {
        const cfg = fx.configs[cid];
        const portMap = {};
        for (const p of listenerPorts(cfg.gateway_yaml)) portMap[p] = await freePort();
        const gw = await startGateway({
            yaml: localConfig(cfg, portMap, backends.ports),
            waitPorts: Object.values(portMap),
            args: ['--workers', '1', '--access-log', 'off'],
        });
        for (const proto of ['h1', 'h2']) {
            for (const c of cases) {
                await t.test(
                    `${c.id} [${proto}] ${c.feature}: ${c.request.method} ${c.request.host || ''}${c.request.path}`,
                    { skip: SKIP[c.id] || (proto === 'h2' && H2) || false },
                    withLogs([gw], async () => {
                        const errs = await runCase(c, portMap, { proto });
                        assert.deepEqual(errs, [], `${c.id} [${proto}] (${c.peer_test}${c.note ? `; ${c.note}` : ''}):\n  ${errs.join('\n  ')}`);
                    }),
                );
            }
        }
        await gw.stop('SIGTERM');
        assert.ok(!/AddressSanitizer|runtime error:|LeakSanitizer/.test(gw.stderr), gw.logs());
    });
}
