// store.mjs: kubesim's object store: an etcd-like MVCC log (one global resourceVersion, revisions per key,
// compaction), selectors, and the patch formats the API server accepts.

/* A Kubernetes Status object, as the API server writes it for every error. */
export function status(code, reason, message, details) {
    const s = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: code < 400 ? 'Success' : 'Failure', message, reason, code };
    if (details) s.details = details;
    return s;
}

export class ApiError extends Error {
    constructor(code, reason, message, details, headers) {
        super(message);
        this.code = code;
        this.body = status(code, reason, message, details);
        this.headers = headers || {};
    }
}

export const clone = o => (o === undefined ? undefined : JSON.parse(JSON.stringify(o)));

/* ---------- selectors ---------- */

/* labelSelector: a=b, a==b, a!=b, a, !a, a in (x,y), a notin (x,y); comma-separated, all must hold. */
export function parseLabelSelector(s) {
    if (!s) return () => true;
    const reqs = [];
    const re = /\s*(!?)([A-Za-z0-9_./-]+)\s*(?:(==|=|!=)\s*([A-Za-z0-9_.-]*)|\s+(in|notin)\s*\(([^)]*)\))?\s*(?:,|$)/y;
    let pos = 0;
    while (pos < s.length) {
        re.lastIndex = pos;
        const m = re.exec(s);
        if (!m || re.lastIndex === pos) throw new ApiError(400, 'BadRequest', `unable to parse requirement: invalid label selector: "${s}"`);
        pos = re.lastIndex;
        const [, not, key, op, val, setOp, set] = m;
        if (not && (op || setOp)) throw new ApiError(400, 'BadRequest', `unable to parse requirement: "${s}"`);
        if (op === '=' || op === '==') reqs.push(l => l[key] === val);
        else if (op === '!=') reqs.push(l => l[key] !== val);
        else if (setOp) {
            const vals = set.split(',').map(v => v.trim()).filter(Boolean);
            reqs.push(setOp === 'in' ? l => vals.includes(l[key]) : l => !vals.includes(l[key]));
        } else if (not) reqs.push(l => !(key in l));
        else reqs.push(l => key in l);
    }
    return obj => {
        const l = obj?.metadata?.labels || {};
        return reqs.every(r => r(l));
    };
}

/* fieldSelector: metadata.name and metadata.namespace for every kind, plus the kind's own fields (Secret: type). */
export function parseFieldSelector(s, extraFields = {}) {
    if (!s) return () => true;
    const fields = { 'metadata.name': o => o.metadata?.name, 'metadata.namespace': o => o.metadata?.namespace || '', ...extraFields };
    const reqs = [];
    for (const part of s.split(',')) {
        if (!part) continue;
        const m = /^([^!=]+)(==|=|!=)(.*)$/.exec(part);
        if (!m) throw new ApiError(400, 'BadRequest', `invalid selector: '${s}'; can't understand '${part}'`);
        const [, key, op, val] = m;
        const get = fields[key.trim()];
        if (!get) throw new ApiError(400, 'BadRequest', `field label not supported: ${key.trim()}`);
        reqs.push(op === '!=' ? o => String(get(o) ?? '') !== val : o => String(get(o) ?? '') === val);
    }
    return obj => reqs.every(r => r(obj));
}

/* ---------- patches ---------- */

const isObj = v => v !== null && typeof v === 'object' && !Array.isArray(v);

/* RFC 7386 JSON merge patch. */
export function mergePatch(target, patch) {
    if (!isObj(patch)) return clone(patch);
    const out = isObj(target) ? clone(target) : {};
    for (const [k, v] of Object.entries(patch)) {
        if (v === null) delete out[k];
        else out[k] = mergePatch(out[k], v);
    }
    return out;
}

/*
 * Strategic merge patch, for kubectl apply on built-in kinds: a merge patch where lists with a known merge key
 * merge element by element, `$patch: delete|replace` and `$deleteFromPrimitiveList/` apply, and the
 * `$setElementOrder/` and `$retainKeys` directives are honoured loosely (order kept, retainKeys applied).
 * Lists without a known merge key are replaced, as for a merge patch.
 */
