// fail-closed.test.mjs: configs that look supported but are not. Each one is refused, with FILE:LINE:COL on the
// offending line and exit 1, by --check and at start; none of them may load and serve less than it says. Kinds
// with no meaning for the gateway (TLSRoute, TCPRoute, UDPRoute, Ingress, GatewayClass) are skipped with a warning.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { makeCert, secretYaml } from '../h2probe/tlsconf.mjs';
import { freePort, runGateway, setup, writeTemp } from './lib/harness.mjs';

setup();
let cert;
before(() => {
    cert = makeCert('gw.test');
});

const GW = 'gateway.networking.k8s.io';

/* One HTTP and one HTTPS listener, a route with one rule, a Service; each case edits or extends it. */
const base = (port, tlsPort) => `apiVersion: ${GW}/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: ssegate
  addresses: [{type: IPAddress, value: 127.0.0.1}]
  listeners:
  - {name: http, protocol: HTTP, port: ${port}}
  - name: https
    protocol: HTTPS
    port: ${tlsPort}
    tls:
      mode: Terminate
      certificateRefs: [{kind: Secret, name: cert}]
---
${secretYaml('cert', cert)}---
apiVersion: ${GW}/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: svc, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: svc}
spec: {ports: [{name: http, port: 80}]}
`;

const doc = text => `---\n${text}`;
const afterLine = (needle, insert) => y => {
    assert.ok(y.includes(needle), `test setup: no "${needle}"`);
    return y.replace(needle, needle + insert);
};
const ALB = 'alb.networking.azure.io/v1';
const svcTarget = 'targetRefs: [{kind: Service, name: svc}]';

