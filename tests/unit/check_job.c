/* Bulk export jobs in the store (atr_job.c) on a temporary SQLite file: the state machine
 * the workers and the status URL rely on (docs/bulk-export.md "Jobs and workers";
 * BULK-KO-09, BULK-ST-03, BULK-DEL-01/02). Times are given explicitly, so nothing sleeps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_dbd.h>
#include "check_atr.h"
#include "atr_db.h"
#include "atr_id.h"
#include "atr_job.h"

static apr_pool_t *pool;
static atr_db_t *db;
static char tmpdir[64];

#define T0 apr_time_from_sec(1800000000)
#define SEC(n) apr_time_from_sec(n)
#define STALE SEC(30)
#define RETAIN SEC(3600)

/* ATR_CHECK_PGSQL="host=... dbname=..." runs these on that (scratch!) PostgreSQL database
 * instead: its public schema is dropped and made again for every test. */
static void setup(void)
{
    const char *err = NULL, *pg = getenv("ATR_CHECK_PGSQL");

    apr_pool_create(&pool, NULL);
    strcpy(tmpdir, "/tmp/atr-check-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    if (pg && *pg) {
        /* a connection of its own empties the database: statements prepared on it must not
         * meet the test's (PostgreSQL names them per connection) */
        apr_pool_t *reset;
        atr_db_t *rdb;
        int n = 0;
        apr_pool_create(&reset, pool);
        ck_assert_int_eq(atr_db_open(&rdb, apr_pstrcat(reset, "pgsql:", pg, NULL), &err, reset), APR_SUCCESS);
        ck_assert_int_eq(apr_dbd_query(rdb->driver, rdb->handle, &n,
                                       "DROP SCHEMA public CASCADE; CREATE SCHEMA public"), 0);
        apr_pool_destroy(reset);
        ck_assert_int_eq(atr_db_open(&db, apr_pstrcat(pool, "pgsql:", pg, NULL), &err, pool), APR_SUCCESS);
    }
    else {
        ck_assert_int_eq(atr_db_open(&db, apr_psprintf(pool, "sqlite3:%s/store.db", tmpdir), &err, pool),
                         APR_SUCCESS);
    }
    ck_assert_msg(atr_db_init_schema(db, &err, pool) == APR_SUCCESS, "schema: %s", err ? err : "?");
}

static void teardown(void)
{
    const char *cmd = apr_psprintf(pool, "rm -rf '%s'", tmpdir);
    apr_pool_destroy(pool);
    ck_assert_int_eq(system(cmd), 0);
}

static const char *queue(const char *client, const char *group, apr_time_t when)
{
    const char *id = NULL;
    ck_assert_int_eq(atr_job_create(&id, db, client, group, "http://x/fhir/Group/g/$export", "{}", when, pool),
                     APR_SUCCESS);
    return id;
}

static atr_job_t *get(const char *id)
{
    atr_job_t *job = NULL;
    ck_assert_int_eq(atr_job_get(&job, db, id, pool), APR_SUCCESS);
    return job;
}

static atr_job_t *claim(const char *node, int max, apr_time_t now)
{
    atr_job_t *job = NULL;
    ck_assert_int_eq(atr_job_claim(&job, db, node, max, now, STALE, pool), APR_SUCCESS);
    return job;
}

START_TEST(create_and_get)
{
    const char *id = queue("c1", "g1", T0);
    atr_job_t *job;

    ck_assert_ptr_nonnull(id);
    ck_assert_uint_eq(strlen(id), 32);
    job = get(id);
    ck_assert_str_eq(job->state, "queued");
    ck_assert_str_eq(job->client_id, "c1");
    ck_assert_str_eq(job->group_id, "g1");
    ck_assert_str_eq(job->request, "http://x/fhir/Group/g/$export");
    ck_assert_str_eq(job->tx_time, "2027-01-15T08:00:00.000Z");
    ck_assert_int_eq(job->attempts, 0);
    ck_assert_int_eq(atr_job_get(&job, db, "0123456789abcdef0123456789abcdef", pool), APR_NOTFOUND);
}
END_TEST

/* Job ids, claim keys (atr_job_new_id) and export run keys (atr_id_hex) come from one
 * helper: 2 * nbytes lower-case hex digits, a new value each call, bounded sizes */
