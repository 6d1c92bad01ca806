/* fuzz_config.c: libFuzzer harness for the YAML loader and the route tables it builds: errors, never crashes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/cors.h"
#include "config/route.h"

/*
 * Input: a YAML stream. Whatever it is, the loader must return 0 with a config or -EINVAL with at least
 * one message; a loaded config is then queried with a few requests derived from the input's last bytes.
 * Aliases can expand exponentially in any YAML DOM, so inputs are capped at 16 KiB.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    char *errs = NULL;
    size_t elen = 0;
    FILE *f = open_memstream(&errs, &elen);
    if (f == NULL)
        return 0;
    sg_config_t *cfg = NULL;
    int rc = sg_config_load_ex("fuzz.yaml", (const char *)data, size, SG_CONFIG_NO_DNS, f, &cfg);
    fclose(f);
    if (rc != 0 && rc != -EINVAL && rc != -ENOMEM)
        abort();
    if ((rc == 0) != (cfg != NULL) || (rc == -EINVAL && elen == 0))
        abort();
    if (cfg != NULL) {
        void *scratch = sg_route_scratch_new();
        static const char *const paths[] = {"/", "/a", "/a/b/c", "/foo/", ""};
        size_t tail = size < 16 ? size : 16;
        sg_str_t fuzz = {(const char *)data + size - tail, tail};
        sg_h1_header_t h[2] = {{SG_STR("version"), fuzz}, {fuzz, SG_STR("x")}};
        for (size_t i = 0; i < cfg->nlisteners; i++) {
            for (size_t p = 0; p < SG_ARRAY_LEN(paths); p++) {
                sg_route_req_t q = {.method = SG_STR("GET"), .host = fuzz, .path = sg_str_c(paths[p]),
                                    .query = fuzz, .headers = h, .nheaders = 2, .scratch = scratch};
                sg_route_match_t m;
                int mr = sg_route_match(cfg, cfg->listeners[i].port, &q, &m);
                if (mr == 0 && (m.rule == NULL || m.route == NULL || m.listener == NULL))
                    abort();
                if (mr == 0 && m.rule->filters.cors != NULL) {
                    /* The input's tail as the Origin, the requested method and the requested headers. */
                    sg_h1_msg_t pre;
                    memset(&pre, 0, sizeof(pre));
                    pre.method = SG_STR("OPTIONS");
                    pre.headers[0] = (sg_h1_header_t){SG_STR("Origin"), fuzz};
                    pre.headers[1] = (sg_h1_header_t){SG_STR("Access-Control-Request-Method"), fuzz};
                    pre.headers[2] = (sg_h1_header_t){SG_STR("Access-Control-Request-Headers"), fuzz};
                    pre.nheaders = 3;
                    sg_h1_header_t out[SG_CORS_MAX_HEADERS];
                    size_t n = 0;
                    bool ok = sg_cors_preflight(m.rule->filters.cors, &pre, out, &n);
                    if (n > SG_CORS_MAX_HEADERS || (ok && n < 3) || (!ok && n != 1))
                        abort();
                    if (sg_cors_actual(m.rule->filters.cors, fuzz, out) > SG_CORS_MAX_HEADERS)
                        abort();
                }
                q.path = fuzz;
                (void)sg_route_match(cfg, cfg->listeners[i].port, &q, &m);
            }
        }
        sg_route_scratch_free(scratch);
        sg_config_unref(cfg);
    }
    free(errs);
    return 0;
}
