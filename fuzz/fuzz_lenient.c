/* fuzz_lenient.c: libFuzzer harness for the loader's lenient mode (config_diag.c): whatever the stream, it returns a
 * generation with diagnostics, or -EINVAL saying why; never crashes, and the diagnostics are consistent. And the same
 * stream handed over as parsed documents (sg_config_load_docs_lenient, the kube build's entry) gives the same result,
 * messages and blame, whenever it parses. */
#include <libfyaml.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/diag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool utf8_ok(const uint8_t *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        uint8_t c = s[i];
        size_t n = c < 0x80 ? 1 : (c >= 0xc2 && c <= 0xdf) ? 2 : (c >= 0xe0 && c <= 0xef) ? 3 : (c >= 0xf0 && c <= 0xf4) ? 4 : 0;
        if (n == 0 || i + n > len)
            return false;
        for (size_t k = 1; k < n; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
        if ((c == 0xe0 && s[i + 1] < 0xa0) || (c == 0xed && s[i + 1] > 0x9f) || (c == 0xf0 && s[i + 1] < 0x90) ||
            (c == 0xf4 && s[i + 1] > 0x8f))
            return false;
        i += n;
    }
    return true;
}

/* The stream as documents, parsed as the loader parses it; 0 documents and -1 when it does not parse cleanly. */
static int parse_docs(const uint8_t *data, size_t size, struct fy_document **docs, size_t cap, size_t *n)
{
    struct fy_diag_cfg dcfg;
    memset(&dcfg, 0, sizeof(dcfg));
    dcfg.level = FYET_ERROR;
    struct fy_diag *diag = fy_diag_create(&dcfg);
    if (diag == NULL)
        return -1;
    fy_diag_set_collect_errors(diag, true);
    struct fy_parse_cfg pcfg;
    memset(&pcfg, 0, sizeof(pcfg));
    pcfg.flags = FYPCF_QUIET | FYPCF_RESOLVE_DOCUMENT;
    pcfg.diag = diag;
    struct fy_parser *fyp = fy_parser_create(&pcfg);
    int rc = -1;
    *n = 0;
    if (fyp != NULL && fy_parser_set_string(fyp, (const char *)data, size) == 0) {
        struct fy_document *d;
        rc = 0;
        while ((d = fy_parse_load_document(fyp)) != NULL) {
            if (*n == cap) {
                fy_document_destroy(d);
                rc = -1;
                break;
            }
            docs[(*n)++] = d;
        }
        if (fy_parser_get_stream_error(fyp) || fy_diag_got_error(diag))
            rc = -1;
    }
    if (fyp != NULL)
        fy_parser_destroy(fyp);
    fy_diag_destroy(diag);
    return rc;
}

static void same_as_docs(const uint8_t *data, size_t size, int rc, const sg_config_diag_t *d, const sg_config_t *cfg,
                         const char *errs)
{
    struct fy_document *docs[64];
    size_t n = 0;
    if (rc != -ENOMEM && utf8_ok(data, size) && parse_docs(data, size, docs, 64, &n) == 0) {
        char *errs2 = NULL;
        size_t elen = 0;
        FILE *ef = open_memstream(&errs2, &elen);
        sg_config_diag_t d2;
        sg_config_t *cfg2 = NULL;
        int rc2 = sg_config_load_docs_lenient("fuzz", docs, n, SG_CONFIG_NO_DNS, ef, &d2, &cfg2);
        if (ef != NULL)
            fclose(ef);
        if (rc2 != -ENOMEM && errs2 != NULL) {
            if (rc2 != rc || d2.nobjs != d->nobjs || d2.passes != d->passes || strcmp(errs2, errs ? errs : "") != 0 ||
                (cfg2 != NULL) != (cfg != NULL) || (cfg && (cfg2->nroutes != cfg->nroutes ||
                                                            cfg2->nlisteners != cfg->nlisteners)))
                abort();
            for (size_t i = 0; i < d->nobjs; i++)
                if (d->objs[i].dropped != d2.objs[i].dropped ||
                    d->objs[i].ndropped_rules != d2.objs[i].ndropped_rules)
                    abort();
        }
        sg_config_unref(cfg2);
        sg_config_diag_free(&d2);
        free(errs2);
    }
    for (size_t i = 0; i < n; i++)
        fy_document_destroy(docs[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)           /* as fuzz_config: aliases can expand exponentially */
        return 0;
    sg_config_diag_t d;
    sg_config_t *cfg = NULL;
    char *errs = NULL;
    size_t elen = 0;
    FILE *ef = open_memstream(&errs, &elen);
    int rc = sg_config_load_lenient("fuzz", (const char *)data, size, SG_CONFIG_NO_DNS, ef, &d, &cfg);
    if (ef != NULL)
        fclose(ef);
    if (rc != 0 && rc != -EINVAL && rc != -ENOMEM)
        abort();
    if ((rc == 0) != (cfg != NULL) || (rc == -EINVAL && d.error == NULL))
        abort();
    for (size_t i = 0; rc == 0 && i < d.nobjs; i++) {
        const sg_diag_obj_t *o = &d.objs[i];
        if (o->ndropped_rules > o->nrules)
            abort();
        for (size_t k = 0; k < o->nparents; k++)
            if (o->parents[k].accepted.reason == NULL || o->parents[k].resolved.reason == NULL)
                abort();
        for (size_t k = 0; k < o->nlisteners; k++)
            if (o->listeners[k].accepted.reason == NULL)
                abort();
    }
    if (ef != NULL)
        same_as_docs(data, size, rc, &d, cfg, errs);
    free(errs);
    sg_config_unref(cfg);
    sg_config_diag_free(&d);
    return 0;
}
