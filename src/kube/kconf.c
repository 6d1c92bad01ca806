/* kconf.c: where the API server is and how to authenticate: the in-cluster service account, or a kubeconfig's
 * current context (refusing what ssegate cannot do, with the reason). */
#include "kube/kclient.h"

#include <libfyaml.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define FILE_MAX (4u << 20)

static char *xstrdup(const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d != NULL)
        memcpy(d, s, n + 1);
    return d;
}

/* Reads a whole (small) file; NUL-terminated. Returns 0 or -errno. */
static int read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -errno;
    char *buf = malloc(FILE_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        return -ENOMEM;
    }
    size_t n = fread(buf, 1, FILE_MAX + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > FILE_MAX) {
        free(buf);
        return bad ? -EIO : -EFBIG;
    }
    buf[n] = '\0';
    *out = buf;
    if (len)
        *len = n;
    return 0;
}

void sg_kconf_free(sg_kconf_t *kc)
{
    free(kc->host);
    free(kc->port);
    free(kc->base_path);
    free(kc->tls_server_name);
    free(kc->ca_pem);
    free(kc->token);
    free(kc->token_file);
    free(kc->namespace);
    memset(kc, 0, sizeof(*kc));
}

int sg_kconf_incluster(sg_kconf_t *kc, const char *sa_dir, char *err, size_t cap)
{
    memset(kc, 0, sizeof(*kc));
    const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
    if (host == NULL || *host == '\0' || port == NULL || *port == '\0') {
        snprintf(err, cap, "--kube: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (not in a pod?)");
        return -EINVAL;
    }
    if (sa_dir == NULL)
        sa_dir = SA_DIR;
    char path[PATH_MAX];
    kc->host = xstrdup(host);
    kc->port = xstrdup(port);
    kc->base_path = xstrdup("");
    snprintf(path, sizeof(path), "%s/token", sa_dir);
    kc->token_file = xstrdup(path);
    if (kc->host == NULL || kc->port == NULL || kc->base_path == NULL || kc->token_file == NULL) {
        sg_kconf_free(kc);
        snprintf(err, cap, "out of memory");
        return -ENOMEM;
    }
    FILE *t = fopen(path, "re");
    if (t == NULL) {
        int e = errno;
        snprintf(err, cap, "--kube: %s: %s", path, strerror(e));
        sg_kconf_free(kc);
        return -e;
    }
    fclose(t);
    snprintf(path, sizeof(path), "%s/ca.crt", sa_dir);
    int rc = read_file(path, &kc->ca_pem, &kc->ca_len);
    if (rc < 0) {
        snprintf(err, cap, "--kube: %s: %s", path, strerror(-rc));
        sg_kconf_free(kc);
        return rc;
    }
    snprintf(path, sizeof(path), "%s/namespace", sa_dir);
    char *ns = NULL;
    if (read_file(path, &ns, NULL) == 0) {
        size_t n = strlen(ns);
        while (n > 0 && (ns[n - 1] == '\n' || ns[n - 1] == ' '))
            ns[--n] = '\0';
        if (n > 0)
            kc->namespace = ns;
        else
            free(ns);
    }
    return 0;
}

/* ---- kubeconfig ---- */

static const char *scalar(struct fy_node *n, const char *path)
{
    struct fy_node *v = n ? fy_node_by_path(n, path, FY_NT, FYNWF_DONT_FOLLOW) : NULL;
    return v && fy_node_get_type(v) == FYNT_SCALAR ? fy_node_get_scalar0(v) : NULL;
}

/* The entry of list `key` (clusters, users, contexts) whose name is name, or NULL. */
static struct fy_node *named(struct fy_node *root, const char *key, const char *name, const char *inner)
{
    struct fy_node *seq = fy_node_mapping_lookup_by_string(root, key, FY_NT);
    if (seq == NULL || fy_node_get_type(seq) != FYNT_SEQUENCE || name == NULL)
        return NULL;
    void *it = NULL;
    struct fy_node *e;
    while ((e = fy_node_sequence_iterate(seq, &it)) != NULL) {
        const char *n = scalar(e, "/name");
        if (n != NULL && strcmp(n, name) == 0) {
            struct fy_node *in = fy_node_mapping_lookup_by_string(e, inner, FY_NT);
            return in && fy_node_get_type(in) == FYNT_MAPPING ? in : NULL;
        }
    }
    return NULL;
}

