// cpus.test.mjs: where ssegate's threads run. --worker-cpus keeps worker i on the i-th CPU of a list (round robin);
// --kube-cpus keeps the kube watch and status threads on a list (so that watch events can be read on a CPU the
// streams do not use); the default worker count is the number of CPUs the process may run on (taskset, a container's
// cpuset), not the machine's. A list the process may not use, a malformed one, or --kube-cpus without a kube source
// is refused.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { test } from 'node:test';
import { BIN, SLOW, freePort, gatewayYaml, setup, startGateway, waitFor, withLogs } from './lib/harness.mjs';
import { gatewayClass, startKubeGateway, startSim } from './lib/kube-util.mjs';

setup();

/* The CPUs this test may use (the same set ssegate inherits), from a "0-1,3" list. */
function cpuList(s) {
    return s.trim().split(',').flatMap(r => { const [a, b = a] = r.split('-').map(Number); return Array.from({ length: b - a + 1 }, (_, i) => a + i); });
}
const mine = cpuList(/Cpus_allowed_list:\s*(\S+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]);
const [A, B] = [mine[0], mine[mine.length - 1]];

/* Each thread of pid by name: the CPUs it may run on. */
function threadCpus(pid) {
    const out = {};
    for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
        try {
            const name = fs.readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim();
            const list = /Cpus_allowed_list:\s*(\S+)/.exec(fs.readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8'))[1];
            (out[name] ||= []).push(cpuList(list));
        } catch { /* gone */ }
    }
    return out;
}

let gw;
test(`--worker-cpus ${A},${B} -w 3: worker i on the i-th CPU, round robin; the other threads where they were`, withLogs(() => [gw], async () => {
    const port = await freePort();
    gw = await startGateway({ yaml: gatewayYaml({ port }), args: ['-w', '3', '--worker-cpus', `${A},${B}`], waitPorts: [port] });
    await waitFor(() => threadCpus(gw.child.pid)['ssegate-w2'], 5000 * SLOW, 'the workers started');
    const t = threadCpus(gw.child.pid);
    assert.deepEqual(t['ssegate-w0'], [[A]], JSON.stringify(t));
    assert.deepEqual(t['ssegate-w1'], [[B]], JSON.stringify(t));
    assert.deepEqual(t['ssegate-w2'], [[A]], JSON.stringify(t));
    assert.deepEqual(t.ssegate[0], mine, JSON.stringify(t));
    await gw.stop();
}));

test(`the default worker count is the CPUs the process may run on: one under taskset -c ${B}, two for --worker-cpus ${A},${B}`,
    withLogs(() => [gw], async () => {
        const port = await freePort();
        gw = await startGateway({ yaml: gatewayYaml({ port }), cpus: String(B), waitPorts: [port] });
        await waitFor(() => threadCpus(gw.child.pid)['ssegate-w0'], 5000 * SLOW, 'the workers started');
        let names = Object.keys(threadCpus(gw.child.pid)).filter(n => /^ssegate-w\d+$/.test(n));
        assert.deepEqual(names, ['ssegate-w0']);
        await gw.stop();
        gw = await startGateway({ yaml: gatewayYaml({ port }), args: ['--worker-cpus', [...new Set([A, B])].join(',')], waitPorts: [port] });
        await waitFor(() => threadCpus(gw.child.pid)['ssegate-w0'], 5000 * SLOW, 'the workers started');
        names = Object.keys(threadCpus(gw.child.pid)).filter(n => /^ssegate-w\d+$/.test(n)).sort();
        assert.deepEqual(names, new Set([A, B]).size === 2 ? ['ssegate-w0', 'ssegate-w1'] : ['ssegate-w0']);
        await gw.stop();
    }));

