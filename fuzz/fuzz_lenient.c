/* fuzz_lenient.c: libFuzzer harness for the loader's lenient mode (config_diag.c): whatever the stream, it returns a
 * generation with diagnostics, or -EINVAL saying why; never crashes, and the diagnostics are consistent. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/diag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)           /* as fuzz_config: aliases can expand exponentially */
        return 0;
    sg_config_diag_t d;
    sg_config_t *cfg = NULL;
    int rc = sg_config_load_lenient("fuzz", (const char *)data, size, SG_CONFIG_NO_DNS, NULL, &d, &cfg);
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
    sg_config_unref(cfg);
    sg_config_diag_free(&d);
    return 0;
}
