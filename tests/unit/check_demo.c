/* atr_demo: NPI check digits, determinism, and that every line is a resource of its file's type. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <jansson.h>
#include "check_atr.h"
#include "atr_demo.h"
#include "atr_fhir.h"

static apr_pool_t *pool;

static void demo_setup(void)
{
    apr_pool_create(&pool, NULL);
}

static void demo_teardown(void)
{
    apr_pool_destroy(pool);
}

static const char *tmpdir(void)
{
    char *t = apr_pstrdup(pool, "/tmp/check_demo.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(t));
    return t;
}

static void rmtree(const char *dir)
{
    int i;
    for (i = 0; atr_fhir_types[i]; i++) {
        unlink(apr_psprintf(pool, "%s/%s.ndjson", dir, atr_fhir_types[i]));
    }
    rmdir(dir);
}

static const char *generate(long members, unsigned long long seed, int contracts,
                            atr_demo_stats_t *stats)
{
    atr_demo_opts_t o;
    const char *err = NULL, *dir = tmpdir();
    apr_status_t rv;

    memset(&o, 0, sizeof(o));
    o.members = members;
    o.seed = seed;
    o.contracts = contracts;
    o.outdir = dir;
    rv = atr_demo_generate(stats, &o, &err, pool);
    ck_assert_msg(rv == APR_SUCCESS, "generate: %s", err ? err : "?");
    return dir;
}

/* Whole file into pool memory (test data is small). */
static char *slurp(const char *path, long *plen)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long len;

    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = apr_palloc(pool, (apr_size_t)len + 1);
    ck_assert_int_eq((long)fread(buf, 1, (size_t)len, f), len);
    buf[len] = '\0';
    fclose(f);
    *plen = len;
    return buf;
}

START_TEST(npi_check_digit)
{
    ck_assert_int_eq(atr_demo_npi_check_digit("123456789"), 3);
    ck_assert(atr_demo_npi_is_valid("1234567893"));
    ck_assert(!atr_demo_npi_is_valid("1234567890"));
    ck_assert(!atr_demo_npi_is_valid("123456789"));
    ck_assert(!atr_demo_npi_is_valid("12345678a3"));
    ck_assert_int_eq(atr_demo_npi_check_digit("12345"), -1);
    ck_assert_int_eq(atr_demo_npi_check_digit(NULL), -1);
}
END_TEST

START_TEST(default_contracts)
{
    ck_assert_int_eq(atr_demo_default_contracts(1), 1);
    ck_assert_int_eq(atr_demo_default_contracts(1000), 1);
    ck_assert_int_eq(atr_demo_default_contracts(10000), 2);
    ck_assert_int_eq(atr_demo_default_contracts(1000000), 20);
}
END_TEST

START_TEST(bad_options)
{
    atr_demo_opts_t o;
    atr_demo_stats_t s;
    const char *err = NULL;

    memset(&o, 0, sizeof(o));
    o.outdir = "/tmp/check_demo_never";
    o.members = 0;
    ck_assert_int_eq(atr_demo_generate(&s, &o, &err, pool), APR_EINVAL);
    ck_assert_ptr_nonnull(err);
    o.members = 5;
    o.contracts = 6;
    err = NULL;
    ck_assert_int_eq(atr_demo_generate(&s, &o, &err, pool), APR_EINVAL);
    ck_assert_ptr_nonnull(err);
    o.contracts = 1;
    o.outdir = "/proc/no/such/place";
    err = NULL;
    ck_assert_int_ne(atr_demo_generate(&s, &o, &err, pool), APR_SUCCESS);
    ck_assert_ptr_nonnull(err);
}
END_TEST

START_TEST(deterministic)
{
    atr_demo_stats_t s1, s2, s3;
    const char *a = generate(700, 42, 3, &s1);
    const char *b = generate(700, 42, 3, &s2);
    const char *c = generate(700, 43, 3, &s3);
    int i, differs = 0;

    for (i = 0; atr_fhir_types[i]; i++) {
        long la, lb, lc;
        const char *fa = slurp(apr_psprintf(pool, "%s/%s.ndjson", a, atr_fhir_types[i]), &la);
        const char *fb = slurp(apr_psprintf(pool, "%s/%s.ndjson", b, atr_fhir_types[i]), &lb);
        const char *fc = slurp(apr_psprintf(pool, "%s/%s.ndjson", c, atr_fhir_types[i]), &lc);
        ck_assert_int_eq(la, lb);
        ck_assert_msg(!memcmp(fa, fb, (size_t)la), "%s differs between runs", atr_fhir_types[i]);
        ck_assert_int_eq(s1.counts[i], s2.counts[i]);
        if (la != lc || memcmp(fa, fc, (size_t)la)) differs = 1;
    }
    ck_assert_msg(differs, "another seed gives the same data");
    rmtree(a);
    rmtree(b);
    rmtree(c);
}
END_TEST

