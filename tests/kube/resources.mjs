// resources.mjs: kubesim's API semantics over the store: the served kinds (built-in and from CRDs), create, update,
// patch, delete, /status, generation, 409 on stale resourceVersions, paged LIST and its continue tokens.
import crypto from 'node:crypto';
import { BUILTIN_KINDS, kindFromCrd, rkeyOf, gv } from './kinds.mjs';
import { ApiError, Store, clone, mergePatch, strategicMergePatch, jsonPatch, parseLabelSelector, parseFieldSelector } from './store.mjs';

const CRD_RKEY = 'apiextensions.k8s.io/customresourcedefinitions';
const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');
/* Equality of JSON values, whatever the order of their keys. */
const canon = v => (Array.isArray(v) ? v.map(canon) : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map(k => [k, canon(v[k])])) : v);
const same = (a, b) => JSON.stringify(canon(a)) === JSON.stringify(canon(b));

/* Everything but metadata (and status where status is a subresource): what moves metadata.generation. */
function specOf(kind, o) {
    const { metadata, status, ...rest } = o;
    return kind.status ? rest : { ...rest, status };
}

/* An object's content for the no-op check: without resourceVersion and managedFields. */
function content(o) {
    const c = clone(o);
    delete c.metadata.resourceVersion;
    delete c.metadata.managedFields;
    return c;
}

/*
 * The defaults the real API server fills in for the built-in kinds ssegate reads: Secret stringData folded into
 * base64 data and type Opaque; Service type, sessionAffinity, port protocol and targetPort, and a ClusterIP (kept
 * across updates, as it is immutable); EndpointSlice port protocol.
 */
function applyDefaults(kind, o, cur, allocIp) {
    if (kind.group === '' && kind.kind === 'Secret') {
        if (o.stringData && typeof o.stringData === 'object') {
            o.data = { ...(o.data || {}) };
            for (const [k, v] of Object.entries(o.stringData)) o.data[k] = Buffer.from(String(v)).toString('base64');
        }
        delete o.stringData;
        o.type ||= 'Opaque';
    } else if (kind.group === '' && kind.kind === 'Service') {
        const sp = (o.spec ||= {});
        sp.type ||= 'ClusterIP';
        sp.sessionAffinity ||= 'None';
        for (const p of sp.ports || []) {
            p.protocol ||= 'TCP';
            if (p.targetPort === undefined && sp.type !== 'ExternalName') p.targetPort = p.port;
        }
        if (sp.type !== 'ExternalName' && !sp.clusterIP) sp.clusterIP = cur?.spec?.clusterIP || allocIp();
        if (sp.clusterIP && !sp.clusterIPs) sp.clusterIPs = [sp.clusterIP];
    } else if (kind.group === 'discovery.k8s.io' && kind.kind === 'EndpointSlice') {
        for (const p of o.ports || []) p.protocol ||= 'TCP';
    }
}

export class Resources {
    constructor({ startRv, maxHistory, continueTtlMs = 0 } = {}) {
        this.store = new Store({ startRv, maxHistory });
        this.kinds = new Map(); // rkey -> kind
        this.continueTtlMs = continueTtlMs;
        this.onKindsChanged = () => {};
        let ipSeq = 0;
        this.allocIp = () => {
            ipSeq++;
            return `10.96.${(ipSeq >> 8) & 255}.${ipSeq & 255}`;
        };
        for (const k of BUILTIN_KINDS) this.kinds.set(rkeyOf(k), k);
        /* CRD objects drive which custom kinds are served, whichever path wrote them. */
        this.store.listeners.add(ev => {
            if (ev.rkey !== CRD_RKEY) return;
            if (ev.type === 'DELETED') this.unserve(ev.prev);
            else this.serve(ev.obj);
        });
        for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
            this.create(this.kindByName('Namespace'), null, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
        }
    }

    serve(crd) {
        const k = kindFromCrd(crd);
        const old = this.kinds.get(rkeyOf(k));
        this.kinds.set(rkeyOf(k), k);
        if (!old || !same(old, k)) this.onKindsChanged(k, 'installed');
    }

    unserve(crd) {
        const k = kindFromCrd(crd);
        if (!this.kinds.has(rkeyOf(k))) return;
        this.store.dropAll(rkeyOf(k));
        this.kinds.delete(rkeyOf(k));
        this.onKindsChanged(k, 'removed');
    }

    /* A kind by group+version+plural (URL form); null when not served. */
    kindFor(group, version, plural) {
        const k = this.kinds.get(`${group}/${plural}`);
        return k && k.versions.includes(version) ? k : null;
    }

