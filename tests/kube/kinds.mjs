// kinds.mjs: the resource kinds kubesim serves: built-in kinds, and kinds served from CustomResourceDefinitions
// (the Gateway API ones are made from a table here; the AGC and ssegate policy CRDs come from deploy/kubernetes/crds).

/*
 * A kind: {group, versions: [names], storageVersion, kind, listKind, plural, singular, namespaced, status (has a
 * /status subresource), generation (metadata.generation is kept), shortNames, categories, crd (name of the CRD
 * serving it, or null), fields (extra field selectors)}.
 */
function builtin(group, version, kind, plural, o = {}) {
    return {
        group, versions: [version], storageVersion: version, kind, listKind: `${kind}List`, plural,
        singular: kind.toLowerCase(), namespaced: o.namespaced ?? true, status: !!o.status,
        generation: !!o.generation, shortNames: o.shortNames || [], categories: o.categories || [], crd: null,
        fields: o.fields || {}, verbs: o.verbs,
    };
}

export const BUILTIN_KINDS = [
    builtin('', 'v1', 'Namespace', 'namespaces', { namespaced: false, status: true, shortNames: ['ns'] }),
    builtin('', 'v1', 'Service', 'services', { status: true, shortNames: ['svc'], categories: ['all'] }),
    builtin('', 'v1', 'Secret', 'secrets', { fields: { type: o => o.type } }),
    builtin('', 'v1', 'ConfigMap', 'configmaps', { shortNames: ['cm'] }),
    builtin('', 'v1', 'ServiceAccount', 'serviceaccounts', { shortNames: ['sa'] }),
    builtin('', 'v1', 'Event', 'events', {
        shortNames: ['ev'],
        fields: Object.fromEntries([
            ...['kind', 'namespace', 'name', 'uid', 'apiVersion', 'resourceVersion', 'fieldPath'].map(f => [`involvedObject.${f}`, o => o.involvedObject?.[f]]),
            ['reason', o => o.reason], ['reportingComponent', o => o.reportingComponent], ['source', o => o.source?.component], ['type', o => o.type],
        ]),
    }),
    builtin('discovery.k8s.io', 'v1', 'EndpointSlice', 'endpointslices', { generation: true }),
    builtin('coordination.k8s.io', 'v1', 'Lease', 'leases', {}),
    builtin('apps', 'v1', 'Deployment', 'deployments', { status: true, generation: true, shortNames: ['deploy'], categories: ['all'] }),
    builtin('rbac.authorization.k8s.io', 'v1', 'ClusterRole', 'clusterroles', { namespaced: false }),
    builtin('rbac.authorization.k8s.io', 'v1', 'ClusterRoleBinding', 'clusterrolebindings', { namespaced: false }),
    builtin('rbac.authorization.k8s.io', 'v1', 'Role', 'roles', {}),
    builtin('rbac.authorization.k8s.io', 'v1', 'RoleBinding', 'rolebindings', {}),
    builtin('apiextensions.k8s.io', 'v1', 'CustomResourceDefinition', 'customresourcedefinitions',
        { namespaced: false, status: true, generation: true, shortNames: ['crd', 'crds'] }),
];

/* A minimal CRD object for a kind (schema left open), as a Gateway API bundle would install. */
export function crdObject({ group, kind, plural, namespaced = true, versions, storageVersion, shortNames = [], categories = [] }) {
    return {
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        metadata: { name: `${plural}.${group}`, annotations: group === 'gateway.networking.k8s.io' ? { 'gateway.networking.k8s.io/bundle-version': 'v1.4.0', 'gateway.networking.k8s.io/channel': 'experimental' } : {} },
        spec: {
            group,
            names: { kind, listKind: `${kind}List`, plural, singular: kind.toLowerCase(), shortNames, categories },
            scope: namespaced ? 'Namespaced' : 'Cluster',
            versions: versions.map(v => ({
                name: v, served: true, storage: v === (storageVersion || versions[0]),
                schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
                subresources: { status: {} },
            })),
        },
    };
}

const GW = 'gateway.networking.k8s.io';
export const GATEWAY_API_CRDS = [
    crdObject({ group: GW, kind: 'GatewayClass', plural: 'gatewayclasses', namespaced: false, versions: ['v1', 'v1beta1'], shortNames: ['gc'], categories: ['gateway-api'] }),
    crdObject({ group: GW, kind: 'Gateway', plural: 'gateways', versions: ['v1', 'v1beta1'], shortNames: ['gtw'], categories: ['gateway-api'] }),
    crdObject({ group: GW, kind: 'HTTPRoute', plural: 'httproutes', versions: ['v1', 'v1beta1'], categories: ['gateway-api'] }),
    crdObject({ group: GW, kind: 'GRPCRoute', plural: 'grpcroutes', versions: ['v1'], categories: ['gateway-api'] }),
    crdObject({ group: GW, kind: 'ReferenceGrant', plural: 'referencegrants', versions: ['v1beta1'], shortNames: ['refgrant'], categories: ['gateway-api'] }),
    crdObject({ group: GW, kind: 'BackendTLSPolicy', plural: 'backendtlspolicies', versions: ['v1', 'v1alpha3'], storageVersion: 'v1', shortNames: ['btlspolicy'], categories: ['gateway-api'] }),
];

/* The policy kinds, used when deploy/kubernetes/crds is not there. */
const ALB = 'alb.networking.azure.io';
export const POLICY_CRDS_FALLBACK = [
    crdObject({ group: ALB, kind: 'RoutePolicy', plural: 'routepolicies', versions: ['v1'] }),
    crdObject({ group: ALB, kind: 'HealthCheckPolicy', plural: 'healthcheckpolicies', versions: ['v1'] }),
    crdObject({ group: ALB, kind: 'BackendLoadBalancingPolicy', plural: 'backendloadbalancingpolicies', versions: ['v1'] }),
    crdObject({ group: ALB, kind: 'FrontendTLSPolicy', plural: 'frontendtlspolicies', versions: ['v1'] }),
    crdObject({ group: 'ssegate.io', kind: 'SSEPolicy', plural: 'ssepolicies', versions: ['v1alpha1'] }),
];

/* The kind a CRD object serves. */
export function kindFromCrd(crd) {
    const s = crd.spec || {};
    const n = s.names || {};
    const served = (s.versions || []).filter(v => v.served !== false);
    if (!s.group || !n.plural || !n.kind || !served.length) throw new Error(`CRD ${crd.metadata?.name}: needs spec.group, names.plural, names.kind and a served version`);
    const storage = (s.versions.find(v => v.storage) || served[0]).name;
    return {
        group: s.group, versions: served.map(v => v.name), storageVersion: storage, kind: n.kind,
        listKind: n.listKind || `${n.kind}List`, plural: n.plural, singular: n.singular || n.kind.toLowerCase(),
        namespaced: s.scope !== 'Cluster', status: served.some(v => v.subresources?.status), generation: true,
        shortNames: n.shortNames || [], categories: n.categories || [], crd: crd.metadata.name, fields: {},
    };
}

export const rkeyOf = k => `${k.group}/${k.plural}`;
export const gv = (group, version) => (group ? `${group}/${version}` : version);
