/* atrctl keygen: a Consumer's key pair for SMART Backend Services, ready to register: the
 * private key as PKCS#8 PEM (mode 0600) and the public JWKS whose kid is the key's RFC 7638
 * thumbprint, the kid `atrctl fetch` uses by default. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include "atr_consumer.h"
#include "atr_jose.h"
#include "atr_json.h"
#include "atrctl.h"

static void keygen_usage(FILE *f)
{
    fprintf(f, "usage: atrctl keygen [--alg ES384|RS384] [--bits N] --out DIR [--force]\n\n"
               "Makes a new key pair for a Consumer's client assertions: DIR/private-key.pem (PKCS#8,\n"
               "mode 0600; keep it secret) and DIR/jwks.json (the public JWKS to register with the\n"
               "Producer, e.g. `atrctl client add ID --jwks-file DIR/jwks.json`, or to publish at the\n"
               "Consumer's JWKS URL). ES384 (default) makes a P-384 key, RS384 an RSA key of --bits\n"
               "(2048 to 8192, default 2048). The kid is the RFC 7638 thumbprint of the key; it is\n"
               "printed on stdout. Existing files are not replaced unless --force.\n");
}

static int usage_error(const char *msg)
{
    fprintf(stderr, "atrctl keygen: %s\n", msg);
    keygen_usage(stderr);
    return ATRCTL_EXIT_USAGE;
}

/* Creates path with mode 0600 before a byte is written, so the key is never readable by others. */
static FILE *create_private(const char *path, int force)
{
    int fd;
    if (force) unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    return fd < 0 ? NULL : fdopen(fd, "w");
}

int atrctl_cmd_keygen(atrctl_ctx_t *ctx, int argc, const char *const *argv)
{
    apr_pool_t *p = ctx->pool;
    const char *alg = "ES384", *out = NULL, *kid = NULL, *key_path, *jwks_path;
    long bits = 2048;
    int force = 0, i;
    EVP_PKEY *key = NULL;
    json_t *jwk, *jwks;
    char *dump = NULL;
    FILE *f;
    apr_status_t rv;
    int rc = ATRCTL_EXIT_FAIL;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            keygen_usage(stdout);
            return ATRCTL_EXIT_OK;
        }
        if (!strcmp(a, "--force")) {
            force = 1;
            continue;
        }
        if (strcmp(a, "--alg") && strcmp(a, "--out") && strcmp(a, "--bits")) {
            return usage_error(apr_psprintf(p, "unknown argument %s", a));
        }
        if (!v) return usage_error(apr_psprintf(p, "%s needs a value", a));
        i++;
        if (!strcmp(a, "--alg")) {
            if (atr_jose_alg_parse(v) == ATR_JOSE_ALG_NONE) {
                return usage_error(apr_psprintf(p, "--alg '%s': ES384 or RS384", v));
            }
            alg = v;
        }
        else if (!strcmp(a, "--out")) {
            out = v;
        }
        else {
            char *end = NULL;
            bits = strtol(v, &end, 10);
            if (!*v || *end || bits < 2048 || bits > 8192) {
                return usage_error(apr_psprintf(p, "--bits '%s': 2048 to 8192", v));
            }
        }
    }
    if (!out) return usage_error("--out is required");
    if (strcmp(alg, "RS384") && bits != 2048) return usage_error("--bits is for RS384 keys");

    rv = apr_dir_make_recursive(out, APR_FPROT_OS_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        char buf[256];
        fprintf(stderr, "atrctl keygen: cannot create %s: %s\n", out, apr_strerror(rv, buf, sizeof(buf)));
        return ATRCTL_EXIT_FAIL;
    }
    key_path = apr_pstrcat(p, out, "/private-key.pem", NULL);
    jwks_path = apr_pstrcat(p, out, "/jwks.json", NULL);
    if (!force && (access(key_path, F_OK) == 0 || access(jwks_path, F_OK) == 0)) {
        fprintf(stderr, "atrctl keygen: %s or %s exists; use --force to replace them\n", key_path, jwks_path);
        return ATRCTL_EXIT_FAIL;
    }
    key = strcmp(alg, "RS384") ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384")
                               : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    if (!key) {
        fprintf(stderr, "atrctl keygen: OpenSSL could not make a %s key\n", alg);
        return ATRCTL_EXIT_FAIL;
    }
    if (atr_consumer_thumbprint(&kid, key, p) != APR_SUCCESS
        || !(jwk = atr_jwk_from_pkey(key, kid, p))) {
        fprintf(stderr, "atrctl keygen: cannot compute the public JWK\n");
        goto out;
    }
    jwks = atr_json_pool_own(json_pack("{s:[O]}", "keys", jwk), p);
    if (!jwks || !(dump = json_dumps(jwks, JSON_INDENT(2) | JSON_PRESERVE_ORDER))) goto out;

    if (!(f = create_private(key_path, force))) {
        fprintf(stderr, "atrctl keygen: cannot create %s: %s\n", key_path, strerror(errno));
        goto out;
    }
    if (PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) != 1 || fclose(f) != 0) {
        fprintf(stderr, "atrctl keygen: cannot write %s\n", key_path);
        unlink(key_path);
        goto out;
    }
    if (force) unlink(jwks_path);
    if (!(f = fopen(jwks_path, "wx")) || fputs(dump, f) < 0 || fputc('\n', f) == EOF || fclose(f) != 0) {
        fprintf(stderr, "atrctl keygen: cannot write %s: %s\n", jwks_path, strerror(errno));
        unlink(key_path);
        goto out;
    }
    printf("%s\n", kid);
    fprintf(stderr, "atrctl keygen: %s key, kid %s: private key %s, public JWKS %s\n", alg, kid, key_path,
            jwks_path);
    rc = ATRCTL_EXIT_OK;
out:
    free(dump);
    EVP_PKEY_free(key);
    return rc;
}
