// kube-keepalive.test.mjs: the kube client keeps its API-server connections alive: a status sync of many routes
// goes over a few TLS connections (counted by kubesim), a POST (the Lease's creation) never rides a reused
// connection, a server that closes idle kept-alive connections (gracefully, abruptly, or just as a request
// arrives) costs no status write, a rotated token is sent on the kept-alive connections, the client-side rate
// limit delays requests without losing any, and a 429 with Retry-After on a status write is waited out and the
// write made. Behaviour only: nothing here asserts a duration.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { BIN, SLOW, freePort, setup, withLogs } from './lib/harness.mjs';
import { CONTROLLER, gateway, gatewayClass, kubeMetric, route, service, startKubeGateway, startSim, waitFor } from './lib/kube-util.mjs';

setup();

const N = 40;

function ours(obj) {
    return (obj?.status?.parents || []).find(p => p.controllerName === CONTROLLER);
}

/* Every route's status carries our entry at generation gen (Accepted's observedGeneration). */
function allAt(sim, gen) {
    const rs = sim.list('HTTPRoute', 'default');
    return rs.length === N && rs.every(r => ours(r)?.conditions?.find(c => c.type === 'Accepted')?.observedGeneration === gen);
}

/* A spec change to every route: its generation moves, so its status must be written again. */
function touchAll(sim, tag) {
    for (let i = 0; i < N; i++) {
        const r = sim.get('HTTPRoute', 'default', `r${i}`);
        r.spec.rules[0].matches[0].path.value = `/r${i}/${tag}`;
        sim.update(r);
    }
}

test('--kube-api-burst without a rate limit (--kube-api-qps 0) is refused, not ignored', () => {
    const r = spawnSync(BIN, ['--kubeconfig', '/nonexistent', '--kube-api-qps', '0', '--kube-api-burst', '5'], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--kube-api-burst: no rate limit to burst above/);
    /* With a limit, the same burst passes the parser (the missing kubeconfig is what stops it then). */
    const ok = spawnSync(BIN, ['--kubeconfig', '/nonexistent', '--kube-api-qps', '10', '--kube-api-burst', '5'], { encoding: 'utf8' });
    assert.notEqual(ok.status, 2, ok.stderr);
    assert.doesNotMatch(ok.stderr, /--kube-api-burst/);
});

async function startAll({ mode = 'kubeconfig', args = [] } = {}) {
    const sim = await startSim();
    const port = await freePort();
    const objs = [gatewayClass(), gateway('gw', port)];
    for (let i = 0; i < N; i++) objs.push(service(`s${i}`), route(`r${i}`, [{ path: `/r${i}/`, service: `s${i}` }]));
    sim.apply(objs);
    const gw = await startKubeGateway(sim, { mode, args });
    await waitFor(() => allAt(sim, 1), 60000 * SLOW, 'status of every route', gw);
    return { sim, gw };
}

let gw;

