/* main.c: command line, config load, workers, the main thread's loop (signals via signalfd, admin
 * listener) and config reload. The only place with process-wide state. */
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "admin/admin.h"
#include "config/config.h"
#include "kube/kube.h"
#include "kube/krebind.h"
#include "proxy/health.h"
#include "net/hspool.h"
#include "fanout/fanout.h"
#include "core/cpus.h"
#include "core/log.h"
#include "core/loop.h"
#include "serve.h"

typedef struct opts {
    const char *config;
    const char *admin;
    const char *access_log;
    bool check;
    int workers;
    bool worker_cpus_set;   /* --worker-cpus: worker i runs on the i-th CPU of worker_cpus (round robin) */
    cpu_set_t worker_cpus;
    bool kube_cpus_own;     /* --kube-cpus own */
    cpu_set_t allowed;      /* the CPUs this process may run on (read once, before the options) */
    int tls_threads;        /* -1: one per worker */
    sg_kube_opts_t kube;
    bool kube_on;           /* --kube or --kubeconfig */
    bool dump_config;
} opts_t;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ssegate -c FILE [options]\n"
            "  -c, --config FILE         Gateway API YAML (Gateway, HTTPRoute, GRPCRoute, policies, Services, ...)\n"
            "      --check               validate the config, print problems as FILE:LINE:COL: message, exit\n"
            "  -w, --workers N           worker threads (default: the CPUs this process may run on, or those of\n"
            "                            --worker-cpus)\n"
            "      --worker-cpus LIST    keep worker i on the i-th CPU of LIST (\"0-3,6\"), round robin\n"
            "      --admin ADDR:PORT     admin listener: GET /healthz, GET /ready\n"
            "      --access-log DEST     access log: a path, - for stdout (default), off\n"
            "      --header-timeout DUR  time for a complete request head (default 10s; 408)\n"
            "      --idle-timeout DUR    keep-alive idle client connections (default 60s)\n"
            "      --connect-timeout DUR upstream connect (default 5s; 504)\n"
            "      --response-timeout DUR  default wait for response headers when a route sets no timeout\n"
            "                            (default 60s; 504). Never applies once a response has started.\n"
            "      --upstream-idle DUR   idle pooled upstream connections (default 30s)\n"
            "      --drain-timeout DUR   on SIGTERM/SIGINT, SSE streams may run this long (default 300s)\n"
            "      --drain-spread DUR    ...and are closed at event boundaries at random moments over the\n"
            "                            last part of the window (default 30s). A second signal stops at once.\n"
            "      --heartbeat DUR       send a ':' comment on SSE streams idle this long (default off)\n"
            "      --stall-timeout DUR   close a client that takes no byte for this long (default 60s)\n"
            "      --ws-idle-timeout DUR close a WebSocket (1001 to both sides) when no byte went either way for\n"
            "                            this long (default 0: off; a WebSocket is long-lived like SSE)\n"
            "      --h2-max-streams N    HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS (default 256)\n"
            "      --h2-window BYTES     HTTP/2 initial stream window for request bodies (default 262144)\n"
            "      --h2-conn-window BYTES  HTTP/2 connection window (default 1048576)\n"
            "      --h2-conn-buffer BYTES  response bytes an HTTP/2 connection may queue across its streams;\n"
            "                            past it the streams' upstream reads pause (default 1048576)\n"
            "      --h2-reset-budget N   HTTP/2: a connection that resets more than N started streams in 10 s gets\n"
            "                            GOAWAY ENHANCE_YOUR_CALM (default 100; 0: no limit)\n"
            "HTTP/2 to backends (Service ports with appProtocol kubernetes.io/h2c, or https when ALPN picks h2):\n"
            "      --h2-upstream-conns N  sessions per endpoint per worker (default 16; 1 to 1024)\n"
            "      --h2-upstream-max-streams N  streams per session, below the backend's MAX_CONCURRENT_STREAMS\n"
            "                            (default 10000; 1 to 1000000)\n"
            "      --h2-upstream-window BYTES  stream window: response bytes a paused stream may hold\n"
            "                            (default 131072; 65535 to 16777216)\n"
            "      --h2-upstream-replay BYTES  request body kept until the response head, to send a stream the\n"
            "                            backend refused again (default 65536; 0 to 16777216; 0: bodiless only)\n"
            "      --h2-upstream-ping DUR  PING each session this often (default 30s; 100ms to 1h)\n"
            "      --h2-upstream-ping-timeout DUR  close a session whose PING is unanswered this long; its\n"
            "                            streams fail as on a lost connection (default 10s; 100ms to 1h)\n"
            "      --client-rate N       new upstream exchanges per second per client address (IPv6: per /64),\n"
            "                            per worker, with a burst of N; past it 503 (HTTP/2: REFUSED_STREAM)\n"
            "                            (default 1000; 0: no limit)\n"
            "      --tls-handshake-timeout DUR  a TLS handshake must finish within (default 10s)\n"
            "      --tls-threads N       threads that run TLS handshakes off the event loops (default: one per\n"
            "                            worker; 0 runs them on the loops)\n"
            "      --saturation-pause-us N  when a worker is saturated (a full batch of ready sockets), it pauses\n"
            "                            N microseconds so that each read and write carries more events\n"
            "                            (default 500; 0 only yields the CPU)\n"
            "      --saturation-tunnels MODE  relay (default): a full batch that is mostly WebSocket tunnels is flushed\n"
            "                            at once and not paused; pause: tunnels count towards saturation like\n"
            "                            any socket (see docs/benchmarks.md)\n"
            "Kubernetes (instead of -c): watch the API server and serve what it holds\n"
            "      --kube                in a pod: the service account's token and CA, KUBERNETES_SERVICE_HOST/_PORT\n"
            "      --kube-sa-dir DIR     the service account directory (default\n"
            "                            /var/run/secrets/kubernetes.io/serviceaccount; env SSEGATE_KUBE_SA_DIR)\n"
            "      --kubeconfig FILE     outside a cluster: server, certificate-authority(-data), token or tokenFile\n"
            "      --controller-name NAME  serve Gateways whose GatewayClass names this controller\n"
            "                            (default ssegate.io/gateway-controller)\n"
            "      --watch-namespace NS  watch namespaced kinds in NS only (default: all namespaces)\n"
            "      --publish-service NS/NAME  the Service whose addresses Gateway status reports\n"
            "      --lease-namespace NS  where the status writers' Lease lives (default: the pod's namespace)\n"
            "      --lease-duration DUR  the status Lease's duration (default 15s; renew deadline 2/3, retry 1/7)\n"
            "      --kube-api-qps N      requests per second to the API server, watches aside (default 100;\n"
            "                            0: no limit); a 429's Retry-After is honoured either way\n"
            "      --kube-api-burst N    requests allowed at once above that rate (default 200)\n"
            "      --kube-nice N         nice value of the watch and status threads, 0-19 (default 10: config\n"
            "                            work yields the CPU to the workers' streams)\n"
            "      --kube-cpus LIST|own  keep the watch and status threads on the CPUs of LIST, e.g. one that\n"
            "                            --worker-cpus leaves out, so that reading watch events costs open streams\n"
            "                            nothing; own: the last CPU this process may run on, and the workers (unless\n"
            "                            --worker-cpus) on the others\n"
            "      --dump-config         print what the watcher sees as the YAML that -c reads, then exit\n"
            "  -h, --help\n"
            "DUR is a Gateway API duration: 500ms, 10s, 1m, 1h30m.\n");
}

