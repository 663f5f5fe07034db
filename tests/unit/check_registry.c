/* Unit tests of the Consumer registry core without a directory: RFC 4515 filter escaping,
 * atr_client_validate (every field), the client cache (expiry, negative entries, bound),
 * failing closed when no LDAP server answers, and failover over several URIs against tiny
 * fake LDAP servers on loopback (below: they answer a bind and a search for one client,
 * or accept connections and never answer, as a hung slapd does). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include "check_atr.h"
#include "atr_log.h"
#include "atr_registry.h"

static apr_pool_t *pool;
static void setup(void)
{
    apr_pool_create(&pool, NULL);
}
static void teardown(void)
{
    apr_pool_destroy(pool);
}

static void quiet_sink(void *baton, const char *file, int line, atr_log_level_e level,
                       apr_status_t rv, const char *message)
{
    (void)baton; (void)file; (void)line; (void)level; (void)rv; (void)message;
}

static const char *spec_file(const char *rel)
{
    const char *dir = getenv("ATR_SPEC_DIR") ? getenv("ATR_SPEC_DIR") : ATR_TEST_SPEC_DIR;
    const char *path = apr_pstrcat(pool, dir, "/smart/2.1.0/", rel, NULL);
    FILE *f = fopen(path, "rb");
    char *buf = apr_palloc(pool, 65537);
    size_t n;
    ck_assert_msg(f != NULL, "cannot open %s", path);
    n = fread(buf, 1, 65536, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static apr_array_header_t *strs(const char *a, const char *b)
{
    apr_array_header_t *arr = apr_array_make(pool, 2, sizeof(const char *));
    if (a) APR_ARRAY_PUSH(arr, const char *) = a;
    if (b) APR_ARRAY_PUSH(arr, const char *) = b;
    return arr;
}

static atr_client_t *good_client(void)
{
    atr_client_t *c = apr_pcalloc(pool, sizeof(*c));
    c->client_id = "acme-clinic_1.x~";
    c->jwks_url = "https://acme.example/.well-known/jwks.json";
    c->scopes = strs("system/Group.read", "system/*.rs");
    c->npis = strs("1234567893", NULL);
    c->tins = strs("123456789", NULL);
    c->contracts = strs("http://payer.example/contracts|C-42", NULL);
    c->groups = strs("grp-1", "fullexample");
    c->name = "Acme Clinic \xc3\xa9";
    c->contact = "it@acme.example";
    c->description = "test";
    return c;
}

static void expect_invalid(const atr_client_t *c, int loopback, const char *field)
{
    const char *err = NULL;
    ck_assert_int_eq(atr_client_validate(c, loopback, &err, pool), APR_EINVAL);
    ck_assert_ptr_nonnull(err);
    ck_assert_msg(strstr(err, field) == err, "error '%s' does not start with '%s'", err, field);
}

START_TEST(test_escape_rfc4515)
{
    ck_assert_str_eq(atr_registry_filter_escape("*", pool), "\\2a");
    ck_assert_str_eq(atr_registry_filter_escape("(", pool), "\\28");
    ck_assert_str_eq(atr_registry_filter_escape(")", pool), "\\29");
    ck_assert_str_eq(atr_registry_filter_escape("\\", pool), "\\5c");
    ck_assert_str_eq(atr_registry_filter_escape("", pool), "");
    ck_assert_str_eq(atr_registry_filter_escape(NULL, pool), "");
    ck_assert_str_eq(atr_registry_filter_escape("plain-id_1.x~", pool), "plain-id_1.x~");
    /* RFC 4515 section 4 examples. */
    ck_assert_str_eq(atr_registry_filter_escape("Parens R Us (for all your parenthetical needs)", pool),
                     "Parens R Us \\28for all your parenthetical needs\\29");
    ck_assert_str_eq(atr_registry_filter_escape("C:\\MyFile", pool), "C:\\5cMyFile");
    ck_assert_str_eq(atr_registry_filter_escape("Lu\xc4\x8di\xc4\x87", pool), "Lu\\c4\\8di\\c4\\87");
    /* An injection attempt stays one value. */
    ck_assert_str_eq(atr_registry_filter_escape("*)(objectClass=*", pool), "\\2a\\29\\28objectClass=\\2a");
    ck_assert_str_eq(atr_registry_filter_escape_len("a\0b*", 4, pool), "a\\00b\\2a");
    ck_assert_str_eq(atr_registry_filter_escape_len("\x04\x02\x48\x69", 4, pool), "\\04\\02Hi");
}
END_TEST