static void check_identifiers(json_t *r)
{
    size_t i;
    json_t *id;
    json_array_foreach(json_object_get(r, "identifier"), i, id) {
        const char *sys = json_string_value(json_object_get(id, "system"));
        if (sys && !strcmp(sys, ATR_SYS_NPI)) {
            ck_assert(atr_demo_npi_is_valid(json_string_value(json_object_get(id, "value"))));
        }
    }
}

static void check_group(json_t *g, long *entries_out)
{
    json_t *members = json_object_get(g, "member"), *m, *ids, *id;
    size_t i, n = json_array_size(members);
    int have_npi = 0, have_tin = 0, have_contract = 0;

    ck_assert_int_eq((long)json_integer_value(json_object_get(g, "quantity")), (long)n);
    ck_assert_str_eq(json_string_value(json_object_get(g, "type")), "person");
    ck_assert(json_is_true(json_object_get(g, "actual")));
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(g, "managingEntity"),
                                                       "reference")), "Organization/payer");
    ids = json_object_get(g, "identifier");
    json_array_foreach(ids, i, id) {
        const char *sys = json_string_value(json_object_get(id, "system"));
        json_t *code = json_object_get(json_array_get(json_object_get(json_object_get(id, "type"),
                                                                      "coding"), 0), "code");
        if (!strcmp(sys, ATR_SYS_NPI)) have_npi = code && !strcmp(json_string_value(code), "NPI");
        if (!strcmp(sys, ATR_SYS_TIN)) have_tin = code && !strcmp(json_string_value(code), "TAX");
        if (!strcmp(sys, "http://example.org/payer/contract")) have_contract = 1;
    }
    ck_assert(have_npi && have_tin && have_contract);
    json_array_foreach(members, i, m) {
        json_t *ext = json_object_get(m, "extension");
        ck_assert_int_eq((long)json_array_size(ext), 3);
        ck_assert_ptr_nonnull(json_object_get(m, "period"));
        ck_assert_ptr_nonnull(json_object_get(m, "entity"));
    }
    *entries_out = (long)n;
}

START_TEST(lines_parse)
{
    atr_demo_stats_t s;
    const char *dir = generate(1200, 7, 4, &s);
    long entries = 0, largest = 0;
    int i;

    ck_assert_int_eq(s.counts[0], 4);        /* Group */
    ck_assert_int_eq(s.counts[1], 1200);     /* Patient */
    ck_assert_int_eq(s.counts[2], 1200);     /* Coverage */
    ck_assert_int_eq(s.counts[4], 6);        /* Practitioner = max(K, N / 200) */
    ck_assert_int_eq(s.counts[6], 5);        /* payer + 4 providers */
    ck_assert_int_eq(s.counts[7], 4);        /* Location */
    for (i = 0; atr_fhir_types[i]; i++) {
        const char *path = apr_psprintf(pool, "%s/%s.ndjson", dir, atr_fhir_types[i]);
        FILE *f = fopen(path, "rb");
        char *line = NULL;
        size_t cap = 0;
        ssize_t got;
        long lines = 0;

        ck_assert_ptr_nonnull(f);
        while ((got = getline(&line, &cap, f)) > 0) {
            json_error_t jerr;
            json_t *r = json_loadb(line, (size_t)got, 0, &jerr);
            const char *id, *profile;

            ck_assert_msg(r != NULL, "%s:%ld: %s", path, lines + 1, jerr.text);
            ck_assert_str_eq(json_string_value(json_object_get(r, "resourceType")),
                             atr_fhir_types[i]);
            id = json_string_value(json_object_get(r, "id"));
            ck_assert(atr_fhir_is_id(id));
            profile = json_string_value(json_array_get(json_object_get(json_object_get(r, "meta"),
                                                                       "profile"), 0));
            ck_assert_str_eq(profile, atr_fhir_profile(atr_fhir_types[i]));
            check_identifiers(r);
            if (i == 0) {
                long n;
                check_group(r, &n);
                entries += n;
                if (n > largest) largest = n;
                if (!strcmp(id, s.largest_group)) ck_assert_int_eq(n, s.largest_members);
            }
            json_decref(r);
            lines++;
        }
        free(line);
        fclose(f);
        ck_assert_int_eq(lines, s.counts[i]);
    }
    ck_assert_int_eq(entries, s.member_entries);
    ck_assert_int_eq(largest, s.largest_members);
    ck_assert(entries > 1200);               /* some members have two providers (DM-13) */
    rmtree(dir);
}
END_TEST

Suite *demo_suite(void)
{
    Suite *s = suite_create("demo");
    TCase *tc = tcase_create("demo");

    tcase_add_checked_fixture(tc, demo_setup, demo_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, npi_check_digit);
    tcase_add_test(tc, default_contracts);
    tcase_add_test(tc, bad_options);
    tcase_add_test(tc, deterministic);
    tcase_add_test(tc, lines_parse);
    suite_add_tcase(s, tc);
    return s;
}
