/* fuzz_kjson.c: libFuzzer harness for kube/kjson.c. Whatever parses must be a well-formed node tree; written back
 * (with some members left out, chosen by the input) it must parse again to the same text, and libfyaml, which
 * reads the stored objects at build time, must accept it as JSON too. */
#include <errno.h>
#include <libfyaml.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kube/kjson.h"
#include "core/sg.h"

static void check_tree(const sg_kjson_t *d)
{
    for (uint32_t i = 1; i <= d->count; i++) {
        const sg_kjson_node_t *x = &d->n[i];
        if (x->end <= i || x->end > d->count + 1 || x->type < SG_KJSON_NULL || x->type > SG_KJSON_OBJECT)
            abort();
        if (x->type != SG_KJSON_OBJECT && x->type != SG_KJSON_ARRAY && x->end != i + 1)
            abort();
        if (x->type == SG_KJSON_OBJECT) {
            uint32_t m = 0;
            for (uint32_t k = sg_kjson_first(d, i); k; k = sg_kjson_next_key(d, i, k), m++)
                if (d->n[k].type != SG_KJSON_STRING ||
                    (strlen(sg_kjson_scalar(d, k)) == d->n[k].slen && sg_kjson_key(d, i, sg_kjson_scalar(d, k)) != k))
                    abort(); /* keys are unique: the lookup finds this one (a key holding \u0000 aside) */
            (void)m;
        }
    }
    if (d->n[1].end != d->count + 1)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned every = data[0] % 8; /* flag every Nth node to leave out (0: none) */
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    sg_kjson_t d;
    int rc = sg_kjson_parse(&d, text, len);
    if (rc != 0) {
        if (rc != SG_EBADMSG && rc != -ENOMEM)
            abort();
        if (d.n != NULL || d.strs != NULL)
            abort();
        return 0;
    }
    check_tree(&d);
    for (uint32_t i = 2; every && i <= d.count; i++)
        if (i % (every + 1) == 0)
            d.n[i].flags |= SG_KJSON_DROP;
    size_t l1 = 0;
    char *e1 = sg_kjson_emit(&d, 1, NULL, &l1);
    if (e1 == NULL || strlen(e1) != l1)
        abort();
    sg_kjson_t d2;
    if (sg_kjson_parse(&d2, e1, l1) != 0)
        abort();
    size_t l2 = 0;
    char *e2 = sg_kjson_emit(&d2, 1, NULL, &l2);
    if (e2 == NULL || l2 != l1 || memcmp(e1, e2, l1) != 0)
        abort();
    if (d2.n[1].type == SG_KJSON_OBJECT || d2.n[1].type == SG_KJSON_ARRAY) {
        /* libfyaml reads containers (a stored object is one); its diagnostics are silenced */
        struct fy_diag_cfg dcfg;
        memset(&dcfg, 0, sizeof(dcfg));
        dcfg.level = FYET_ERROR;
        struct fy_diag *diag = fy_diag_create(&dcfg);
        if (diag == NULL)
            abort();
        fy_diag_set_collect_errors(diag, true);
        struct fy_parse_cfg cfg = {.flags = FYPCF_QUIET | FYPCF_JSON_FORCE, .diag = diag};
        struct fy_document *fd = fy_document_build_from_string(&cfg, e1, l1);
        fy_diag_destroy(diag);
        if (fd == NULL)
            abort();
        fy_document_destroy(fd);
    }
    free(e2);
    sg_kjson_free(&d2);
    free(e1);
    sg_kjson_free(&d);
    return 0;
}