START_TEST(test_validate_good)
{
    const char *err = "x";
    atr_client_t *c = good_client();
    ck_assert_int_eq(atr_client_validate(c, 0, &err, pool), APR_SUCCESS);
    ck_assert_ptr_null(err);
    /* Inline JWKS only (the SMART sample ES384 key). */
    c->jwks_url = NULL;
    c->jwks = spec_file("sample-jwks-ES384.public.json");
    ck_assert_int_eq(atr_client_validate(c, 0, &err, pool), APR_SUCCESS);
    c->jwks = spec_file("sample-jwks-RS384.public.json");
    ck_assert_int_eq(atr_client_validate(c, 0, &err, pool), APR_SUCCESS);
    /* Empty lists and no texts are fine. */
    c->scopes = c->npis = c->tins = c->contracts = c->groups = NULL;
    c->name = c->contact = c->description = NULL;
    ck_assert_int_eq(atr_client_validate(c, 0, &err, pool), APR_SUCCESS);
}
END_TEST

START_TEST(test_validate_client_id)
{
    atr_client_t *c = good_client();
    char longid[130];
    c->client_id = "";
    expect_invalid(c, 0, "client_id");
    c->client_id = NULL;
    expect_invalid(c, 0, "client_id");
    c->client_id = "a b";
    expect_invalid(c, 0, "client_id");
    c->client_id = "a*)(x";
    expect_invalid(c, 0, "client_id");
    c->client_id = "a,ou=x";
    expect_invalid(c, 0, "client_id");
    memset(longid, 'a', 129);
    longid[129] = '\0';
    c->client_id = longid;
    expect_invalid(c, 0, "client_id");
    longid[128] = '\0';
    ck_assert_int_eq(atr_client_validate(c, 0, NULL, pool), APR_SUCCESS);
}
END_TEST

START_TEST(test_validate_jwks_url)
{
    atr_client_t *c = good_client();
    c->jwks_url = "http://acme.example/jwks.json";
    expect_invalid(c, 0, "JWKS URL");
    expect_invalid(c, 1, "JWKS URL");
    c->jwks_url = "http://127.0.0.1:8080/jwks.json";
    expect_invalid(c, 0, "JWKS URL");
    ck_assert_int_eq(atr_client_validate(c, 1, NULL, pool), APR_SUCCESS);
    c->jwks_url = "http://[::1]:8080/jwks.json";
    ck_assert_int_eq(atr_client_validate(c, 1, NULL, pool), APR_SUCCESS);
    c->jwks_url = "http://127.evil.example/jwks.json";
    expect_invalid(c, 1, "JWKS URL");
    c->jwks_url = "ftp://acme.example/jwks.json";
    expect_invalid(c, 0, "JWKS URL");
    c->jwks_url = "jwks.json";
    expect_invalid(c, 0, "JWKS URL");
    c->jwks_url = "https://acme.example/a b";
    expect_invalid(c, 0, "JWKS URL");
    c->jwks_url = "https://user:pw@acme.example/jwks";
    expect_invalid(c, 0, "JWKS URL");
    c->jwks_url = NULL;
    expect_invalid(c, 0, "keys");
}
END_TEST

START_TEST(test_validate_inline_jwks)
{
    atr_client_t *c = good_client();
    c->jwks_url = NULL;
    c->jwks = "{not json";
    expect_invalid(c, 0, "inline JWKS");
    c->jwks = "{\"keys\":[]}";
    expect_invalid(c, 0, "inline JWKS");
    c->jwks = "[1]";
    expect_invalid(c, 0, "inline JWKS");
    /* HMAC keys are never usable. */
    c->jwks = "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"k\",\"k\":\"c2VjcmV0\"}]}";
    expect_invalid(c, 0, "inline JWKS");
}
END_TEST

START_TEST(test_validate_lists)
{
    atr_client_t *c = good_client();
    c->scopes = strs("patient/*.read", NULL);
    expect_invalid(c, 0, "scope");
    c->scopes = strs("openid", NULL);
    expect_invalid(c, 0, "scope");
    c->scopes = strs("system/Group.read", "system/Group.read");
    expect_invalid(c, 0, "scope");
    c->scopes = strs("", NULL);
    expect_invalid(c, 0, "scope");
    c = good_client();
    c->npis = strs("1234567890", NULL);       /* wrong check digit */
    expect_invalid(c, 0, "NPI");
    c->npis = strs("123456789", NULL);
    expect_invalid(c, 0, "NPI");
    c->npis = strs("12345678a3", NULL);
    expect_invalid(c, 0, "NPI");
    c = good_client();
    c->tins = strs("12345678", NULL);
    expect_invalid(c, 0, "TIN");
    c->tins = strs("12-3456789", NULL);
    expect_invalid(c, 0, "TIN");
    c = good_client();
    c->contracts = strs("C-42", NULL);
    expect_invalid(c, 0, "contract");
    c->contracts = strs("|C-42", NULL);
    expect_invalid(c, 0, "contract");
    c->contracts = strs("http://x|", NULL);
    expect_invalid(c, 0, "contract");
    c = good_client();
    c->groups = strs("grp 1", NULL);
    expect_invalid(c, 0, "group");
    c->groups = strs("grp/1", NULL);
    expect_invalid(c, 0, "group");
}
END_TEST

