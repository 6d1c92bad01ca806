// kube-util.mjs: kubesim plus an ssegate watching it (--kubeconfig or --kube), and builders of the objects a test
// applies: a GatewayClass of ours, a Gateway, HTTPRoutes, Services with their EndpointSlices.
import { startApiServer } from '../../kube/apiserver.mjs';
import { SLOW, freePort, sleep, startGateway, track } from './harness.mjs';
import { scrape } from './prod-util.mjs';

export const CONTROLLER = 'ssegate.io/gateway-controller';

export async function startSim(opts = {}) {
    const sim = await startApiServer({ bookmarkIntervalMs: 2000, ...opts });
    track(() => sim.close());
    return sim;
}

/* ssegate watching sim. mode: 'kubeconfig' (default) or 'incluster' (--kube with the simulator's service account). */
export async function startKubeGateway(sim, { mode = 'kubeconfig', args = [], env = {}, waitReady = true } = {}) {
    const admin = await freePort();
    const src =
        mode === 'incluster' ? ['--kube', '--kube-sa-dir', sim.serviceAccountDir] : ['--kubeconfig', sim.kubeconfigPath];
    const gw = await startGateway({
        noConfig: true,
        args: [...src, '--admin', `127.0.0.1:${admin}`, '--access-log', 'off', '--workers', '2', ...args],
        env: mode === 'incluster' ? { ...sim.inClusterEnv(), ...env } : env,
        waitPorts: [admin],
    });
    gw.admin = admin;
    if (waitReady) await waitFor(async () => (await readyStatus(admin)) === 200, 15000 * SLOW, 'ssegate /ready 200', gw);
    return gw;
}

export async function readyStatus(admin) {
    try {
        /* Bounded: an admin port that accepts and never answers must fail waitFor (with the log), not hang the test. */
        const r = await fetch(`http://127.0.0.1:${admin}/ready`, { signal: AbortSignal.timeout(5000) });
        await r.text();
        return r.status;
    } catch {
        return 0;
    }
}

export async function kubeMetric(admin, name, labels = {}) {
    return (await scrape(admin)).get(name, labels);
}

/* Polls fn until it returns a truthy value; fails with what (and the gateway's log) after ms. */
export async function waitFor(fn, ms, what, gw) {
    const deadline = Date.now() + ms;
    let last;
    for (;;) {
        try {
            last = await fn();
            if (last) return last;
        } catch (e) {
            last = e;
        }
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last})${gw ? `\n${gw.logs()}` : ''}`);
        await sleep(50);
    }
}

export function gatewayClass(name = 'ssegate', controllerName = CONTROLLER) {
    return { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name }, spec: { controllerName } };
}

export function gateway(name, port, { ns = 'default', className = 'ssegate' } = {}) {
    return {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'Gateway',
        metadata: { name, namespace: ns },
        spec: {
            gatewayClassName: className,
            listeners: [{ name: 'http', port, protocol: 'HTTP', allowedRoutes: { namespaces: { from: 'All' } } }],
        },
    };
}

/* rules: [{path, service, port = 80}] */
export function route(name, rules, { ns = 'default', parents = [{ name: 'gw' }] } = {}) {
    return {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'HTTPRoute',
        metadata: { name, namespace: ns },
        spec: {
            parentRefs: parents,
            rules: rules.map(r => ({
                matches: [{ path: { type: 'PathPrefix', value: r.path } }],
                backendRefs: [{ name: r.service, port: r.port || 80 }],
            })),
        },
    };
}

export function service(name, { ns = 'default', port = 80 } = {}) {
    return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns }, spec: { ports: [{ name: 'http', port }] } };
}

/* endpoints: [{port, ip = '127.0.0.1', ready = true, serving, terminating}]; one slice may carry one port only, so
 * each endpoint port gets its own slice named `${name}-${port}`. Returns the slices. */
export function slices(svc, endpoints, { ns = 'default' } = {}) {
    const byPort = new Map();
    for (const e of endpoints) {
        if (!byPort.has(e.port)) byPort.set(e.port, []);
        const conditions = { ready: e.ready !== false };
        if (e.serving !== undefined) conditions.serving = e.serving;
        if (e.terminating !== undefined) conditions.terminating = e.terminating;
        byPort.get(e.port).push({ addresses: [e.ip || '127.0.0.1'], conditions });
    }
    return [...byPort.entries()].map(([port, eps]) => ({
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name: `${svc}-${port}`, namespace: ns, labels: { 'kubernetes.io/service-name': svc } },
        addressType: 'IPv4',
        endpoints: eps,
        ports: [{ name: 'http', port }],
    }));
}
