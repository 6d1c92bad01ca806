/* fuzz_kstatus.c: libFuzzer harness for what ssegate reads back from the API server for status: the current object
 * the status diff merges into (kstatus.c), and a Lease (klease.c). Errors, never crashes; a merge is idempotent. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/klease.h"
#include "kube/kstatus.h"

#define CTL "ssegate.io/gateway-controller"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const desired[] = {
    "{\"conditions\":[{\"type\":\"Accepted\",\"status\":\"True\",\"reason\":\"Accepted\",\"message\":\"m\","
    "\"observedGeneration\":2,\"lastTransitionTime\":\"2026-01-01T00:00:00Z\"}],\"listeners\":[{\"name\":\"http\","
    "\"attachedRoutes\":1,\"conditions\":[{\"type\":\"Programmed\",\"status\":\"True\",\"reason\":\"Programmed\","
    "\"message\":\"m\",\"observedGeneration\":2,\"lastTransitionTime\":\"2026-01-01T00:00:00Z\"}]}]}",
    "{\"parents\":[{\"parentRef\":{\"name\":\"gw\"},\"controllerName\":\"" CTL "\",\"conditions\":[{\"type\":"
    "\"Accepted\",\"status\":\"False\",\"reason\":\"NoMatchingParent\",\"message\":\"m\",\"observedGeneration\":3,"
    "\"lastTransitionTime\":\"2026-01-01T00:00:00Z\"}]}]}",
    "{\"ancestors\":[]}",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    const char *in = (const char *)data;
    for (int shape = SG_KSTATUS_WHOLE; shape <= SG_KSTATUS_ANCESTORS; shape++) {
        char *out = NULL;
        int rc = sg_kstatus_merge(in, size, desired[shape], (sg_kstatus_shape_t)shape, CTL, &out);
        if (rc != 0 && rc != 1 && rc != -EINVAL && rc != -ENOMEM)
            abort();
        if ((rc == 0) != (out != NULL))
            abort();
        if (rc == 0) {
            /* what we would write, read back, needs no second write */
            char *again = NULL;
            int rc2 = sg_kstatus_merge(out, strlen(out), desired[shape], (sg_kstatus_shape_t)shape, CTL, &again);
            if (rc2 != 1 && rc2 != -ENOMEM)
                abort();
            free(again);
        }
        free(out);
    }
    sg_klease_cfg_t cfg = {.ns = "ns", .name = "l", .identity = "me", .duration_ms = 15000,
                           .renew_deadline_ms = 10000, .retry_ms = 2000};
    sg_klease_t l;
    sg_klease_init(&l, &cfg, 0);
    char body[4096];
    int64_t wait;
    if (sg_klease_next(&l, 0, "t", body, sizeof(body), &wait) != SG_KLEASE_GET)
        abort();
    sg_klease_done(&l, 0, 200, in, size);
    sg_klease_op_t op = sg_klease_next(&l, 0, "t", body, sizeof(body), &wait);
    if (op == SG_KLEASE_UPDATE || op == SG_KLEASE_CREATE) {
        sg_klease_done(&l, 0, 200, in, size);
        (void)sg_klease_leader(&l, 0);
    }
    return 0;
}