START_TEST(test_validate_texts)
{
    atr_client_t *c = good_client();
    c->contact = "nobody";
    expect_invalid(c, 0, "contact");
    c->contact = "caf\xc3\xa9@acme.example";
    expect_invalid(c, 0, "contact");
    c = good_client();
    c->name = "two\nlines";
    expect_invalid(c, 0, "name");
    c = good_client();
    c->description = "tab\there";
    expect_invalid(c, 0, "description");
}
END_TEST

static atr_registry_t *offline_registry(apr_interval_time_t ttl, const char *uris)
{
    atr_registry_conf_t conf;
    atr_registry_t *reg = NULL;
    memset(&conf, 0, sizeof(conf));
    conf.uris = uris;
    conf.base_dn = "ou=clients,dc=atr,dc=example";
    conf.timeout_ms = 500;
    conf.retries = 1;
    conf.cache_ttl = ttl;
    conf.pool_max = 2;
    ck_assert_int_eq(atr_registry_create(&reg, &conf, pool), APR_SUCCESS);
    return reg;
}

START_TEST(test_cache_expiry)
{
    atr_registry_t *reg = offline_registry(apr_time_from_sec(10), "ldap://127.0.0.1:19549");
    atr_client_t *c = good_client(), *got = NULL;
    apr_time_t t0 = apr_time_from_sec(1000000);

    ck_assert_int_eq(atr_registry_cache_get(&got, reg, c->client_id, t0, pool), 0);
    atr_registry_cache_put(reg, c->client_id, c, t0);
    ck_assert_int_eq(atr_registry_cache_get(&got, reg, c->client_id, t0 + apr_time_from_sec(9), pool), 1);
    ck_assert_ptr_nonnull(got);
    ck_assert_ptr_ne(got, c);   /* a copy */
    ck_assert_str_eq(got->client_id, c->client_id);
    ck_assert_int_eq(got->groups->nelts, 2);
    ck_assert_str_eq(APR_ARRAY_IDX(got->groups, 1, const char *), "fullexample");
    ck_assert_int_eq(atr_registry_cache_get(&got, reg, c->client_id, t0 + apr_time_from_sec(10), pool), 0);
    ck_assert_ptr_null(got);

    /* Negative entries. */
    atr_registry_cache_put(reg, "nobody", NULL, t0);
    got = c;
    ck_assert_int_eq(atr_registry_cache_get(&got, reg, "nobody", t0 + 1, pool), 1);
    ck_assert_ptr_null(got);
    atr_registry_cache_forget(reg, "nobody");
    ck_assert_int_eq(atr_registry_cache_get(&got, reg, "nobody", t0 + 1, pool), 0);
}
END_TEST

START_TEST(test_cache_off_and_bounded)
{
    atr_registry_t *reg = offline_registry(0, "ldap://127.0.0.1:19549");
    atr_client_t *got = NULL;
    apr_time_t t0 = apr_time_from_sec(1000000);
    int i;

    atr_registry_cache_put(reg, "a", good_client(), t0);
    ck_assert_int_eq(atr_registry_cache_get(&got, reg, "a", t0, pool), 0);

    reg = offline_registry(apr_time_from_sec(60), "ldap://127.0.0.1:19549");
    for (i = 0; i < ATR_REGISTRY_CACHE_MAX + 10; i++) {
        atr_registry_cache_put(reg, apr_psprintf(pool, "c%d", i), NULL, t0);
        ck_assert_uint_le(atr_registry_cache_count(reg), ATR_REGISTRY_CACHE_MAX);
    }
    ck_assert_int_eq(atr_registry_cache_get(&got, reg, apr_psprintf(pool, "c%d", ATR_REGISTRY_CACHE_MAX + 9),
                                            t0, pool), 1);
}
END_TEST

