// kube-threads.test.mjs: the kube source's watch and status threads run at a lower priority than the workers
// (nice 10 by default, --kube-nice N), so that config work yields the CPU to open streams; a value the kernel's range
// does not have, or --kube-nice without a kube source, is refused.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { test } from 'node:test';
import { BIN, SLOW, setup, waitFor, withLogs } from './lib/harness.mjs';
import { gatewayClass, startKubeGateway, startSim } from './lib/kube-util.mjs';

setup();

/* nice value of each thread of pid, by thread name (proc(5): field 19) */
function threadNice(pid) {
    const out = {};
    for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
        const st = fs.readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
        const name = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
        (out[name] ||= []).push(Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[16]));
    }
    return out;
}

for (const [args, want] of [[[], 10], [['--kube-nice', '0'], 0], [['--kube-nice', '19'], 19]]) {
    let gw, sim;
    test(`kube threads: ${args.join(' ') || 'by default'} the watch and status threads run at nice ${want}, the workers at 0`,
        withLogs(() => [gw], async () => {
            sim = await startSim();
            try {
                sim.apply([gatewayClass()]);
                gw = await startKubeGateway(sim, { args });
                /* Each thread names itself and sets its nice as it starts. */
                const set = () => { const n = threadNice(gw.child.pid); return n['ssegate-kube']?.[0] === want && n['ssegate-kstatus']?.[0] === want; };
                await waitFor(set, 5000 * SLOW, 'the kube threads started');
                const n = threadNice(gw.child.pid);
                assert.deepEqual(n['ssegate-kube'], [want], JSON.stringify(n));
                assert.deepEqual(n['ssegate-kstatus'], [want], JSON.stringify(n));
                assert.deepEqual(n['ssegate-w0'], [0], JSON.stringify(n));
                assert.deepEqual(n['ssegate-w1'], [0], JSON.stringify(n));
            } finally {
                await gw?.stop();
                await sim.close();
            }
        }));
}

test('--kube-nice out of 0-19, or without --kube/--kubeconfig, is refused', () => {
    for (const bad of ['20', '-1', 'x']) {
        const r = spawnSync(BIN, ['--kubeconfig', '/nonexistent', '--kube-nice', bad], { encoding: 'utf8' });
        assert.equal(r.status, 2, r.stderr);
        assert.match(r.stderr, /--kube-nice/);
    }
    const r = spawnSync(BIN, ['--kube-nice', '5', '-c', '/nonexistent'], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--kube-nice and --kube-cpus need --kube or --kubeconfig/);
});