/* what: the feature; edit: base -> config; marker: text on the line that must be named; msg: the refusal. */
const refused = [
    {
        /* Served since frontend mTLS (mtls.test.mjs); what stays refused is a validation that cannot be enforced. */
        what: 'Gateway spec.tls client-certificate validation whose CA ConfigMap is not in the config',
        edit: afterLine('  gatewayClassName: ssegate\n', '  tls:\n    frontend:\n      default:\n        validation:\n' +
            '          caCertificateRefs: [{kind: ConfigMap, name: ca}]\n'),
        marker: 'caCertificateRefs', msg: /caCertificateRef to ConfigMap default\/ca \(InvalidCACertificateRef\): no such object/,
    },
    {
        /* Served since TLS to backends (backend-tls.test.mjs); a client certificate that is not there is refused. */
        what: 'Gateway spec.tls.backend whose client certificate Secret is not in the config',
        edit: afterLine('  gatewayClassName: ssegate\n', '  tls:\n    backend: {clientCertificateRef: {name: client}}\n'),
        marker: 'clientCertificateRef', msg: /spec\.tls\.backend: clientCertificateRef to Secret default\/client \(InvalidCertificateRef\): no such/,
    },
    {
        what: 'Gateway spec.backendTLS',
        edit: afterLine('  gatewayClassName: ssegate\n', '  backendTLS: {clientCertificateRef: {name: client}}\n'),
        marker: 'backendTLS', msg: /Gateway spec\.backendTLS .*use spec\.tls\.backend\.clientCertificateRef/,
    },
    {
        what: 'listener tls.frontendValidation (the older form), naming the current one',
        edit: afterLine('      mode: Terminate\n', '      frontendValidation: {caCertificateRefs: [{kind: ConfigMap, name: ca}]}\n'),
        marker: 'frontendValidation', msg: /tls\.frontendValidation .*use the current one, Gateway spec\.tls\.frontend\.default\.validation/,
    },
    {
        what: 'listener tls.options that ssegate does not know',
        edit: afterLine('      mode: Terminate\n', '      options: {gateway.envoyproxy.io/min-version: "1.3"}\n'),
        marker: 'min-version', msg: /listener tls\.options: unknown field "gateway\.envoyproxy\.io\/min-version"/,
    },
    {
        what: 'listener tls.mode Passthrough',
        edit: y => y.replace('mode: Terminate', 'mode: Passthrough'),
        marker: 'Passthrough', msg: /tls\.mode "Passthrough" not supported/,
    },
    {
        /* HTTPRoute and GRPCRoute are served (grpc.test.mjs); other route kinds are not. */
        what: 'listener allowedRoutes kinds: TLSRoute',
        edit: y => y.replace(/(\{name: http, protocol: HTTP, port: \d+)\}/, '$1, allowedRoutes: {kinds: [{kind: TLSRoute}]}}'),
        marker: 'TLSRoute', msg: /InvalidRouteKinds/,
    },
    {
        /* GRPCRoute is served (grpc.test.mjs); its filters that ssegate does not build are refused, not ignored. */
        what: 'a GRPCRoute with a RequestMirror filter',
        edit: y => y + doc(`apiVersion: ${GW}/v1\nkind: GRPCRoute\nmetadata: {name: g}\nspec:\n  parentRefs: [{name: gw}]\n  hostnames: [grpc.test]\n  rules:\n  - filters:\n    - type: RequestMirror\n      requestMirror: {backendRef: {name: svc, port: 80}}\n    backendRefs: [{name: svc, port: 80}]\n`),
        marker: 'type: RequestMirror', msg: /GRPCRoute filter type RequestMirror is not supported by ssegate; refused/,
    },
    {
        what: 'a GRPCRoute with an ExtensionRef filter',
        edit: y => y + doc(`apiVersion: ${GW}/v1\nkind: GRPCRoute\nmetadata: {name: g}\nspec:\n  parentRefs: [{name: gw}]\n  hostnames: [grpc.test]\n  rules:\n  - filters:\n    - type: ExtensionRef\n      extensionRef: {group: example.com, kind: GrpcWeb, name: w}\n    backendRefs: [{name: svc, port: 80}]\n`),
        marker: 'type: ExtensionRef', msg: /GRPCRoute filter type ExtensionRef is not supported by ssegate; refused/,
    },
    {
        what: 'a GRPCRoute rule with sessionPersistence',
        edit: y => y + doc(`apiVersion: ${GW}/v1\nkind: GRPCRoute\nmetadata: {name: g}\nspec:\n  parentRefs: [{name: gw}]\n  hostnames: [grpc.test]\n  rules:\n  - sessionPersistence: {sessionName: s}\n    backendRefs: [{name: svc, port: 80}]\n`),
        marker: 'sessionPersistence', msg: /sessionPersistence is not supported yet/,
    },
    {
        /* grpc probes are served (grpc-health.test.mjs); one probe per endpoint, so not both kinds at once. */
        what: 'a HealthCheckPolicy with both http and grpc probes',
        edit: y => y + doc(`apiVersion: ${ALB}\nkind: HealthCheckPolicy\nmetadata: {name: h}\nspec:\n  targetRef: {group: "", kind: Service, name: svc}\n  default:\n    grpc: {}\n    http: {path: /healthz}\n`),
        marker: 'http: {path', msg: /http and grpc cannot both be given/,
    },
    {
        what: 'a GRPCRoute of the retired v1alpha2 API',
        edit: y => y + doc(`apiVersion: ${GW}/v1alpha2\nkind: GRPCRoute\nmetadata: {name: g}\nspec: {parentRefs: [{name: gw}]}\n`),
        marker: 'v1alpha2', msg: /GRPCRoute: apiVersion "gateway\.networking\.k8s\.io\/v1alpha2" not supported/,
    },
    {
        /* BackendTLSPolicy is served (backend-tls.test.mjs); options (TLS versions, ciphers) could not be honoured. */
        what: 'a BackendTLSPolicy with options',
        edit: y => y + doc(`apiVersion: ${GW}/v1\nkind: BackendTLSPolicy\nmetadata: {name: b}\nspec:\n  targetRefs: [{group: "", kind: Service, name: svc}]\n  validation: {hostname: svc.example, wellKnownCACertificates: System}\n  options: {example.com/min-version: "1.3"}\n`),
        marker: 'options:', msg: /BackendTLSPolicy default\/b: spec\.options is not supported/,
    },
    {
        what: "AGC's FrontendTLSPolicy with a named TLS policy (policyType)",
        edit: y => y + doc(`apiVersion: ${ALB}\nkind: FrontendTLSPolicy\nmetadata: {name: f}\nspec:\n  targetRef: {kind: Gateway, name: gw}\n` +
            '  default:\n    policyType: {type: predefined, name: 2023-06}\n    verify: {caCertificateRef: {kind: Secret, name: ca}}\n'),
        marker: 'policyType', msg: /FrontendTLSPolicy default\.policyType is not supported/,
    },
    {
        what: "AGC's WebApplicationFirewallPolicy",
        edit: y => y + doc(`apiVersion: ${ALB}\nkind: WebApplicationFirewallPolicy\nmetadata: {name: w}\nspec: {targetRef: {kind: Gateway, name: gw}}\n`),
        marker: 'kind: WebApplicationFirewallPolicy', msg: /kind WebApplicationFirewallPolicy .* is not supported; refused/,
    },
    {
        what: "Envoy Gateway's SecurityPolicy",
        edit: y => y + doc('apiVersion: gateway.envoyproxy.io/v1alpha1\nkind: SecurityPolicy\nmetadata: {name: s}\nspec: {}\n'),
        marker: 'kind: SecurityPolicy', msg: /kind SecurityPolicy .* is not supported; refused/,
    },
    {
        what: 'a ListenerSet',
        edit: y => y + doc(`apiVersion: ${GW}/v1\nkind: ListenerSet\nmetadata: {name: l}\nspec: {}\n`),
        marker: 'kind: ListenerSet', msg: /kind ListenerSet .* is not supported; refused/,
    },
    {
        what: 'HTTPRoute rule sessionPersistence',
        edit: afterLine('    backendRefs: [{name: svc, port: 80}]\n', '    sessionPersistence: {sessionName: s, type: Cookie}\n'),
        marker: 'sessionPersistence', msg: /sessionPersistence is not supported yet/,
    },
    {
        what: 'HTTPRoute CORS filter on a backendRef (the gateway answers preflights before it picks a backend)',
        edit: y => y.replace('backendRefs: [{name: svc, port: 80}]', 'backendRefs: [{name: svc, port: 80, filters: [{type: CORS, cors: {allowOrigins: ["https://a.example"]}}]}]'),
        marker: 'type: CORS', msg: /a CORS filter on a backendRef is not supported .*put it in the rule's filters/,
    },
    {
        what: 'CORS exposeHeaders "*" with allowCredentials (a browser reads it as a header named "*")',
        edit: afterLine('    backendRefs: [{name: svc, port: 80}]\n', '    filters: [{type: CORS, cors: {allowOrigins: ["https://a.example"], allowCredentials: true, exposeHeaders: ["*"]}}]\n'),
        marker: 'exposeHeaders', msg: /exposeHeaders: "\*" cannot be used with allowCredentials: true/,
    },
    {
        what: 'HTTPRoute RequestMirror filter',
        edit: afterLine('    backendRefs: [{name: svc, port: 80}]\n', '    filters: [{type: RequestMirror, requestMirror: {backendRef: {name: svc, port: 80}}}]\n'),
        marker: 'RequestMirror', msg: /filter type "RequestMirror" is not supported/,
    },
    {
        what: 'a supported filter that also carries a cors block',
        edit: afterLine('    backendRefs: [{name: svc, port: 80}]\n', '    filters:\n    - type: RequestHeaderModifier\n      requestHeaderModifier: {set: [{name: a, value: b}]}\n      cors: {allowOrigins: ["*"]}\n'),
        marker: 'cors:', msg: /filter of type RequestHeaderModifier must not set cors/,
    },
    {
        what: 'a misspelt field in a rule',
        edit: afterLine('    backendRefs: [{name: svc, port: 80}]\n', '    timeout: {request: 5s}\n'),
        marker: 'timeout:', msg: /rule: unknown field "timeout" \(not supported, so refused rather than ignored\)/,
    },
    {
        what: 'an unknown field in the Gateway spec',
        edit: afterLine('  gatewayClassName: ssegate\n', '  allowedListeners: {namespaces: {from: All}}\n'),
        marker: 'allowedListeners', msg: /Gateway spec: unknown field "allowedListeners"/,
    },
    {
        what: 'RoutePolicy override',
        edit: y => y + doc(`apiVersion: ${ALB}\nkind: RoutePolicy\nmetadata: {name: p}\nspec:\n  targetRef: {group: ${GW}, kind: HTTPRoute, name: r}\n  override: {timeouts: {routeTimeout: 5s}}\n`),
        marker: 'override', msg: /RoutePolicy override is not supported/,
    },
    {
        what: 'HealthCheckPolicy override',
        edit: y => y + doc(`apiVersion: ${ALB}\nkind: HealthCheckPolicy\nmetadata: {name: h}\nspec:\n  targetRef: {kind: Service, name: svc}\n  override: {interval: 5s}\n`),
        marker: 'override', msg: /HealthCheckPolicy override is not supported/,
    },
    {
        what: 'BackendLoadBalancingPolicy slowStart',
        edit: y => y + doc(`apiVersion: ${ALB}\nkind: BackendLoadBalancingPolicy\nmetadata: {name: l}\nspec:\n  ${svcTarget}\n  loadBalancing: {strategy: round-robin, slowStart: {window: 30s}}\n`),
        marker: 'slowStart', msg: /slowStart is not supported; refused/,
    },
    {
        what: 'a policy targetRef sectionName (it would apply to every port)',
        edit: y => y + doc(`apiVersion: ${ALB}\nkind: BackendLoadBalancingPolicy\nmetadata: {name: l}\nspec:\n  targetRefs: [{kind: Service, name: svc, sectionName: http}]\n  loadBalancing: {strategy: round-robin}\n`),
        marker: 'sectionName: http', msg: /targetRef sectionName is not supported; refused/,
    },
];

