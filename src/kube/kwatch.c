/* kwatch.c: watch stream framing (bytes -> lines), event decoding (line -> type, object, RV, Status) with
 * kube/kjson.c, and libfyaml's JSON mode for the documents a build reads. */
#include "kube/kwatch.h"

#include <libfyaml.h>
#include <stdlib.h>

void sg_kframer_init(sg_kframer_t *f, size_t max_line)
{
    memset(f, 0, sizeof(*f));
    f->max_line = max_line ? max_line : SG_KWATCH_MAX_LINE;
}

void sg_kframer_free(sg_kframer_t *f)
{
    free(f->buf);
    f->buf = NULL;
    f->off = f->len = f->cap = f->scanned = 0;
}

void sg_kframer_reset(sg_kframer_t *f)
{
    f->off = f->len = f->scanned = 0;
}

size_t sg_kframer_pending(const sg_kframer_t *f)
{
    return f->len - f->off;
}

int sg_kframer_push(sg_kframer_t *f, const char *p, size_t n)
{
    if (n == 0)
        return 0;
    if (f->off > 0) {
        memmove(f->buf, f->buf + f->off, f->len - f->off);
        f->len -= f->off;
        f->off = 0;
    }
    if (f->len + n > f->cap) {
        size_t cap = f->cap ? f->cap : 4096;
        while (cap < f->len + n)
            cap *= 2;
        char *b = realloc(f->buf, cap);
        if (b == NULL)
            return -ENOMEM;
        f->buf = b;
        f->cap = cap;
    }
    memcpy(f->buf + f->len, p, n);
    f->len += n;
    /* An unfinished line already longer than max_line can only be refused: drop the stream rather than grow. */
    const char *nl = memrchr(f->buf + f->off, '\n', f->len - f->off);
    size_t tail = nl ? (size_t)(f->buf + f->len - nl - 1) : f->len - f->off;
    if (tail > f->max_line) {
        sg_kframer_reset(f);
        return -EMSGSIZE;
    }
    return 0;
}

int sg_kframer_next(sg_kframer_t *f, sg_str_t *line)
{
    for (;;) {
        char *start = f->buf + f->off;
        size_t avail = f->len - f->off;
        const char *nl = avail > f->scanned ? memchr(start + f->scanned, '\n', avail - f->scanned) : NULL;
        if (nl == NULL) {
            f->scanned = avail;
            return 0;
        }
        size_t n = (size_t)(nl - start);
        f->off += n + 1;
        f->scanned = 0;
        if (n > 0 && start[n - 1] == '\r')
            n--;
        if (n == 0)
            continue;
        if (n > f->max_line)
            continue; /* finished only now, but too long: skipped, as push would have refused it whole */
        *line = (sg_str_t){start, n};
        return 1;
    }
}

/* ---- events ---- */

struct fy_document *sg_kwatch_parse_json(const char *text, size_t len)
{
    return sg_kwatch_parse_json_ex(text, len, 0);
}

struct fy_document *sg_kwatch_parse_json_ex(const char *text, size_t len, unsigned flags)
{
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return NULL;
    memcpy(copy, text, len);
    copy[len] = '\0';
    /* Errors are collected, not printed: a bad line is the stream's fault and the caller reports it once. */
    struct fy_diag_cfg dcfg;
    memset(&dcfg, 0, sizeof(dcfg));
    dcfg.level = FYET_ERROR;
    struct fy_diag *diag = fy_diag_create(&dcfg);
    if (diag == NULL) {
        free(copy);
        return NULL;
    }
    fy_diag_set_collect_errors(diag, true);
    struct fy_parse_cfg cfg = {.flags = FYPCF_QUIET | FYPCF_JSON_FORCE | FYPCF_DISABLE_RECYCLING | flags, .diag = diag};
    /* Takes ownership of copy, even when it fails. */
    struct fy_document *d = fy_document_build_from_malloc_string(&cfg, copy, len);
    fy_diag_destroy(diag);
    return d;
}

int sg_kwatch_decode(const char *line, size_t len, sg_kevent_t *ev)
{
    memset(ev, 0, sizeof(*ev));
    /* A watch line is parsed by kube/kjson.c, not libfyaml: at about 1 ms per 6 KB EndpointSlice in libfyaml, the
     * watch thread's parsing took a worker's core for long enough to show in open streams' latency under endpoint
     * churn (docs/ARCHITECTURE.md). */
    int rc = sg_kjson_parse(&ev->doc, line, len);
    if (rc < 0)
        return rc == -ENOMEM ? rc : SG_EBADMSG;
    const sg_kjson_t *d = &ev->doc;
    const uint32_t root = 1;
    const char *type = sg_kjson_get_str(d, root, "type");
    uint32_t obj = sg_kjson_get_type(d, root, "object", SG_KJSON_OBJECT);
    static const char *const names[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"};
    int t = -1;
    for (size_t i = 0; type && i < SG_ARRAY_LEN(names); i++)
        if (strcmp(type, names[i]) == 0)
            t = (int)i;
    if (t < 0 || obj == 0) {
        sg_kevent_free(ev);
        return SG_EBADMSG;
    }
    ev->type = (sg_kev_type_t)t;
    ev->object = obj;
    ev->rv = sg_kjson_get_str(d, sg_kjson_get_type(d, obj, "metadata", SG_KJSON_OBJECT), "resourceVersion");
    if (ev->type == SG_KEV_ERROR) {
        const char *code = sg_kjson_get_str(d, obj, "code");
        ev->code = code ? atoi(code) : 0;
        ev->reason = sg_kjson_get_str(d, obj, "reason");
        ev->message = sg_kjson_get_str(d, obj, "message");
    } else if (ev->rv == NULL || ev->rv[0] == '\0') {
        sg_kevent_free(ev); /* an object event without a resourceVersion cannot be resumed from */
        return SG_EBADMSG;
    }
    return 0;
}

void sg_kevent_free(sg_kevent_t *ev)
{
    sg_kjson_free(&ev->doc);
    memset(ev, 0, sizeof(*ev));
}

bool sg_kevent_expired(const sg_kevent_t *ev)
{
    if (ev->type != SG_KEV_ERROR)
        return false;
    return ev->code == 410 || (ev->reason && (strcmp(ev->reason, "Expired") == 0 || strcmp(ev->reason, "Gone") == 0));
}
