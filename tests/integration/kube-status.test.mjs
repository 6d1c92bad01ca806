// kube-status.test.mjs: Gateway API status written by ssegate against kubesim: a bad route next to good ones (the
// good ones serve, the bad one says why in status.parents), kubectl wait on Accepted and Programmed,
// observedGeneration following spec changes, other controllers' parents entries kept, and two ssegate processes of
// which only the Lease holder writes status; the other takes over when the holder dies.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { test } from 'node:test';
import { SLOW, freePort, setup, track, withLogs } from './lib/harness.mjs';
import { httpGet, taggedBackends } from './lib/prod-util.mjs';
import { CONTROLLER, gateway, gatewayClass, kubeMetric, route, service, slices, startKubeGateway, startSim, waitFor } from './lib/kube-util.mjs';

setup();

const KUBECTL = ['/usr/bin/kubectl', '/usr/local/bin/kubectl'].find(p => fs.existsSync(p));

function kubectl(sim, args) {
    return new Promise((resolve, reject) => {
        execFile(KUBECTL, ['--cache-dir', path.join(sim.dir, 'kubectl-cache'), ...args], { env: { ...process.env, KUBECONFIG: sim.kubeconfigPath }, timeout: 60000 }, (err, stdout, stderr) =>
            err ? reject(new Error(`kubectl ${args.join(' ')}: ${err.message}\n${stderr}`)) : resolve(stdout));
    });
}

async function body(port, path) {
    try {
        const r = await httpGet(port, path, { ms: 2000 });
        return r.status === 200 ? r.body : `HTTP ${r.status}`;
    } catch (e) {
        return `error ${e.message}`;
    }
}

/* Our entry of a route's status.parents, or undefined. */
function ours(obj) {
    return (obj?.status?.parents || []).find(p => p.controllerName === CONTROLLER);
}

function cond(conds, type) {
    return (conds || []).find(c => c.type === type);
}

/* A rule ssegate refuses although the CRD's schema admits it: a regular expression PCRE2 cannot compile. */
function badRoute(name) {
    const r = route(name, [{ path: '/bad', service: 'sa' }]);
    r.spec.rules[0].matches = [{ path: { type: 'RegularExpression', value: '/bad((' } }];
    return r;
}

let gw, gw2;