const skipped = [
    { kind: 'TLSRoute', api: `${GW}/v1alpha2` },
    { kind: 'TCPRoute', api: `${GW}/v1alpha2` },
    { kind: 'Ingress', api: 'networking.k8s.io/v1' },
    { kind: 'GatewayClass', api: `${GW}/v1` },
    { kind: 'UDPRoute', api: `${GW}/v1alpha2` },
];

test('the base config of the table loads (so each refusal below is the edit\'s)', async () => {
    const f = writeTemp('base.yaml', base(await freePort(), await freePort()));
    const r = await runGateway(['--check', '-c', f]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
});

for (const c of refused) {
    test(`refused: ${c.what}`, async () => {
        const yaml = c.edit(base(await freePort(), await freePort()));
        const f = writeTemp('closed.yaml', yaml);
        const at = yaml.split('\n').findIndex(l => l.includes(c.marker)) + 1;
        assert.ok(at > 0, 'test setup: marker not in the config');
        for (const args of [['--check', '-c', f], ['-c', f, '--access-log', 'off']]) {
            const r = await runGateway(args);
            assert.equal(r.code, 1, `${args[0]}: exit ${r.code}\n${r.stderr}`);
            const lines = r.stderr.split('\n').filter(l => l.startsWith(`${f}:${at}:`) && !l.includes(': warning: '));
            assert.ok(lines.some(l => c.msg.test(l)), `no error at line ${at} matching ${c.msg}:\n${r.stderr}`);
        }
    });
}

test('kinds with no meaning for the gateway are skipped with a warning, and the config loads', async () => {
    let yaml = base(await freePort(), await freePort());
    for (const s of skipped)
        yaml += doc(`apiVersion: ${s.api}\nkind: ${s.kind}\nmetadata: {name: x}\nspec: {}\n`);
    const f = writeTemp('skipped.yaml', yaml);
    const r = await runGateway(['--check', '-c', f]);
    assert.equal(r.code, 0, r.stderr);
    for (const s of skipped) {
        const at = yaml.split('\n').findIndex(l => l === `kind: ${s.kind}`) + 1;
        assert.match(r.stderr, new RegExp(`^${f.replace(/[.]/g, '\\.')}:${at}:7: warning: skipping kind ${s.kind}: ssegate does not serve it$`, 'm'));
    }
});