START_TEST(test_unreachable_fails_closed)
{
    atr_registry_t *reg;
    atr_client_t *got = NULL;
    apr_array_header_t *list = NULL;
    const char *err = NULL, *last;

    atr_log_set_sink(quiet_sink, NULL, ATR_LOG_DEBUG);
    reg = offline_registry(apr_time_from_sec(60), "ldap://127.0.0.1:19548 ldap://127.0.0.1:19549");
    ck_assert_int_eq(atr_registry_client_get(&got, reg, "acme", pool), APR_EGENERAL);
    ck_assert_ptr_null(got);
    last = atr_registry_last_error(reg, pool);
    ck_assert_ptr_nonnull(last);
    ck_assert_ptr_nonnull(strstr(last, "ldap://127.0.0.1:19548"));
    ck_assert_ptr_nonnull(strstr(last, "ldap://127.0.0.1:19549"));
    /* Unreachable is never cached as "not found". */
    ck_assert_int_eq(atr_registry_cache_get(&got, reg, "acme", apr_time_now(), pool), 0);
    ck_assert_int_eq(atr_registry_client_list(&list, reg, NULL, pool), APR_EGENERAL);
    ck_assert_int_ne(atr_registry_client_add(reg, good_client(), &err, pool), APR_SUCCESS);
    ck_assert_ptr_nonnull(err);
    /* An invalid id never reaches the directory. */
    ck_assert_int_eq(atr_registry_client_get(&got, reg, "*", pool), APR_NOTFOUND);
    atr_log_set_sink(NULL, NULL, ATR_LOG_NOTICE);
}
END_TEST

/* ---- fake LDAP servers ---- */

#define FAKE_MAX_CONNS 32

typedef struct fake_ldap_t {
    int port;
    int hung;                /* accept, never answer */
    int close_after_search;  /* close the connection after each search: pooled ones go stale */
    int hang_search;         /* answer binds, never searches (a server stuck on its database) */
    int refer;               /* a read-only replica: writes answered with a referral */
    volatile int stop;
    int lfd;
    int fds[FAKE_MAX_CONNS];
    int nfds;
    volatile int accepts, binds, searches, writes;
    apr_thread_t *thread;
} fake_ldap_t;