    /* A kind by Kind name, plural, short name, "group/Kind" or an object's apiVersion+kind. */
    kindByName(name, apiVersion) {
        const [g, n] = name.includes('/') && !apiVersion ? [name.slice(0, name.lastIndexOf('/')), name.slice(name.lastIndexOf('/') + 1)] : [null, name];
        const group = apiVersion ? (apiVersion.includes('/') ? apiVersion.split('/')[0] : '') : g;
        const version = apiVersion ? apiVersion.split('/').pop() : null;
        for (const k of this.kinds.values()) {
            if (group !== null && k.group !== group) continue;
            if (version && !k.versions.includes(version)) continue;
            if (k.kind === n || k.plural === n || k.shortNames.includes(n) || k.kind.toLowerCase() === n.toLowerCase()) return k;
        }
        return null;
    }

    okey(kind, ns, name) {
        return `${kind.namespaced ? ns || '' : ''}/${name}`;
    }

    /* The object as the client asked for it: apiVersion in the requested version (no conversion: same schema). */
    out(kind, obj, version = kind.storageVersion) {
        const o = clone(obj);
        return { apiVersion: gv(kind.group, version), kind: kind.kind, ...o };
    }

    notFound(kind, name) {
        return new ApiError(404, 'NotFound', `${kind.plural}${kind.group ? `.${kind.group}` : ''} "${name}" not found`, { name, group: kind.group, kind: kind.plural });
    }

    conflict(kind, name) {
        return new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${kind.plural}${kind.group ? `.${kind.group}` : ''} "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, group: kind.group, kind: kind.plural });
    }

    get(kind, ns, name) {
        const o = this.store.get(rkeyOf(kind), this.okey(kind, ns, name));
        if (!o) throw this.notFound(kind, name);
        return o;
    }

    checkNamespace(kind, ns) {
        if (!kind.namespaced) return;
        if (!ns) throw new ApiError(400, 'BadRequest', 'the server could not find the requested resource: a namespace is required');
        if (!this.store.get('/namespaces', `/${ns}`)) throw new ApiError(404, 'NotFound', `namespaces "${ns}" not found`, { name: ns, kind: 'namespaces' });
    }

    managed(o, manager, operation, kind) {
        o.metadata.managedFields = [{ manager: manager || 'unknown', operation, apiVersion: gv(kind.group, kind.storageVersion), time: now(), fieldsType: 'FieldsV1', fieldsV1: {} }];
    }