test('kube keep-alive: a status sync of 40 routes rides a few kept-alive TLS connections; a POST opens its own',
    { timeout: 90000 * SLOW }, withLogs(() => [gw], async () => {
        let sim;
        ({ sim, gw } = await startAll());
        const reqs = sim.requests().filter(e => !e.watch);
        const puts = reqs.filter(e => e.method === 'PUT' && e.path.endsWith('/status'));
        assert.ok(puts.length >= N, `${puts.length} status PUTs`);
        const conns = new Set(reqs.map(e => e.conn));
        /* the pool keeps at most 4 idle connections: the kube thread's LISTs and the status thread's reads and writes */
        assert.ok(conns.size <= 6, `${reqs.length} requests over ${conns.size} connections`);
        const putConns = new Set(puts.map(e => e.conn));
        assert.ok(putConns.size <= 4, `${puts.length} status PUTs over ${putConns.size} connections`);
        /* the simulator's own count of TLS handshakes: the requests' few, and one per watch */
        const watchConns = new Set(sim.requests({ watch: true }).map(e => e.conn));
        const { accepted } = sim.connections();
        assert.ok(accepted <= conns.size + watchConns.size, `${accepted} TLS connections`);
        assert.ok(reqs.length >= N + 10 && accepted - watchConns.size <= 6, `${accepted} TLS connections (${watchConns.size} watches) for ${reqs.length} requests`);
        /* the Lease did not exist: ssegate created it with a POST, on a connection no earlier request had used */
        const post = reqs.findIndex(e => e.method === 'POST');
        assert.ok(post >= 0, 'the Lease was created');
        assert.ok(!reqs.slice(0, post).some(e => e.conn === reqs[post].conn), 'the POST went on a new connection');
        assert.ok(await kubeMetric(gw.admin, 'ssegate_kube_api_requests_total', { connection: 'reused' }) >= N);
        assert.ok(await kubeMetric(gw.admin, 'ssegate_kube_api_connections_total') <= accepted);
        assert.equal(await kubeMetric(gw.admin, 'ssegate_kube_status_writes_total', { result: 'error' }), 0);
        await gw.stop();
    }));

test('kube keep-alive: a server that closes idle kept-alive connections, or one as a status PUT arrives, loses no write',
    { timeout: 120000 * SLOW }, withLogs(() => [gw], async () => {
        let sim;
        ({ sim, gw } = await startAll());
        /* 1: the server's idle timeout closes them cleanly (close_notify, FIN) while ssegate is between syncs */
        await waitFor(() => sim.connections().idle > 0, 10000 * SLOW, 'an idle kept-alive connection', gw);
        assert.ok(sim.closeIdleConnections({ graceful: true }) > 0);
        touchAll(sim, 'a');
        await waitFor(() => allAt(sim, 2), 30000 * SLOW, 'status at generation 2', gw);

        /* 2: closed with no close_notify */
        await waitFor(() => sim.connections().idle > 0, 10000 * SLOW, 'an idle kept-alive connection', gw);
        assert.ok(sim.closeIdleConnections({ graceful: false }) > 0);
        touchAll(sim, 'b');
        await waitFor(() => allAt(sim, 3), 30000 * SLOW, 'status at generation 3', gw);

        /* 3: the race no liveness check can see: the server closes the connection as the PUT arrives, without an
         * answer. The PUT (it carries the resourceVersion read, so a repeat cannot overwrite a newer write) is sent
         * once more on a new connection, at once: no read of the route in between, no writer retry. */
        const retries0 = await kubeMetric(gw.admin, 'ssegate_kube_api_retries_total');
        sim.clearRequests();
        const fault = sim.faults.add({ method: 'PUT', path: /\/httproutes\/r7\/status$/, action: 'drop', times: 1 });
        const r7 = sim.get('HTTPRoute', 'default', 'r7');
        r7.spec.rules[0].matches[0].path.value = '/r7/c';
        sim.update(r7);
        await waitFor(() => ours(sim.get('HTTPRoute', 'default', 'r7'))?.conditions?.find(c => c.type === 'Accepted')?.observedGeneration === 4,
            30000 * SLOW, 'r7 status at generation 4', gw);
        assert.equal(fault.hits, 1);
        const log = sim.requests().filter(e => !e.watch && e.path.includes('/httproutes/r7'));
        const i = log.findIndex(e => e.method === 'PUT');
        assert.ok(i >= 1, 'a GET, then the dropped PUT');
        assert.equal(log[i].status, null, 'the first PUT got no answer');
        /* it rode a connection an earlier request (the GET just before it) had used */
        assert.ok(sim.requests().some(e => e.conn === log[i].conn && e.seq < log[i].seq));
        assert.equal(log[i + 1]?.method, 'PUT', 'sent again without reading the route first');
        assert.notEqual(log[i + 1].conn, log[i].conn);
        assert.equal(log[i + 1].status, 200);
        assert.equal(await kubeMetric(gw.admin, 'ssegate_kube_api_retries_total'), retries0 + 1);
        assert.equal(await kubeMetric(gw.admin, 'ssegate_kube_status_writes_total', { result: 'error' }), 0);
        await gw.stop();
    }));