const MERGE_KEYS = { ports: 'port', containers: 'name', initContainers: 'name', env: 'name', volumes: 'name', volumeMounts: 'mountPath', conditions: 'type', finalizers: null };
export function strategicMergePatch(target, patch) {
    if (!isObj(patch)) return clone(patch);
    if (patch.$patch === 'replace') {
        const p = clone(patch);
        delete p.$patch;
        return p;
    }
    if (patch.$patch === 'delete') return undefined;
    let out = isObj(target) ? clone(target) : {};
    if (Array.isArray(patch.$retainKeys)) {
        for (const k of Object.keys(out)) if (!patch.$retainKeys.includes(k)) delete out[k];
    }
    for (const [k, v] of Object.entries(patch)) {
        if (k === '$patch' || k === '$retainKeys' || k.startsWith('$setElementOrder/')) continue;
        if (k.startsWith('$deleteFromPrimitiveList/')) {
            const f = k.slice('$deleteFromPrimitiveList/'.length);
            if (Array.isArray(out[f])) out[f] = out[f].filter(x => !v.includes(x));
            continue;
        }
        if (v === null) {
            delete out[k];
            continue;
        }
        const key = MERGE_KEYS[k];
        if (Array.isArray(v) && key && Array.isArray(out[k])) {
            const list = clone(out[k]);
            for (const el of v) {
                const idx = isObj(el) ? list.findIndex(x => isObj(x) && x[key] === el[key]) : -1;
                if (isObj(el) && el.$patch === 'delete') {
                    if (idx >= 0) list.splice(idx, 1);
                } else if (idx >= 0) list[idx] = strategicMergePatch(list[idx], el);
                else list.push(strategicMergePatch(undefined, el));
            }
            const order = patch[`$setElementOrder/${k}`];
            if (Array.isArray(order)) {
                const rank = el => {
                    const i = order.findIndex(o => isObj(o) && o[key] === el[key]);
                    return i < 0 ? order.length : i;
                };
                list.sort((a, b) => rank(a) - rank(b));
            }
            out[k] = list;
        } else if (Array.isArray(v) && key === null && Array.isArray(out[k])) {
            out[k] = [...new Set([...out[k], ...v])];
        } else {
            const r = strategicMergePatch(out[k], v);
            if (r === undefined) delete out[k];
            else out[k] = r;
        }
    }
    return out;
}