    /* POST. ns: the namespace of the path (null for cluster-wide paths). */
    create(kind, ns, body, { dryRun = false, manager } = {}) {
        if (!body || typeof body !== 'object' || Array.isArray(body)) throw new ApiError(400, 'BadRequest', 'the body of the request was not a JSON object');
        if (body.kind && body.kind !== kind.kind) throw new ApiError(400, 'BadRequest', `the API version in the data (${body.apiVersion}) does not match the expected API version (${kind.kind})`);
        const o = clone(body);
        delete o.apiVersion;
        delete o.kind;
        o.metadata ||= {};
        const md = o.metadata;
        if (!md.name && md.generateName) md.name = md.generateName + crypto.randomBytes(3).toString('hex').slice(0, 5);
        if (!md.name) throw new ApiError(422, 'Invalid', `${kind.kind} "" is invalid: metadata.name: Required value: name or generateName is required`);
        if (kind.namespaced) {
            if (ns && md.namespace && md.namespace !== ns) throw new ApiError(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request');
            md.namespace = ns || md.namespace;
            this.checkNamespace(kind, md.namespace);
        } else delete md.namespace;
        const okey = this.okey(kind, md.namespace, md.name);
        if (this.store.get(rkeyOf(kind), okey)) {
            throw new ApiError(409, 'AlreadyExists', `${kind.plural}${kind.group ? `.${kind.group}` : ''} "${md.name}" already exists`, { name: md.name, group: kind.group, kind: kind.plural });
        }
        md.uid = crypto.randomUUID();
        md.creationTimestamp = now();
        delete md.resourceVersion;
        delete md.deletionTimestamp;
        delete md.selfLink;
        if (kind.generation) md.generation = 1;
        else delete md.generation;
        if (kind.status) delete o.status;
        applyDefaults(kind, o, null, this.allocIp);
        if (kind.kind === 'Namespace') o.status = { phase: 'Active' };
        if (kind.kind === 'Service' && !kind.group) o.status = { loadBalancer: {} };
        if (kind.kind === 'CustomResourceDefinition') {
            kindFromCrd({ ...o, apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition' });
            o.status = {
                acceptedNames: o.spec.names,
                storedVersions: [(o.spec.versions.find(v => v.storage) || o.spec.versions[0]).name],
                conditions: [
                    { type: 'NamesAccepted', status: 'True', reason: 'NoConflicts', message: 'no conflicts found', lastTransitionTime: now() },
                    { type: 'Established', status: 'True', reason: 'InitialNamesAccepted', message: 'the initial names have been accepted', lastTransitionTime: now() },
                ],
            };
        }
        this.managed(o, manager, 'Update', kind);
        if (dryRun) return { ...o, metadata: { ...md, resourceVersion: '' } };
        return this.store.commit(rkeyOf(kind), okey, o, 'ADDED');
    }

    /*
     * PUT (sub = 'status' for the subresource). A stale metadata.resourceVersion gives 409; custom resources
     * need one. Main-resource writes keep the stored status of kinds with a status subresource; status writes keep
     * everything but status. generation moves only when the spec part changes. A no-op write changes nothing.
     */
    update(kind, ns, name, body, { sub = null, dryRun = false, manager, requireRv = !!kind.crd } = {}) {
        if (!body || typeof body !== 'object') throw new ApiError(400, 'BadRequest', 'the body of the request was not a JSON object');
        const cur = this.get(kind, ns, name);
        const bmd = body.metadata || {};
        if (bmd.name && bmd.name !== name) throw new ApiError(400, 'BadRequest', `the name of the object (${bmd.name}) does not match the name on the URL (${name})`);
        if (bmd.resourceVersion) {
            if (bmd.resourceVersion !== cur.metadata.resourceVersion) throw this.conflict(kind, name);
        } else if (requireRv) {
            throw new ApiError(422, 'Invalid', `${kind.kind} "${name}" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update`);
        }
        return this.write(kind, cur, body, { sub, dryRun, manager });
    }

    write(kind, cur, body, { sub, dryRun, manager }) {
        let next;
        if (sub === 'status') {
            next = clone(cur);
            if (body.status === undefined) delete next.status;
            else next.status = clone(body.status);
        } else {
            next = clone(body);
            delete next.apiVersion;
            delete next.kind;
            next.metadata ||= {};
            for (const f of ['uid', 'creationTimestamp', 'deletionTimestamp', 'namespace', 'name', 'generation']) {
                if (cur.metadata[f] === undefined) delete next.metadata[f];
                else next.metadata[f] = cur.metadata[f];
            }
            if (kind.status) {
                if (cur.status === undefined) delete next.status;
                else next.status = clone(cur.status);
            }
            applyDefaults(kind, next, cur, this.allocIp);
            if (kind.generation && !same(specOf(kind, cur), specOf(kind, next))) next.metadata.generation = (cur.metadata.generation || 0) + 1;
        }
        next.metadata.resourceVersion = cur.metadata.resourceVersion;
        next.metadata.managedFields = cur.metadata.managedFields;
        if (same(content(cur), content(next))) return cur;
        this.managed(next, manager, 'Update', kind);
        if (dryRun) return next;
        const okey = this.okey(kind, cur.metadata.namespace, cur.metadata.name);
        if (next.metadata.deletionTimestamp && !(next.metadata.finalizers || []).length) {
            this.store.commit(rkeyOf(kind), okey, null, 'DELETED');
            return next;
        }
        return this.store.commit(rkeyOf(kind), okey, next, 'MODIFIED');
    }

    /* PATCH: merge, strategic merge (see store.mjs), JSON patch, and server-side apply approximated as a merge. */
    patch(kind, ns, name, contentType, patch, { sub = null, dryRun = false, manager } = {}) {
        const ct = (contentType || '').split(';')[0].trim();
        let cur = this.store.get(rkeyOf(kind), this.okey(kind, ns, name));
        if (ct === 'application/apply-patch+yaml' && !cur) {
            if (sub) throw this.notFound(kind, name);
            const o = clone(patch);
            o.metadata = { ...(o.metadata || {}), name };
            return { created: true, obj: this.create(kind, ns, o, { dryRun, manager }) };
        }
        if (!cur) throw this.notFound(kind, name);
        const base = this.out(kind, cur);
        let result;
        switch (ct) {
        case 'application/merge-patch+json': result = mergePatch(base, patch); break;
        case 'application/strategic-merge-patch+json':
            if (kind.crd) throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`);
            result = strategicMergePatch(base, patch);
            break;
        case 'application/json-patch+json': result = jsonPatch(base, patch); break;
        case 'application/apply-patch+yaml': result = applyMerge(base, patch); break;
        default: throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json`);
        }
        if (result?.metadata?.resourceVersion && result.metadata.resourceVersion !== cur.metadata.resourceVersion) throw this.conflict(kind, name);
        return { created: false, obj: this.write(kind, cur, result, { sub, dryRun, manager }) };
    }

    /* DELETE: with finalizers the object only gets a deletionTimestamp; preconditions give 409. */
    delete(kind, ns, name, opts = {}, { dryRun = false } = {}) {
        const cur = this.get(kind, ns, name);
        const pre = opts?.preconditions || {};
        if ((pre.resourceVersion && pre.resourceVersion !== cur.metadata.resourceVersion) || (pre.uid && pre.uid !== cur.metadata.uid)) {
            throw new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${kind.plural} "${name}": Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${cur.metadata.uid}`);
        }
        if (dryRun) return cur;
        const okey = this.okey(kind, cur.metadata.namespace, name);
        if ((cur.metadata.finalizers || []).length) {
            if (cur.metadata.deletionTimestamp) return cur;
            const next = clone(cur);
            next.metadata.deletionTimestamp = now();
            if (kind.generation) next.metadata.generation = (cur.metadata.generation || 0) + 1;
            return this.store.commit(rkeyOf(kind), okey, next, 'MODIFIED');
        }
        if (kind.kind === 'Namespace') {
            for (const k of this.kinds.values()) {
                if (!k.namespaced) continue;
                for (const [ok] of this.store.snapshot(rkeyOf(k), Infinity, name)) this.store.commit(rkeyOf(k), ok, null, 'DELETED');
            }
        }
        this.store.commit(rkeyOf(kind), okey, null, 'DELETED');
        return cur;
    }

    /* A filter for selectors and namespace; throws 400 on a selector the server would refuse. */
    matcher(kind, ns, q) {
        const ls = parseLabelSelector(q.labelSelector);
        const fs = parseFieldSelector(q.fieldSelector, kind.fields);
        return o => (!ns || !kind.namespaced || o.metadata.namespace === ns) && ls(o) && fs(o);
    }

    /*
     * LIST. resourceVersion "0" (without resourceVersionMatch=Exact) reads the "watch cache": the latest state,
     * limit ignored, as the real server does. Otherwise pages of `limit` with a continue token that pins the
     * snapshot; a token older than the compaction (or continueTtlMs) gives HTTP 410.
     */
    list(kind, ns, q) {
        const match = this.matcher(kind, ns, q);
        const st = this.store;
        let readRv = st.rv;
        let start = '';
        let limit = Number(q.limit) > 0 ? Math.floor(Number(q.limit)) : 0;
        if (q.continue) {
            let tok;
            try {
                tok = JSON.parse(Buffer.from(q.continue, 'base64').toString());
            } catch {
                throw new ApiError(400, 'BadRequest', 'continue key is not valid: illegal base64 data');
            }
            if (typeof tok?.rv !== 'number' || typeof tok?.start !== 'string') throw new ApiError(400, 'BadRequest', 'continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
            if (tok.rv < st.compacted || (this.continueTtlMs && Date.now() - tok.t > this.continueTtlMs)) {
                throw new ApiError(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.');
            }
            readRv = tok.rv;
            start = tok.start;
        } else if (q.resourceVersion !== undefined && q.resourceVersion !== '') {
            const n = Number(q.resourceVersion);
            if (!Number.isInteger(n) || n < 0) throw new ApiError(400, 'BadRequest', `resourceVersion: Invalid value: "${q.resourceVersion}": must be a valid resourceVersion`);
            if (q.resourceVersionMatch === 'Exact') {
                if (n < st.compacted) throw new ApiError(410, 'Expired', `too old resource version: ${n} (${st.compacted})`);
                if (n > st.rv) throw tooLarge(n, st.rv);
                readRv = n;
            } else if (n === 0) {
                limit = 0;
            } else if (n > st.rv) throw tooLarge(n, st.rv);
        } else if (q.resourceVersionMatch) {
            throw new ApiError(422, 'Invalid', 'resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided');
        }
        const all = st.snapshot(rkeyOf(kind), readRv, kind.namespaced ? ns || null : null).filter(([okey, o]) => okey > start && match(o));
        const page = limit ? all.slice(0, limit) : all;
        const md = { resourceVersion: String(readRv) };
        if (limit && all.length > limit) {
            md.continue = Buffer.from(JSON.stringify({ rv: readRv, start: page[page.length - 1][0], t: Date.now() })).toString('base64');
            if (!q.labelSelector && !q.fieldSelector) md.remainingItemCount = all.length - limit;
        }
        return { md, items: page.map(([, o]) => o) };
    }
}

function tooLarge(n, cur) {
    const e = new ApiError(504, 'Timeout', `Too large resource version: ${n}, current: ${cur}`, { causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }], retryAfterSeconds: 1 });
    return e;
}

/* Server-side apply, approximated: maps merge, lists and scalars from the applied config replace. */
function applyMerge(base, cfg) {
    if (cfg === null || typeof cfg !== 'object' || Array.isArray(cfg)) return clone(cfg);
    const out = base && typeof base === 'object' && !Array.isArray(base) ? clone(base) : {};
    for (const [k, v] of Object.entries(cfg)) out[k] = applyMerge(out[k], v);
    return out;
}