let sim;
test(`--kube-cpus ${B} --worker-cpus ${A}: the watch and status threads on ${B}, the workers on ${A}`, withLogs(() => [gw], async () => {
    sim = await startSim();
    try {
        sim.apply([gatewayClass()]);
        gw = await startKubeGateway(sim, { args: ['--kube-cpus', String(B), '--worker-cpus', String(A)] });
        /* Each kube thread keeps to the list as it starts. */
        const placed = () => { const t = threadCpus(gw.child.pid); return t['ssegate-kube']?.[0]?.join() === String(B) && t['ssegate-kstatus']?.[0]?.join() === String(B); };
        await waitFor(placed, 5000 * SLOW, 'the kube threads placed');
        const t = threadCpus(gw.child.pid);
        assert.deepEqual(t['ssegate-kube'], [[B]], JSON.stringify(t));
        assert.deepEqual(t['ssegate-kstatus'], [[B]], JSON.stringify(t));
        assert.deepEqual(t['ssegate-w0'], [[A]], JSON.stringify(t));
        assert.deepEqual(t['ssegate-w1'], [[A]], JSON.stringify(t));
        assert.deepEqual(t.ssegate[0], mine, JSON.stringify(t));
    } finally {
        await gw?.stop();
        await sim.close();
    }
}));

test('a CPU list that is malformed or names a CPU the process may not use is refused, and --kube-cpus needs a kube source', () => {
    const outside = Math.max(...mine) + 1;
    for (const [flag, v, want] of [['--worker-cpus', '1-0', /--worker-cpus: expected a CPU list/], ['--worker-cpus', '', /expected a CPU list/],
        ['--worker-cpus', '0,', /expected a CPU list/], ['--worker-cpus', `${A},${outside}`, new RegExp(`CPU ${outside} is not one this process may run on`)],
        ['--kube-cpus', 'x', /--kube-cpus: expected a CPU list/], ['--kube-cpus', String(outside), /--kube-cpus: CPU \d+ is not one/]]) {
        const r = spawnSync(BIN, ['--kubeconfig', '/nonexistent', flag, v], { encoding: 'utf8' });
        assert.equal(r.status, 2, `${flag} ${v}: ${r.stderr}`);
        assert.match(r.stderr, want);
    }
    for (const v of [String(A), 'own']) {
        /* Under one CPU too: the missing kube source is the first thing wrong with "own" there. */
        const r = spawnSync('taskset', ['-c', String(A), BIN, '--kube-cpus', v, '-c', '/nonexistent'], { encoding: 'utf8' });
        assert.equal(r.status, 2, r.stderr);
        assert.match(r.stderr, /--kube-cpus need --kube or --kubeconfig/);
    }
});

test('--kube-cpus own: the kube threads on the last CPU the process may run on, the workers on the others', withLogs(() => [gw], async (t) => {
    if (mine.length < 2) return t.skip(`this process may run on one CPU (${mine}); the refusal is tested below`);
    sim = await startSim();
    try {
        sim.apply([gatewayClass()]);
        gw = await startKubeGateway(sim, { args: ['--kube-cpus', 'own'] });
        const placed = () => { const c = threadCpus(gw.child.pid); return c['ssegate-kube']?.[0]?.join() === String(B) && c['ssegate-kstatus']?.[0]?.join() === String(B); };
        await waitFor(placed, 5000 * SLOW, 'the kube threads placed');
        const c = threadCpus(gw.child.pid);
        const rest = mine.slice(0, -1);
        assert.deepEqual(c['ssegate-w0'], [[rest[0]]], JSON.stringify(c));
        assert.deepEqual(c['ssegate-w1'], [[rest[1 % rest.length]]], JSON.stringify(c));
    } finally {
        await gw?.stop();
        await sim.close();
    }
}));

test('--kube-cpus own is refused on one CPU, and with --worker-cpus naming its CPU', () => {
    let r = spawnSync('taskset', ['-c', String(A), BIN, '--kubeconfig', '/nonexistent', '--kube-cpus', 'own'], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--kube-cpus own: this process may run on one CPU \(\d+\), and needs two/);
    if (mine.length >= 2) {
        r = spawnSync(BIN, ['--kubeconfig', '/nonexistent', '--worker-cpus', String(B), '--kube-cpus', 'own'], { encoding: 'utf8' });
        assert.equal(r.status, 2, r.stderr);
        assert.match(r.stderr, new RegExp(`--kube-cpus own: CPU ${B}, the kube threads' own, is in --worker-cpus`));
    }
});
