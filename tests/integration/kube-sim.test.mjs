// kube-sim.test.mjs: kubesim (tests/kube/) checked by real clients: kubectl and the @kubernetes/client-node informer,
// the API semantics the C watcher relies on, and every fault it can inject, read with a raw HTTPS client.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import http2 from 'node:http2';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { setup, track, sleep, waitFor, run, tmpDir, freePort, repoRoot, SLOW } from './lib/harness.mjs';
import { startApiServer, readYamlDocs } from '../kube/apiserver.mjs';
import { rawRequest } from '../kube/rawclient.mjs';

setup();

const KUBECTL = ['/usr/bin/kubectl', '/usr/local/bin/kubectl'].find(p => fs.existsSync(p));
const noKubectl = KUBECTL ? false : 'kubectl is not installed';

async function sim(opts = {}) {
    const s = await startApiServer(opts);
    track(() => s.close());
    return s;
}

function kubectl(s, args, opts = {}) {
    return run(KUBECTL, ['--kubeconfig', s.kubeconfigPath, '--cache-dir', path.join(s.dir, 'kubectl-cache'), '--request-timeout=10s', ...args], { timeout: 20000 * SLOW, ...opts });
}

function writeYaml(name, text) {
    const p = path.join(tmpDir(), `${Date.now()}-${Math.random().toString(36).slice(2)}-${name}`);
    fs.writeFileSync(p, text);
    return p;
}

/* A JSON request with the simulator's token; resolves {status, headers, body (parsed when JSON)}. */
function api(s, method, p, body, { token = s.token, contentType = 'application/json' } = {}) {
    return new Promise((resolve, reject) => {
        const payload = body === undefined ? null : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
        const req = https.request(`${s.url}${p}`, {
            method, ca: s.caPem,
            headers: { Accept: 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(payload ? { 'Content-Type': contentType, 'Content-Length': payload.length } : {}) },
        }, res => {
            const parts = [];
            res.on('data', d => parts.push(d));
            res.on('end', () => {
                const text = Buffer.concat(parts).toString();
                let parsed = text;
                try {
                    parsed = JSON.parse(text);
                } catch { /* not JSON */ }
                resolve({ status: res.statusCode, headers: res.headers, body: parsed });
            });
        });
        req.on('error', reject);
        if (payload) req.write(payload);
        req.end();
    });
}

const route = (name, extra = {}) => ({
    apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute',
    metadata: { name, namespace: 'default', ...extra.metadata },
    spec: { parentRefs: [{ name: 'gw' }], rules: [{ backendRefs: [{ name: 'svc', port: 80 }] }], ...extra.spec },
});

describe('kubectl against kubesim', { skip: noKubectl }, () => {
    let s;
    before(async () => {
        s = await sim();
    });

    test('discovery and get -o json over several kinds, cluster-scoped and namespaced', async () => {
        s.apply([
            { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'ssegate' }, spec: { controllerName: 'ssegate.io/gateway-controller' } },
            route('get-a'),
            { apiVersion: 'v1', kind: 'Service', metadata: { name: 'svc', namespace: 'team-a' }, spec: { ports: [{ port: 80 }] } },
            { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'svc-1', namespace: 'team-a', labels: { 'kubernetes.io/service-name': 'svc' } }, addressType: 'IPv4', endpoints: [{ addresses: ['10.0.0.1'], conditions: { ready: true } }], ports: [{ port: 8080 }] },
        ]);
        const r = await kubectl(s, ['api-resources', '-o', 'name']);
        assert.equal(r.code, 0, r.stderr);
        for (const n of ['gatewayclasses.gateway.networking.k8s.io', 'httproutes.gateway.networking.k8s.io', 'referencegrants.gateway.networking.k8s.io', 'routepolicies.alb.networking.azure.io', 'ssepolicies.ssegate.io', 'leases.coordination.k8s.io', 'endpointslices.discovery.k8s.io']) {
            assert.match(r.stdout, new RegExp(`^${n.replace(/\./g, '\\.')}$`, 'm'));
        }
        const gc = await kubectl(s, ['get', 'gatewayclass', 'ssegate', '-o', 'json']);
        assert.equal(gc.code, 0, gc.stderr);
        assert.equal(JSON.parse(gc.stdout).spec.controllerName, 'ssegate.io/gateway-controller');
        const all = await kubectl(s, ['get', 'endpointslices,services', '-A', '-o', 'json']);
        assert.equal(all.code, 0, all.stderr);
        const items = JSON.parse(all.stdout).items;
        assert.deepEqual(items.map(i => `${i.kind}/${i.metadata.namespace}/${i.metadata.name}`).sort(), ['EndpointSlice/team-a/svc-1', 'Service/team-a/svc']);
        const sel = await kubectl(s, ['get', 'endpointslices', '-n', 'team-a', '-l', 'kubernetes.io/service-name=svc', '-o', 'name']);
        assert.equal(sel.stdout.trim(), 'endpointslice.discovery.k8s.io/svc-1');
        const table = await kubectl(s, ['get', 'httproutes']);
        assert.equal(table.code, 0, table.stderr);
        assert.match(table.stdout, /^NAME\s+AGE$/m);
        assert.match(table.stdout, /^get-a\s+\d+s$/m);
    });

    test('get -w -o json sees an update made after the watch started', async () => {
        s.apply(route('watched'));
        let child = null;
        const p = kubectl(s, ['get', 'httproute', 'watched', '-w', '-o', 'json'], {
            onStdout: (out, c) => {
                child = c;
                if (/"changed-by-test"/.test(out)) c.kill('SIGTERM');
            },
        });
        await s.waitForRequest(e => e.watch && e.userAgent.startsWith('kubectl') && e.query.fieldSelector === 'metadata.name=watched');
        s.patch('HTTPRoute', 'default', 'watched', { metadata: { labels: { 'changed-by-test': 'yes' } } });
        const r = await p;
        assert.match(r.stdout, /"changed-by-test": "yes"/, `kubectl saw: ${r.stdout.slice(-400)} ${r.stderr}`);
        assert.ok(child);
    });

    test('apply -f creates, then updates; generation moves only when spec changes', async () => {
        const doc = spec => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: applied
  namespace: default
  labels: {tier: ${spec.tier}}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: svc, port: ${spec.port}}]}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: applied-cm, namespace: default}