static int b64_decode(const char *in, char **out, size_t *len)
{
    size_t n = strlen(in);
    unsigned char *buf = malloc(n / 4 * 3 + 4);
    if (buf == NULL)
        return -ENOMEM;
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    int l1 = 0, l2 = 0;
    if (ctx == NULL) {
        free(buf);
        return -ENOMEM;
    }
    EVP_DecodeInit(ctx);
    int ok = EVP_DecodeUpdate(ctx, buf, &l1, (const unsigned char *)in, (int)n) >= 0 &&
             EVP_DecodeFinal(ctx, buf + l1, &l2) == 1;
    EVP_ENCODE_CTX_free(ctx);
    if (!ok) {
        free(buf);
        return -EINVAL;
    }
    buf[l1 + l2] = '\0';
    *out = (char *)buf;
    *len = (size_t)(l1 + l2);
    return 0;
}

/* A path in a kubeconfig is relative to the file's directory. */
static void resolve(const char *cfgpath, const char *p, char *out, size_t cap)
{
    const char *slash = strrchr(cfgpath, '/');
    if (p[0] == '/' || slash == NULL)
        snprintf(out, cap, "%s", p);
    else
        snprintf(out, cap, "%.*s/%s", (int)(slash - cfgpath), cfgpath, p);
}

/* Splits https://host[:port][/path] into kc. */
static int parse_server(sg_kconf_t *kc, const char *url, char *err, size_t cap)
{
    if (strncmp(url, "https://", 8) != 0) {
        snprintf(err, cap, "server %s: only https:// is supported", url);
        return -EINVAL;
    }
    const char *h = url + 8, *end = h + strcspn(h, "/"), *pe;
    const char *port = NULL;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (rb == NULL) {
            snprintf(err, cap, "server %s: bad IPv6 address", url);
            return -EINVAL;
        }
        kc->host = strndup(h + 1, (size_t)(rb - h - 1));
        if (rb[1] == ':')
            port = rb + 2;
    } else {
        const char *colon = memchr(h, ':', (size_t)(end - h));
        kc->host = strndup(h, (size_t)((colon ? colon : end) - h));
        if (colon)
            port = colon + 1;
    }
    pe = end;
    kc->port = port ? strndup(port, (size_t)(pe - port)) : xstrdup("443");
    size_t pl = strlen(end);
    while (pl > 0 && end[pl - 1] == '/')
        pl--;
    kc->base_path = strndup(end, pl);
    if (kc->host == NULL || kc->port == NULL || kc->base_path == NULL || kc->host[0] == '\0' || kc->port[0] == '\0') {
        snprintf(err, cap, "server %s: no host or port", url);
        return -EINVAL;
    }
    return 0;
}

