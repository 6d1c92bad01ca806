// h2-flags.test.mjs: the HTTP/2 command-line settings reach the client in our SETTINGS frame.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { echoBackend } from './lib/backends.mjs';
import { SLOW, freePort, gatewayYaml, setup, startGateway, withLogs } from './lib/harness.mjs';

setup();

let gw;
test('--h2-max-streams, --h2-window and --h2-conn-window are what nghttp sees', withLogs(() => [gw], async () => {
    const be = await echoBackend();
    const port = await freePort();
    gw = await startGateway({
        yaml: gatewayYaml({ port, routes: [{ name: 'e', path: '/', backends: [{ name: '127.0.0.1', port: be.port }] }] }),
        args: ['--access-log', 'off', '--h2-max-streams', '7', '--h2-window', '100000', '--h2-conn-window', '3000000'],
        waitPorts: [port],
    });
    /* Asynchronous: the echo backend answers from this same process. */
    const r = await promisify(execFile)('nghttp', ['-v', '-n', `http://127.0.0.1:${port}/x`], { timeout: 10000 * SLOW });
    assert.match(r.stdout, /SETTINGS_MAX_CONCURRENT_STREAMS\(0x03\):7\b/);
    assert.match(r.stdout, /SETTINGS_INITIAL_WINDOW_SIZE\(0x04\):100000\b/);
    /* The connection window is raised with a WINDOW_UPDATE on stream 0 by the difference from 65535. */
    assert.match(r.stdout, /recv WINDOW_UPDATE frame <length=4, flags=0x00, stream_id=0>\s*\(window_size_increment=2934465\)/);
}));

test('bad values for the HTTP/2 flags are refused with a message', async () => {
    for (const [flag, v] of [['--h2-max-streams', '0'], ['--h2-window', '10'], ['--h2-conn-window', 'x']]) {
        const r = spawnSync(process.env.SSEGATE_BIN || './ssegate', ['-c', '/nonexistent.yaml', flag, v], { encoding: 'utf8' });
        assert.equal(r.status, 2, `${flag} ${v}`);
        assert.match(r.stderr, new RegExp(`${flag}: expected a number`));
    }
});