/* RFC 6902 JSON patch. */
export function jsonPatch(target, ops) {
    if (!Array.isArray(ops)) throw new ApiError(400, 'BadRequest', 'json patch must be an array');
    let doc = clone(target);
    const parse = p => p.split('/').slice(1).map(s => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    const walk = (segs, create) => {
        let cur = doc;
        for (const s of segs.slice(0, -1)) {
            if (cur[s] === undefined && create) cur[s] = {};
            cur = cur[s];
            if (cur === undefined || cur === null) throw new ApiError(422, 'Invalid', `path not found: /${segs.join('/')}`);
        }
        return cur;
    };
    for (const op of ops) {
        const segs = parse(op.path || '');
        const last = segs[segs.length - 1];
        const get = p => parse(p).reduce((c, s) => (c === undefined ? c : c[s]), doc);
        const put = (sg, v) => {
            if (!sg.length) {
                doc = v;
                return;
            }
            const parent = walk(sg, false);
            const l = sg[sg.length - 1];
            if (Array.isArray(parent)) parent.splice(l === '-' ? parent.length : Number(l), 0, v);
            else parent[l] = v;
        };
        const remove = sg => {
            const parent = walk(sg, false);
            const l = sg[sg.length - 1];
            if (Array.isArray(parent)) parent.splice(Number(l), 1);
            else {
                if (!(l in parent)) throw new ApiError(422, 'Invalid', `unable to remove nonexistent key: ${l}`);
                delete parent[l];
            }
        };
        switch (op.op) {
        case 'add': put(segs, clone(op.value)); break;
        case 'remove': remove(segs); break;
        case 'replace': {
            const parent = walk(segs, false);
            if (Array.isArray(parent)) parent[Number(last)] = clone(op.value);
            else parent[last] = clone(op.value);
            break;
        }
        case 'test':
            if (JSON.stringify(get(op.path)) !== JSON.stringify(op.value)) throw new ApiError(422, 'Invalid', `test operation failed: ${op.path}`);
            break;
        case 'move': {
            const v = get(op.from);
            remove(parse(op.from));
            put(segs, v);
            break;
        }
        case 'copy': put(segs, clone(get(op.from))); break;
        default: throw new ApiError(400, 'BadRequest', `unknown json patch op ${op.op}`);
        }
    }
    return doc;
}

/* ---------- the MVCC store ---------- */

/*
 * One global resourceVersion, like etcd's revision. Each key keeps its revisions [{rv, obj|null}] so a paged LIST
 * reads one consistent snapshot; the event log feeds watches from any resourceVersion not yet compacted.
 * rkey: `${group}/${resource}`; okey: `${namespace}/${name}` ('' namespace for cluster-scoped kinds).
 */
export class Store {
    constructor({ startRv = 1000, maxHistory = 200000 } = {}) {
        this.rv = startRv;
        this.compacted = startRv;
        this.maxHistory = maxHistory;
        this.data = new Map(); // rkey -> Map(okey -> [{rv, obj}])
        this.log = []; // {rv, rkey, okey, type, obj, prev}
        this.listeners = new Set();
    }

    keys(rkey) {
        let m = this.data.get(rkey);
        if (!m) this.data.set(rkey, (m = new Map()));
        return m;
    }

    /* The object at okey as of rv (default: now), or null. */
    get(rkey, okey, rv = Infinity) {
        const revs = this.data.get(rkey)?.get(okey);
        if (!revs) return null;
        for (let i = revs.length - 1; i >= 0; i--) if (revs[i].rv <= rv) return revs[i].obj;
        return null;
    }

    /* Every live object of rkey as of rv, sorted by key: [[okey, obj]]. */
    snapshot(rkey, rv = Infinity, nsFilter = null) {
        const out = [];
        for (const [okey, revs] of this.data.get(rkey) || []) {
            if (nsFilter !== null && !okey.startsWith(`${nsFilter}/`)) continue;
            let obj = null;
            for (let i = revs.length - 1; i >= 0; i--) {
                if (revs[i].rv <= rv) {
                    obj = revs[i].obj;
                    break;
                }
            }
            if (obj) out.push([okey, obj]);
        }
        out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
        return out;
    }

    /* Writes obj (null = delete) at okey with the next resourceVersion; returns the stored object. */
    commit(rkey, okey, obj, type) {
        const rv = ++this.rv;
        const prev = this.get(rkey, okey);
        let stored = null;
        if (obj) {
            stored = clone(obj);
            stored.metadata.resourceVersion = String(rv);
            Object.freeze(stored);
        }
        const revs = this.keys(rkey).get(okey) || [];
        revs.push({ rv, obj: stored });
        this.keys(rkey).set(okey, revs);
        const ev = { rv, rkey, okey, type, obj: stored || this.deletedCopy(prev, rv), prev };
        this.log.push(ev);
        /* Like etcd's periodic compaction: in steps of a tenth of the history, not one event at a time. */
        if (this.log.length > this.maxHistory) this.compact(this.log[this.log.length - Math.ceil(this.maxHistory * 0.9)].rv - 1);
        for (const l of [...this.listeners]) l(ev);
        return stored;
    }

    deletedCopy(prev, rv) {
        const o = clone(prev);
        o.metadata.resourceVersion = String(rv);
        return Object.freeze(o);
    }

    /* Drops history up to rv (default: everything): watches and continue tokens older than that get 410. */
    compact(upTo = this.rv) {
        this.compacted = Math.max(this.compacted, upTo);
        this.log = this.log.filter(e => e.rv > this.compacted);
        for (const m of this.data.values()) {
            for (const [okey, revs] of m) {
                let keep = revs.findLastIndex(r => r.rv <= this.compacted);
                if (keep > 0) revs.splice(0, keep);
                if (revs.length === 1 && revs[0].obj === null && revs[0].rv <= this.compacted) m.delete(okey);
            }
        }
        return this.compacted;
    }

    /* Log events of rkey after rv, in order. */
    since(rkey, rv) {
        const out = [];
        for (const e of this.log) if (e.rkey === rkey && e.rv > rv) out.push(e);
        return out;
    }

    /* Removes every object of rkey (a CRD was deleted); each removal is a DELETED event. */
    dropAll(rkey) {
        for (const [okey] of this.snapshot(rkey)) this.commit(rkey, okey, null, 'DELETED');
    }
}
