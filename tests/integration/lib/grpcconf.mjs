// grpcconf.mjs: Gateway API configs with GRPCRoutes for the gRPC tests.
const GW = 'gateway.networking.k8s.io';

/*
 * listeners: [{name, port, protocol: 'HTTP'|'HTTPS', cert: secret name}]; routes: [{name, hostnames, rules: YAML text
 * of the rules list (indented 2)}]; extra: more YAML documents.
 */
export function grpcYaml({ listeners, routes = [], extra = '' }) {
    const docs = [];
    const ls = listeners.map(l => {
        if ((l.protocol || 'HTTP') === 'HTTP') return `  - {name: ${l.name}, protocol: HTTP, port: ${l.port}}`;
        return `  - name: ${l.name}\n    protocol: HTTPS\n    port: ${l.port}\n    tls:\n      mode: Terminate\n      certificateRefs: [{kind: Secret, name: ${l.cert}}]`;
    });
    docs.push(`apiVersion: ${GW}/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: ssegate
  addresses: [{type: IPAddress, value: 127.0.0.1}]
  listeners:
${ls.join('\n')}
`);
    for (const r of routes) {
        const hosts = r.hostnames ? `  hostnames: [${r.hostnames.join(', ')}]\n` : '';
        docs.push(`apiVersion: ${GW}/v1
kind: ${r.kind || 'GRPCRoute'}
metadata: {name: ${r.name}}
spec:
  parentRefs: [{name: gw}]
${hosts}  rules:
${r.rules}`);
    }
    if (extra) docs.push(extra);
    return docs.join('---\n');
}

/* A Service port with appProtocol kubernetes.io/h2c and its EndpointSlice on 127.0.0.1. */
export function h2cService(name, port, appProtocol = 'kubernetes.io/h2c') {
    return `apiVersion: v1
kind: Service
metadata: {name: ${name}}
spec:
  ports: [{name: grpc, port: ${port}, appProtocol: ${appProtocol}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ${name}-1, labels: {kubernetes.io/service-name: ${name}}}
addressType: IPv4
ports: [{name: grpc, port: ${port}}]
endpoints: [{addresses: [127.0.0.1]}]
`;
}
