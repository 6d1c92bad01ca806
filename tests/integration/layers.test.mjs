// layers.test.mjs: scripts/check-layers.sh passes on the tree and refuses an include that reaches up a layer.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/* A copy of src/ and the checker in a temporary tree, so the test can break it. */
function copyTree(t) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-layers-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.cpSync(path.join(root, 'src'), path.join(dir, 'src'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'scripts'));
    fs.copyFileSync(path.join(root, 'scripts/check-layers.sh'), path.join(dir, 'scripts/check-layers.sh'));
    return dir;
}

const check = dir => spawnSync('bash', [path.join(dir, 'scripts/check-layers.sh')], { encoding: 'utf8' });

test('the tree as it is: every include points down', () => {
    const r = spawnSync('bash', [path.join(root, 'scripts/check-layers.sh')], { encoding: 'utf8' });
    assert.equal(r.stdout, '');
    assert.equal(r.status, 0);
});

test('src/ has one folder per layer and no C file outside them but main.c and serve.c', () => {
    const top = fs.readdirSync(path.join(root, 'src'), { withFileTypes: true });
    assert.deepEqual(top.filter(e => e.isFile()).map(e => e.name).sort(), ['main.c', 'serve.c', 'serve.h']);
    assert.deepEqual(top.filter(e => e.isDirectory()).map(e => e.name).sort(),
        ['admin', 'codec', 'config', 'core', 'fanout', 'http', 'kube', 'net', 'proxy']);
});

test('no source file is over 1,500 lines', () => {
    for (const f of fs.readdirSync(path.join(root, 'src'), { recursive: true })) {
        if (!/\.[ch]$/.test(f))
            continue;
        const n = fs.readFileSync(path.join(root, 'src', f), 'utf8').split('\n').length - 1;
        assert.ok(n <= 1500, `src/${f} has ${n} lines`);
    }
});

test('an include from the core up to the http layer is refused, with the file and line', t => {
    const dir = copyTree(t);
    const f = path.join(dir, 'src/core/timer.c');
    const lines = fs.readFileSync(f, 'utf8').split('\n');
    const at = lines.findIndex(l => l.startsWith('#include "')) + 1;
    lines.splice(at, 0, '#include "http/conn.h"');
    fs.writeFileSync(f, lines.join('\n'));
    const r = check(dir);
    assert.equal(r.status, 1);
    assert.match(r.stdout, new RegExp(`^src/core/timer\\.c:${at + 1}: #include "http/conn\\.h" reaches up from layer 'core' to 'http'$`, 'm'));
});

test('an include without its layer, and a folder that is no layer, are refused', t => {
    const dir = copyTree(t);
    const f = path.join(dir, 'src/proxy/proxy.c');
    fs.writeFileSync(f, fs.readFileSync(f, 'utf8').replace('#include "proxy/proxy.h"', '#include "proxy.h"'));
    fs.mkdirSync(path.join(dir, 'src/misc'));
    fs.writeFileSync(path.join(dir, 'src/misc/util.c'), '#include "core/sg.h"\n');
    const r = check(dir);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /^src\/proxy\/proxy\.c:\d+: #include "proxy\.h" names no layer/m);
    assert.match(r.stdout, /^src\/misc\/util\.c: folder 'misc' is not a layer/m);
});

test('kube/ is a config source: the data path cannot include it, and it includes only core, codec, net, config', t => {
    const dir = copyTree(t);
    const up = path.join(dir, 'src/proxy/proxy.c');
    fs.writeFileSync(up, fs.readFileSync(up, 'utf8').replace('#include "proxy/proxy.h"', '#include "proxy/proxy.h"\n#include "kube/kube.h"'));
    const k = path.join(dir, 'src/kube/kube.c');
    fs.writeFileSync(k, fs.readFileSync(k, 'utf8').replace('#include "kube/kube.h"', '#include "kube/kube.h"\n#include "proxy/health.h"'));
    const r = check(dir);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /^src\/proxy\/proxy\.c:\d+: #include "kube\/kube\.h" reaches up from layer 'proxy' to 'kube'$/m);
    assert.match(r.stdout, /^src\/kube\/kube\.c:\d+: #include "proxy\/health\.h": layer 'kube' may include only: core codec net config kube$/m);
});

test('the same-layer and downward includes of the real tree pass in the copy too', t => {
    const r = check(copyTree(t));
    assert.equal(r.status, 0, r.stdout);
});

test('no tracked file carries merge conflict markers', () => {
    const r = spawnSync('git', ['grep', '-n', '-I', '-E', '^(<<<<<<< |>>>>>>> |=======$)'], { cwd: root, encoding: 'utf8' });
    if (r.error || r.status === 128) return; /* not a git checkout (a tarball): nothing to check */
    assert.equal(r.stdout, '', `conflict markers:\n${r.stdout}`);
});
