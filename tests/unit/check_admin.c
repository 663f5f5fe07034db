/* Unit tests of the admin form's pure parts (admin-cgi/admin_web.c, built into this runner,
 * and the libatr rules it applies): HTML and URL escaping, CSRF tokens (expiry, wrong user,
 * wrong key, tampering), the limits on forms and addresses, search-text cutting, the config
 * file, NPI check digit and TIN validation as the form reports them, the change record
 * (atr_client_stamp) and how the pages show it, joined lists. Issue 6. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <apr_strings.h>
#include "check_atr.h"
#include "admin_web.h"
#include "atr_demo.h"
#include "atr_registry.h"
#include "atr_search.h"

static apr_pool_t *pool;
static void setup(void)
{
    apr_pool_create(&pool, NULL);
}
static void teardown(void)
{
    apr_pool_destroy(pool);
}

static const unsigned char KEY[] = "0123456789abcdef0123456789abcdef";
#define KLEN ((apr_size_t)32)
static const unsigned char OTHER_KEY[] = "fedcba9876543210fedcba9876543210";
#define T0 ((apr_int64_t)1795569300)   /* 2026-11-25T01:15:00Z */

/* ---- escaping ------------------------------------------------------------------------------ */

START_TEST(test_html_escapes_the_five_characters)
{
    ck_assert_str_eq(admin_h("<script>alert(\"x\")</script>", pool),
                     "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
    ck_assert_str_eq(admin_h("a & b 'c'", pool), "a &amp; b &#39;c&#39;");
    /* Already-escaped text is escaped again: what is shown is exactly what was stored. */
    ck_assert_str_eq(admin_h("&amp;", pool), "&amp;amp;");
    ck_assert_str_eq(admin_h(NULL, pool), "");
    ck_assert_str_eq(admin_h("", pool), "");
    ck_assert_str_eq(admin_h("plain text / caf\xc3\xa9 = 1", pool), "plain text / caf\xc3\xa9 = 1");
}
END_TEST

START_TEST(test_html_escape_leaves_no_markup_character)
{
    char all[256];
    const char *out;
    int i;
    for (i = 1; i < 256; i++) all[i - 1] = (char)i;
    all[255] = '\0';
    out = admin_h(all, pool);
    ck_assert_ptr_null(strpbrk(out, "<>\"'"));
    /* Every '&' starts one of our entities. */
    for (out = strchr(out, '&'); out; out = strchr(out + 1, '&')) {
        ck_assert_msg(!strncmp(out, "&amp;", 5) || !strncmp(out, "&lt;", 4) || !strncmp(out, "&gt;", 4)
                      || !strncmp(out, "&quot;", 6) || !strncmp(out, "&#39;", 5), "stray & in %s", out);
    }
}
END_TEST

START_TEST(test_url_encoding)
{
    ck_assert_str_eq(admin_url_enc("atr-0a_b.c~d", pool), "atr-0a_b.c~d");
    ck_assert_str_eq(admin_url_enc("a b/\xc3\xa9?&=#%", pool), "a%20b%2F%C3%A9%3F%26%3D%23%25");
    ck_assert_str_eq(admin_url_enc("\"><script>", pool), "%22%3E%3Cscript%3E");
    ck_assert_str_eq(admin_url_enc(NULL, pool), "");
}
END_TEST

/* ---- CSRF ---------------------------------------------------------------------------------- */

START_TEST(test_csrf_token_round_trip_and_expiry)
{
    const char *t = admin_csrf_make_at(KEY, KLEN, "alice", T0, pool);
    ck_assert_ptr_nonnull(strchr(t, '.'));
    ck_assert_int_eq(strncmp(t, "1795569300.", 11), 0);
    ck_assert_uint_eq(strlen(t), 11 + 64);          /* HMAC-SHA256 in hex */
    ck_assert_int_eq(admin_csrf_check_at(KEY, KLEN, "alice", t, T0, pool), 1);
    ck_assert_int_eq(admin_csrf_check_at(KEY, KLEN, "alice", t, T0 + ADMIN_CSRF_TTL, pool), 1);
    ck_assert_int_eq(admin_csrf_check_at(KEY, KLEN, "alice", t, T0 + ADMIN_CSRF_TTL + 1, pool), 0);
    /* Issued up to a minute "in the future" (clock skew between hosts) is fine, more is not. */
    ck_assert_int_eq(admin_csrf_check_at(KEY, KLEN, "alice", t, T0 - 60, pool), 1);
    ck_assert_int_eq(admin_csrf_check_at(KEY, KLEN, "alice", t, T0 - 61, pool), 0);
    /* The same user at the same second gets the same token; another second another one. */
    ck_assert_str_eq(admin_csrf_make_at(KEY, KLEN, "alice", T0, pool), t);
    ck_assert_str_ne(admin_csrf_make_at(KEY, KLEN, "alice", T0 + 1, pool), t);
    /* The wall-clock forms agree with each other. */
    ck_assert_int_eq(admin_csrf_check(KEY, KLEN, "alice", admin_csrf_make(KEY, KLEN, "alice", pool), pool), 1);
}
END_TEST

START_TEST(test_csrf_token_is_only_for_its_user_and_key)
{
    const char *t = admin_csrf_make_at(KEY, KLEN, "alice", T0, pool);
    ck_assert_int_eq(admin_csrf_check_at(KEY, KLEN, "bob", t, T0, pool), 0);
    ck_assert_int_eq(admin_csrf_check_at(KEY, KLEN, "Alice", t, T0, pool), 0);
    ck_assert_int_eq(admin_csrf_check_at(KEY, KLEN, "alice ", t, T0, pool), 0);
    ck_assert_int_eq(admin_csrf_check_at(KEY, KLEN, "", t, T0, pool), 0);
    ck_assert_int_eq(admin_csrf_check_at(KEY, KLEN, NULL, t, T0, pool), 0);
    ck_assert_int_eq(admin_csrf_check_at(OTHER_KEY, KLEN, "alice", t, T0, pool), 0);
    ck_assert_int_eq(admin_csrf_check_at(KEY, KLEN - 1, "alice", t, T0, pool), 0);
}
END_TEST

START_TEST(test_csrf_tampered_or_malformed_tokens_are_refused)
{
    const char *t = admin_csrf_make_at(KEY, KLEN, "alice", T0, pool);
    char *bad = apr_pstrdup(pool, t);
    apr_size_t n = strlen(bad);
    const char *mac = strchr(t, '.') + 1;

    /* One hex digit of the MAC changed. */
    bad[n - 1] = bad[n - 1] == '0' ? '1' : '0';
    ck_assert_int_eq(admin_csrf_check_at(KEY, KLEN, "alice", bad, T0, pool), 0);
    /* The time changed (to extend a token's life), MAC kept. */
    ck_assert_int_eq(admin_csrf_check_at(KEY, KLEN, "alice", apr_pstrcat(pool, "1795569301.", mac, NULL),
                                         T0, pool), 0);
    /* Truncated, extended, upper-case MAC. */
    ck_assert_int_eq(admin_csrf_check_at(KEY, KLEN, "alice", apr_pstrndup(pool, t, n - 1), T0, pool), 0);
    ck_assert_int_eq(admin_csrf_check_at(KEY, KLEN, "alice", apr_pstrcat(pool, t, "0", NULL), T0, pool), 0);
    {
        char *up = apr_pstrdup(pool, t), *c;
        for (c = strchr(up, '.'); *c; c++) if (*c >= 'a' && *c <= 'f') *c = (char)(*c - 32);
        ck_assert_int_eq(admin_csrf_check_at(KEY, KLEN, "alice", up, T0, pool), 0);
    }
    /* Not tokens at all. */
    ck_assert_int_eq(admin_csrf_check_at(KEY, KLEN, "alice", NULL, T0, pool), 0);
    ck_assert_int_eq(admin_csrf_check_at(KEY, KLEN, "alice", "", T0, pool), 0);
    ck_assert_int_eq(admin_csrf_check_at(KEY, KLEN, "alice", "garbage", T0, pool), 0);
    ck_assert_int_eq(admin_csrf_check_at(KEY, KLEN, "alice", apr_pstrcat(pool, ".", mac, NULL), T0, pool), 0);
    ck_assert_int_eq(admin_csrf_check_at(KEY, KLEN, "alice", "1795569300.", T0, pool), 0);
    ck_assert_int_eq(admin_csrf_check_at(KEY, KLEN, "alice", apr_pstrcat(pool, "-5.", mac, NULL), T0, pool), 0);
    ck_assert_int_eq(admin_csrf_check_at(KEY, KLEN, "alice", apr_pstrcat(pool, "17955x9300.", mac, NULL),
                                         T0, pool), 0);
    /* A time with more digits than fit in 64 bits is refused before it is converted. */
    ck_assert_int_eq(admin_csrf_check_at(KEY, KLEN, "alice",
                                         apr_pstrcat(pool, "0000000001795569300.", mac, NULL), T0, pool), 0);
}
END_TEST

/* ---- form and address limits --------------------------------------------------------------- */

#define FORM "application/x-www-form-urlencoded"

START_TEST(test_body_length_and_type)
{
    apr_size_t n = 99;
    ck_assert_int_eq(admin_body_check(&n, "123", FORM, 1024), 0);
    ck_assert_uint_eq(n, 123);
    ck_assert_int_eq(admin_body_check(&n, NULL, FORM, 1024), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(admin_body_check(&n, "", FORM, 1024), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(admin_body_check(&n, "1024", FORM, 1024), 0);
    ck_assert_uint_eq(n, 1024);
    ck_assert_int_eq(admin_body_check(&n, "1025", FORM, 1024), 413);
    ck_assert_int_eq(admin_body_check(&n, "262145", FORM, ADMIN_BODY_MAX_DEFAULT), 413);
    ck_assert_int_eq(admin_body_check(&n, "262144", FORM, ADMIN_BODY_MAX_DEFAULT), 0);
    /* Beyond 64 bits: too large, not a wrapped-around small number. */
    ck_assert_int_eq(admin_body_check(&n, "18446744073709551617", FORM, 1024), 413);
    ck_assert_int_eq(admin_body_check(&n, "99999999999999999999999999", FORM, 1024), 413);
    /* Not a length. */
    ck_assert_int_eq(admin_body_check(&n, "-1", FORM, 1024), 400);
    ck_assert_int_eq(admin_body_check(&n, "12a", FORM, 1024), 400);
    ck_assert_int_eq(admin_body_check(&n, " 12", FORM, 1024), 400);
    ck_assert_int_eq(admin_body_check(&n, "0x10", FORM, 1024), 400);
    /* The type. */
    ck_assert_int_eq(admin_body_check(&n, "10", FORM "; charset=UTF-8", 1024), 0);
    ck_assert_int_eq(admin_body_check(&n, "10", "Application/X-WWW-Form-URLEncoded", 1024), 0);
    ck_assert_int_eq(admin_body_check(&n, "10", NULL, 1024), 415);
    ck_assert_int_eq(admin_body_check(&n, "10", "text/plain", 1024), 415);
    ck_assert_int_eq(admin_body_check(&n, "10", "multipart/form-data; boundary=x", 1024), 415);
    ck_assert_int_eq(admin_body_check(&n, "10", FORM "x", 1024), 415);
    ck_assert_uint_eq(n, 0);
    /* Too large is said first, whatever the type. */
    ck_assert_int_eq(admin_body_check(&n, "5000", "text/plain", 1024), 413);
}
END_TEST

START_TEST(test_form_decoding)
{
    apr_array_header_t *f = NULL;
    const char *body = "csrf=1.ab&name=%3Cb%3E+%26+co&scope=system%2F*.read&scope=system%2FGroup.read&empty=";
    ck_assert_int_eq(admin_form_decode(&f, body, strlen(body), pool), APR_SUCCESS);
    ck_assert_str_eq(admin_param(f, "csrf"), "1.ab");
    ck_assert_str_eq(admin_param(f, "name"), "<b> & co");
    ck_assert_str_eq(admin_param(f, "empty"), "");
    ck_assert_ptr_null(admin_param(f, "missing"));
    ck_assert_int_eq(admin_param_all(f, "scope", pool)->nelts, 2);
    ck_assert_str_eq(APR_ARRAY_IDX(admin_param_all(f, "scope", pool), 1, const char *), "system/Group.read");
    /* Empty values do not count as given. */
    ck_assert_int_eq(admin_param_all(f, "empty", pool)->nelts, 0);
    /* Only len bytes are read. */
    ck_assert_int_eq(admin_form_decode(&f, "a=1&b=2", 3, pool), APR_SUCCESS);
    ck_assert_int_eq(f->nelts, 1);
    /* Bad escapes and NUL bytes, raw or escaped. */
    ck_assert_int_eq(admin_form_decode(&f, "a=%zz", 5, pool), APR_EINVAL);
    ck_assert_int_eq(admin_form_decode(&f, "a=%4", 4, pool), APR_EINVAL);
    ck_assert_int_eq(admin_form_decode(&f, "a=%00", 5, pool), APR_EINVAL);
    ck_assert_int_eq(admin_form_decode(&f, "a=1\0&csrf=x", 11, pool), APR_EINVAL);
    ck_assert_int_eq(admin_form_decode(&f, "", 0, pool), APR_SUCCESS);
    ck_assert_int_eq(f->nelts, 0);
}
END_TEST

START_TEST(test_query_limit)
{
    apr_array_header_t *q = NULL;
    char *qs = apr_palloc(pool, ADMIN_QUERY_MAX + 2);

    ck_assert_int_eq(admin_query_decode(&q, NULL, pool), 0);
    ck_assert_int_eq(q->nelts, 0);
    ck_assert_int_eq(admin_query_decode(&q, "q=acme&done=saved", pool), 0);
    ck_assert_str_eq(admin_param(q, "done"), "saved");
    memcpy(qs, "q=", 2);
    memset(qs + 2, 'x', ADMIN_QUERY_MAX - 2);
    qs[ADMIN_QUERY_MAX] = '\0';
    ck_assert_int_eq(admin_query_decode(&q, qs, pool), 0);
    ck_assert_uint_eq(strlen(admin_param(q, "q")), ADMIN_QUERY_MAX - 2);
    qs[ADMIN_QUERY_MAX] = 'x';
    qs[ADMIN_QUERY_MAX + 1] = '\0';
    ck_assert_int_eq(admin_query_decode(&q, qs, pool), 413);
    ck_assert_int_eq(admin_query_decode(&q, "q=%G0", pool), 400);
}
END_TEST

START_TEST(test_search_text_is_cut_on_a_character_boundary)
{
    const char *s = "a\xc3\xa9" "b";                 /* a é b: 4 bytes */
    const char *emoji = "x\xf0\x9f\x98\x80";         /* x U+1F600: 5 bytes */
    ck_assert_ptr_null(admin_text_cut(NULL, 4, pool));
    ck_assert_str_eq(admin_text_cut(s, 10, pool), s);
    ck_assert_str_eq(admin_text_cut(s, 4, pool), s);
    ck_assert_str_eq(admin_text_cut(s, 3, pool), "a\xc3\xa9");
    ck_assert_str_eq(admin_text_cut(s, 2, pool), "a");
    ck_assert_str_eq(admin_text_cut(s, 1, pool), "a");
    ck_assert_str_eq(admin_text_cut(emoji, 4, pool), "x");
    ck_assert_str_eq(admin_text_cut(emoji, 2, pool), "x");
    ck_assert_str_eq(admin_text_cut("abcdef", 3, pool), "abc");
}
END_TEST

START_TEST(test_split_list)
{
    apr_array_header_t *a = admin_split_list("1234567893\r\n 123456789, x|y\t\n\n", pool);
    ck_assert_int_eq(a->nelts, 3);
    ck_assert_str_eq(APR_ARRAY_IDX(a, 0, const char *), "1234567893");
    ck_assert_str_eq(APR_ARRAY_IDX(a, 1, const char *), "123456789");
    ck_assert_str_eq(APR_ARRAY_IDX(a, 2, const char *), "x|y");
    ck_assert_int_eq(admin_split_list(NULL, pool)->nelts, 0);
    ck_assert_int_eq(admin_split_list(" \n,", pool)->nelts, 0);
}
END_TEST

START_TEST(test_join_and_membership)
{
    apr_array_header_t *a = admin_split_list("grp-1 grp-2 grp-3", pool);
    ck_assert_str_eq(admin_join(a, ", ", pool), "grp-1, grp-2, grp-3");
    ck_assert_str_eq(admin_join(a, "\n", pool), "grp-1\ngrp-2\ngrp-3");
    ck_assert_str_eq(admin_join(admin_split_list("one", pool), ", ", pool), "one");
    ck_assert_str_eq(admin_join(admin_split_list("", pool), ", ", pool), "");
    ck_assert_str_eq(admin_join(NULL, ", ", pool), "");
    ck_assert_int_eq(admin_has_str(a, "grp-2"), 1);
    ck_assert_int_eq(admin_has_str(a, "grp-"), 0);
    ck_assert_int_eq(admin_has_str(a, "GRP-2"), 0);
    ck_assert_int_eq(admin_has_str(NULL, "grp-2"), 0);
}
END_TEST

/* "Last changed" and "Entry written" as the pages show them (docs/admin.md). */
START_TEST(test_change_record_text)
{
    ck_assert_str_eq(admin_ldap_time("20261125011500Z", pool), "2026-11-25 01:15:00 UTC");
    ck_assert_str_eq(admin_ldap_time("2026112501", pool), "2026112501");
    ck_assert_str_eq(admin_ldap_time(NULL, pool), "");
    ck_assert_str_eq(admin_changed_text("20261125011500Z", "alice", pool), "2026-11-25 01:15:00 UTC by alice");
    ck_assert_str_eq(admin_changed_text(NULL, "atrctl:root", pool), "(time not recorded) by atrctl:root");
    ck_assert_str_eq(admin_changed_text("20261125011500Z", NULL, pool), "2026-11-25 01:15:00 UTC by (not recorded)");
    ck_assert_str_eq(admin_changed_text(NULL, NULL, pool), "not recorded");
}
END_TEST

/* ---- config file --------------------------------------------------------------------------- */

static const char *conf_file(const char *text)
{
    char *path = apr_pstrdup(pool, "/tmp/atr-check-admin-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (int)strlen(text));
    close(fd);
    return path;
}

START_TEST(test_config_file)
{
    admin_conf_t *c = NULL;
    const char *err = NULL, *path;

    path = conf_file("# comment\n  ldap_uri ldap://a/ ldap://b/\nldap_base ou=clients,dc=x\n"
                     "store sqlite3:/tmp/x.db\ncsrf_key_file /tmp/k \t\r\nmax_body 10\n");
    ck_assert_int_eq(admin_conf_read(&c, path, &err, pool), APR_SUCCESS);
    unlink(path);
    ck_assert_str_eq(c->ldap_uri, "ldap://a/ ldap://b/");
    ck_assert_str_eq(c->csrf_key_file, "/tmp/k");
    ck_assert_uint_eq(c->max_body, 1024);             /* raised to the floor */
    ck_assert_int_eq(c->allow_http_loopback, 0);
    ck_assert_int_ge(c->scopes->nelts, 10);            /* the default scopes */
    ck_assert_ptr_null(c->audit_log);

    path = conf_file("ldap_uri ldap://a/\nldap_base b\nstore s\ncsrf_key_file k\nldap_pasword_file x\n");
    ck_assert_int_eq(admin_conf_read(&c, path, &err, pool), APR_EINVAL);
    unlink(path);
    ck_assert_ptr_nonnull(strstr(err, "line 5"));
    ck_assert_ptr_nonnull(strstr(err, "ldap_pasword_file"));

    path = conf_file("ldap_uri ldap://a/\nldap_base b\nstore s\n");
    ck_assert_int_eq(admin_conf_read(&c, path, &err, pool), APR_EINVAL);
    unlink(path);
    ck_assert_ptr_nonnull(strstr(err, "required"));

    ck_assert_int_ne(admin_conf_read(&c, "/nonexistent/atr-admin.conf", &err, pool), APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/atr-admin.conf"));
}
END_TEST

/* ---- NPI and TIN, as the form reports them ------------------------------------------------- */

static const char *validate_ids(const char *npi, const char *tin)
{
    atr_client_t c;
    const char *err = NULL;
    memset(&c, 0, sizeof(c));
    c.client_id = "atr-0123456789abcdef0123";
    c.jwks_url = "https://keys.example/jwks.json";
    c.npis = admin_split_list(npi, pool);
    c.tins = admin_split_list(tin, pool);
    return atr_client_validate(&c, 0, &err, pool) == APR_SUCCESS ? NULL : err;
}

START_TEST(test_npi_check_digit)
{
    const char *err;
    /* The CMS example: 123456789 with prefix 80840 gives check digit 3. */
    ck_assert_int_eq(atr_demo_npi_check_digit("123456789"), 3);
    ck_assert_int_eq(atr_demo_npi_is_valid("1234567893"), 1);
    ck_assert_int_eq(atr_demo_npi_is_valid("1234567890"), 0);
    ck_assert_ptr_null(validate_ids("1234567893", NULL));
    ck_assert_ptr_null(validate_ids("1234567893\n1987654310", NULL));
    err = validate_ids("1234567890", NULL);
    ck_assert_ptr_nonnull(err);
    ck_assert_msg(strstr(err, "NPI") && strstr(err, "1234567890") && strstr(err, "check digit"), "%s", err);
    /* Every other check digit is wrong. */
    {
        int d;
        for (d = 0; d <= 9; d++) {
            char npi[11];
            apr_snprintf(npi, sizeof(npi), "123456789%d", d);
            ck_assert_int_eq(atr_demo_npi_is_valid(npi), d == 3);
        }
    }
    err = validate_ids("123456789", NULL);
    ck_assert_msg(err && strstr(err, "10 digits"), "%s", err ? err : "(null)");
    err = validate_ids("12345678901", NULL);
    ck_assert_msg(err && strstr(err, "10 digits"), "%s", err ? err : "(null)");
    err = validate_ids("123456789x", NULL);
    ck_assert_msg(err && strstr(err, "10 digits"), "%s", err ? err : "(null)");
    /* A good one first does not hide a bad one after it. */
    ck_assert_ptr_nonnull(validate_ids("1234567893 1234567890", NULL));
}
END_TEST

START_TEST(test_tin_format)
{
    const char *err;
    ck_assert_ptr_null(validate_ids(NULL, "123456789"));
    ck_assert_ptr_null(validate_ids(NULL, "000000000\n987654321"));
    err = validate_ids(NULL, "12-3456789");
    ck_assert_msg(err && strstr(err, "TIN") && strstr(err, "9 digits"), "%s", err ? err : "(null)");
    ck_assert_ptr_nonnull(validate_ids(NULL, "12345678"));
    ck_assert_ptr_nonnull(validate_ids(NULL, "1234567890"));
    ck_assert_ptr_nonnull(validate_ids(NULL, "12345678a"));
    ck_assert_ptr_nonnull(validate_ids(NULL, "<script>"));
}
END_TEST

/* ---- change record ------------------------------------------------------------------------- */

START_TEST(test_stamp_records_who_and_when)
{
    atr_client_t c;
    char longname[400];
    apr_time_t t = apr_time_from_sec(T0);

    memset(&c, 0, sizeof(c));
    atr_client_stamp(&c, "alice", t, pool);
    ck_assert_str_eq(c.changed_by, "alice");
    ck_assert_str_eq(c.changed_at, "20261125011500Z");
    atr_client_stamp(&c, "atrctl:root", t + apr_time_from_sec(86399), pool);
    ck_assert_str_eq(c.changed_by, "atrctl:root");
    ck_assert_str_eq(c.changed_at, "20261126011459Z");
    /* Nobody known: the old name goes (it would name the wrong person), the time is set. */
    atr_client_stamp(&c, NULL, t, pool);
    ck_assert_ptr_null(c.changed_by);
    ck_assert_str_eq(c.changed_at, "20261125011500Z");
    atr_client_stamp(&c, "", t, pool);
    ck_assert_ptr_null(c.changed_by);
    /* UTF-8 kept; control characters and broken bytes become '?'. */
    atr_client_stamp(&c, "j\xc3\xb6rg", t, pool);
    ck_assert_str_eq(c.changed_by, "j\xc3\xb6rg");
    atr_client_stamp(&c, "a\nb\x7f" "c\xff" "d\xc3", t, pool);
    ck_assert_str_eq(c.changed_by, "a?b?c?d?");
    atr_client_stamp(&c, "\xc0\xaf\xed\xa0\x80", t, pool);   /* overlong '/', a surrogate */
    ck_assert_str_eq(c.changed_by, "?????");
    /* Long names are cut at 256 bytes, on a character boundary. */
    memset(longname, 'x', 255);
    memcpy(longname + 255, "\xc3\xa9\xc3\xa9", 4);
    longname[259] = '\0';
    atr_client_stamp(&c, longname, t, pool);
    ck_assert_uint_eq(strlen(c.changed_by), 255);
    memset(longname, 'y', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    atr_client_stamp(&c, longname, t, pool);
    ck_assert_uint_eq(strlen(c.changed_by), 256);
    /* Copies carry the record. */
    atr_client_stamp(&c, "bob", t, pool);
    c.client_id = "x";
    ck_assert_str_eq(atr_client_copy(&c, pool)->changed_by, "bob");
    ck_assert_str_eq(atr_client_copy(&c, pool)->changed_at, "20261125011500Z");
}
END_TEST

Suite *admin_suite(void)
{
    Suite *s = suite_create("admin");
    TCase *tc = tcase_create("web");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_html_escapes_the_five_characters);
    tcase_add_test(tc, test_html_escape_leaves_no_markup_character);
    tcase_add_test(tc, test_url_encoding);
    tcase_add_test(tc, test_csrf_token_round_trip_and_expiry);
    tcase_add_test(tc, test_csrf_token_is_only_for_its_user_and_key);
    tcase_add_test(tc, test_csrf_tampered_or_malformed_tokens_are_refused);
    tcase_add_test(tc, test_body_length_and_type);
    tcase_add_test(tc, test_form_decoding);
    tcase_add_test(tc, test_query_limit);
    tcase_add_test(tc, test_search_text_is_cut_on_a_character_boundary);
    tcase_add_test(tc, test_split_list);
    tcase_add_test(tc, test_join_and_membership);
    tcase_add_test(tc, test_change_record_text);
    tcase_add_test(tc, test_config_file);
    tcase_add_test(tc, test_npi_check_digit);
    tcase_add_test(tc, test_tin_format);
    tcase_add_test(tc, test_stamp_records_who_and_when);
    suite_add_tcase(s, tc);
    return s;
}
