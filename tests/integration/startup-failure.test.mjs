// startup-failure.test.mjs: a gateway that cannot start (admin port or listener port taken) exits 1 with a
// message naming the cause, and frees what it took on the way out (no sanitizer report in the ASan build).
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { freePort, gatewayYaml, runGateway, setup, writeTemp } from './lib/harness.mjs';

setup();

function holdPort() {
    return new Promise(resolve => {
        const srv = net.createServer();
        srv.listen(0, '127.0.0.1', () => resolve({ port: srv.address().port, close: () => srv.close() }));
    });
}

test('admin port already in use: exit 1, the cause, nothing leaked', async () => {
    const held = await holdPort();
    try {
        const port = await freePort();
        const cfg = writeTemp('gw.yaml', gatewayYaml({ port, routes: [{ name: 'r', path: '/', backends: [{ name: '127.0.0.1', port: 9 }] }] }));
        const r = await runGateway(['-c', cfg, '--admin', `127.0.0.1:${held.port}`]);
        assert.equal(r.code, 1);
        assert.match(r.stderr, new RegExp(`--admin 127\\.0\\.0\\.1:${held.port}: Address already in use`));
        assert.doesNotMatch(r.stderr, /Sanitizer|leak/i);
    } finally {
        held.close();
    }
});

test('listener port already in use: exit 1, the cause, nothing leaked', async () => {
    const held = await holdPort();
    try {
        const cfg = writeTemp('gw.yaml', gatewayYaml({ port: held.port, routes: [{ name: 'r', path: '/', backends: [{ name: '127.0.0.1', port: 9 }] }] }));
        const r = await runGateway(['-c', cfg, '--workers', '2']);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /cannot listen on 127\.0\.0\.1:\d+: Address already in use/);
        assert.doesNotMatch(r.stderr, /Sanitizer|leak/i);
    } finally {
        held.close();
    }
});