int sg_kconf_load_kubeconfig(sg_kconf_t *kc, const char *path, char *err, size_t cap)
{
    memset(kc, 0, sizeof(*kc));
    char *text = NULL;
    size_t tlen = 0;
    int rc = read_file(path, &text, &tlen);
    if (rc < 0) {
        snprintf(err, cap, "%s: %s", path, strerror(-rc));
        return rc;
    }
    struct fy_diag_cfg dcfg;
    memset(&dcfg, 0, sizeof(dcfg));
    dcfg.level = FYET_ERROR;
    struct fy_diag *diag = fy_diag_create(&dcfg);
    if (diag != NULL)
        fy_diag_set_collect_errors(diag, true);
    struct fy_parse_cfg pc = {.flags = FYPCF_QUIET | FYPCF_DISABLE_RECYCLING, .diag = diag};
    struct fy_document *doc = diag ? fy_document_build_from_malloc_string(&pc, text, tlen) : NULL;
    if (diag == NULL)
        free(text);
    else
        fy_diag_destroy(diag);
    rc = -EINVAL;
    if (doc == NULL) {
        snprintf(err, cap, "%s: not a kubeconfig (YAML does not parse)", path);
        return -EINVAL;
    }
    struct fy_node *root = fy_document_root(doc);
    const char *cur = root ? scalar(root, "/current-context") : NULL;
    struct fy_node *ctx = cur ? named(root, "contexts", cur, "context") : NULL;
    if (ctx == NULL) {
        snprintf(err, cap, "%s: no current-context, or it names no context", path);
        goto out;
    }
    struct fy_node *cl = named(root, "clusters", scalar(ctx, "/cluster"), "cluster");
    const char *uname = scalar(ctx, "/user");
    struct fy_node *user = uname ? named(root, "users", uname, "user") : NULL;
    if (cl == NULL) {
        snprintf(err, cap, "%s: context %s names no cluster", path, cur);
        goto out;
    }
    if (uname != NULL && user == NULL) {
        snprintf(err, cap, "%s: context %s names user %s, which is not defined", path, cur, uname);
        goto out;
    }
    /* What ssegate cannot do is refused rather than ignored: connecting without it would fail later and less
     * clearly, or (insecure-skip-tls-verify) silently trust any server. */
    static const char *const refused_cluster[] = {"insecure-skip-tls-verify", "proxy-url"};
    static const char *const refused_user[] = {"client-certificate", "client-certificate-data", "client-key",
                                               "client-key-data", "exec", "auth-provider", "username", "password",
                                               "as", "as-groups"};
    for (size_t i = 0; i < SG_ARRAY_LEN(refused_cluster); i++) {
        struct fy_node *v = fy_node_mapping_lookup_by_string(cl, refused_cluster[i], FY_NT);
        const char *vs = v && fy_node_get_type(v) == FYNT_SCALAR ? fy_node_get_scalar0(v) : NULL;
        if (v != NULL && !(vs && strcmp(vs, "false") == 0)) {
            snprintf(err, cap, "%s: cluster %s: %s is not supported by ssegate", path, scalar(ctx, "/cluster"),
                     refused_cluster[i]);
            goto out;
        }
    }
    for (size_t i = 0; user && i < SG_ARRAY_LEN(refused_user); i++)
        if (fy_node_mapping_lookup_by_string(user, refused_user[i], FY_NT) != NULL) {
            snprintf(err, cap, "%s: user %s: %s is not supported by ssegate (use a token or tokenFile)", path, uname,
                     refused_user[i]);
            goto out;
        }
    const char *server = scalar(cl, "/server");
    if (server == NULL) {
        snprintf(err, cap, "%s: cluster %s has no server", path, scalar(ctx, "/cluster"));
        goto out;
    }
    if (parse_server(kc, server, err, cap) < 0)
        goto out;
    const char *tsn = scalar(cl, "/tls-server-name");
    if (tsn)
        kc->tls_server_name = xstrdup(tsn);
    const char *cad = scalar(cl, "/certificate-authority-data"), *caf = scalar(cl, "/certificate-authority");
    if (cad != NULL) {
        if (b64_decode(cad, &kc->ca_pem, &kc->ca_len) < 0) {
            snprintf(err, cap, "%s: certificate-authority-data is not valid base64", path);
            goto out;
        }
    } else if (caf != NULL) {
        char p[PATH_MAX];
        resolve(path, caf, p, sizeof(p));
        int r = read_file(p, &kc->ca_pem, &kc->ca_len);
        if (r < 0) {
            snprintf(err, cap, "%s: certificate-authority %s: %s", path, p, strerror(-r));
            rc = r;
            goto out;
        }
    }
    const char *tok = user ? scalar(user, "/token") : NULL, *tokf = user ? scalar(user, "/tokenFile") : NULL;
    if (tok != NULL) {
        kc->token = xstrdup(tok);
    } else if (tokf != NULL) {
        char p[PATH_MAX];
        resolve(path, tokf, p, sizeof(p));
        kc->token_file = xstrdup(p);
    }
    const char *ns = scalar(ctx, "/namespace");
    if (ns)
        kc->namespace = xstrdup(ns);
    rc = 0;
out:
    fy_document_destroy(doc);
    if (rc < 0)
        sg_kconf_free(kc);
    return rc;
}