static int listen_on(int port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    socklen_t len = sizeof(a);

    ck_assert_int_ge(fd, 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((unsigned short)port);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(fd, 16), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    return fd;
}

/* A loopback port nobody listens on (bound, then closed). */
static int closed_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = listen_on(0), port;
    getsockname(fd, (struct sockaddr *)&a, &len);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* BER: tag, definite length, contents. */
static apr_size_t ber_put(unsigned char *out, unsigned char tag, const unsigned char *v, apr_size_t n)
{
    apr_size_t o = 0;
    out[o++] = tag;
    if (n < 128) {
        out[o++] = (unsigned char)n;
    }
    else {
        out[o++] = 0x82;
        out[o++] = (unsigned char)(n >> 8);
        out[o++] = (unsigned char)n;
    }
    memmove(out + o, v, n);
    return o + n;
}

static apr_size_t ber_str(unsigned char *out, unsigned char tag, const char *str)
{
    return ber_put(out, tag, (const unsigned char *)str, strlen(str));
}

/* One LDAPMessage {msgid (the request's INTEGER TLV, copied), op} sent on fd. */
static void send_msg(int fd, const unsigned char *msgid, apr_size_t idlen, const unsigned char *op,
                     apr_size_t oplen)
{
    unsigned char body[2048], msg[2100];
    apr_size_t n;
    memcpy(body, msgid, idlen);
    memcpy(body + idlen, op, oplen);
    n = ber_put(msg, 0x30, body, idlen + oplen);
    if (write(fd, msg, n) != (ssize_t)n) { /* the client went away: nothing to do */ }
}

/* LDAPResult with tag: resultCode code, matchedDN "", diagnosticMessage "". */
static void send_code(int fd, const unsigned char *msgid, apr_size_t idlen, unsigned char tag,
                      unsigned char code)
{
    unsigned char res[] = { 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00 };
    unsigned char op[16];
    apr_size_t n;
    res[2] = code;
    n = ber_put(op, tag, res, sizeof(res));
    send_msg(fd, msgid, idlen, op, n);
}

static void send_result(int fd, const unsigned char *msgid, apr_size_t idlen, unsigned char tag)
{
    send_code(fd, msgid, idlen, tag, 0);
}

/* SearchResultEntry for the active client "fo-client" (whatever was asked). */
static void send_entry(int fd, const unsigned char *msgid, apr_size_t idlen)
{
    static const char *const attrs[][2] = {
        { "atrClientId", "fo-client" }, { "atrClientStatus", "active" }, { "atrScope", "system/*.read" },
    };
    unsigned char list[1024], op[2048], one[2048], set[1024], tmp[1024];
    apr_size_t nl = 0, n, i;

    for (i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
        apr_size_t no = ber_str(one, 0x04, attrs[i][0]);
        n = ber_str(tmp, 0x04, attrs[i][1]);
        n = ber_put(set, 0x31, tmp, n);
        memcpy(one + no, set, n);
        nl += ber_put(list + nl, 0x30, one, no + n);
    }
    n = ber_str(one, 0x04, "atrClientId=fo-client,ou=clients,dc=atr,dc=example");
    n += ber_put(one + n, 0x30, list, nl);
    n = ber_put(op, 0x64, one, n);
    send_msg(fd, msgid, idlen, op, n);
}

/* Reads one request and answers it; returns 0 when the connection is to be closed. */
static int fake_serve_one(fake_ldap_t *f, int fd)
{
    unsigned char buf[4096];
    apr_size_t have = 0, need = 2, len = 0, hdr = 2;
    const unsigned char *msgid, *op;
    apr_size_t idlen;

    while (have < need) {
        ssize_t r = read(fd, buf + have, sizeof(buf) - have);
        if (r <= 0) return 0;
        have += (apr_size_t)r;
        if (have >= 2) {
            if (buf[1] < 0x80) { hdr = 2; len = buf[1]; }
            else {
                apr_size_t k, nb = buf[1] & 0x7f;
                if (have < 2 + nb) { need = 2 + nb; continue; }
                for (len = 0, k = 0; k < nb; k++) len = (len << 8) | buf[2 + k];
                hdr = 2 + nb;
            }
            need = hdr + len;
            if (need > sizeof(buf)) return 0;
        }
    }
    msgid = buf + hdr;                 /* INTEGER TLV */
    idlen = 2 + msgid[1];
    op = msgid + idlen;
    switch (op[0]) {
    case 0x60:                         /* BindRequest */
        f->binds++;
        send_result(fd, msgid, idlen, 0x61);
        return 1;
    case 0x63:                         /* SearchRequest */
        f->searches++;
        if (f->hang_search) return 1;
        send_entry(fd, msgid, idlen);
        send_result(fd, msgid, idlen, 0x65);
        return !f->close_after_search;
    case 0x66:                         /* ModifyRequest */
    case 0x68:                         /* AddRequest */
    case 0x4a:                         /* DelRequest */
        f->writes++;
        send_code(fd, msgid, idlen, op[0] == 0x4a ? 0x6b : (unsigned char)(op[0] + 1),
                  f->refer ? 10 : 0);   /* 10: referral */
        return 1;
    case 0x42:                         /* UnbindRequest */
        return 0;
    default:                           /* abandon and the rest: no answer */
        return 1;
    }
}

static void *APR_THREAD_FUNC fake_main(apr_thread_t *t, void *data)
{
    fake_ldap_t *f = data;
    while (!f->stop) {
        struct pollfd pfd[FAKE_MAX_CONNS + 1];
        int i, n = 0;
        pfd[n].fd = f->lfd;
        pfd[n++].events = POLLIN;
        for (i = 0; i < f->nfds; i++) {
            pfd[n].fd = f->fds[i];
            pfd[n++].events = f->hung ? 0 : POLLIN;
        }
        if (poll(pfd, (nfds_t)n, 20) <= 0) continue;
        if ((pfd[0].revents & POLLIN) && f->nfds < FAKE_MAX_CONNS) {
            int c = accept(f->lfd, NULL, NULL);
            if (c >= 0) {
                f->accepts++;
                f->fds[f->nfds++] = c;
            }
        }
        for (i = n - 1; i >= 1; i--) {
            if (!f->hung && (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
                && !fake_serve_one(f, pfd[i].fd)) {
                close(pfd[i].fd);
                f->fds[i - 1] = f->fds[--f->nfds];
            }
        }
    }
    return NULL;
}

/* Start a fake server on port (0: any); *f is zeroed first except the mode flags. */
static void fake_start(fake_ldap_t *f, int port)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    f->stop = 0;
    f->nfds = 0;
    f->lfd = listen_on(port);
    getsockname(f->lfd, (struct sockaddr *)&a, &len);
    f->port = ntohs(a.sin_port);
    ck_assert_int_eq(apr_thread_create(&f->thread, NULL, fake_main, f, pool), APR_SUCCESS);
}

/* Stop it: the port is closed and every connection with it (a stopped slapd). */
static void fake_stop(fake_ldap_t *f)
{
    apr_status_t trv;
    f->stop = 1;
    apr_thread_join(&trv, f->thread);
    while (f->nfds > 0) close(f->fds[--f->nfds]);
    close(f->lfd);
}

static const char *uri_of(int port)
{
    return apr_psprintf(pool, "ldap://127.0.0.1:%d", port);
}

typedef struct log_capture_t {
    char text[8192];
} log_capture_t;

static void capture_sink(void *baton, const char *file, int line, atr_log_level_e level,
                         apr_status_t rv, const char *message)
{
    log_capture_t *c = baton;
    apr_size_t n = strlen(c->text);
    (void)file; (void)line; (void)level; (void)rv;
    apr_snprintf(c->text + n, sizeof(c->text) - n, "%s\n", message);
}

/* hold_down: atr_registry_conf_t's (0: the default 30 s) */
static atr_registry_t *live_registry_hd(const char *uris, apr_interval_time_t hold_down)
{
    atr_registry_conf_t conf;
    atr_registry_t *reg = NULL;
    memset(&conf, 0, sizeof(conf));
    conf.uris = uris;
    conf.base_dn = "ou=clients,dc=atr,dc=example";
    conf.timeout_ms = 300;
    conf.retries = 1;
    conf.cache_ttl = 0;   /* every call asks the directory */
    conf.hold_down = hold_down;
    ck_assert_int_eq(atr_registry_create(&reg, &conf, pool), APR_SUCCESS);
    return reg;
}

static atr_registry_t *live_registry(const char *uris)
{
    return live_registry_hd(uris, 0);
}

static void expect_client(atr_registry_t *reg)
{
    atr_client_t *got = NULL;
    ck_assert_int_eq(atr_registry_client_get(&got, reg, "fo-client", pool), APR_SUCCESS);
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got->client_id, "fo-client");
    ck_assert_int_eq(got->disabled, 0);
    ck_assert_int_eq(got->scopes->nelts, 1);
}