test('kube keep-alive: a rotated token goes out on the kept-alive connections (the Authorization header is per request)',
    { timeout: 90000 * SLOW }, withLogs(() => [gw], async () => {
        let sim;
        ({ sim, gw } = await startAll({ mode: 'incluster' }));
        const old = sim.token;
        sim.clearRequests();
        const fresh = sim.rotateToken({ graceMs: 0 });
        touchAll(sim, 't');
        await waitFor(() => allAt(sim, 2), 30000 * SLOW, 'status at generation 2 after the rotation', gw);
        const log = sim.requests().filter(e => !e.watch);
        const refused = log.find(e => e.status === 401 && e.token === old);
        assert.ok(refused, 'a request with the old token was refused');
        /* the same connection carried requests with the new token after it: nothing was reconnected for the token */
        assert.ok(log.some(e => e.conn === refused.conn && e.seq > refused.seq && e.token === fresh && e.status === 200),
            'the new token on the connection that got the 401');
        const puts = log.filter(e => e.method === 'PUT' && e.path.endsWith('/status'));
        assert.ok(puts.length >= N && puts.every(e => e.token === fresh && e.status === 200));
        assert.equal(await kubeMetric(gw.admin, 'ssegate_kube_status_writes_total', { result: 'error' }), 0);
        await gw.stop();
    }));

test('kube keep-alive: --kube-api-qps makes requests wait their turn; every status is still written',
    { timeout: 120000 * SLOW }, withLogs(() => [gw], async () => {
        let sim;
        ({ sim, gw } = await startAll({ args: ['--kube-api-qps', '20', '--kube-api-burst', '1'] }));
        assert.ok(await kubeMetric(gw.admin, 'ssegate_kube_api_throttled_seconds_total') > 0, 'requests waited for the limit');
        assert.equal(await kubeMetric(gw.admin, 'ssegate_kube_status_writes_total', { result: 'error' }), 0);
        await gw.stop();
    }));

test('kube keep-alive: a status PUT answered 429 with Retry-After is read again and written; nothing is lost',
    { timeout: 90000 * SLOW }, withLogs(() => [gw], async () => {
        let sim;
        ({ sim, gw } = await startAll());
        sim.clearRequests();
        const fault = sim.faults.add({ method: 'PUT', path: /\/httproutes\/r5\/status$/, action: 'status', code: 429, retryAfter: 1, times: 1 });
        const r5 = sim.get('HTTPRoute', 'default', 'r5');
        r5.spec.rules[0].matches[0].path.value = '/r5/throttled';
        sim.update(r5);
        await waitFor(() => ours(sim.get('HTTPRoute', 'default', 'r5'))?.conditions?.find(c => c.type === 'Accepted')?.observedGeneration === 2,
            30000 * SLOW, 'r5 status at generation 2', gw);
        assert.equal(fault.hits, 1);
        const log = sim.requests().filter(e => !e.watch && e.path.includes('/httproutes/r5'));
        const i = log.findIndex(e => e.method === 'PUT' && e.status === 429);
        assert.ok(i >= 0, 'the PUT was throttled');
        /* the writer waited, then read the route again and wrote it: a 429 is an answer, not a dead connection */
        assert.deepEqual(log.slice(i + 1).map(e => `${e.method} ${e.status}`), ['GET 200', 'PUT 200']);
        assert.equal(await kubeMetric(gw.admin, 'ssegate_kube_api_retries_total'), 0);
        assert.equal(await kubeMetric(gw.admin, 'ssegate_kube_status_writes_total', { result: 'error' }), 0);
        await gw.stop();
    }));