test('kube status: a bad route next to good ones: the good ones serve and are Accepted, the bad one says why',
    { timeout: 90000 * SLOW }, withLogs(() => [gw], async () => {
        const sim = await startSim();
        const port = await freePort();
        const be = await taggedBackends(2);
        sim.apply([gatewayClass(), gateway('gw', port), service('sa'), ...slices('sa', [{ port: be.ports[0] }]),
            service('sb'), ...slices('sb', [{ port: be.ports[1] }]),
            route('good1', [{ path: '/a', service: 'sa' }]), badRoute('bad'), route('good2', [{ path: '/b', service: 'sb' }]),
            route('partial', [{ path: '/p', service: 'sa' }, { path: '/q', service: 'sb' }])]);
        /* the second rule of "partial" is refused; the first serves */
        const partial = sim.get('HTTPRoute', 'default', 'partial');
        partial.spec.rules[1].matches = [{ path: { type: 'RegularExpression', value: '/q((' } }];
        sim.update(partial);
        gw = await startKubeGateway(sim, { args: ['--lease-duration', '3s'] });
        await waitFor(async () => (await body(port, '/a')) === 'backend 0', 15000 * SLOW, 'good1 served', gw);
        assert.equal(await body(port, '/b'), 'backend 1');
        assert.equal(await body(port, '/p'), 'backend 0');
        assert.equal(await body(port, '/q'), 'HTTP 404');
        assert.equal(await body(port, '/bad'), 'HTTP 404');

        const bad = await waitFor(() => ours(sim.get('HTTPRoute', 'default', 'bad')), 15000 * SLOW, 'status of bad', gw);
        const acc = cond(bad.conditions, 'Accepted');
        assert.equal(acc.status, 'False');
        assert.equal(acc.reason, 'UnsupportedValue');
        assert.match(acc.message, /\(\(|regular expression|regex/i);
        assert.equal(bad.parentRef.name, 'gw');
        for (const name of ['good1', 'good2']) {
            const p = await waitFor(() => ours(sim.get('HTTPRoute', 'default', name)), 15000 * SLOW, `status of ${name}`, gw);
            assert.equal(cond(p.conditions, 'Accepted').status, 'True');
            assert.equal(cond(p.conditions, 'ResolvedRefs').status, 'True');
        }
        const pp = ours(await waitFor(() => sim.get('HTTPRoute', 'default', 'partial')?.status ? sim.get('HTTPRoute', 'default', 'partial') : null,
            15000 * SLOW, 'status of partial', gw));
        assert.equal(cond(pp.conditions, 'Accepted').status, 'True');
        assert.equal(cond(pp.conditions, 'PartiallyInvalid')?.status, 'True');
        assert.match(cond(pp.conditions, 'PartiallyInvalid').message, /^Dropped Rule 1/);

        const g = await waitFor(() => {
            const o = sim.get('Gateway', 'default', 'gw');
            return cond(o?.status?.conditions, 'Programmed')?.status === 'True' ? o : null;
        }, 15000 * SLOW, 'Gateway Programmed', gw);
        assert.equal(cond(g.status.conditions, 'Accepted').status, 'True');
        assert.equal(g.status.listeners[0].name, 'http');
        assert.equal(g.status.listeners[0].attachedRoutes, 3); /* good1, good2, partial; not bad */
        assert.deepEqual(g.status.listeners[0].supportedKinds, [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute' },
            { group: 'gateway.networking.k8s.io', kind: 'GRPCRoute' }]);
        const gc = await waitFor(() => cond(sim.get('GatewayClass', null, 'ssegate')?.status?.conditions, 'Accepted'),
            15000 * SLOW, 'GatewayClass Accepted', gw);
        assert.equal(gc.status, 'True');
        assert.equal(cond(sim.get('GatewayClass', null, 'ssegate').status.conditions, 'SupportedVersion').status, 'True');
        assert.equal(await kubeMetric(gw.admin, 'ssegate_kube_leader'), 1);
        assert.ok((await kubeMetric(gw.admin, 'ssegate_kube_status_writes_total', { result: 'written' })) >= 5);
        await gw.stop();
    }));

test('kube status: kubectl wait for Accepted and Programmed; observedGeneration follows the spec; other controllers\' parents are kept',
    { timeout: 120000 * SLOW }, withLogs(() => [gw], async () => {
        const sim = await startSim();
        const port = await freePort();
        const be = await taggedBackends(1);
        const r = route('x', [{ path: '/x', service: 'sa' }]);
        sim.apply([gatewayClass(), gateway('y', port), service('sa'), ...slices('sa', [{ port: be.ports[0] }]),
            route('x', [{ path: '/x', service: 'sa' }], { parents: [{ name: 'y' }] })]);
        /* another controller has already reported on this route, for its own Gateway */
        sim.patchStatus('HTTPRoute', 'default', 'x', {
            parents: [{ parentRef: { name: 'mesh' }, controllerName: 'example.com/mesh', conditions: [{ type: 'Accepted',
                status: 'True', reason: 'Accepted', message: 'theirs', observedGeneration: 1,
                lastTransitionTime: '2020-01-01T00:00:00Z' }] }],
        });
        gw = await startKubeGateway(sim, { args: ['--lease-duration', '3s'] });
        if (KUBECTL) {
            /* Gateway and GatewayClass carry status.conditions, which --for=condition reads. An HTTPRoute's
             * conditions are per parent (status.parents[].conditions): kubectl's condition wait does not look there,
             * against any implementation, so the route is waited for with a jsonpath on our entry. */
            await kubectl(sim, ['wait', '--for=condition=Programmed', 'gateway/y', '--timeout=30s']);
            await kubectl(sim, ['wait', '--for=condition=Accepted', 'gateway/y', '--timeout=30s']);
            await kubectl(sim, ['wait', '--for=condition=Accepted', 'gatewayclass/ssegate', '--timeout=30s']);
            await kubectl(sim, ['wait', `--for=jsonpath={.status.parents[?(@.controllerName=="${CONTROLLER}")].conditions[?(@.type=="Accepted")].status}=True`,
                'httproute/x', '--timeout=30s']);
        }
        await waitFor(() => ours(sim.get('HTTPRoute', 'default', 'x')), 15000 * SLOW, 'our entry', gw);
        let o = sim.get('HTTPRoute', 'default', 'x');
        assert.equal(o.status.parents.length, 2);
        assert.equal(o.status.parents[0].controllerName, 'example.com/mesh');
        assert.equal(o.status.parents[0].conditions[0].message, 'theirs');
        const gen0 = o.metadata.generation;
        assert.equal(cond(ours(o).conditions, 'Accepted').observedGeneration, gen0);
        const t0 = cond(ours(o).conditions, 'Accepted').lastTransitionTime;

        /* a spec change moves the generation; the status follows, and the transition time stays (still Accepted) */
        r.spec.parentRefs = [{ name: 'y' }];
        r.spec.rules.push({ matches: [{ path: { type: 'PathPrefix', value: '/x2' } }], backendRefs: [{ name: 'sa', port: 80 }] });
        sim.update({ ...r, metadata: { ...r.metadata, resourceVersion: undefined } });
        const gen1 = sim.get('HTTPRoute', 'default', 'x').metadata.generation;
        assert.ok(gen1 > gen0);
        await waitFor(() => cond(ours(sim.get('HTTPRoute', 'default', 'x')).conditions, 'Accepted').observedGeneration === gen1,
            15000 * SLOW, 'observedGeneration follows', gw);
        o = sim.get('HTTPRoute', 'default', 'x');
        assert.equal(cond(ours(o).conditions, 'ResolvedRefs').observedGeneration, gen1);
        assert.equal(cond(ours(o).conditions, 'Accepted').lastTransitionTime, t0);
        assert.equal(o.status.parents[0].controllerName, 'example.com/mesh');
        assert.equal(await body(port, '/x2'), 'backend 0');

        /* a backendRef to a Service that does not exist: still Accepted, ResolvedRefs False BackendNotFound */
        r.spec.rules[1].backendRefs = [{ name: 'ghost', port: 80 }];
        sim.update({ ...r, metadata: { ...r.metadata, resourceVersion: undefined } });
        await waitFor(() => cond(ours(sim.get('HTTPRoute', 'default', 'x')).conditions, 'ResolvedRefs').reason === 'BackendNotFound',
            15000 * SLOW, 'BackendNotFound', gw);
        assert.equal(cond(ours(sim.get('HTTPRoute', 'default', 'x')).conditions, 'Accepted').status, 'True');

        /* the route moves to another controller's Gateway only: our entry goes, theirs stays */
        sim.apply([gatewayClass('theirs', 'example.com/mesh'), gateway('mesh', await freePort(), { className: 'theirs' })]);
        r.spec.parentRefs = [{ name: 'mesh' }];
        sim.update({ ...r, metadata: { ...r.metadata, resourceVersion: undefined } });
        await waitFor(() => !ours(sim.get('HTTPRoute', 'default', 'x')), 15000 * SLOW, 'our entry removed', gw);
        assert.equal(sim.get('HTTPRoute', 'default', 'x').status.parents[0].controllerName, 'example.com/mesh');
        await gw.stop();
    }));

test('kube status: two ssegate processes: only the Lease holder writes status; kill it and the other takes over',
    { timeout: 120000 * SLOW }, withLogs(() => [gw, gw2], async () => {
        const sim = await startSim();
        const port1 = await freePort();
        const port2 = await freePort();
        const be = await taggedBackends(1);
        sim.apply([gatewayClass(), gateway('gw1', port1), gateway('gw2', port2), service('sa'), ...slices('sa', [{ port: be.ports[0] }]),
            route('r', [{ path: '/r', service: 'sa' }], { parents: [{ name: 'gw1' }, { name: 'gw2' }] })]);
        const args = ['--lease-duration', '2s'];
        gw = await startKubeGateway(sim, { args, env: { POD_NAME: 'ssegate-a' } });
        await waitFor(async () => (await kubeMetric(gw.admin, 'ssegate_kube_leader')) === 1, 15000 * SLOW, 'first leads', gw);
        gw2 = await startKubeGateway(sim, { args, env: { POD_NAME: 'ssegate-b' } });
        await waitFor(() => ours(sim.get('HTTPRoute', 'default', 'r')), 15000 * SLOW, 'status written', gw);

        /* both serve; only a writes. Spec changes while both run, so b has had reasons to write. */
        for (let i = 0; i < 3; i++) {
            const o = sim.get('HTTPRoute', 'default', 'r');
            o.spec.rules[0].matches[0].path.value = `/r${i}`;
            delete o.metadata.resourceVersion;
            sim.update(o);
            const gen = sim.get('HTTPRoute', 'default', 'r').metadata.generation;
            await waitFor(() => cond(ours(sim.get('HTTPRoute', 'default', 'r')).conditions, 'Accepted').observedGeneration === gen,
                15000 * SLOW, `generation ${gen} written`, gw);
            assert.equal(await body(port1, `/r${i}`), 'backend 0');
            await waitFor(async () => (await body(port2, `/r${i}`)) === 'backend 0', 10000 * SLOW, 'b serves too', gw2);
        }
        assert.equal(await kubeMetric(gw2.admin, 'ssegate_kube_leader'), 0);
        const lease = sim.list('Lease', 'default')[0];
        assert.equal(lease.spec.holderIdentity, 'ssegate-a');
        /* the simulator's request log: every status PUT is one the leader counted (each PUT ends written or
         * meets a 409); the follower made no status request at all */
        const puts = sim.requests({ method: 'PUT' }).filter(e => e.path.endsWith('/status'));
        const am = async m => kubeMetric(gw.admin, 'ssegate_kube_status_writes_total', { result: m });
        let bw = 0;
        for (const m of ['written', 'unchanged', 'conflict', 'error', 'gone'])
            bw += await kubeMetric(gw2.admin, 'ssegate_kube_status_writes_total', { result: m });
        assert.equal(bw, 0, 'the follower made no status request');
        assert.equal(await am('error'), 0);
        assert.ok(puts.length >= 4);
        assert.equal(puts.length, (await am('written')) + (await am('conflict')));

        /* kill the leader (no release): b takes over once the Lease expires, and writes */
        await gw.stop('SIGKILL');
        await waitFor(async () => (await kubeMetric(gw2.admin, 'ssegate_kube_leader')) === 1, 30000 * SLOW, 'b takes over', gw2);
        assert.equal(sim.list('Lease', 'default')[0].spec.holderIdentity, 'ssegate-b');
        assert.equal(sim.list('Lease', 'default')[0].spec.leaseTransitions, 1);
        const o = sim.get('HTTPRoute', 'default', 'r');
        o.spec.rules[0].matches[0].path.value = '/after';
        delete o.metadata.resourceVersion;
        sim.update(o);
        const gen = sim.get('HTTPRoute', 'default', 'r').metadata.generation;
        await waitFor(() => cond(ours(sim.get('HTTPRoute', 'default', 'r')).conditions, 'Accepted').observedGeneration === gen,
            15000 * SLOW, 'b writes status', gw2);
        assert.ok((await kubeMetric(gw2.admin, 'ssegate_kube_status_writes_total', { result: 'written' })) >= 1);

        /* b stops cleanly: it gives the Lease up (no holder) */
        await gw2.stop();
        const l = sim.list('Lease', 'default')[0];
        assert.equal(l.spec.holderIdentity ?? '', '');
    }));

test('kube status: a listener whose port is taken says PortUnavailable; the other listener and the Gateway are Programmed',
    { timeout: 60000 * SLOW }, withLogs(() => [gw], async () => {
        const sim = await startSim();
        const port = await freePort();
        const taken = await freePort();
        const blocker = net.createServer().listen(taken, '0.0.0.0');
        await new Promise(r => blocker.once('listening', r));
        track(() => new Promise(r => blocker.close(r)));
        const be = await taggedBackends(1);
        const g = gateway('gw', port);
        g.spec.listeners.push({ name: 'busy', port: taken, protocol: 'HTTP', allowedRoutes: { namespaces: { from: 'All' } } });
        sim.apply([gatewayClass(), g, service('sa'), ...slices('sa', [{ port: be.ports[0] }]), route('r', [{ path: '/', service: 'sa' }])]);
        gw = await startKubeGateway(sim, { args: ['--lease-duration', '3s'] });
        const st = await waitFor(() => {
            const s = sim.get('Gateway', 'default', 'gw')?.status;
            return s?.listeners?.length === 2 ? s : null;
        }, 15000 * SLOW, 'Gateway status', gw);
        const busy = st.listeners.find(l => l.name === 'busy');
        const http = st.listeners.find(l => l.name === 'http');
        assert.equal(cond(busy.conditions, 'Accepted').status, 'False');
        assert.equal(cond(busy.conditions, 'Accepted').reason, 'PortUnavailable');
        assert.equal(cond(busy.conditions, 'Programmed').status, 'False');
        assert.equal(cond(http.conditions, 'Programmed').status, 'True');
        assert.equal(cond(st.conditions, 'Programmed').status, 'True');
        assert.equal(cond(st.conditions, 'Accepted').reason, 'ListenersNotValid');
        assert.equal(await body(port, '/'), 'backend 0');
        await gw.stop();
    }));

test('kube status: a listener whose port is taken is retried until it binds: PortUnavailable, then served and Programmed, with no config change',
    { timeout: 90000 * SLOW }, withLogs(() => [gw], async () => {
        const sim = await startSim();
        const port = await freePort();
        const taken = await freePort();
        const blocker = net.createServer().listen(taken, '0.0.0.0');
        await new Promise(r => blocker.once('listening', r));
        let blocked = true;
        track(() => blocked ? new Promise(r => blocker.close(r)) : undefined);
        const be = await taggedBackends(1);
        sim.apply([gatewayClass(), service('sa'), ...slices('sa', [{ port: be.ports[0] }])]);
        gw = await startKubeGateway(sim, { args: ['--lease-duration', '3s'] });
        /* the Gateway arrives while its second port is taken */
        const g = gateway('gw', port);
        g.spec.listeners.push({ name: 'busy', port: taken, protocol: 'HTTP', allowedRoutes: { namespaces: { from: 'All' } } });
        sim.apply([g, route('r', [{ path: '/', service: 'sa' }])]);
        const listener = (name) => sim.get('Gateway', 'default', 'gw')?.status?.listeners?.find(l => l.name === name);
        const busy = await waitFor(() => {
            const l = listener('busy');
            return l && cond(l.conditions, 'Accepted')?.reason === 'PortUnavailable' ? l : null;
        }, 15000 * SLOW, 'busy listener PortUnavailable', gw);
        assert.equal(cond(busy.conditions, 'Accepted').status, 'False');
        assert.equal(cond(busy.conditions, 'Programmed').status, 'False');
        assert.equal(cond(busy.conditions, 'Programmed').reason, 'Pending');
        assert.match(cond(busy.conditions, 'Programmed').message, /could not be bound; retrying/);
        assert.equal(cond(listener('http').conditions, 'Programmed').status, 'True');
        assert.equal(await body(port, '/'), 'backend 0');
        const generation = await kubeMetric(gw.admin, 'ssegate_config_generation');
        const builds = await kubeMetric(gw.admin, 'ssegate_kube_builds_total', { result: 'ok' });
        /* still taken over the first retries (1 s, then 2 s later): they are not logged, each worker said it once */
        const cannot = () => (gw.logs().match(new RegExp(`cannot listen on [^\\n]*:${taken}\\b`, 'g')) || []).length;
        const before = cannot();
        assert.ok(before >= 1);
        await new Promise(r => setTimeout(r, 3500));
        assert.equal(cannot(), before);
        assert.equal((gw.logs().match(/kube: ports? [\d, ]+ could not be bound/g) || []).length, 1);
        assert.equal(cond(listener('busy').conditions, 'Accepted').reason, 'PortUnavailable');
        /* the port is freed: it binds with no change to the config */
        await new Promise(r => blocker.close(r));
        blocked = false;
        await waitFor(async () => (await body(taken, '/')) === 'backend 0', 60000 * SLOW, 'the freed port served', gw);
        const now = await waitFor(() => {
            const l = listener('busy');
            return l && cond(l.conditions, 'Programmed')?.status === 'True' ? l : null;
        }, 15000 * SLOW, 'busy listener Programmed', gw);
        assert.equal(cond(now.conditions, 'Accepted').status, 'True');
        assert.equal(cond(now.conditions, 'Programmed').reason, 'Programmed');
        const st = sim.get('Gateway', 'default', 'gw').status;
        assert.equal(cond(st.conditions, 'Accepted').reason, 'Accepted');
        assert.equal(cond(st.conditions, 'Programmed').status, 'True');
        assert.equal(await kubeMetric(gw.admin, 'ssegate_config_generation'), generation);
        assert.equal(await kubeMetric(gw.admin, 'ssegate_kube_builds_total', { result: 'ok' }), builds);
        /* logged once when it failed and once when it bound: not once per retry */
        assert.equal((gw.logs().match(/kube: ports? [\d, ]+ could not be bound/g) || []).length, 1);
        assert.equal((gw.logs().match(/kube: port \d+ is bound now/g) || []).length, 1);
        await gw.stop();
    }));

test('kube status: the standard reasons: NotAllowedByListeners, NoMatchingListenerHostname, RefNotPermitted (until a ReferenceGrant)',
    { timeout: 60000 * SLOW }, withLogs(() => [gw], async () => {
        const sim = await startSim();
        const p1 = await freePort();
        const p2 = await freePort();
        const be = await taggedBackends(1);
        const g = gateway('gw', p1, { ns: 'infra' });
        g.spec.listeners = [{ name: 'same', port: p1, protocol: 'HTTP', allowedRoutes: { namespaces: { from: 'Same' } } },
            { name: 'host', port: p2, protocol: 'HTTP', hostname: 'a.example.com', allowedRoutes: { namespaces: { from: 'All' } } }];
        const other = route('other-ns', [{ path: '/o', service: 'sa' }], { ns: 'apps', parents: [{ name: 'gw', namespace: 'infra', sectionName: 'same' }] });
        const nohost = route('nohost', [{ path: '/h', service: 'sa' }], { ns: 'apps', parents: [{ name: 'gw', namespace: 'infra', sectionName: 'host' }] });
        nohost.spec.hostnames = ['b.example.com'];
        const cross = route('cross', [{ path: '/c', service: 'sa' }], { ns: 'infra', parents: [{ name: 'gw', sectionName: 'same' }] });
        cross.spec.rules[0].backendRefs[0].namespace = 'apps';
        sim.apply([gatewayClass(), g, service('sa', { ns: 'apps' }), ...slices('sa', [{ port: be.ports[0] }], { ns: 'apps' }),
            other, nohost, cross]);
        gw = await startKubeGateway(sim, { args: ['--lease-duration', '3s'] });
        const reason = (ns, name, type) => cond(ours(sim.get('HTTPRoute', ns, name))?.conditions, type);
        await waitFor(() => reason('apps', 'other-ns', 'Accepted') && reason('apps', 'nohost', 'Accepted') &&
            reason('infra', 'cross', 'ResolvedRefs'), 15000 * SLOW, 'three routes with status', gw);
        assert.equal(reason('apps', 'other-ns', 'Accepted').status, 'False');
        assert.equal(reason('apps', 'other-ns', 'Accepted').reason, 'NotAllowedByListeners');
        assert.equal(reason('apps', 'nohost', 'Accepted').status, 'False');
        assert.equal(reason('apps', 'nohost', 'Accepted').reason, 'NoMatchingListenerHostname');
        assert.equal(reason('infra', 'cross', 'Accepted').status, 'True');
        assert.equal(reason('infra', 'cross', 'ResolvedRefs').status, 'False');
        assert.equal(reason('infra', 'cross', 'ResolvedRefs').reason, 'RefNotPermitted');
        assert.equal(await body(p1, '/c'), 'HTTP 500');
        /* the grant arrives: the reference resolves, and the route serves */
        sim.apply({ apiVersion: 'gateway.networking.k8s.io/v1beta1', kind: 'ReferenceGrant', metadata: { name: 'g', namespace: 'apps' },
            spec: { from: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'infra' }], to: [{ group: '', kind: 'Service' }] } });
        await waitFor(() => reason('infra', 'cross', 'ResolvedRefs')?.status === 'True', 15000 * SLOW, 'ResolvedRefs after the grant', gw);
        assert.equal(await body(p1, '/c'), 'backend 0');
        const st = sim.get('Gateway', 'infra', 'gw').status;
        assert.equal(st.listeners.find(l => l.name === 'same').attachedRoutes, 1);
        assert.equal(st.listeners.find(l => l.name === 'host').attachedRoutes, 0);
        await gw.stop();
    }));