START_TEST(test_failover_to_second_uri)
{
    fake_ldap_t second;
    log_capture_t *log = apr_pcalloc(pool, sizeof(*log));
    int dead = closed_port();
    atr_registry_t *reg;

    memset(&second, 0, sizeof(second));
    fake_start(&second, 0);
    atr_log_set_sink(capture_sink, log, ATR_LOG_DEBUG);
    reg = live_registry(apr_pstrcat(pool, uri_of(dead), " ", uri_of(second.port), NULL));
    expect_client(reg);
    expect_client(reg);   /* the pooled connection */
    ck_assert_int_eq(second.accepts, 1);
    ck_assert_int_eq(second.searches, 2);
    ck_assert_ptr_nonnull(strstr(log->text, apr_psprintf(pool, "ATR00401: LDAP %s", uri_of(dead))));
    ck_assert_ptr_nonnull(strstr(log->text, apr_psprintf(pool, "ATR01000: LDAP failover: connected to %s, "
                                                          "URI 2 of 2", uri_of(second.port))));
    atr_log_set_sink(NULL, NULL, ATR_LOG_NOTICE);
    fake_stop(&second);
}
END_TEST

/* A hung first server costs the timeout once, not on every new connection: it is held down
 * and the next connections go straight to the second URI. The failover line says for how
 * long: the default 30 s, or the configured hold-down (ATRRegistryHoldDown). With none
 * (ATRRegistryHoldDown 0) every new connection tries the URIs in their order, so the hung server
 * costs the timeout every time and nothing is said to be held. */
static void hung_first_uri(apr_interval_time_t hold_down, int hung_accepts, const char *says)
{
    fake_ldap_t hung, second;
    log_capture_t *log = apr_pcalloc(pool, sizeof(*log));
    atr_registry_t *reg;
    int i;

    memset(&hung, 0, sizeof(hung));
    memset(&second, 0, sizeof(second));
    hung.hung = 1;
    second.close_after_search = 1;   /* every call needs a new connection */
    fake_start(&hung, 0);
    fake_start(&second, 0);
    atr_log_set_sink(capture_sink, log, ATR_LOG_DEBUG);
    reg = live_registry_hd(apr_pstrcat(pool, uri_of(hung.port), " ", uri_of(second.port), NULL),
                           hold_down);
    for (i = 0; i < 4; i++) expect_client(reg);
    ck_assert_int_eq(hung.accepts, hung_accepts);
    ck_assert_int_eq(second.accepts, 4);
    if (says) ck_assert_msg(strstr(log->text, says) != NULL, "no \"%s\" in:\n%s", says, log->text);
    else ck_assert_ptr_null(strstr(log->text, "in the last"));
    atr_log_set_sink(NULL, NULL, ATR_LOG_NOTICE);
    fake_stop(&hung);
    fake_stop(&second);
}

START_TEST(test_hung_first_uri_is_held_down)
{
    hung_first_uri(0, 1, "did not answer in the last 30 s)");
}
END_TEST