/* Workers by default: one per CPU of --worker-cpus, else per CPU this process may run on (a container's cpuset,
 * taskset), which the count of online CPUs overstates. */
static int default_workers(const opts_t *o)
{
    int n = CPU_COUNT(o->worker_cpus_set ? &o->worker_cpus : &o->allowed);
    return n < 1 ? 1 : n > 256 ? 256 : n;
}

/* The CPUs this process may run on; should the kernel not say, the CPUs online. */
static void read_allowed(cpu_set_t *out)
{
    if (sched_getaffinity(0, sizeof(*out), out) == 0)
        return;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    CPU_ZERO(out);
    for (long c = 0; c < (n < 1 ? 1 : n) && c < CPU_SETSIZE; c++)
        CPU_SET((int)c, out);
}

/* --kube-cpus own: the last CPU this process may run on for the kube threads, the others for the workers (unless
 * --worker-cpus says where they go, which must then leave that CPU out). */
static int split_cpus(opts_t *o)
{
    const cpu_set_t *allowed = &o->allowed;
    int n = CPU_COUNT(allowed);
    if (n < 2) {
        char list[256];
        fprintf(stderr, "ssegate: --kube-cpus own: this process may run on one CPU (%s), and needs two\n",
                sg_cpus_format(allowed, list, sizeof(list)));
        return -1;
    }
    int last = sg_cpus_nth(allowed, n - 1);
    if (o->worker_cpus_set && CPU_ISSET(last, &o->worker_cpus)) {
        fprintf(stderr, "ssegate: --kube-cpus own: CPU %d, the kube threads' own, is in --worker-cpus\n", last);
        return -1;
    }
    CPU_ZERO(&o->kube.cpus);
    CPU_SET(last, &o->kube.cpus);
    if (!o->worker_cpus_set) {
        o->worker_cpus = *allowed;
        CPU_CLR(last, &o->worker_cpus);
        o->worker_cpus_set = true;
    }
    return 0;
}

static int parse_dur(const char *flag, const char *v, int64_t *out)
{
    if (sg_config_parse_duration(v, out) < 0) {
        fprintf(stderr, "ssegate: %s: invalid duration '%s' (e.g. 500ms, 10s, 1m)\n", flag, v);
        return -1;
    }
    return 0;
}

/* A duration within [lo_ms, hi_ms]: a setting that cannot work at 0 (or at a day) is refused, not clamped. */
static int parse_dur_range(const char *flag, const char *v, int64_t lo_ms, int64_t hi_ms, int64_t *out)
{
    int64_t ms;
    if (parse_dur(flag, v, &ms) < 0)
        return -1;
    if (ms < lo_ms || ms > hi_ms) {
        fprintf(stderr, "ssegate: %s: expected a duration from %lldms to %llds, got '%s'\n", flag, (long long)lo_ms,
                (long long)(hi_ms / 1000), v);
        return -1;
    }
    *out = ms;
    return 0;
}