data: {a: "${spec.port}"}
`;
        let r = await kubectl(s, ['apply', '-f', writeYaml('a.yaml', doc({ tier: 'one', port: 80 }))]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /httproute.gateway.networking.k8s.io\/applied created/);
        const g1 = s.get('HTTPRoute', 'default', 'applied');
        assert.equal(g1.metadata.generation, 1);
        r = await kubectl(s, ['apply', '-f', writeYaml('a.yaml', doc({ tier: 'two', port: 80 }))]);
        assert.equal(r.code, 0, r.stderr);
        const g2 = s.get('HTTPRoute', 'default', 'applied');
        assert.equal(g2.metadata.labels.tier, 'two');
        assert.equal(g2.metadata.generation, 1, 'a label change is not a spec change');
        assert.notEqual(g2.metadata.resourceVersion, g1.metadata.resourceVersion);
        r = await kubectl(s, ['apply', '-f', writeYaml('a.yaml', doc({ tier: 'two', port: 81 }))]);
        assert.equal(r.code, 0, r.stderr);
        const g3 = s.get('HTTPRoute', 'default', 'applied');
        assert.equal(g3.metadata.generation, 2);
        assert.equal(g3.spec.rules[0].backendRefs[0].port, 81);
        assert.equal(s.get('ConfigMap', 'default', 'applied-cm').data.a, '81');
        /* The same file again changes nothing: no new resourceVersion. */
        r = await kubectl(s, ['apply', '-f', writeYaml('a.yaml', doc({ tier: 'two', port: 81 }))]);
        assert.match(r.stdout, /unchanged/);
        assert.equal(s.get('HTTPRoute', 'default', 'applied').metadata.resourceVersion, g3.metadata.resourceVersion);
        const patches = s.requests({ method: 'PATCH', path: '/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes/applied' });
        assert.ok(patches.length >= 2 && patches.every(e => e.contentType.startsWith('application/merge-patch+json')));
        const cmPatch = s.requests({ method: 'PATCH', path: '/api/v1/namespaces/default/configmaps/applied-cm' });
        assert.ok(cmPatch.length && cmPatch.every(e => e.contentType.startsWith('application/strategic-merge-patch+json')));
    });

    test('apply --server-side creates and updates', async () => {
        const doc = port => `apiVersion: v1\nkind: Service\nmetadata: {name: ssa, namespace: default}\nspec:\n  ports: [{name: http, port: ${port}}]\n`;
        let r = await kubectl(s, ['apply', '--server-side', '-f', writeYaml('ssa.yaml', doc(80))]);
        assert.equal(r.code, 0, r.stderr);
        r = await kubectl(s, ['apply', '--server-side', '-f', writeYaml('ssa.yaml', doc(90))]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(s.get('Service', 'default', 'ssa').spec.ports[0].port, 90);
        assert.ok(s.requests({ method: 'PATCH', path: '/api/v1/namespaces/default/services/ssa' }).every(e => e.contentType.startsWith('application/apply-patch+yaml')));
    });

    test('wait --for=condition=Accepted ends when the test writes the condition through /status', async () => {
        s.apply({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'gw', namespace: 'default' }, spec: { gatewayClassName: 'ssegate', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] } });
        const p = kubectl(s, ['wait', '--for=condition=Accepted', 'gateway/gw', '--timeout=15s']);
        await s.waitForRequest(e => e.watch && e.userAgent.startsWith('kubectl') && e.query.fieldSelector === 'metadata.name=gw');
        const gen = s.get('Gateway', 'default', 'gw').metadata.generation;
        const r0 = await api(s, 'PATCH', '/apis/gateway.networking.k8s.io/v1/namespaces/default/gateways/gw/status',
            { status: { conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: '', observedGeneration: gen, lastTransitionTime: new Date().toISOString().replace(/\.\d+Z/, 'Z') }] } },
            { contentType: 'application/merge-patch+json' });
        assert.equal(r0.status, 200);
        const r = await p;
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /gateway.gateway.networking.k8s.io\/gw condition met/);
        assert.equal(s.get('Gateway', 'default', 'gw').metadata.generation, gen, 'a status write never moves generation');
    });

    test('describe shows an HTTPRoute status written through /status (events looked up by field selectors)', async () => {
        s.apply(route('described'));
        const cur = s.get('HTTPRoute', 'default', 'described');
        const st = { parents: [{ parentRef: { name: 'gw' }, controllerName: 'ssegate.io/gateway-controller', conditions: [{ type: 'Accepted', status: 'False', reason: 'NotAllowedByListeners', message: 'no listener allows routes from default', observedGeneration: 1, lastTransitionTime: '2026-01-01T00:00:00Z' }] }] };
        const w = await api(s, 'PUT', '/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes/described/status', { ...cur, status: st });
        assert.equal(w.status, 200);
        const r = await kubectl(s, ['describe', 'httproute', 'described']);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /Reason:\s+NotAllowedByListeners/);
        assert.match(r.stdout, /Controller Name:\s+ssegate.io\/gateway-controller/);
        const ev = s.requests({ path: '/api/v1/namespaces/default/events' }).pop();
        assert.match(ev.query.fieldSelector, /involvedObject.name=described/);
        assert.equal(ev.status, 200);
    });

    test('a CRD installed at run time appears in discovery and serves its kind', async () => {
        const t = await sim({ policyCrds: ['RoutePolicy'] });
        let r = await kubectl(t, ['get', 'healthcheckpolicies']);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /the server doesn't have a resource type "healthcheckpolicies"/);
        assert.equal((await api(t, 'GET', '/apis/alb.networking.azure.io/v1/healthcheckpolicies')).status, 404);
        r = await kubectl(t, ['apply', '-f', path.join(repoRoot, 'deploy/kubernetes/crds/healthcheckpolicies.yaml')]);
        assert.equal(r.code, 0, r.stderr);
        r = await kubectl(t, ['wait', '--for=condition=Established', 'crd/healthcheckpolicies.alb.networking.azure.io', '--timeout=10s']);
        assert.equal(r.code, 0, r.stderr);
        r = await kubectl(t, ['get', 'healthcheckpolicies', '-A', '-o', 'json']);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(JSON.parse(r.stdout).items, []);
        const list = await api(t, 'GET', '/apis/alb.networking.azure.io/v1');
        assert.ok(list.body.resources.some(x => x.name === 'healthcheckpolicies/status'));
        /* Deleting the CRD removes the kind and its objects. */
        t.apply({ apiVersion: 'alb.networking.azure.io/v1', kind: 'HealthCheckPolicy', metadata: { name: 'h', namespace: 'default' }, spec: { targetRef: { group: '', kind: 'Service', name: 'svc' }, default: { interval: '5s' } } });
        r = await kubectl(t, ['delete', 'crd', 'healthcheckpolicies.alb.networking.azure.io']);
        assert.equal(r.code, 0, r.stderr);
        assert.equal((await api(t, 'GET', '/apis/alb.networking.azure.io/v1/healthcheckpolicies')).status, 404);
    });

    test('every YAML in deploy/ parses and is accepted by kubectl apply --dry-run=server', async () => {
        const dir = path.join(repoRoot, 'deploy/kubernetes');
        const files = [];
        const walk = d => {
            for (const f of fs.readdirSync(d)) {
                const p = path.join(d, f);
                if (fs.statSync(p).isDirectory()) walk(p);
                else if (/\.ya?ml$/.test(f)) files.push(p);
            }
        };
        walk(dir);
        assert.ok(files.length >= 5, `deploy/kubernetes has ${files.length} YAML files`);
        const t = await sim({ policyCrds: false });
        t.ensureNamespace('ssegate-system');
        for (const f of files) {
            const docs = readYamlDocs(fs.readFileSync(f, 'utf8'));
            assert.ok(docs.length, `${f}: no documents`);
            const r = await kubectl(t, ['create', '--dry-run=client', '-o', 'yaml', '-f', f]);
            assert.equal(r.code, 0, `${f}: ${r.stderr}`);
        }
        /* kubesim does not validate schemas, so check here the rules a real API server applies to CRD schemas
           ("structural schema"): every node has a type (or preserves unknown fields), list-map keys are required
           in the items, and the status subresource has a status property. */
        const checkNode = (node, where) => {
            assert.ok(node.type || node['x-kubernetes-preserve-unknown-fields'] || node['x-kubernetes-int-or-string'], `${where}: no type`);
            for (const [k, v] of Object.entries(node.properties || {})) checkNode(v, `${where}.${k}`);
            if (node.items) checkNode(node.items, `${where}[]`);
            for (const key of node['x-kubernetes-list-map-keys'] || []) assert.ok(node.items.required?.includes(key), `${where}: map key ${key} not required`);
            if (node.enum) for (const e of node.enum) assert.equal(typeof e, node.type === 'integer' ? 'number' : node.type, `${where}: enum ${e}`);
        };
        for (const f of fs.readdirSync(path.join(dir, 'crds'))) {
            for (const crd of readYamlDocs(fs.readFileSync(path.join(dir, 'crds', f), 'utf8'))) {
                assert.equal(crd.metadata.name, `${crd.spec.names.plural}.${crd.spec.group}`);
                assert.equal(crd.spec.versions.filter(v => v.storage).length, 1, `${f}: one storage version`);
                for (const v of crd.spec.versions) {
                    const root = v.schema.openAPIV3Schema;
                    checkNode(root, `${f}:${v.name}`);
                    if (v.subresources?.status) assert.ok(root.properties.status, `${f}: status subresource without a status property`);
                    assert.ok(root.properties.spec.required.includes(crd.spec.names.kind === 'BackendLoadBalancingPolicy' ? 'targetRefs' : 'targetRef'));
                }
            }
        }
        /* The CRDs for real, then everything else dry-run on the server. */
        const r1 = await kubectl(t, ['apply', '-f', path.join(dir, 'crds')]);
        assert.equal(r1.code, 0, r1.stderr);
        const r2 = await kubectl(t, ['apply', '--dry-run=server', '-R', '-f', dir]);
        assert.equal(r2.code, 0, r2.stderr);
        for (const o of ['gatewayclass.gateway.networking.k8s.io/ssegate', 'clusterrole.rbac.authorization.k8s.io/ssegate', 'role.rbac.authorization.k8s.io/ssegate-leader-election', 'serviceaccount/ssegate', 'deployment.apps/ssegate', 'service/ssegate']) {
            assert.match(r2.stdout, new RegExp(`^${o.replace(/[./]/g, '\\$&')} created \\(server dry run\\)$`, 'm'));
        }
        assert.equal(t.get('Deployment', 'ssegate-system', 'ssegate'), null, 'a dry run stores nothing');
    });
});

describe('@kubernetes/client-node informer against kubesim', () => {
    test('initial list, add/update/delete events, and a relist after 410', async () => {
        const s = await sim({ bookmarkIntervalMs: 200 });
        s.apply([route('inf-a'), route('inf-b')]);
        const kc = new k8s.KubeConfig();
        kc.loadFromFile(s.kubeconfigPath);
        const api2 = kc.makeApiClient(k8s.CustomObjectsApi);
        const listFn = () => api2.listNamespacedCustomObject({ group: 'gateway.networking.k8s.io', version: 'v1', namespace: 'default', plural: 'httproutes' });
        const inf = k8s.makeInformer(kc, '/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes', listFn);
        const events = [];
        for (const t of ['add', 'update', 'delete', 'error']) inf.on(t, o => events.push([t, o?.metadata?.name, o?.metadata?.resourceVersion]));
        await inf.start();
        track(() => inf.stop());
        const names = () => inf.list().map(o => o.metadata.name).sort();
        assert.deepEqual(names(), ['inf-a', 'inf-b']);
        await s.waitForRequest(e => e.watch && /httproutes/.test(e.path));
        s.apply(route('inf-c'));
        s.patch('HTTPRoute', 'default', 'inf-a', { spec: { hostnames: ['a.example'] } });
        s.delete('HTTPRoute', 'default', 'inf-b');
        await waitFor(() => events.some(e => e[0] === 'delete' && e[1] === 'inf-b'), 5000, 'the delete event');
        assert.deepEqual(events.filter(e => e[0] !== 'error').map(e => `${e[0]} ${e[1]}`), ['add inf-a', 'add inf-b', 'add inf-c', 'update inf-a', 'delete inf-b']);
        assert.deepEqual(names(), ['inf-a', 'inf-c']);

        /* History compacted and the watch cut: the informer's new watch from its old RV gets the in-band 410,
           it relists, and the relist turns the object that vanished meanwhile into a delete. */
        const lists = s.requests({ method: 'GET', path: '/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes' }).filter(e => !e.watch).length;
        const stale = inf.latestResourceVersion();
        s.faults.add({ resource: 'httproutes', watch: true, action: 'stall', afterEvents: 0 });
        s.dropWatches({ graceful: true });
        await s.waitForRequest(e => e.watch && e.query.resourceVersion === stale);
        s.delete('HTTPRoute', 'default', 'inf-c');
        s.apply(route('inf-d'));
        s.compact();
        s.dropWatches({ graceful: true });
        await waitFor(() => names().join() === 'inf-a,inf-d', 5000, `relist to converge (now ${names()})`);
        assert.ok(events.some(e => e[0] === 'delete' && e[1] === 'inf-c'), 'the relist turned the vanished object into a delete');
        const relists = s.requests({ method: 'GET', path: '/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes' }).filter(e => !e.watch).length;
        assert.equal(relists, lists + 1);
        const expired = s.requests({ path: '/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes', watch: true }).filter(e => Number(e.query.resourceVersion) <= Number(stale) + 1);
        assert.ok(expired.length >= 2);
    });
});

describe('API semantics', () => {
    let s;
    before(async () => {
        s = await sim({ bookmarkIntervalMs: 100000 });
    });
    const base = '/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes';

    test('HTTPS with an IP SAN for 127.0.0.1, signed by the CA of sim.caPem', async () => {
        const r = await api(s, 'GET', '/version');
        assert.equal(r.status, 200);
        assert.match(r.body.gitVersion, /^v1\./);
        await assert.rejects(new Promise((resolve, reject) => https.get(`${s.url}/version`, resolve).on('error', reject)), /self-signed|unable to verify|UNABLE_TO_GET_ISSUER/);
    });

    test('tokens: anonymous 403, a bad token 401, rotation with and without grace', async () => {
        assert.equal((await api(s, 'GET', base, undefined, { token: null })).status, 403);
        assert.equal((await api(s, 'GET', base, undefined, { token: 'nope' })).status, 401);
        const old = s.token;
        const t2 = s.rotateToken({ graceMs: 60000 });
        assert.equal(fs.readFileSync(s.tokenPath, 'utf8'), t2);
        assert.equal(fs.readFileSync(path.join(s.serviceAccountDir, 'token'), 'utf8'), t2);
        assert.equal((await api(s, 'GET', base, undefined, { token: old })).status, 200, 'within the grace period');
        s.rotateToken();
        const r = await api(s, 'GET', base, undefined, { token: t2 });
        assert.equal(r.status, 401);
        assert.equal(r.body.reason, 'Unauthorized');
        assert.equal((await api(s, 'GET', base)).status, 200);
        const log = s.requests({ path: base });
        assert.deepEqual(log.slice(-2).map(e => e.auth), ['rejected', 'ok']);
        assert.equal(log[log.length - 2].token, t2);
    });

    test('paged LIST: one snapshot RV over the pages, continue tokens, 410 once compacted', async () => {
        for (let i = 0; i < 7; i++) s.apply(route(`page-${i}`, { metadata: { labels: { page: 'yes' } } }));
        const first = await api(s, 'GET', `${base}?limit=3&labelSelector=page%3Dyes`);
        assert.equal(first.status, 200);
        assert.equal(first.body.items.length, 3);
        assert.equal(first.body.items[0].kind, 'HTTPRoute');
        const rv = first.body.metadata.resourceVersion;
        s.apply(route('page-9', { metadata: { labels: { page: 'yes' } } }));
        s.delete('HTTPRoute', 'default', 'page-5');
        let names = first.body.items.map(i => i.metadata.name);
        let cont = first.body.metadata.continue;
        while (cont) {
            const r = await api(s, 'GET', `${base}?limit=3&labelSelector=page%3Dyes&continue=${encodeURIComponent(cont)}`);
            assert.equal(r.status, 200);
            assert.equal(r.body.metadata.resourceVersion, rv, 'every page has the first page\'s RV');
            names = names.concat(r.body.items.map(i => i.metadata.name));
            cont = r.body.metadata.continue;
        }
        assert.deepEqual(names, ['page-0', 'page-1', 'page-2', 'page-3', 'page-4', 'page-5', 'page-6'], 'the snapshot: page-5 still there, page-9 not yet');
        const again = await api(s, 'GET', `${base}?limit=3&labelSelector=page%3Dyes`);
        s.apply(route('page-10'));
        s.compact();
        const gone = await api(s, 'GET', `${base}?limit=3&labelSelector=page%3Dyes&continue=${encodeURIComponent(again.body.metadata.continue)}`);
        assert.equal(gone.status, 410);
        assert.equal(gone.body.reason, 'Expired');
        /* resourceVersion=0 is served from the "watch cache": the limit is ignored, as the real server does. */
        const rv0 = await api(s, 'GET', `${base}?limit=2&resourceVersion=0&labelSelector=page%3Dyes`);
        assert.equal(rv0.body.items.length, 7);
        assert.equal(rv0.body.metadata.continue, undefined);
        const bad = await api(s, 'GET', `${base}?fieldSelector=spec.foo%3Dx`);
        assert.equal(bad.status, 400);
        const byName = await api(s, 'GET', `/apis/gateway.networking.k8s.io/v1/httproutes?fieldSelector=metadata.name%3Dpage-1,metadata.namespace%3Ddefault`);
        assert.deepEqual(byName.body.items.map(i => i.metadata.name), ['page-1']);
    });

    test('writes: 409 on a stale resourceVersion, generation on spec only, /status only status', async () => {
        const c = await api(s, 'POST', base, route('w1'));
        assert.equal(c.status, 201);
        assert.equal(c.body.metadata.generation, 1);
        assert.ok(c.body.metadata.uid && c.body.metadata.creationTimestamp);
        assert.equal((await api(s, 'POST', base, route('w1'))).status, 409);
        const rv1 = c.body.metadata.resourceVersion;
        const put = { ...c.body, spec: { ...c.body.spec, hostnames: ['h.example'] }, status: { parents: [{ controllerName: 'x' }] } };
        const u = await api(s, 'PUT', `${base}/w1`, put);
        assert.equal(u.status, 200);
        assert.equal(u.body.metadata.generation, 2);
        assert.equal(u.body.status, undefined, 'a main-resource write ignores status');
        const stale = await api(s, 'PUT', `${base}/w1`, put);
        assert.equal(stale.status, 409);
        assert.equal(stale.body.reason, 'Conflict');
        assert.notEqual(u.body.metadata.resourceVersion, rv1);
        const noRv = await api(s, 'PUT', `${base}/w1`, { ...put, metadata: { ...put.metadata, resourceVersion: undefined } });
        assert.equal(noRv.status, 422, 'custom resources need metadata.resourceVersion on update');
        const st = await api(s, 'PUT', `${base}/w1/status`, { ...u.body, spec: { hostnames: ['ignored'] }, status: { parents: [{ controllerName: 'ssegate.io/gateway-controller', parentRef: { name: 'gw' }, conditions: [] }] } });
        assert.equal(st.status, 200);
        assert.equal(st.body.metadata.generation, 2);
        assert.deepEqual(st.body.spec.hostnames, ['h.example'], 'a status write ignores spec');
        assert.equal(st.body.status.parents[0].controllerName, 'ssegate.io/gateway-controller');
        assert.equal((await api(s, 'PUT', `${base}/w1/status`, u.body)).status, 409);
        const mp = await api(s, 'PATCH', `${base}/w1/status`, { status: { parents: [] } }, { contentType: 'application/merge-patch+json' });
        assert.deepEqual(mp.body.status.parents, []);
        const jp = await api(s, 'PATCH', `${base}/w1`, [{ op: 'add', path: '/metadata/labels', value: { a: 'b' } }], { contentType: 'application/json-patch+json' });
        assert.equal(jp.status, 200);
        assert.equal(jp.body.metadata.generation, 2);
        const same = await api(s, 'PUT', `${base}/w1`, jp.body);
        assert.equal(same.body.metadata.resourceVersion, jp.body.metadata.resourceVersion, 'a no-op write keeps the resourceVersion');
        /* The same object with its keys in another order is still a no-op. */
        const shuffled = Object.fromEntries(Object.entries(jp.body).reverse());
        shuffled.metadata = Object.fromEntries(Object.entries(jp.body.metadata).reverse());
        assert.equal((await api(s, 'PUT', `${base}/w1`, shuffled)).body.metadata.resourceVersion, jp.body.metadata.resourceVersion);
        /* Defaults of built-in kinds: Secret stringData folded into data, Service protocol, targetPort, ClusterIP. */
        const sec = await api(s, 'POST', '/api/v1/namespaces/default/secrets', { metadata: { name: 'tls' }, type: 'kubernetes.io/tls', stringData: { 'tls.crt': 'pem' } });
        assert.deepEqual([sec.body.data, sec.body.stringData], [{ 'tls.crt': Buffer.from('pem').toString('base64') }, undefined]);
        const svc = await api(s, 'POST', '/api/v1/namespaces/default/services', { metadata: { name: 'dflt' }, spec: { ports: [{ port: 80 }] } });
        assert.deepEqual(svc.body.spec.ports, [{ port: 80, protocol: 'TCP', targetPort: 80 }]);
        assert.match(svc.body.spec.clusterIP, /^10\.96\./);
        const svc2 = await api(s, 'PUT', '/api/v1/namespaces/default/services/dflt', { metadata: { name: 'dflt' }, spec: { ports: [{ port: 80 }] } });
        assert.equal(svc2.body.metadata.resourceVersion, svc.body.metadata.resourceVersion, 'defaults do not make a change');
        const d = await api(s, 'DELETE', `${base}/w1`);
        assert.equal(d.status, 200);
        assert.equal((await api(s, 'GET', `${base}/w1`)).status, 404);
        assert.equal((await api(s, 'POST', '/api/v1/namespaces/nowhere/configmaps', { metadata: { name: 'x' } })).status, 404);
    });

    test('Leases: create, renew with the read RV, 409 for the loser of a race', async () => {
        const lp = '/apis/coordination.k8s.io/v1/namespaces/default/leases';
        const lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'ssegate' }, spec: { holderIdentity: 'a', leaseDurationSeconds: 15, acquireTime: '2026-01-01T00:00:00.000000Z', renewTime: '2026-01-01T00:00:00.000000Z', leaseTransitions: 0 } };
        assert.equal((await api(s, 'POST', lp, lease)).status, 201);
        assert.equal((await api(s, 'POST', lp, lease)).status, 409);
        const got = (await api(s, 'GET', `${lp}/ssegate`)).body;
        const a = await api(s, 'PUT', `${lp}/ssegate`, { ...got, spec: { ...got.spec, renewTime: '2026-01-01T00:00:05.000000Z' } });
        const b = await api(s, 'PUT', `${lp}/ssegate`, { ...got, spec: { ...got.spec, holderIdentity: 'b', leaseTransitions: 1 } });
        assert.equal(a.status, 200);
        assert.equal(b.status, 409);
        assert.equal(s.get('Lease', 'default', 'ssegate').spec.holderIdentity, 'a');
    });

    test('WATCH: replay from an RV, selectors turn moves into ADDED/DELETED, bookmarks, timeoutSeconds', async () => {
        const t = await sim({ bookmarkIntervalMs: 150 });
        t.apply(route('wa', { metadata: { labels: { sel: 'in' } } }));
        const rv = String(t.resourceVersion());
        t.patch('HTTPRoute', 'default', 'wa', { metadata: { labels: { sel: 'out' } } });
        t.apply(route('wb', { metadata: { labels: { sel: 'in' } } }));
        t.patch('HTTPRoute', 'default', 'wa', { metadata: { labels: { sel: 'in' } } });
        t.delete('HTTPRoute', 'default', 'wb');
        const r = await rawRequest(t, `${base}?watch=1&resourceVersion=${rv}&labelSelector=sel%3Din&allowWatchBookmarks=true&timeoutSeconds=1`, { timeoutMs: 5000 });
        assert.equal(r.status, 200);
        assert.equal(r.headers['content-type'], 'application/json');
        assert.equal(r.headers['transfer-encoding'], 'chunked');
        assert.ok(r.complete, 'the server ended the watch at timeoutSeconds');
        const evs = r.lines.filter(l => l.type !== 'BOOKMARK').map(l => `${l.type} ${l.object.metadata.name}`);
        assert.deepEqual(evs, ['DELETED wa', 'ADDED wb', 'ADDED wa', 'DELETED wb']);
        const bms = r.lines.filter(l => l.type === 'BOOKMARK');
        assert.ok(bms.length >= 2, `periodic bookmarks and one at the end: ${bms.length}`);
        assert.deepEqual(Object.keys(bms[0].object.metadata), ['resourceVersion']);
        assert.equal(bms[bms.length - 1].object.metadata.resourceVersion, String(t.resourceVersion()));
        assert.equal(r.lines[r.lines.length - 1].type, 'BOOKMARK', 'the last line is the bookmark sent at timeoutSeconds');
        /* maxWatchSeconds ends a watch before the timeoutSeconds it asked for. */
        const m = await sim({ maxWatchSeconds: 1 });
        const rm = await rawRequest(m, `${base}?watch=1&allowWatchBookmarks=true&timeoutSeconds=600`, { timeoutMs: 5000 });
        assert.ok(rm.complete && !rm.timedOut);
        assert.equal(rm.lines[rm.lines.length - 1].type, 'BOOKMARK');
        /* RV unset: the current state as ADDED events first. sendInitialEvents: then the initial-events-end bookmark. */
        const r0 = await rawRequest(t, `${base}?watch=1&timeoutSeconds=1`, { timeoutMs: 5000 });
        assert.deepEqual(r0.lines.map(l => `${l.type} ${l.object.metadata.name}`), ['ADDED wa']);
        const ri = await rawRequest(t, `${base}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&resourceVersion=&timeoutSeconds=1`, { timeoutMs: 5000 });
        assert.equal(ri.lines[0].type, 'ADDED');
        assert.equal(ri.lines[1].type, 'BOOKMARK');
        assert.equal(ri.lines[1].object.metadata.annotations['k8s.io/initial-events-end'], 'true');
    });

    test('a policy CRD absent at start: 404, then installed (discovery, LIST, WATCH), then removed (the watch ends)', async () => {
        const t = await sim({ policyCrds: ['HealthCheckPolicy'] });
        const rp = '/apis/alb.networking.azure.io/v1/namespaces/default/routepolicies';
        assert.equal((await api(t, 'GET', rp)).status, 404);
        const before = await api(t, 'GET', '/apis/alb.networking.azure.io/v1');
        assert.deepEqual(before.body.resources.map(r => r.name).sort(), ['healthcheckpolicies', 'healthcheckpolicies/status']);
        t.installCrd(path.join(repoRoot, 'deploy/kubernetes/crds/routepolicies.yaml'));
        const after = await api(t, 'GET', '/apis/alb.networking.azure.io/v1');
        assert.ok(after.body.resources.some(r => r.name === 'routepolicies' && r.kind === 'RoutePolicy' && r.namespaced));
        const l = await api(t, 'GET', rp);
        assert.equal(l.status, 200);
        assert.equal(l.body.kind, 'RoutePolicyList');
        const w = rawRequest(t, `${rp}?watch=1&resourceVersion=${l.body.metadata.resourceVersion}`, { timeoutMs: 8000 });
        await waitFor(() => t.watches().length, 3000, 'the watch');
        t.apply({ apiVersion: 'alb.networking.azure.io/v1', kind: 'RoutePolicy', metadata: { name: 'p', namespace: 'default' }, spec: { targetRef: { group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'r' }, default: { timeouts: { routeTimeout: '0s' } } } });
        await waitFor(() => t.watches()[0]?.events === 1, 3000, 'the ADDED event');
        t.uninstallCrd('routepolicies.alb.networking.azure.io');
        const r = await w;
        assert.deepEqual(r.lines.map(x => `${x.type} ${x.object.metadata.name}`), ['ADDED p', 'DELETED p']);
        assert.ok(r.complete, 'the watch ended cleanly');
        assert.equal((await api(t, 'GET', rp)).status, 404);
    });

    test('WATCH from a compacted RV: HTTP 200 and an in-band ERROR 410 Expired (or HTTP 410 when asked)', async () => {
        const rv = s.resourceVersion();
        s.apply(route('cmp'));
        s.compact();
        const r = await rawRequest(s, `${base}?watch=1&resourceVersion=${rv}&allowWatchBookmarks=true`, { timeoutMs: 5000 });
        assert.equal(r.status, 200);
        assert.equal(r.lines.length, 1);
        assert.equal(r.lines[0].type, 'ERROR');
        assert.equal(r.lines[0].object.code, 410);
        assert.equal(r.lines[0].object.reason, 'Expired');
        assert.match(r.lines[0].object.message, /too old resource version/);
        assert.ok(r.complete);
        const h = await sim({ watchExpired: 'http' });
        const rv2 = h.resourceVersion();
        h.apply(route('cmp'));
        h.compact();
        const r2 = await rawRequest(h, `${base}?watch=1&resourceVersion=${rv2}`, { timeoutMs: 5000 });
        assert.equal(r2.status, 410);
        assert.equal(JSON.parse(r2.body.toString()).reason, 'Expired');
    });
});

describe('fault injection, read with a raw HTTPS client', () => {
    let s;
    const base = '/api/v1/namespaces/default/configmaps';
    const watchUrl = rv => `${base}?watch=1&resourceVersion=${rv}&timeoutSeconds=2`;
    before(async () => {
        s = await sim({ bookmarkIntervalMs: 100000 });
    });
    /* Three events with multi-byte UTF-8 in them, written after rv. */
    const three = () => {
        const rv = s.resourceVersion();
        for (let i = 0; i < 3; i++) s.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `f${i}-${rv}`, namespace: 'default' }, data: { text: 'é€😀 ünïcödé' } });
        return rv;
    };

    test('split: every byte its own chunk (so chunk boundaries fall inside UTF-8 sequences)', async () => {
        const rv = three();
        s.faults.add({ watch: true, action: 'split', size: 1, gapMs: 0 });
        const r = await rawRequest(s, watchUrl(rv), { timeoutMs: 8000 });
        assert.equal(r.lines.length, 3);
        assert.equal(r.lines[2].object.data.text, 'é€😀 ünïcödé');
        assert.equal(r.chunks.length, r.body.length, 'one chunk per byte');
        const midUtf8 = r.chunks.filter(c => c[0] >= 0x80 && c[0] < 0xc0).length;
        assert.ok(midUtf8 >= 9, 'continuation bytes start chunks');
    });

    test('split with a gap: pieces of an event arrive in separate TCP reads', async () => {
        const rv = three();
        s.faults.add({ watch: true, action: 'split', size: 40, gapMs: 15 });
        const r = await rawRequest(s, watchUrl(rv), { timeoutMs: 8000 });
        assert.equal(r.lines.length, 3);
        const partial = r.reads.filter(b => !b.toString('latin1').includes('\n{') && !b.toString('latin1').endsWith('\n\r\n'));
        assert.ok(partial.length >= 3, 'reads that end mid-event');
        assert.ok(r.chunks.every(c => c.length <= 40));
    });

    test('merge: several events in one chunk', async () => {
        const rv = three();
        s.faults.add({ watch: true, action: 'merge', count: 3 });
        const r = await rawRequest(s, watchUrl(rv), { timeoutMs: 8000 });
        assert.equal(r.lines.length, 3);
        assert.equal(r.chunks.length, 1);
        assert.equal(r.chunks[0].toString().split('\n').filter(Boolean).length, 3);
    });

    test('rechunk: chunk boundaries unrelated to event boundaries', async () => {
        const rv = three();
        s.faults.add({ watch: true, action: 'rechunk', size: 100 });
        const r = await rawRequest(s, watchUrl(rv), { timeoutMs: 8000 });
        assert.equal(r.lines.length, 3);
        assert.ok(r.chunks.slice(0, -1).every(c => c.length === 100));
        assert.ok(r.chunks.some(c => c.includes('\n') && c.indexOf('\n') < c.length - 1), 'a chunk ending one event and starting the next');
    });

    test('cut: the connection drops after N events, also mid-event', async () => {
        const rv = three();
        s.faults.add({ watch: true, action: 'cut', afterEvents: 1 });
        const r = await rawRequest(s, watchUrl(rv), { timeoutMs: 8000 });
        assert.equal(r.lines.length, 1);
        assert.ok(r.closed && !r.complete, 'closed without the last chunk');
        s.faults.add({ watch: true, action: 'cut', afterEvents: 2, midEvent: true });
        const m = await rawRequest(s, watchUrl(rv), { timeoutMs: 8000 });
        assert.equal(m.lines.length, 2);
        assert.ok(m.body.length > Buffer.concat(m.chunks.slice(0, 2)).length || !m.body.toString().endsWith('\n'), 'half an event after the last complete one');
        assert.ok(m.closed && !m.complete);
    });

    test('stall: after N events nothing more, not even the end at timeoutSeconds', async () => {
        const rv = three();
        s.faults.add({ watch: true, action: 'stall', afterEvents: 1 });
        const r = await rawRequest(s, watchUrl(rv), { timeoutMs: 3500 });
        assert.equal(r.lines.length, 1);
        assert.ok(r.timedOut && !r.complete && !r.closed);
    });

    test('error: an in-band ERROR 500 after N events, then the end', async () => {
        const rv = three();
        s.faults.add({ watch: true, action: 'error', afterEvents: 2 });
        const r = await rawRequest(s, watchUrl(rv), { timeoutMs: 8000 });
        assert.deepEqual(r.lines.map(l => l.type), ['ADDED', 'ADDED', 'ERROR']);
        assert.equal(r.lines[2].object.code, 500);
        assert.ok(r.complete);
    });

    test('hang: accepted, never answered; drop: closed with no response; truncate: half a body', async () => {
        s.faults.add({ path: base, action: 'hang' });
        const h = await rawRequest(s, base, { timeoutMs: 1000 });
        assert.ok(h.timedOut && h.status === 0);
        s.faults.add({ path: base, action: 'drop' });
        const d = await rawRequest(s, base, { timeoutMs: 5000 });
        assert.ok(d.closed && d.status === 0);
        s.faults.add({ path: base, list: true, action: 'truncate' });
        const t = await rawRequest(s, base, { timeoutMs: 5000 });
        assert.equal(t.status, 200);
        assert.ok(t.closed && !t.complete);
        assert.equal((await rawRequest(s, base)).status, 200, 'faults are used up');
    });

    test('delay: a delayed request is answered after one sent later', async () => {
        s.faults.add({ path: base, list: true, action: 'delay', delayMs: 2000 });
        const order = [];
        const slow = rawRequest(s, base).then(r => order.push(['slow', r.status]));
        await s.waitForRequest(e => e.path === base && !e.watch && e.status === null);
        await rawRequest(s, base).then(r => order.push(['fast', r.status]));
        await slow;
        assert.deepEqual(order, [['fast', 200], ['slow', 200]]);
    });

    test('429 with Retry-After, 500, and a fault that stays for several requests', async () => {
        const f = s.faults.add({ resource: 'configmaps', action: 'status', code: 429, retryAfter: 3, times: 2 });
        const a = await rawRequest(s, base);
        assert.equal(a.status, 429);
        assert.equal(a.headers['retry-after'], '3');
        assert.equal(JSON.parse(a.body.toString()).reason, 'TooManyRequests');
        assert.equal((await rawRequest(s, base)).status, 429);
        assert.equal((await rawRequest(s, base)).status, 200);
        assert.equal(f.hits, 2);
        s.faults.add({ watch: true, action: 'status', code: 500 });
        assert.equal((await rawRequest(s, watchUrl(0))).status, 500);
    });

    test('dropWatches: every open watch is cut', async () => {
        const p = rawRequest(s, `${base}?watch=1&timeoutSeconds=30`, { timeoutMs: 8000 });
        await waitFor(() => s.watches().length, 3000, 'the watch');
        s.dropWatches();
        const r = await p;
        assert.ok(r.closed && !r.complete && !r.timedOut);
    });

    test('going away and coming back on the same port, same CA, with changed objects', async () => {
        const port = await freePort();
        const t = await sim({ port });
        t.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'before', namespace: 'default' } });
        const p = rawRequest(t, `${base}?watch=1&timeoutSeconds=30`, { timeoutMs: 8000 });
        await waitFor(() => t.watches().length, 3000, 'the watch');
        const rv = t.resourceVersion();
        await t.stop();
        const cut = await p;
        assert.ok(cut.closed && !cut.complete);
        assert.equal((await rawRequest(t, base, { timeoutMs: 2000 })).status, 0, 'nothing listens');
        t.delete('ConfigMap', 'default', 'before');
        t.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'after', namespace: 'default' } });
        await t.start({ loseHistory: true });
        assert.equal(t.port, port);
        const l = await rawRequest(t, base);
        assert.deepEqual(JSON.parse(l.body.toString()).items.map(i => i.metadata.name), ['after']);
        const w = await rawRequest(t, `${base}?watch=1&resourceVersion=${rv}`, { timeoutMs: 5000 });
        assert.equal(w.lines[0].type, 'ERROR', 'history lost on restart: a watch from before gets 410');
        assert.equal(w.lines[0].object.code, 410);
    });

    test('the request log has method, path, query, user agent and token', async () => {
        await rawRequest(s, `${base}?watch=1&allowWatchBookmarks=true&timeoutSeconds=1`, { headers: { 'User-Agent': 'ssegate/test' } });
        const e = s.requests({ watch: true }).pop();
        assert.equal(e.method, 'GET');
        assert.equal(e.path, base);
        assert.equal(e.query.timeoutSeconds, '1');
        assert.equal(e.userAgent, 'ssegate/test');
        assert.equal(e.token, s.token);
        assert.equal(e.status, 200);
    });
});

describe('HTTP/2, offered by ALPN as kube-apiserver does (http2: true)', () => {
    /* One stream on an HTTP/2 session: {status, frames: [Buffer], lines, ended, reset}. */
    function h2watch(sess, s, p, { until } = {}) {
        return new Promise(resolve => {
            const st = { status: 0, frames: [], lines: [], ended: false, reset: false };
            let buf = '';
            const req = sess.request({ ':path': p, authorization: `Bearer ${s.token}`, accept: 'application/json' });
            req.on('response', h => { st.status = h[':status']; });
            req.on('data', d => {
                st.frames.push(d);
                buf += d.toString('latin1');
                let i;
                while ((i = buf.indexOf('\n')) >= 0) {
                    st.lines.push(JSON.parse(Buffer.from(buf.slice(0, i), 'latin1').toString('utf8')));
                    buf = buf.slice(i + 1);
                }
                if (until && until(st)) req.close();
            });
            req.on('end', () => { st.ended = true; });
            req.on('error', () => { st.reset = true; });
            req.on('close', () => {
                if (req.rstCode && req.rstCode !== http2.constants.NGHTTP2_NO_ERROR) st.reset = true;
                resolve(st);
            });
            st.req = req;
        });
    }

    test('kubectl speaks HTTP/2 to it, every request on one connection', { skip: noKubectl }, async () => {
        const s = await sim({ http2: true });
        const r = await kubectl(s, ['get', 'httproutes,gateways,services', '-A', '-o', 'json']);
        assert.equal(r.code, 0, r.stderr);
        const log = s.requests();
        assert.ok(log.length > 5);
        assert.deepEqual([...new Set(log.map(e => e.httpVersion))], ['2.0']);
        assert.equal(new Set(log.map(e => e.conn)).size, 1);
    });

    test('watches multiplexed on one connection: a stream reset spares the others, a connection drop ends all', async () => {
        const s = await sim({ http2: true });
        const sess = http2.connect(s.url, { ca: s.caPem });
        sess.on('error', () => {});
        track(() => sess.destroy());
        const base = '/api/v1/namespaces/default/configmaps';
        s.faults.add({ watch: true, action: 'cut', afterEvents: 1, scope: 'stream' });
        const a = h2watch(sess, s, `${base}?watch=1&timeoutSeconds=30`);
        await waitFor(() => s.watches().length === 1, 3000, 'watch a');
        const b = h2watch(sess, s, `${base}?watch=1&timeoutSeconds=30`);
        await waitFor(() => s.watches().length === 2, 3000, 'watch b');
        s.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'm1', namespace: 'default' } });
        s.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'm2', namespace: 'default' } });
        const ra = await a;
        assert.ok(ra.reset && !ra.ended, 'stream a was reset');
        assert.equal(ra.lines.length, 1);
        await waitFor(() => s.watches().length === 1, 3000, 'watch a gone');
        s.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'm3', namespace: 'default' } });
        await waitFor(() => s.watches()[0]?.events === 3, 3000, 'watch b to get three events');
        assert.equal(new Set(s.requests({ watch: true }).map(e => e.conn)).size, 1, 'both watches on one connection');
        const sessClosed = new Promise(r => sess.on('close', r));
        s.dropWatches();
        const rb = await b;
        assert.deepEqual(rb.lines.map(l => l.object.metadata.name), ['m1', 'm2', 'm3']);
        await sessClosed;
    });

    test('split over HTTP/2: each piece its own DATA frame', async () => {
        const s = await sim({ http2: true });
        s.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', namespace: 'default' }, data: { t: 'é€😀' } });
        const sess = http2.connect(s.url, { ca: s.caPem });
        sess.on('error', () => {});
        track(() => sess.destroy());
        s.faults.add({ watch: true, action: 'split', size: 16, gapMs: 5 });
        const r = await h2watch(sess, s, '/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1');
        assert.equal(r.status, 200);
        assert.equal(r.lines.length, 1);
        assert.equal(r.lines[0].object.data.t, 'é€😀');
        const total = r.frames.reduce((n, f) => n + f.length, 0);
        assert.ok(r.frames.length >= Math.floor(total / 16) && r.frames.every(f => f.length <= 16), `${r.frames.length} frames for ${total} bytes`);
    });
});