START_TEST(test_hung_first_uri_configured_hold_down)
{
    hung_first_uri(apr_time_from_sec(600), 1, "did not answer in the last 600 s)");
}
END_TEST

START_TEST(test_no_hold_down_tries_first_uri_each_time)
{
    hung_first_uri(ATR_REGISTRY_NO_HOLD_DOWN, 4, NULL);
}
END_TEST

/* A first server that takes the bind but never answers the search: the retry goes to the
 * second URI (not to the same server again), within the call, and later calls too. */
START_TEST(test_search_timeout_moves_to_second_uri)
{
    fake_ldap_t stuck, second;
    atr_registry_t *reg;

    memset(&stuck, 0, sizeof(stuck));
    memset(&second, 0, sizeof(second));
    stuck.hang_search = 1;
    fake_start(&stuck, 0);
    fake_start(&second, 0);
    atr_log_set_sink(quiet_sink, NULL, ATR_LOG_DEBUG);
    reg = live_registry(apr_pstrcat(pool, uri_of(stuck.port), " ", uri_of(second.port), NULL));
    expect_client(reg);
    expect_client(reg);
    ck_assert_int_eq(stuck.binds, 1);
    ck_assert_int_eq(stuck.searches, 1);
    ck_assert_int_eq(second.accepts, 1);
    ck_assert_int_eq(second.searches, 2);
    atr_log_set_sink(NULL, NULL, ATR_LOG_NOTICE);
    fake_stop(&stuck);
    fake_stop(&second);
}
END_TEST

/* A write on a connection pooled during a failover reaches the replica, which refers it: it
 * is done on the provider, back by now. With the provider down it fails, saying why. */
START_TEST(test_write_referred_by_replica_goes_to_provider)
{
    fake_ldap_t provider, replica;
    atr_registry_t *reg;
    const char *err = NULL;
    int port1 = closed_port();

    memset(&provider, 0, sizeof(provider));
    memset(&replica, 0, sizeof(replica));
    replica.refer = 1;
    fake_start(&replica, 0);
    atr_log_set_sink(quiet_sink, NULL, ATR_LOG_DEBUG);
    reg = live_registry(apr_pstrcat(pool, uri_of(port1), " ", uri_of(replica.port), NULL));
    expect_client(reg);   /* failover: the pool holds a connection to the replica */

    ck_assert_int_eq(atr_registry_client_link_group(reg, "fo-client", "grp-9", "test", &err, pool),
                     APR_EGENERAL);
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_nonnull(strstr(err, "read-only replica"));

    fake_start(&provider, port1);
    err = NULL;
    ck_assert_int_eq(atr_registry_client_link_group(reg, "fo-client", "grp-9", "test", &err, pool),
                     APR_SUCCESS);
    ck_assert_ptr_null(err);
    ck_assert_int_eq(provider.writes, 1);
    ck_assert_int_eq(replica.writes, 3);   /* twice in the first call, once in the second */
    atr_log_set_sink(NULL, NULL, ATR_LOG_NOTICE);
    fake_stop(&provider);
    fake_stop(&replica);
}
END_TEST

/* Both servers down: fail closed. Then the first comes back on its port: held down or not,
 * it is tried when nothing else answers, so the next call works. */
START_TEST(test_all_down_then_first_back)
{
    fake_ldap_t first, second;
    atr_client_t *got = NULL;
    atr_registry_t *reg;
    int port1, port2;

    memset(&first, 0, sizeof(first));
    memset(&second, 0, sizeof(second));
    fake_start(&first, 0);
    fake_start(&second, 0);
    port1 = first.port;
    port2 = second.port;
    atr_log_set_sink(quiet_sink, NULL, ATR_LOG_DEBUG);
    reg = live_registry(apr_pstrcat(pool, uri_of(port1), " ", uri_of(port2), NULL));
    expect_client(reg);
    ck_assert_int_eq(first.accepts, 1);
    ck_assert_int_eq(second.accepts, 0);

    fake_stop(&first);
    fake_stop(&second);
    ck_assert_int_eq(atr_registry_client_get(&got, reg, "fo-client", pool), APR_EGENERAL);
    ck_assert_ptr_null(got);

    first.accepts = 0;
    fake_start(&first, port1);
    expect_client(reg);
    ck_assert_int_eq(first.accepts, 1);
    atr_log_set_sink(NULL, NULL, ATR_LOG_NOTICE);
    fake_stop(&first);
}
END_TEST

/* The first server stops while connections to it are pooled: the stale one is dropped and
 * the call goes on on the second URI, within the same call. */
