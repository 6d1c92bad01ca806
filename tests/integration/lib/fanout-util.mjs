// fanout-util.mjs: configs with SSEPolicy for the fan-out tests.
import { prodYaml } from './prod-util.mjs';

/*
 * One Gateway on port, and routes [{name, path, backends: [{service, port}], policy: {...} | undefined,
 * ruleName}], each route with one rule (named ruleName when given). policy is the SSEPolicy spec.default as YAML
 * flow text (e.g. "{sharing: {enabled: true}}") and may target the rule by sectionName (policySection).
 */
export function fanoutYaml({ port, routes, services = [], extra = '' }) {
    const docs = [];
    for (const r of routes) {
        if (!r.policy) continue;
        const section = r.policySection ? `, sectionName: ${r.policySection}` : '';
        docs.push(`apiVersion: ssegate.io/v1alpha1
kind: SSEPolicy
metadata: {name: ${r.name}-sse}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: ${r.name}${section}}
  default: ${r.policy}
`);
    }
    let y = prodYaml({ port, routes, services, extra: [extra, ...docs].filter(Boolean).join('---\n') });
    /* Rule names: prodYaml writes one rule per route; name it when asked. */
    for (const r of routes)
        if (r.ruleName)
            y = y.replace(
                `metadata: {name: ${r.name}}\nspec:\n  parentRefs: [{name: gw}]\n  rules:\n  - matches:`,
                `metadata: {name: ${r.name}}\nspec:\n  parentRefs: [{name: gw}]\n  rules:\n  - name: ${r.ruleName}\n    matches:`,
            );
    return y;
}

/* Ids of events as numbers. */
export const ids = h => h.events.map(e => Number(e.id));

export const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