START_TEST(random_ids)
{
    const char *a = NULL, *b = NULL, *c = (const char *)1;

    ck_assert_int_eq(atr_job_new_id(&a, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_job_new_id(&b, pool), APR_SUCCESS);
    ck_assert_uint_eq(strlen(a), 32);
    ck_assert_uint_eq(strspn(a, "0123456789abcdef"), 32);
    ck_assert_str_ne(a, b);
    ck_assert_int_eq(atr_id_hex(&a, 12, pool), APR_SUCCESS);
    ck_assert_uint_eq(strlen(a), 24);
    ck_assert_uint_eq(strspn(a, "0123456789abcdef"), 24);
    ck_assert_int_eq(atr_id_hex(&a, 1, pool), APR_SUCCESS);
    ck_assert_uint_eq(strlen(a), 2);
    ck_assert_int_eq(atr_id_hex(&a, 64, pool), APR_SUCCESS);
    ck_assert_uint_eq(strlen(a), 128);
    ck_assert_int_eq(atr_id_hex(&c, 0, pool), APR_EINVAL);
    ck_assert_ptr_null(c);
    c = (const char *)1;
    ck_assert_int_eq(atr_id_hex(&c, 65, pool), APR_EINVAL);
    ck_assert_ptr_null(c);
}
END_TEST

/* BULK-KO-09: one active export per client and Group; other clients and Groups are free,
 * and a finished one no longer blocks */
START_TEST(one_active_job_per_client_and_group)
{
    const char *a = queue("c1", "g1", T0), *dup;
    atr_job_t *job;
    int mine = 0;

    ck_assert_ptr_nonnull(a);
    dup = queue("c1", "g1", T0 + SEC(1));
    ck_assert_ptr_null(dup);
    ck_assert_ptr_nonnull(queue("c2", "g1", T0));
    ck_assert_ptr_nonnull(queue("c1", "g2", T0));
    job = claim("n1", 4, T0 + SEC(2));
    ck_assert_ptr_nonnull(job);
    ck_assert_str_eq(job->id, a);
    ck_assert_ptr_null(queue("c1", "g1", T0 + SEC(3)));   /* running still blocks */
    ck_assert_int_eq(atr_job_finish(&mine, db, job, "x/y", "{\"output\":[],\"error\":[]}", 5, T0 + SEC(4),
                                    RETAIN, pool), APR_SUCCESS);
    ck_assert_int_eq(mine, 1);
    ck_assert_ptr_nonnull(queue("c1", "g1", T0 + SEC(5)));
}
END_TEST

START_TEST(claim_oldest_first_and_node_limit)
{
    const char *a = queue("c1", "g1", T0), *b = queue("c2", "g1", T0 + SEC(1));
    const char *c = queue("c3", "g1", T0 + SEC(2));
    atr_job_t *j1, *j2, *j3;

    j1 = claim("n1", 2, T0 + SEC(10));
    ck_assert_str_eq(j1->id, a);
    ck_assert_str_eq(j1->state, "running");
    ck_assert_str_eq(j1->node, "n1");
    ck_assert_int_eq(j1->attempts, 1);
    ck_assert_ptr_null(j1->prev_claim);
    j2 = claim("n1", 2, T0 + SEC(10));
    ck_assert_str_eq(j2->id, b);
    ck_assert_str_ne(j1->claim, j2->claim);
    /* n1 runs 2 = its limit; another node may still take the third */
    ck_assert_ptr_null(claim("n1", 2, T0 + SEC(11)));
    j3 = claim("n2", 2, T0 + SEC(11));
    ck_assert_str_eq(j3->id, c);
    ck_assert_ptr_null(claim("n2", 2, T0 + SEC(12)));   /* nothing left */
    ck_assert_ptr_null(claim("n3", 0, T0 + SEC(12)));   /* 0 = paused */
}
END_TEST

/* a worker that died (no heartbeat for STALE) loses its job to the next claimer, which
 * learns the previous claim to clean up after it; the dead worker's late heartbeat fails */
START_TEST(stale_job_is_claimed_again)
{
    const char *a = queue("c1", "g1", T0);
    atr_job_t *first = claim("n1", 1, T0 + SEC(1)), *second;
    int mine = 1;

    ck_assert_str_eq(first->id, a);
    ck_assert_int_eq(atr_job_heartbeat(&mine, db, first, 100, T0 + SEC(5), pool), APR_SUCCESS);
    ck_assert_int_eq(mine, 1);
    ck_assert_int_eq(get(a)->progress, 100);
    /* not stale yet 29 s after the last heartbeat */
    ck_assert_ptr_null(claim("n2", 1, T0 + SEC(34)));
    second = claim("n2", 1, T0 + SEC(36));
    ck_assert_ptr_nonnull(second);
    ck_assert_str_eq(second->id, a);
    ck_assert_str_eq(second->prev_claim, first->claim);
    ck_assert_int_eq(second->attempts, 2);
    ck_assert_int_eq(second->progress, 0);
    ck_assert_int_eq(atr_job_heartbeat(&mine, db, first, 200, T0 + SEC(37), pool), APR_SUCCESS);
    ck_assert_int_eq(mine, 0);
    ck_assert_int_eq(atr_job_finish(&mine, db, first, "a/b", "{}", 1, T0 + SEC(38), RETAIN, pool), APR_SUCCESS);
    ck_assert_int_eq(mine, 0);
    ck_assert_int_eq(atr_job_finish(&mine, db, second, "a/c", "{}", 1, T0 + SEC(38), RETAIN, pool), APR_SUCCESS);
    ck_assert_int_eq(mine, 1);
    ck_assert_str_eq(get(a)->outdir, "a/c");
}
END_TEST

/* a dead worker does not count against its node's limit once it is stale */
START_TEST(stale_job_does_not_block_node)
{
    queue("c1", "g1", T0);
    queue("c2", "g1", T0 + SEC(1));
    ck_assert_ptr_nonnull(claim("n1", 1, T0 + SEC(2)));
    ck_assert_ptr_null(claim("n1", 1, T0 + SEC(3)));
    /* 40 s later the first is stale: n1 may claim again (the oldest: the stale one) */
    ck_assert_ptr_nonnull(claim("n1", 1, T0 + SEC(40)));
}
END_TEST

START_TEST(release_does_not_count_an_attempt)
{
    const char *a = queue("c1", "g1", T0);
    atr_job_t *job = claim("n1", 1, T0 + SEC(1)), *again;

    ck_assert_int_eq(atr_job_release(db, job, pool), APR_SUCCESS);
    ck_assert_str_eq(get(a)->state, "queued");
    ck_assert_int_eq(get(a)->attempts, 0);
    again = claim("n2", 1, T0 + SEC(2));   /* at once: no stale wait */
    ck_assert_str_eq(again->id, a);
    ck_assert_int_eq(again->attempts, 1);
}
END_TEST

START_TEST(exhausted_attempts_fail_the_job)
{
    const char *a = queue("c1", "g1", T0);
    apr_array_header_t *jobs;
    atr_job_t *job;
    apr_time_t t = T0;
    int i, n = 0;

    for (i = 0; i < ATR_JOB_MAX_ATTEMPTS; i++) {
        t += SEC(40);
        ck_assert_ptr_nonnull(claim("n1", 1, t));
    }
    ck_assert_int_eq(atr_job_exhausted(&jobs, db, t + SEC(10), STALE, 10, pool), APR_SUCCESS);
    ck_assert_int_eq(jobs->nelts, 0);   /* the last attempt is not stale yet */
    /* stale after its last attempt: nobody claims it again, the sweeper fails it */
    ck_assert_ptr_null(claim("n1", 1, t + SEC(40)));
    ck_assert_int_eq(atr_job_exhausted(&jobs, db, t + SEC(40), STALE, 10, pool), APR_SUCCESS);
    ck_assert_int_eq(jobs->nelts, 1);
    job = APR_ARRAY_IDX(jobs, 0, atr_job_t *);
    ck_assert_str_eq(job->id, a);
    ck_assert_str_eq(job->claim, get(a)->claim);
    ck_assert_int_eq(atr_job_fail(&n, db, job, "exception", "interrupted", t + SEC(41), RETAIN, pool), APR_SUCCESS);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(get(a)->state, "failed");
    ck_assert_str_eq(get(a)->error_code, "exception");
    ck_assert_ptr_null(claim("n1", 1, t + SEC(100)));
}
END_TEST

START_TEST(fail_records_code_and_text)
{
    const char *a = queue("c1", "g1", T0);
    atr_job_t *job = claim("n1", 1, T0 + SEC(1));
    int mine = 0;

    ck_assert_int_eq(atr_job_fail(&mine, db, job, "exception", "disk full", T0 + SEC(2), RETAIN, pool),
                     APR_SUCCESS);
    ck_assert_int_eq(mine, 1);
    job = get(a);
    ck_assert_str_eq(job->state, "failed");
    ck_assert_str_eq(job->error, "disk full");
    ck_assert_int_eq(job->expires, apr_time_as_msec(T0 + SEC(2) + RETAIN));
}
END_TEST

/* BULK-ST-03: a second poll within the interval is refused, not recorded */
START_TEST(poll_interval)
{
    const char *a = queue("c1", "g1", T0);
    int ok = 0;

    ck_assert_int_eq(atr_job_poll(&ok, db, a, T0 + SEC(1), SEC(2), pool), APR_SUCCESS);
    ck_assert_int_eq(ok, 1);
    ck_assert_int_eq(atr_job_poll(&ok, db, a, T0 + SEC(2), SEC(2), pool), APR_SUCCESS);
    ck_assert_int_eq(ok, 0);
    ck_assert_int_eq(atr_job_poll(&ok, db, a, T0 + SEC(3), SEC(2), pool), APR_SUCCESS);
    ck_assert_int_eq(ok, 1);
    ck_assert_int_eq(atr_job_poll(&ok, db, a, T0 + SEC(3), 0, pool), APR_SUCCESS);
    ck_assert_int_eq(ok, 1);
}
END_TEST

/* BULK-DEL-01/02: only the owner deletes; a running job's worker learns it at its next
 * heartbeat; the row is removed once no worker heartbeats it any more */
START_TEST(delete_and_expire)
{
    const char *a = queue("c1", "g1", T0), *b = queue("c1", "g2", T0);
    atr_job_t *job = claim("n1", 2, T0 + SEC(1));
    apr_array_header_t *ids;
    int found = 0, mine = 1;

    ck_assert_str_eq(job->id, a);
    ck_assert_int_eq(atr_job_delete(&found, db, a, "c2", T0 + SEC(2), pool), APR_SUCCESS);
    ck_assert_int_eq(found, 0);
    ck_assert_int_eq(atr_job_delete(&found, db, a, "c1", T0 + SEC(2), pool), APR_SUCCESS);
    ck_assert_int_eq(found, 1);
    ck_assert_int_eq(atr_job_delete(&found, db, a, "c1", T0 + SEC(2), pool), APR_SUCCESS);
    ck_assert_int_eq(found, 0);
    ck_assert_str_eq(get(a)->state, "deleted");
    ck_assert_int_eq(atr_job_heartbeat(&mine, db, job, 10, T0 + SEC(3), pool), APR_SUCCESS);
    ck_assert_int_eq(mine, 0);
    /* the worker heartbeat at T0+1 s: not removable before it is stale */
    ck_assert_int_eq(atr_job_expired(&ids, db, T0 + SEC(10), STALE, 10, pool), APR_SUCCESS);
    ck_assert_int_eq(ids->nelts, 0);
    ck_assert_int_eq(atr_job_expired(&ids, db, T0 + SEC(40), STALE, 10, pool), APR_SUCCESS);
    ck_assert_int_eq(ids->nelts, 1);
    ck_assert_str_eq(APR_ARRAY_IDX(ids, 0, const char *), a);
    ck_assert_int_eq(atr_job_remove(db, a, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_job_get(&job, db, a, pool), APR_NOTFOUND);

    /* a finished job expires at finish + retention */
    job = claim("n1", 2, T0 + SEC(50));
    ck_assert_str_eq(job->id, b);
    ck_assert_int_eq(atr_job_finish(&mine, db, job, "d", "{}", 1, T0 + SEC(60), RETAIN, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_job_expired(&ids, db, T0 + SEC(60) + RETAIN - SEC(1), STALE, 10, pool), APR_SUCCESS);
    ck_assert_int_eq(ids->nelts, 0);
    ck_assert_int_eq(atr_job_expired(&ids, db, T0 + SEC(61) + RETAIN, STALE, 10, pool), APR_SUCCESS);
    ck_assert_int_eq(ids->nelts, 1);
}
END_TEST

START_TEST(rmtree_removes_two_levels)
{
    const char *top = apr_pstrcat(pool, tmpdir, "/job", NULL);
    const char *sub = apr_pstrcat(pool, top, "/claim", NULL);
    FILE *f;

    ck_assert_int_eq(mkdir(top, 0700), 0);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    f = fopen(apr_pstrcat(pool, sub, "/Patient-1.ndjson", NULL), "w");
    ck_assert_ptr_nonnull(f);
    fputs("{}\n", f);
    fclose(f);
    ck_assert_int_eq(atr_job_rmtree(top, pool), APR_SUCCESS);
    ck_assert_int_ne(access(top, F_OK), 0);
    ck_assert_int_eq(atr_job_rmtree(top, pool), APR_SUCCESS);   /* missing: fine */
}
END_TEST

Suite *job_suite(void)
{
    Suite *s = suite_create("job");
    TCase *tc = tcase_create("job");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, create_and_get);
    tcase_add_test(tc, random_ids);
    tcase_add_test(tc, one_active_job_per_client_and_group);
    tcase_add_test(tc, claim_oldest_first_and_node_limit);
    tcase_add_test(tc, stale_job_is_claimed_again);
    tcase_add_test(tc, stale_job_does_not_block_node);
    tcase_add_test(tc, release_does_not_count_an_attempt);
    tcase_add_test(tc, exhausted_attempts_fail_the_job);
    tcase_add_test(tc, fail_records_code_and_text);
    tcase_add_test(tc, poll_interval);
    tcase_add_test(tc, delete_and_expire);
    tcase_add_test(tc, rmtree_removes_two_levels);
    suite_add_tcase(s, tc);
    return s;
}