START_TEST(test_first_stops_while_pooled)
{
    fake_ldap_t first, second;
    atr_registry_t *reg;

    memset(&first, 0, sizeof(first));
    memset(&second, 0, sizeof(second));
    fake_start(&first, 0);
    fake_start(&second, 0);
    atr_log_set_sink(quiet_sink, NULL, ATR_LOG_DEBUG);
    reg = live_registry(apr_pstrcat(pool, uri_of(first.port), " ", uri_of(second.port), NULL));
    expect_client(reg);
    fake_stop(&first);
    expect_client(reg);
    expect_client(reg);
    ck_assert_int_eq(second.accepts, 1);
    ck_assert_int_eq(second.searches, 2);
    atr_log_set_sink(NULL, NULL, ATR_LOG_NOTICE);
    fake_stop(&second);
}
END_TEST

/* After a failover the registry goes back to the first server once its hold-down is over:
 * the connection to the second URI is not pooled again, the next one is opened to the first.
 * With a 2 s hold-down (ATRRegistryHoldDown 2) that is after the 3 s wait; with the default 30 s,
 * the same 3 s later everything still goes to the second. */
static void fail_back(apr_interval_time_t hold_down)
{
    fake_ldap_t first, second;
    atr_registry_t *reg;
    log_capture_t *log = apr_pcalloc(pool, sizeof(*log));
    int port1;

    memset(&first, 0, sizeof(first));
    memset(&second, 0, sizeof(second));
    port1 = closed_port();
    fake_start(&second, 0);
    atr_log_set_sink(capture_sink, log, ATR_LOG_DEBUG);
    reg = live_registry_hd(apr_pstrcat(pool, uri_of(port1), " ", uri_of(second.port), NULL), hold_down);
    expect_client(reg);
    ck_assert_int_eq(second.accepts, 1);

    /* Back, but within the hold-down the pooled connection to the second one is used. */
    fake_start(&first, port1);
    expect_client(reg);
    ck_assert_int_eq(first.accepts, 0);
    ck_assert_int_eq(second.searches, 2);

    sleep(3);
    expect_client(reg);   /* still on the pooled connection (then closed when the hold-down is over) */
    ck_assert_int_eq(second.searches, 3);
    expect_client(reg);
    expect_client(reg);
    if (hold_down > 0 && hold_down < apr_time_from_sec(3)) {
        ck_assert_ptr_nonnull(strstr(log->text, "ATR01001: LDAP connection to "));
        ck_assert_int_eq(first.accepts, 1);
        ck_assert_int_eq(first.searches, 2);
        ck_assert_int_eq(second.searches, 3);
    }
    else {
        ck_assert_ptr_null(strstr(log->text, "ATR01001: LDAP connection to "));
        ck_assert_int_eq(first.accepts, 0);
        ck_assert_int_eq(second.accepts, 1);
        ck_assert_int_eq(second.searches, 5);
    }
    atr_log_set_sink(NULL, NULL, ATR_LOG_NOTICE);
    fake_stop(&first);
    fake_stop(&second);
}

START_TEST(test_fails_back_to_first_uri)
{
    fail_back(apr_time_from_sec(2));
}
END_TEST

START_TEST(test_default_hold_down_outlasts_a_short_wait)
{
    fail_back(0);
}
END_TEST

Suite *registry_suite(void)
{
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_escape_rfc4515);
    tcase_add_test(tc, test_validate_good);
    tcase_add_test(tc, test_validate_client_id);
    tcase_add_test(tc, test_validate_jwks_url);
    tcase_add_test(tc, test_validate_inline_jwks);
    tcase_add_test(tc, test_validate_lists);
    tcase_add_test(tc, test_validate_texts);
    tcase_add_test(tc, test_cache_expiry);
    tcase_add_test(tc, test_cache_off_and_bounded);
    tcase_add_test(tc, test_unreachable_fails_closed);
    tcase_add_test(tc, test_failover_to_second_uri);
    tcase_add_test(tc, test_hung_first_uri_is_held_down);
    tcase_add_test(tc, test_hung_first_uri_configured_hold_down);
    tcase_add_test(tc, test_no_hold_down_tries_first_uri_each_time);
    tcase_add_test(tc, test_search_timeout_moves_to_second_uri);
    tcase_add_test(tc, test_all_down_then_first_back);
    tcase_add_test(tc, test_write_referred_by_replica_goes_to_provider);
    tcase_add_test(tc, test_first_stops_while_pooled);
    suite_add_tcase(s, tc);
    tc = tcase_create("failback");   /* waits 3 s past a 2 s hold-down, and the same within 30 s */
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_fails_back_to_first_uri);
    tcase_add_test(tc, test_default_hold_down_outlasts_a_short_wait);
    suite_add_tcase(s, tc);
    return s;
}