static int parse_u32(const char *flag, const char *v, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || *end != '\0' || v[0] == '\0' || v[0] == '-' || n < lo || n > hi) {
        fprintf(stderr, "ssegate: %s: expected a number from %u to %u, got '%s'\n", flag, lo, hi, v);
        return -1;
    }
    *out = (uint32_t)n;
    return 0;
}

static int parse_args(int argc, char **argv, opts_t *o, sg_settings_t *st)
{
    enum { O_CHECK = 256, O_ADMIN, O_ALOG, O_HDR, O_IDLE, O_CONN, O_RESP, O_UPIDLE, O_DRAIN, O_SPREAD, O_HB, O_STALL,
           O_H2S, O_H2W, O_H2CW, O_H2CB, O_TLSHS, O_PAUSE, O_TLSTH, O_CRATE, O_H2RST, O_WSIDLE, O_KUBE, O_KSA,
           O_KCFG, O_CTRL, O_WNS, O_PUBSVC, O_LEASENS, O_DUMP, O_LEASEDUR, O_KQPS, O_KBURST, O_KNICE, O_UPCONNS, O_UPSTREAMS,
           O_UPWIN, O_UPREPLAY, O_UPPING, O_UPPINGTO, O_SATTUN, O_WCPUS, O_KCPUS };
    static const struct option lo[] = {
        {"config", required_argument, 0, 'c'},      {"check", no_argument, 0, O_CHECK},
        {"workers", required_argument, 0, 'w'},     {"admin", required_argument, 0, O_ADMIN},
        {"access-log", required_argument, 0, O_ALOG}, {"header-timeout", required_argument, 0, O_HDR},
        {"idle-timeout", required_argument, 0, O_IDLE}, {"connect-timeout", required_argument, 0, O_CONN},
        {"response-timeout", required_argument, 0, O_RESP}, {"upstream-idle", required_argument, 0, O_UPIDLE},
        {"drain-timeout", required_argument, 0, O_DRAIN}, {"drain-spread", required_argument, 0, O_SPREAD},
        {"heartbeat", required_argument, 0, O_HB}, {"stall-timeout", required_argument, 0, O_STALL},
        {"h2-max-streams", required_argument, 0, O_H2S}, {"h2-window", required_argument, 0, O_H2W},
        {"h2-conn-window", required_argument, 0, O_H2CW}, {"tls-handshake-timeout", required_argument, 0, O_TLSHS},
        {"h2-conn-buffer", required_argument, 0, O_H2CB}, {"saturation-pause-us", required_argument, 0, O_PAUSE},
        {"client-rate", required_argument, 0, O_CRATE}, {"h2-reset-budget", required_argument, 0, O_H2RST},
        {"tls-threads", required_argument, 0, O_TLSTH}, {"ws-idle-timeout", required_argument, 0, O_WSIDLE},
        {"kube", no_argument, 0, O_KUBE}, {"kube-sa-dir", required_argument, 0, O_KSA},
        {"kubeconfig", required_argument, 0, O_KCFG}, {"controller-name", required_argument, 0, O_CTRL},
        {"watch-namespace", required_argument, 0, O_WNS}, {"publish-service", required_argument, 0, O_PUBSVC},
        {"lease-namespace", required_argument, 0, O_LEASENS}, {"dump-config", no_argument, 0, O_DUMP},
        {"kube-api-qps", required_argument, 0, O_KQPS}, {"kube-api-burst", required_argument, 0, O_KBURST},
        {"kube-nice", required_argument, 0, O_KNICE},
        {"worker-cpus", required_argument, 0, O_WCPUS},
        {"kube-cpus", required_argument, 0, O_KCPUS},
        {"lease-duration", required_argument, 0, O_LEASEDUR}, {"saturation-tunnels", required_argument, 0, O_SATTUN},
        {"h2-upstream-conns", required_argument, 0, O_UPCONNS},
        {"h2-upstream-max-streams", required_argument, 0, O_UPSTREAMS},
        {"h2-upstream-window", required_argument, 0, O_UPWIN},
        {"h2-upstream-replay", required_argument, 0, O_UPREPLAY},
        {"h2-upstream-ping", required_argument, 0, O_UPPING},
        {"h2-upstream-ping-timeout", required_argument, 0, O_UPPINGTO},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    read_allowed(&o->allowed);
    int c;
    while ((c = getopt_long(argc, argv, "c:w:h", lo, NULL)) != -1) {
        switch (c) {
        case 'c': o->config = optarg; break;
        case O_CHECK: o->check = true; break;
        case 'w': {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end != '\0' || n < 1 || n > 256) {
                fprintf(stderr, "ssegate: --workers: expected 1..256, got '%s'\n", optarg);
                return -1;
            }
            o->workers = (int)n;
            break;
        }
        case O_ADMIN: o->admin = optarg; break;
        case O_ALOG: o->access_log = optarg; break;
        case O_HDR: if (parse_dur("--header-timeout", optarg, &st->header_timeout_ms) < 0) return -1; break;
        case O_IDLE: if (parse_dur("--idle-timeout", optarg, &st->idle_timeout_ms) < 0) return -1; break;
        case O_CONN: if (parse_dur("--connect-timeout", optarg, &st->connect_timeout_ms) < 0) return -1; break;
        case O_RESP: if (parse_dur("--response-timeout", optarg, &st->response_timeout_ms) < 0) return -1; break;
        case O_UPIDLE: if (parse_dur("--upstream-idle", optarg, &st->upstream_idle_ms) < 0) return -1; break;
        case O_DRAIN: if (parse_dur("--drain-timeout", optarg, &st->drain_timeout_ms) < 0) return -1; break;
        case O_SPREAD: if (parse_dur("--drain-spread", optarg, &st->drain_spread_ms) < 0) return -1; break;
        case O_HB: if (parse_dur("--heartbeat", optarg, &st->heartbeat_ms) < 0) return -1; break;
        case O_STALL: if (parse_dur("--stall-timeout", optarg, &st->stall_timeout_ms) < 0) return -1; break;
        case O_WSIDLE: if (parse_dur("--ws-idle-timeout", optarg, &st->ws_idle_ms) < 0) return -1; break;
        case O_H2S: if (parse_u32("--h2-max-streams", optarg, 1, 1u << 20, &st->h2_max_streams) < 0) return -1; break;
        case O_H2W: if (parse_u32("--h2-window", optarg, 65535, 0x7fffffff, &st->h2_stream_window) < 0) return -1; break;
        case O_H2CW: if (parse_u32("--h2-conn-window", optarg, 65535, 0x7fffffff, &st->h2_conn_window) < 0) return -1; break;
        case O_H2CB: {
            /* At least one full DATA frame must fit, or a stream could never make progress; at most 1 GiB. */
            uint32_t n;
            if (parse_u32("--h2-conn-buffer", optarg, 16384, 1u << 30, &n) < 0)
                return -1;
            st->h2_conn_buffer = n;
            break;
        }
        case O_TLSHS: if (parse_dur("--tls-handshake-timeout", optarg, &st->tls_handshake_timeout_ms) < 0) return -1; break;
        case O_CRATE: if (parse_u32("--client-rate", optarg, 0, 1000000, &st->client_rate) < 0) return -1; break;
        case O_H2RST: if (parse_u32("--h2-reset-budget", optarg, 0, 1000000, &st->h2_reset_budget) < 0) return -1; break;
        case O_UPCONNS: if (parse_u32("--h2-upstream-conns", optarg, 1, 1024, &st->h2_up_conns) < 0) return -1; break;
        case O_UPSTREAMS:
            if (parse_u32("--h2-upstream-max-streams", optarg, 1, 1000000, &st->h2_up_max_streams) < 0)
                return -1;
            break;
        case O_UPWIN:
            /* RFC 9113's initial window is the floor; a larger one is what each paused stream may hold. */
            if (parse_u32("--h2-upstream-window", optarg, 65535, 16u << 20, &st->h2_up_window) < 0)
                return -1;
            break;
        case O_UPREPLAY:
            if (parse_u32("--h2-upstream-replay", optarg, 0, 16u << 20, &st->h2_up_replay) < 0)
                return -1;
            break;
        case O_UPPING:
            if (parse_dur_range("--h2-upstream-ping", optarg, 100, 3600000, &st->h2_up_ping_ms) < 0)
                return -1;
            break;
        case O_UPPINGTO:
            if (parse_dur_range("--h2-upstream-ping-timeout", optarg, 100, 3600000, &st->h2_up_ping_timeout_ms) < 0)
                return -1;
            break;
        case O_PAUSE: if (parse_u32("--saturation-pause-us", optarg, 0, 100000, &st->saturation_pause_us) < 0) return -1; break;
        case O_SATTUN:
            if (strcmp(optarg, "relay") != 0 && strcmp(optarg, "pause") != 0) {
                fprintf(stderr, "ssegate: --saturation-tunnels: expected relay or pause, got '%s'\n", optarg);
                return -1;
            }
            st->saturation_tunnels_pause = strcmp(optarg, "pause") == 0;
            break;
        case O_TLSTH: {
            uint32_t n;
            if (parse_u32("--tls-threads", optarg, 0, 256, &n) < 0)
                return -1;
            o->tls_threads = (int)n;
            break;
        }
        case O_KUBE: o->kube.incluster = true; break;
        case O_KSA: o->kube.sa_dir = optarg; break;
        case O_KCFG: o->kube.kubeconfig = optarg; break;
        case O_CTRL: o->kube.controller = optarg; break;
        case O_WNS: o->kube.watch_ns = optarg; break;
        case O_PUBSVC: o->kube.publish_service = optarg; break;
        case O_LEASENS: o->kube.lease_ns = optarg; break;
        case O_LEASEDUR: {
            int64_t ms;
            if (parse_dur("--lease-duration", optarg, &ms) < 0)
                return -1;
            if (ms < 1000 || ms % 1000 != 0) {
                fprintf(stderr, "ssegate: --lease-duration: whole seconds, at least 1s (the Lease says seconds)\n");
                return -1;
            }
            o->kube.lease_duration_ms = ms;
            break;
        }
        case O_KQPS:
            if (parse_u32("--kube-api-qps", optarg, 0, 100000, &o->kube.api_qps) < 0)
                return -1;
            o->kube.api_rate_set = true;
            break;
        case O_KBURST:
            if (parse_u32("--kube-api-burst", optarg, 1, 100000, &o->kube.api_burst) < 0)
                return -1;
            break;
        case O_KNICE:
            if (parse_u32("--kube-nice", optarg, 0, 19, &o->kube.nice) < 0)
                return -1;
            o->kube.nice_set = true;
            break;
        case O_WCPUS:
        case O_KCPUS: {
            const char *flag = c == O_WCPUS ? "--worker-cpus" : "--kube-cpus";
            cpu_set_t *set = c == O_WCPUS ? &o->worker_cpus : &o->kube.cpus;
            if (c == O_KCPUS && strcmp(optarg, "own") == 0) {
                o->kube_cpus_own = true; /* resolved once every option is read (split_cpus) */
                o->kube.cpus_set = true;
                break;
            }
            if (sg_cpus_parse(optarg, set) < 0) {
                fprintf(stderr, "ssegate: %s: expected a CPU list such as 0-3,6, got '%s'\n", flag, optarg);
                return -1;
            }
            int cpu;
            if (sg_cpus_outside(set, &o->allowed, &cpu) < 0) {
                char list[256];
                fprintf(stderr, "ssegate: %s: CPU %d is not one this process may run on (%s)\n", flag, cpu,
                        sg_cpus_format(&o->allowed, list, sizeof(list)));
                return -1;
            }
            if (c == O_WCPUS) {
                o->worker_cpus_set = true;
            } else {
                o->kube.cpus_set = true;
                o->kube_cpus_own = false; /* the last --kube-cpus counts */
            }
            break;
        }
        case O_DUMP: o->dump_config = true; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ssegate: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (st->drain_spread_ms > st->drain_timeout_ms)
        st->drain_spread_ms = st->drain_timeout_ms;
    o->kube_on = o->kube.incluster || o->kube.kubeconfig != NULL;
    if (o->kube.sa_dir == NULL)
        o->kube.sa_dir = getenv("SSEGATE_KUBE_SA_DIR");
    if (o->kube.incluster && o->kube.kubeconfig != NULL) {
        fprintf(stderr, "ssegate: --kube and --kubeconfig: give one\n");
        return -1;
    }
    if (o->kube_on && (o->config != NULL || o->check)) {
        fprintf(stderr, "ssegate: -c/--check and --kube/--kubeconfig: give one config source\n");
        return -1;
    }
    if (!o->kube_on && (o->dump_config || o->kube.controller || o->kube.watch_ns || o->kube.publish_service ||
                        o->kube.lease_ns || o->kube.lease_duration_ms || o->kube.api_rate_set ||
                        o->kube.api_burst || o->kube.nice_set || o->kube.cpus_set)) {
        fprintf(stderr, "ssegate: --dump-config, --controller-name, --watch-namespace, --publish-service, "
                        "--lease-namespace, --lease-duration, --kube-api-qps/-burst, --kube-nice and --kube-cpus need "
                        "--kube or --kubeconfig\n");
        return -1;
    }
    if (o->kube_cpus_own && split_cpus(o) < 0)
        return -1;
    if (o->kube.api_rate_set && o->kube.api_qps == 0 && o->kube.api_burst) {
        fprintf(stderr, "ssegate: --kube-api-burst: no rate limit to burst above (--kube-api-qps 0)\n");
        return -1;
    }
    if (o->kube.publish_service && strchr(o->kube.publish_service, '/') == NULL) {
        fprintf(stderr, "ssegate: --publish-service: expected NAMESPACE/NAME, got '%s'\n", o->kube.publish_service);
        return -1;
    }
    if (o->config == NULL && !o->kube_on) {
        fprintf(stderr, "ssegate: no config given (-c FILE, or --kube / --kubeconfig FILE)\n");
        usage(stderr);
        return -1;
    }
    return 0;
}

/* Raises the soft fd limit to the hard one: each proxied stream needs two descriptors. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

typedef struct metrics_ctx {
    sg_worker_t *workers;
    int nworkers;
    sg_metrics_global_t g;
    const sg_health_t *health;
    const sg_admin_t *admin;
    sg_kube_t *kube;
} metrics_ctx_t;

typedef struct health_render {
    FILE *f;
    int pass;
    uint64_t now;
} health_render_t;

static void render_endpoint(const sg_health_entry_t *e, void *arg)
{
    health_render_t *r = arg;
    if (r->pass == 0) {
        bool ok = atomic_load(&e->healthy) && atomic_load(&e->ejected_until_ms) <= r->now;
        fprintf(r->f, "ssegate_endpoint_healthy{endpoint=\"%s\"} %d\n", e->label, ok ? 1 : 0);
    } else {
        fprintf(r->f, "ssegate_endpoint_active_streams{endpoint=\"%s\"} %d\n", e->label, atomic_load(&e->active));
    }
}

static void render_metrics(FILE *f, void *ctx)
{
    metrics_ctx_t *m = ctx;
    const sg_metrics_t *shards[256];
    size_t n = 0;
    for (int i = 0; i < m->nworkers && n < SG_ARRAY_LEN(shards); i++)
        shards[n++] = &m->workers[i].metrics;
    m->g.admin_accept_fd_limit = m->admin->accept_fd_limit;
    m->g.admin_reserve_accepts = m->admin->reserve_accepts;
    sg_metrics_render(f, shards, n, &m->g);
    if (m->kube)
        sg_kube_render_metrics(m->kube, f);
    if (m->health) {
        health_render_t r = {f, 0, sg_now_ms()};
        fputs("# HELP ssegate_endpoint_healthy 1 when the endpoint passes active checks and is not ejected.\n"
              "# TYPE ssegate_endpoint_healthy gauge\n", f);
        sg_health_each(m->health, render_endpoint, &r);
        r.pass = 1;
        fputs("# HELP ssegate_endpoint_active_streams Streams open on the endpoint (all workers).\n"
              "# TYPE ssegate_endpoint_active_streams gauge\n", f);
        sg_health_each(m->health, render_endpoint, &r);
        fprintf(f, "# HELP ssegate_health_entries Endpoint addresses in the health table (the config's, and those "
                   "that old generations still in use name).\n# TYPE ssegate_health_entries gauge\n"
                   "ssegate_health_entries %zu\n", m->health->nentries);
        fprintf(f, "# HELP ssegate_health_entries_pruned_total Health entries freed after their endpoint left the "
                   "config.\n# TYPE ssegate_health_entries_pruned_total counter\nssegate_health_entries_pruned_total "
                   "%llu\n", (unsigned long long)m->health->pruned);
    }
}

static size_t open_conns(sg_worker_t *workers, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += atomic_load_explicit(&workers[i].nconns_pub, memory_order_relaxed);
    return total;
}

/* Hands a loaded generation (ownership taken) to every worker: the one path for SIGHUP and for the kube watcher.
 * Returns 0, or -ENOMEM (the running config stays). */
static int publish(sg_config_t *next, sg_config_t **cur, sg_worker_t *workers, int nworkers, metrics_ctx_t *mc,
                   sg_health_t *health)
{
    /* Endpoints find their address's health entry (kept across reloads) and probes follow the new targets. */
    if (sg_health_attach(health, next) < 0) {
        sg_config_unref(next);
        mc->g.reloads_failed++;
        return -ENOMEM;
    }
    mc->g.reloads_ok++;
    next->generation = (*cur)->generation + 1;
    for (int i = 0; i < nworkers; i++) {
        sg_config_ref(next);
        sg_config_unref(atomic_exchange(&workers[i].pending_cfg, next));
        sg_loop_wake(&workers[i].loop);
    }
    sg_config_unref(*cur);
    *cur = next;
    mc->g.config_generation = next->generation;
    return 0;
}

static void reload(const opts_t *o, sg_config_t **cur, sg_worker_t *workers, int nworkers, metrics_ctx_t *mc,
                   sg_health_t *health)
{
    sg_config_t *next = NULL;
    int rc = sg_config_load(o->config, stderr, &next);
    if (rc == 0)
        rc = publish(next, cur, workers, nworkers, mc, health);
    else
        mc->g.reloads_failed++;
    if (rc < 0) {
        sg_log_error("reload of %s failed; the running config stays in force", o->config);
        return;
    }
    sg_log_info("config reloaded (generation %llu)", (unsigned long long)(*cur)->generation);
}

int main(int argc, char **argv)
{
    opts_t o = {.access_log = "-", .tls_threads = -1};
    sg_settings_t st = {
        .header_timeout_ms = 10000,
        .idle_timeout_ms = 60000,
        .connect_timeout_ms = 5000,
        .response_timeout_ms = 60000,
        .upstream_idle_ms = 30000,
        .out_high_wm = 256 * 1024,
        .out_low_wm = 64 * 1024,
        .pool_max_idle = 64,
        .log_fd = -1,
        .drain_timeout_ms = 300000,
        .drain_spread_ms = 30000,
        .heartbeat_ms = 0,
        .stall_timeout_ms = 60000,
        .saturation_pause_us = 500,
        .saturation_tunnels_pause = false,
        .client_rate = 1000,
        .h2_reset_budget = 100,
        .h2_up_conns = 16,
        .h2_up_max_streams = 10000,
        .h2_up_window = 128 * 1024,
        .h2_up_replay = 64 * 1024,
        .h2_up_ping_ms = 30000,
        .h2_up_ping_timeout_ms = 10000,
    };
    if (parse_args(argc, argv, &o, &st) < 0)
        return 2;

    sg_config_t *cfg = NULL;
    sg_kube_t *kube = NULL;
    int rc;
    if (o.kube_on) {
        char err[512];
        kube = sg_kube_new(&o.kube, err, sizeof(err));
        if (kube == NULL) {
            fprintf(stderr, "ssegate: %s\n", err);
            return 1;
        }
        if (o.dump_config) {
            rc = sg_kube_dump(kube, stdout);
            sg_kube_free(kube);
            return rc == 0 ? 0 : 1;
        }
        /* Nothing is served until the watcher has seen every kind: the workers start with an empty generation and
         * /ready says 503 until the first built one is published. */
        rc = sg_config_load_string("kube", "", 0, stderr, &cfg);
    } else {
        rc = sg_config_load(o.config, stderr, &cfg);
    }
    if (o.check) {
        if (rc == 0)
            printf("%s: ok\n", o.config);
        sg_config_unref(cfg);
        return rc == 0 ? 0 : 1;
    }
    if (rc < 0) {
        if (rc != -EINVAL)
            fprintf(stderr, "ssegate: %s: %s\n", o.config ? o.config : "kube", strerror(-rc));
        sg_kube_free(kube);
        return 1;
    }
    if (cfg->nbinds == 0 && !o.kube_on) {
        fprintf(stderr, "ssegate: %s: no Gateway listener to serve\n", o.config);
        sg_config_unref(cfg);
        return 1;
    }
    /* Start-up failures unwind through the fail_* labels, so that even an early exit frees what it took. */
    int sfd = -1, nworkers = 0, started = 0, exit_code = 1;
    int signals = 0; /* SIGTERM/SIGINT received */
    sg_worker_t *workers = NULL;
    sg_hspool_t *hspool = NULL;
    sg_accesslog_t alog = {.pipe_w = -1};
    sg_admin_t admin = {.listen_fd = -1};
    sg_health_t health;
    memset(&health, 0, sizeof(health));
    if (sg_health_init(&health) < 0 || sg_health_attach(&health, cfg) < 0) {
        fprintf(stderr, "ssegate: out of memory\n");
        goto fail;
    }
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    /* Blocked before the workers start, so they inherit the mask and only signalfd sees signals. */
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        fprintf(stderr, "ssegate: signalfd: %s\n", strerror(errno));
        goto fail;
    }

    if (strcmp(o.access_log, "off") != 0) {
        rc = sg_accesslog_open(&alog, o.access_log);
        if (rc < 0) {
            fprintf(stderr, "ssegate: access log %s: %s\n", o.access_log, strerror(-rc));
            goto fail;
        }
        st.log_fd = alog.pipe_w;
    }

    if (o.admin) {
        rc = sg_admin_open(&admin, o.admin);
        if (rc < 0) {
            fprintf(stderr, "ssegate: --admin %s: %s\n", o.admin,
                    rc == -EINVAL ? "expected ADDR:PORT" : strerror(-rc));
            goto fail;
        }
    }

    int ncores = o.workers > 0 ? o.workers : default_workers(&o);
    workers = calloc((size_t)ncores, sizeof(*workers));
    if (workers == NULL) {
        fprintf(stderr, "ssegate: out of memory\n");
        goto fail;
    }
    for (int i = 0; i < ncores; i++) {
        rc = sg_serve_init(&workers[i], i, &st, cfg);
        if (rc < 0) {
            fprintf(stderr, "ssegate: worker %d: %s\n", i, strerror(-rc));
            goto fail;
        }
        nworkers++;
    }
    /* One upstream per sharing key for the whole instance: the workers' shared streams know each other. */
    if (sg_fanout_link(workers, nworkers) < 0) {
        fprintf(stderr, "ssegate: out of memory\n");
        goto fail;
    }
    /* TLS handshakes run on their own threads, so a key exchange never holds up a loop's streams. */
    int ntls = o.tls_threads >= 0 ? o.tls_threads : nworkers;
    if (ntls > 0) {
        hspool = sg_hspool_start(ntls);
        if (hspool == NULL)
            sg_log_error("no TLS handshake threads: handshakes run on the worker loops");
        for (int i = 0; i < nworkers; i++)
            workers[i].hspool = hspool;
    }
    for (int i = 0; i < nworkers; i++) {
        pthread_attr_t attr;
        if ((rc = pthread_attr_init(&attr)) == 0) {
            if (o.worker_cpus_set) {
                cpu_set_t one;
                CPU_ZERO(&one);
                CPU_SET(sg_cpus_nth(&o.worker_cpus, i), &one);
                rc = pthread_attr_setaffinity_np(&attr, sizeof(one), &one);
            }
            if (rc == 0)
                rc = pthread_create(&workers[i].thread, &attr, sg_serve_main, &workers[i]);
            pthread_attr_destroy(&attr);
        }
        if (rc != 0) {
            fprintf(stderr, "ssegate: cannot start worker threads: %s\n", strerror(rc));
            goto fail;
        }
        started++;
    }
    for (size_t i = 0; i < cfg->nbinds; i++)
        fprintf(stderr, "ssegate: listening on %s\n", cfg->binds[i].label);
    if (o.admin)
        fprintf(stderr, "ssegate: admin on %s\n", o.admin);
    cfg->generation = 1;
    metrics_ctx_t mctx = {.workers = workers, .nworkers = nworkers, .g = {.config_generation = 1}, .health = &health,
                          .admin = &admin, .kube = kube};
    admin.render_metrics = render_metrics;
    admin.ctx = &mctx;
    admin.ready = kube == NULL;
    if (kube != NULL && (rc = sg_kube_start(kube)) < 0) {
        fprintf(stderr, "ssegate: cannot start the kube thread: %s\n", strerror(-rc));
        goto fail;
    }

    /* Signals: the first SIGTERM/SIGINT drains, a second one (or the drain deadline) stops at once. */
    uint64_t next_report = 0;
    bool kube_published = false;
    uint64_t status_build = 0;  /* a kube build published, not yet taken by every worker */
    sg_krebind_t rebind = {0};   /* kube mode: listeners whose port did not bind, retried with backoff */
    for (;;) {
        struct pollfd pfds[3 + SG_ADMIN_MAX_CLIENTS + SG_HEALTH_MAX_INFLIGHT];
        pfds[0] = (struct pollfd){.fd = sfd, .events = POLLIN};
        uint64_t before = sg_now_ms();
        int na = sg_admin_pollfds(&admin, pfds + 1, before);
        int nh = sg_health_pollfds(&health, pfds + 1 + na);
        int kfd = 1 + na + nh; /* the kube watcher's "a generation waits" */
        pfds[kfd] = (struct pollfd){.fd = kube ? sg_kube_fd(kube) : -1, .events = POLLIN};
        int wait = signals ? 100 : (kube_published && !admin.ready) || status_build ? 5 : 1000;
        int await = sg_admin_next_timeout_ms(&admin, before);
        if (await >= 0 && await < wait)
            wait = await;
        int rwait = sg_krebind_wait_ms(&rebind, before);
        if (rwait >= 0 && rwait < wait)
            wait = rwait;
        int hwait = sg_health_next_timeout_ms(&health, before);
        int n = poll(pfds, (nfds_t)(kfd + 1), hwait >= 0 && hwait < wait ? hwait : wait);
        if (n < 0 && errno != EINTR)
            break;
        uint64_t now = sg_now_ms();
        if (na > 0)
            sg_admin_handle(&admin, pfds + 1, na, now);
        sg_health_handle(&health, pfds + 1 + na, nh, now);
        if (kube != NULL && (pfds[kfd].revents & POLLIN)) {
            /* Published exactly as a SIGHUP reload: open streams keep the generation they started with. While
             * draining nothing new is published (as SIGHUP is ignored then). */
            uint64_t build = 0;
            sg_config_t *next = sg_kube_take(kube, &build);
            if (next != NULL && signals > 0) {
                sg_config_unref(next);
            } else if (next != NULL && publish(next, &cfg, workers, nworkers, &mctx, &health) == 0) {
                kube_published = true;
                status_build = build;   /* Programmed once every worker serves it (below) */
                sg_krebind_reset(&rebind);
            }
        }
        /* A build's status may say Programmed once every worker has taken it (and so opened its listeners). */
        if (status_build != 0) {
            bool adopted = true;
            for (int i = 0; i < nworkers; i++)
                adopted &= atomic_load_explicit(&workers[i].adopted_gen, memory_order_acquire) == cfg->generation;
            if (adopted) {
                uint16_t failed[SG_WORKER_MAX_BIND_FAILED];
                size_t nf = sg_krebind_collect(workers, nworkers, failed);
                sg_kube_published(kube, status_build, failed, nf);
                sg_krebind_start(&rebind, status_build, cfg->generation, failed, nf, now);
                status_build = 0;
            }
        }
        /* Listeners whose port was taken are tried again until they bind, without a config change. */
        if (kube != NULL && status_build == 0 && signals == 0 &&
            sg_krebind_tick(&rebind, workers, nworkers, now))
            sg_kube_rebound(kube, rebind.build, rebind.failed, rebind.nfailed);
        /* Ready once every worker has taken the first kube generation (and so opened its listeners). */
        if (kube_published && !admin.ready && signals == 0) {
            bool adopted = true;
            for (int i = 0; i < nworkers; i++)
                adopted &= atomic_load(&workers[i].pending_cfg) == NULL;
            if (adopted) {
                admin.ready = true;
                sg_log_info("kube: first config published (generation %llu): ready", (unsigned long long)cfg->generation);
            }
        }
        if (pfds[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                if (si.ssi_signo == SIGHUP) {
                    if (signals == 0 && kube != NULL)
                        sg_kube_relist(kube);
                    else if (signals == 0)
                        reload(&o, &cfg, workers, nworkers, &mctx, &health);
                    continue;
                }
                if (signals++ == 0) {
                    admin.ready = false;
                    mctx.g.draining = true;
                    if (kube != NULL)
                        sg_kube_release(kube); /* another replica writes status from now on */
                    sg_log_info("signal %u: draining: listeners closed, %zu connections open, SSE streams close "
                                "over the last %lld ms of a %lld ms window",
                                si.ssi_signo, open_conns(workers, nworkers), (long long)st.drain_spread_ms,
                                (long long)st.drain_timeout_ms);
                    for (int i = 0; i < nworkers; i++)
                        sg_serve_request_drain(&workers[i]);
                    next_report = now + 1000;
                } else {
                    sg_log_info("signal %u: stopping now", si.ssi_signo);
                    for (int i = 0; i < nworkers; i++)
                        sg_serve_request_stop(&workers[i]);
                }
            }
        }
        if (signals > 0) {
            int done = 0;
            for (int i = 0; i < nworkers; i++)
                done += atomic_load(&workers[i].done) ? 1 : 0;
            if (done == nworkers)
                break;
            mctx.g.drain_remaining = open_conns(workers, nworkers);
            if (now >= next_report) {
                sg_log_info("draining: %zu connections remain", open_conns(workers, nworkers));
                next_report = now + 1000;
            }
        }
    }
    admin.ready = false;
    exit_code = 0;
    goto out; /* the workers have exited: the same unwinding as a failure, without the stop requests */

fail:
    for (int i = 0; i < started; i++)
        sg_serve_request_stop(&workers[i]);
out:
    sg_kube_free(kube); /* stops the watcher first: nothing new is built while the rest unwinds */
    kube = NULL;
    for (int i = 0; i < started; i++)
        pthread_join(workers[i].thread, NULL);
    sg_hspool_stop(hspool);
    for (int i = 0; i < nworkers; i++)
        sg_serve_free(&workers[i]);
    free(workers);
    sg_admin_close(&admin);
    sg_accesslog_close(&alog);
    if (sfd >= 0)
        close(sfd);
    sg_config_unref(cfg);
    sg_health_free(&health);
    if (exit_code == 0)
        sg_log_info(signals ? "drain complete, exiting" : "stopped");
    return exit_code;
}
