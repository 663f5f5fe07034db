/* The statements. Labels are what the code names; keep them in one place so a reviewer
 * can see every query the module can run.
 * Integer parameters are %d: apr_dbd_pgsql prepares %s as varchar, and PostgreSQL refuses
 * "integer = varchar" (values are still passed as strings; sqlite3 binds them as text). */
#include <stddef.h>
#include <string.h>
#include "atr_sql.h"

/* PGSQL_ONLY statements first: atr_sql_statements hands sqlite3 the list after them. Each
 * is used only where the code asks db->driver_name (atr_job.c, atr_store.c), or, for the
 * batched writes, where it is prepared (atr_store_batch.c). */
#define PGSQL_ONLY 6
/* A batched statement's rows: 1 + 2 x 125 = 251 (string literals joined by the preprocessor) */
#define ATR_BATCH_X5(s) s s s s s
#define ATR_BATCH_ROWS(row) row ATR_BATCH_X5(ATR_BATCH_X5(ATR_BATCH_X5(", " row ", " row)))
static const atr_sql_stmt_t statements[] = {
    /* ---- pgsql only ---- */
    /* Job claiming across nodes (atr_job.c). Inside one transaction: first the node's advisory
     * lock, so that the claims of one node (its processes) run one at a time and each counts
     * the running jobs the previous one committed (READ COMMITTED: every statement sees what
     * was committed before it started); then the claim, which skips rows another node is
     * claiming right now instead of queueing behind its lock. The lock is released at commit.
     * Key: a fixed class (0x41545201, "ATR" 1) and the node name's hash. */
    { "atr_job_node_lock",
      "SELECT pg_advisory_xact_lock(1096045057, hashtext(%s))" },
    /* args: node, claim, now, stale limit, max attempts, node, stale limit, max */
    { "atr_job_claim_locked",
      "UPDATE atr_export_job SET state = 'running', node = %s, prev_claim = claim, claim = %s,"
      " heartbeat = %lld, attempts = attempts + 1, progress = 0"
      " WHERE id = (SELECT id FROM atr_export_job WHERE state = 'queued'"
      " OR (state = 'running' AND heartbeat < %lld AND attempts < %d) ORDER BY created LIMIT 1"
      " FOR UPDATE SKIP LOCKED)"
      " AND (SELECT COUNT(*) FROM atr_export_job WHERE state = 'running' AND node = %s"
      " AND heartbeat >= %lld) < %d" },
    /* Group version writers (atr_store.c atr_store_lock): the second waits for the first's
     * commit, then reads the version it wrote (SQLite: BEGIN IMMEDIATE already serialises). */
    { "atr_res_lock",
      "SELECT version FROM atr_current WHERE rtype = %s AND id = %s FOR UPDATE" },
    /* Batched writes (atr_store_batch.c): one round trip per batch of rows instead of one per
     * row. A batched statement is a VALUES list of rows of the per-row arguments, as many rows
     * as ATR_BATCH_ROWS writes (the batch layer counts them here); rows not filled are all
     * NULL and skipped (the first column is never NULL in a real row). Parameters need no
     * escaping or parsing on either side (a JSON array argument cost more to parse than the
     * inserts). */
    /* A load's resources, rows (n, rtype, id, last_updated, body), n the row's number, no
     * (rtype, id) twice: each becomes its next version unless its body equals the current
     * (not deleted) version's. Answers per row, by n: the version it had before, 1 when
     * unchanged (nothing written). The rules of atr_store.c put_stored (atr_res_get_current,
     * atr_res_insert, atr_cur_upsert) in one statement. The current version is read as the
     * newest row of atr_resource (the store writes both tables together, so it is the one
     * atr_current names): its primary key is the only index that can find it, where on
     * atr_current the planner, misled by a small or unanalysed table, took the index on
     * (rtype, last_updated) and read every row of the type for each resource. */
    { "atr_res_put_batch",
      "WITH j (n, rtype, id, last_updated, body) AS (VALUES " ATR_BATCH_ROWS("(%d, %s, %s, %s, %s)") "),"
      " c AS (SELECT j.rtype, j.id, j.last_updated, j.body, j.n, COALESCE(r.version, 0) AS cv,"
      " COALESCE(r.deleted = 0 AND r.body = j.body, FALSE) AS same FROM j"
      " LEFT JOIN LATERAL (SELECT x.version, x.deleted, x.body FROM atr_resource x"
      " WHERE x.rtype = j.rtype AND x.id = j.id ORDER BY x.version DESC LIMIT 1) r ON TRUE"
      " WHERE j.n IS NOT NULL),"
      " ins AS (INSERT INTO atr_resource (rtype, id, version, last_updated, deleted, body)"
      " SELECT rtype, id, cv + 1, last_updated, 0, body FROM c WHERE NOT same),"
      " upd AS (INSERT INTO atr_current (rtype, id, version, last_updated, deleted)"
      " SELECT rtype, id, cv + 1, last_updated, 0 FROM c WHERE NOT same"
      " ON CONFLICT (rtype, id) DO UPDATE SET version = excluded.version,"
      " last_updated = excluded.last_updated, deleted = excluded.deleted)"
      " SELECT cv, CASE WHEN same THEN 1 ELSE 0 END FROM c ORDER BY n" },
    /* Run first in a transaction that sends atr_res_put_batch, for that transaction only
     * (is_local): a prepared statement keeps the plan made for the table it first saw, and
     * for a fresh or small table that is a scan of the whole table, run for every resource
     * while the table grows by a million rows within this very load. */
    { "atr_res_put_batch_plan",
      "SELECT set_config('enable_seqscan', 'off', true)" },
    /* Group member rows, as atr_mem_insert's arguments */
    { "atr_mem_insert_batch",
      "INSERT INTO atr_group_member (group_id, version, seq, entity_ref, provider_ref, coverage_ref,"
      " change_type, inactive, period_start, period_end, body) SELECT * FROM (VALUES "
      ATR_BATCH_ROWS("(%s, %d, %d, %s, %s, %s, %s, %d, %s, %s, %s)") ") AS v WHERE v.column1 IS NOT NULL" },

    /* ---- every driver ---- */
    /* schema */
    { "atr_schema_version", "SELECT version FROM atr_schema_version" },

    /* resources */
    { "atr_res_current",
      "SELECT version, last_updated, deleted FROM atr_current WHERE rtype = %s AND id = %s" },
    { "atr_res_get",
      "SELECT version, last_updated, deleted, body FROM atr_resource WHERE rtype = %s AND id = %s AND version = %d" },
    { "atr_res_get_current",
      "SELECT r.version, r.last_updated, r.deleted, r.body FROM atr_current c JOIN atr_resource r"
      " ON r.rtype = c.rtype AND r.id = c.id AND r.version = c.version WHERE c.rtype = %s AND c.id = %s" },
    { "atr_res_history",
      "SELECT version, last_updated, deleted, body FROM atr_resource WHERE rtype = %s AND id = %s"
      " AND last_updated > %s ORDER BY version DESC LIMIT %d" },
    { "atr_res_insert",
      "INSERT INTO atr_resource (rtype, id, version, last_updated, deleted, body) VALUES (%s, %s, %d, %s, %d, %s)" },
    { "atr_cur_upsert",
      "INSERT INTO atr_current (rtype, id, version, last_updated, deleted) VALUES (%s, %s, %d, %s, %d)"
      " ON CONFLICT (rtype, id) DO UPDATE SET version = excluded.version,"
      " last_updated = excluded.last_updated, deleted = excluded.deleted" },

    /* Group members (paged by seq so no result set is ever the whole Group) */
    { "atr_mem_insert",
      "INSERT INTO atr_group_member (group_id, version, seq, entity_ref, provider_ref, coverage_ref,"
      " change_type, inactive, period_start, period_end, body) VALUES (%s, %d, %d, %s, %s, %s, %s, %d, %s, %s, %s)" },
    { "atr_mem_page",
      "SELECT seq, body FROM atr_group_member WHERE group_id = %s AND version = %d AND seq > %d"
      " ORDER BY seq LIMIT %d" },
    { "atr_mem_count",
      "SELECT COUNT(*) FROM atr_group_member WHERE group_id = %s AND version = %d" },

    /* Group search index (current versions) */
    { "atr_gidx_upsert",
      "INSERT INTO atr_group_index (group_id, name, name_norm, status, period_start, period_end, member_count)"
      " VALUES (%s, %s, %s, %s, %s, %s, %d) ON CONFLICT (group_id) DO UPDATE SET name = excluded.name,"
      " name_norm = excluded.name_norm, status = excluded.status, period_start = excluded.period_start,"
      " period_end = excluded.period_end, member_count = excluded.member_count" },
    { "atr_gidx_delete", "DELETE FROM atr_group_index WHERE group_id = %s" },
    { "atr_gident_delete", "DELETE FROM atr_group_identifier WHERE group_id = %s" },
    { "atr_gident_insert",
      "INSERT INTO atr_group_identifier (group_id, system, value, type_system, type_code) VALUES (%s, %s, %s, %s, %s)" },
    { "atr_gchar_delete", "DELETE FROM atr_group_characteristic WHERE group_id = %s" },
    { "atr_gchar_insert",
      "INSERT INTO atr_group_characteristic (group_id, code_system, code, value_ref, value_system, value_code)"
      " VALUES (%s, %s, %s, %s, %s, %s)" },

    /* Group search: each returns group_id rows; atr_search combines them (AND/OR) in C. */
    { "atr_gs_all", "SELECT group_id FROM atr_group_index" },
    { "atr_gs_id", "SELECT group_id FROM atr_group_index WHERE group_id = %s" },
    { "atr_gs_ident_sys_val", "SELECT group_id FROM atr_group_identifier WHERE system = %s AND value = %s" },
    { "atr_gs_ident_val", "SELECT group_id FROM atr_group_identifier WHERE value = %s" },
    { "atr_gs_ident_sys", "SELECT group_id FROM atr_group_identifier WHERE system = %s" },
    { "atr_gs_ident_type_val",
      "SELECT group_id FROM atr_group_identifier WHERE type_system = %s AND type_code = %s AND value = %s" },
    { "atr_gs_name_like", "SELECT group_id FROM atr_group_index WHERE name_norm LIKE %s ESCAPE '\\'" },
    { "atr_gs_name_exact", "SELECT group_id FROM atr_group_index WHERE name = %s" },
    { "atr_gs_char_sys_code", "SELECT group_id FROM atr_group_characteristic WHERE code_system = %s AND code = %s" },
    { "atr_gs_char_code", "SELECT group_id FROM atr_group_characteristic WHERE code = %s" },
    { "atr_gs_charval_ref_sys",
      "SELECT group_id FROM atr_group_characteristic WHERE code_system = %s AND code = %s AND value_ref = %s" },
    { "atr_gs_charval_ref",
      "SELECT group_id FROM atr_group_characteristic WHERE code = %s AND value_ref = %s" },
    { "atr_gs_charval_tok",
      "SELECT group_id FROM atr_group_characteristic WHERE code = %s AND value_code = %s" },

    /* entitlement (atr_entitle.c): is a reference among the members of a Group's current version */
    { "atr_ent_member_entity",
      "SELECT 1 FROM atr_current c JOIN atr_group_member m ON m.group_id = c.id AND m.version = c.version"
      " WHERE c.rtype = 'Group' AND c.id = %s AND c.deleted = 0 AND m.entity_ref = %s LIMIT 1" },
    { "atr_ent_member_coverage",
      "SELECT 1 FROM atr_current c JOIN atr_group_member m ON m.group_id = c.id AND m.version = c.version"
      " WHERE c.rtype = 'Group' AND c.id = %s AND c.deleted = 0 AND m.coverage_ref = %s LIMIT 1" },

    /* client assertion jti, remembered until exp + skew (SMART-TOK-04, D29); 0 rows = replay */
    /* expires is unix seconds: %lld (pgsql bigint), as %d (integer) fails from 2038 */
    { "atr_jti_insert",
      "INSERT INTO atr_jti (client_id, jti, expires) VALUES (%s, %s, %lld) ON CONFLICT DO NOTHING" },
    { "atr_jti_purge", "DELETE FROM atr_jti WHERE expires < %lld" },

    /* roster apply (atr_roster.c): rows staged in atr_roster_row, resolved, checked and diffed
     * against the previous Group version; all inside the apply's one transaction */
    { "atr_ros_clear_rows", "DELETE FROM atr_roster_row" },
    { "atr_ros_clear_ident", "DELETE FROM atr_roster_ident" },
    { "atr_ros_insert",
      "INSERT INTO atr_roster_row (line, m_type, m_val, p_type, p_val, payer_id, contract_id, plan_id,"
      " period_start, period_end, coverage_ref) VALUES (%d, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)" },
    { "atr_ros_need", "SELECT 1 FROM atr_roster_row WHERE m_type = %s OR p_type = %s LIMIT 1" },
    { "atr_ros_scan",
      "SELECT c.id, r.body FROM atr_current c JOIN atr_resource r ON r.rtype = c.rtype AND r.id = c.id"
      " AND r.version = c.version WHERE c.rtype = %s AND c.deleted = 0 AND c.id > %s ORDER BY c.id LIMIT %d" },
    { "atr_ros_ident_insert", "INSERT INTO atr_roster_ident (kind, value, ref) VALUES (%s, %s, %s)" },
    { "atr_ros_resolve_m_ref",
      "UPDATE atr_roster_row SET entity_ref = m_type || '/' || m_val WHERE m_type <> 'MB' AND EXISTS"
      " (SELECT 1 FROM atr_current c WHERE c.rtype = atr_roster_row.m_type AND c.id = atr_roster_row.m_val"
      " AND c.deleted = 0)" },
    { "atr_ros_resolve_m_ident",
      "UPDATE atr_roster_row SET entity_ref = (SELECT MIN(i.ref) FROM atr_roster_ident i WHERE i.kind = 'MB'"
      " AND i.value = atr_roster_row.m_val) WHERE m_type = 'MB'" },
    { "atr_ros_resolve_p_ref",
      "UPDATE atr_roster_row SET provider_ref = p_type || '/' || p_val WHERE p_type NOT IN ('NPI', 'TIN') AND EXISTS"
      " (SELECT 1 FROM atr_current c WHERE c.rtype = atr_roster_row.p_type AND c.id = atr_roster_row.p_val"
      " AND c.deleted = 0)" },
    { "atr_ros_resolve_p_ident",
      "UPDATE atr_roster_row SET provider_ref = (SELECT MIN(i.ref) FROM atr_roster_ident i"
      " WHERE i.kind = atr_roster_row.p_type AND i.value = atr_roster_row.p_val) WHERE p_type IN ('NPI', 'TIN')" },
    { "atr_ros_unresolved",
      "SELECT line, m_type, m_val, p_type, p_val, entity_ref, provider_ref FROM atr_roster_row"
      " WHERE entity_ref IS NULL OR provider_ref IS NULL ORDER BY line LIMIT %d" },
    { "atr_ros_unresolved_count",
      "SELECT COUNT(*) FROM atr_roster_row WHERE entity_ref IS NULL OR provider_ref IS NULL" },
    { "atr_ros_dups",
      "SELECT r.line, MIN(d.line) FROM atr_roster_row r JOIN atr_roster_row d ON d.entity_ref = r.entity_ref"
      " AND d.provider_ref = r.provider_ref AND d.line < r.line GROUP BY r.line ORDER BY r.line LIMIT %d" },
    { "atr_ros_dups_count",
      "SELECT COUNT(*) FROM atr_roster_row r WHERE EXISTS (SELECT 1 FROM atr_roster_row d"
      " WHERE d.entity_ref = r.entity_ref AND d.provider_ref = r.provider_ref AND d.line < r.line)" },
    /* args: (group, version) x 3, after line, limit. The previous entry of a member x provider:
     * its first one not already dropped or cancelled. The IN keeps SQLite on the entity index
     * (without it the planner walks the whole version per row). */
    { "atr_ros_entries",
      "SELECT r.line, r.entity_ref, r.provider_ref, r.period_start, r.period_end, r.coverage_ref, m.seq,"
      " m.period_start, m.period_end, m.coverage_ref FROM atr_roster_row r LEFT JOIN atr_group_member m"
      " ON m.group_id = %s AND m.version = %d AND m.seq = (SELECT MIN(y.seq) FROM atr_group_member y"
      " WHERE y.group_id = %s AND y.version = %d AND y.seq IN (SELECT x.seq FROM atr_group_member x"
      " WHERE x.group_id = %s AND x.version = %d AND x.entity_ref = r.entity_ref)"
      " AND y.provider_ref = r.provider_ref AND COALESCE(y.change_type, '') NOT IN ('dropped', 'cancelled'))"
      " WHERE r.line > %d ORDER BY r.line LIMIT %d" },
    /* previous entries (not already dropped/cancelled) whose member x provider left the roster */
    { "atr_ros_dropped_count",
      "SELECT COUNT(*) FROM atr_group_member m WHERE m.group_id = %s AND m.version = %d"
      " AND COALESCE(m.change_type, '') NOT IN ('dropped', 'cancelled') AND NOT EXISTS (SELECT 1"
      " FROM atr_roster_row r WHERE r.entity_ref = m.entity_ref AND r.provider_ref = m.provider_ref)" },
    { "atr_ros_dropped",
      "SELECT m.seq, m.body, m.entity_ref, m.provider_ref FROM atr_group_member m WHERE m.group_id = %s"
      " AND m.version = %d AND m.seq > %d"
      " AND COALESCE(m.change_type, '') NOT IN ('dropped', 'cancelled') AND NOT EXISTS (SELECT 1"
      " FROM atr_roster_row r WHERE r.entity_ref = m.entity_ref AND r.provider_ref = m.provider_ref)"
      " ORDER BY m.seq LIMIT %d" },

    /* bulk export (atr_export.c). A whole Group's Patients and Coverages: keyset pages of the
     * member index in reference order (a reference shared by several members comes on adjacent
     * rows; the writer skips the repeats) with their current version (NULL version: not in the
     * store). args group_id, version, last reference of the previous page ("Patient/" first), limit */
    { "atr_exp_patient_page",
      "SELECT m.entity_ref, r.version, r.last_updated, r.deleted, r.body FROM atr_group_member m"
      " LEFT JOIN atr_current c ON c.rtype = 'Patient' AND c.id = substr(m.entity_ref, 9)"
      " LEFT JOIN atr_resource r ON r.rtype = c.rtype AND r.id = c.id AND r.version = c.version"
      " WHERE m.group_id = %s AND m.version = %d AND m.entity_ref > %s AND substr(m.entity_ref, 1, 8) = 'Patient/'"
      " ORDER BY m.entity_ref LIMIT %d" },
    { "atr_exp_coverage_page",
      "SELECT m.coverage_ref, r.version, r.last_updated, r.deleted, r.body FROM atr_group_member m"
      " LEFT JOIN atr_current c ON c.rtype = 'Coverage' AND c.id = substr(m.coverage_ref, 10)"
      " LEFT JOIN atr_resource r ON r.rtype = c.rtype AND r.id = c.id AND r.version = c.version"
      " WHERE m.group_id = %s AND m.version = %d AND m.coverage_ref > %s AND substr(m.coverage_ref, 1, 9) = 'Coverage/'"
      " ORDER BY m.coverage_ref LIMIT %d" },
    /* The same pages' references alone; their current versions and bodies are then read as
     * ranges of ids (atr_exp_current_range, atr_exp_body_range): args as above */
    { "atr_exp_patient_refs",
      "SELECT entity_ref FROM atr_group_member WHERE group_id = %s AND version = %d AND entity_ref > %s"
      " AND substr(entity_ref, 1, 8) = 'Patient/' ORDER BY entity_ref LIMIT %d" },
    { "atr_exp_coverage_refs",
      "SELECT coverage_ref FROM atr_group_member WHERE group_id = %s AND version = %d AND coverage_ref > %s"
      " AND substr(coverage_ref, 1, 9) = 'Coverage/' ORDER BY coverage_ref LIMIT %d" },
    /* args rtype, lowest id, highest id, limit */
    { "atr_exp_current_range",
      "SELECT id, version, last_updated, deleted FROM atr_current WHERE rtype = %s AND id >= %s AND id <= %s"
      " ORDER BY id LIMIT %d" },
    { "atr_exp_body_range",
      "SELECT id, version, body FROM atr_resource WHERE rtype = %s AND id >= %s AND id <= %s"
      " ORDER BY id, version LIMIT %d" },
    /* A whole Group's attributed providers into atr_export_ref (deduplicated by its key), the
     * needed types in one scan of the member rows: args export_id, group_id, version, then
     * 'Practitioner', 'PractitionerRole', 'Organization' or NULL for a type not needed */
    { "atr_exp_ref_providers",
      "INSERT INTO atr_export_ref (export_id, rtype, id) SELECT %s, t, substr(ref, length(t) + 2) FROM"
      " (SELECT provider_ref AS ref, CASE WHEN substr(provider_ref, 1, 13) = 'Practitioner/' THEN 'Practitioner'"
      " WHEN substr(provider_ref, 1, 17) = 'PractitionerRole/' THEN 'PractitionerRole'"
      " WHEN substr(provider_ref, 1, 13) = 'Organization/' THEN 'Organization' END AS t"
      " FROM atr_group_member WHERE group_id = %s AND version = %d) s WHERE t IN (%s, %s, %s)"
      " ON CONFLICT DO NOTHING" },
    /* The references of the members of one entity_ref (the patient filter) into
     * atr_export_ref: args export_id, rtype, strlen(rtype) + 2, group_id, version,
     * strlen(rtype) + 1, "rtype/", entity_ref */
    { "atr_exp_ref_entity_p",
      "INSERT INTO atr_export_ref (export_id, rtype, id) SELECT %s, %s, substr(entity_ref, %d)"
      " FROM atr_group_member WHERE group_id = %s AND version = %d AND substr(entity_ref, 1, %d) = %s"
      " AND entity_ref = %s ON CONFLICT DO NOTHING" },
    { "atr_exp_ref_coverage_p",
      "INSERT INTO atr_export_ref (export_id, rtype, id) SELECT %s, %s, substr(coverage_ref, %d)"
      " FROM atr_group_member WHERE group_id = %s AND version = %d AND substr(coverage_ref, 1, %d) = %s"
      " AND entity_ref = %s ON CONFLICT DO NOTHING" },
    { "atr_exp_ref_provider_p",
      "INSERT INTO atr_export_ref (export_id, rtype, id) SELECT %s, %s, substr(provider_ref, %d)"
      " FROM atr_group_member WHERE group_id = %s AND version = %d AND substr(provider_ref, 1, %d) = %s"
      " AND entity_ref = %s ON CONFLICT DO NOTHING" },
    /* references found in exported bodies (Coverage.payor, PractitionerRole.location, ...) */
    { "atr_exp_ref_insert",
      "INSERT INTO atr_export_ref (export_id, rtype, id) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING" },
    { "atr_exp_ref_insert16",
      "INSERT INTO atr_export_ref (export_id, rtype, id) VALUES (%s, %s, %s), (%s, %s, %s), (%s, %s, %s),"
      " (%s, %s, %s), (%s, %s, %s), (%s, %s, %s), (%s, %s, %s), (%s, %s, %s), (%s, %s, %s), (%s, %s, %s),"
      " (%s, %s, %s), (%s, %s, %s), (%s, %s, %s), (%s, %s, %s), (%s, %s, %s), (%s, %s, %s)"
      " ON CONFLICT DO NOTHING" },
    /* the Group line's member array (a whole Group's attributed providers are collected from
     * the same rows): args group_id, version, last seq, limit */
    { "atr_exp_member_page",
      "SELECT seq, body, provider_ref FROM atr_group_member WHERE group_id = %s AND version = %d AND seq > %d"
      " ORDER BY seq LIMIT %d" },
    /* keyset page of one type's collected references with their current version (NULL
     * version: not in the store) */
    { "atr_exp_ref_page",
      "SELECT x.id, r.version, r.last_updated, r.deleted, r.body FROM atr_export_ref x"
      " LEFT JOIN atr_current c ON c.rtype = x.rtype AND c.id = x.id"
      " LEFT JOIN atr_resource r ON r.rtype = c.rtype AND r.id = c.id AND r.version = c.version"
      " WHERE x.export_id = %s AND x.rtype = %s AND x.id > %s ORDER BY x.id LIMIT %d" },
    /* the ids alone of the same page: args export_id, rtype, last id, limit */
    { "atr_exp_ref_ids",
      "SELECT id FROM atr_export_ref WHERE export_id = %s AND rtype = %s AND id > %s ORDER BY id LIMIT %d" },
    { "atr_exp_ref_delete", "DELETE FROM atr_export_ref WHERE export_id = %s" },

    /* bulk export jobs (atr_job.c, docs/bulk-export.md); times are ms since the epoch (%lld) */
    { "atr_job_insert",
      "INSERT INTO atr_export_job (id, client_id, group_id, request, params, state, created, tx_time)"
      " VALUES (%s, %s, %s, %s, %s, 'queued', %lld, %s) ON CONFLICT DO NOTHING" },
    { "atr_job_get",
      "SELECT id, client_id, group_id, request, params, state, created, tx_time, node, claim, prev_claim,"
      " heartbeat, attempts, progress, outdir, files, error_code, error, finished, expires, last_poll"
      " FROM atr_export_job WHERE id = %s" },
    { "atr_job_by_claim",
      "SELECT id, client_id, group_id, request, params, state, created, tx_time, node, claim, prev_claim,"
      " heartbeat, attempts, progress, outdir, files, error_code, error, finished, expires, last_poll"
      " FROM atr_export_job WHERE claim = %s" },
    /* one poll per min interval: 0 rows = too soon (args now, id, now - interval) */
    { "atr_job_poll",
      "UPDATE atr_export_job SET last_poll = %lld WHERE id = %s AND last_poll <= %lld" },
    /* anything to claim? (a read, so idle workers never take the write lock) */
    { "atr_job_claimable",
      "SELECT id FROM atr_export_job WHERE state = 'queued' OR (state = 'running' AND heartbeat < %lld"
      " AND attempts < CAST(%d AS INTEGER)) LIMIT 1" },
    /* the oldest claimable job (queued, or running without heartbeat since the stale limit),
     * while this node runs fewer than max; the WHERE is repeated outside the subquery so
     * that two claimers racing for one row cannot both win. The CAST: sqlite3 binds every
     * parameter as text, and COUNT(*) (no column affinity) < '2' is always true there.
     * A job whose workers died ATR_JOB_MAX_ATTEMPTS times is left to atr_job_exhausted_list.
     * args: node, claim, now, (stale limit, max attempts) x 2, node, stale limit, max */
    { "atr_job_claim",
      "UPDATE atr_export_job SET state = 'running', node = %s, prev_claim = claim, claim = %s,"
      " heartbeat = %lld, attempts = attempts + 1, progress = 0"
      " WHERE id = (SELECT id FROM atr_export_job WHERE state = 'queued'"
      " OR (state = 'running' AND heartbeat < %lld AND attempts < CAST(%d AS INTEGER)) ORDER BY created LIMIT 1)"
      " AND (state = 'queued' OR (state = 'running' AND heartbeat < %lld AND attempts < CAST(%d AS INTEGER)))"
      " AND (SELECT COUNT(*) FROM atr_export_job WHERE state = 'running' AND node = %s"
      " AND heartbeat >= %lld) < CAST(%d AS INTEGER)" },
    /* 0 rows: the job was deleted, or claimed again by another worker: stop */
    { "atr_job_heartbeat",
      "UPDATE atr_export_job SET heartbeat = %lld, progress = %lld"
      " WHERE id = %s AND claim = %s AND state = 'running'" },
    { "atr_job_done",
      "UPDATE atr_export_job SET state = 'done', outdir = %s, files = %s, progress = %lld,"
      " finished = %lld, expires = %lld, heartbeat = %lld WHERE id = %s AND claim = %s AND state = 'running'" },
    { "atr_job_failed",
      "UPDATE atr_export_job SET state = 'failed', error_code = %s, error = %s, finished = %lld,"
      " expires = %lld WHERE id = %s AND claim = %s AND state = 'running'" },
    /* a worker whose httpd stops hands its job back, not counting the attempt */
    { "atr_job_release",
      "UPDATE atr_export_job SET state = 'queued', node = NULL, heartbeat = 0, attempts = attempts - 1"
      " WHERE id = %s AND claim = %s AND state = 'running'" },
    /* jobs whose workers died too often (args: stale limit, max attempts, limit); each is then
     * failed by its claim (atr_job_failed) and its last attempt's leftovers removed */
    { "atr_job_exhausted",
      "SELECT id, claim, prev_claim FROM atr_export_job WHERE state = 'running' AND heartbeat < %lld"
      " AND attempts >= CAST(%d AS INTEGER) ORDER BY id LIMIT %d" },
    { "atr_job_delete",
      "UPDATE atr_export_job SET state = 'deleted', finished = %lld WHERE id = %s AND client_id = %s"
      " AND state <> 'deleted'" },
    /* what the sweeper removes: finished jobs past retention, deleted jobs no worker still
     * heartbeats (args: now, stale limit, limit) */
    { "atr_job_expired",
      "SELECT id FROM atr_export_job WHERE (state IN ('done', 'failed') AND expires < %lld)"
      " OR (state = 'deleted' AND heartbeat < %lld) ORDER BY id LIMIT %d" },
    { "atr_job_remove", "DELETE FROM atr_export_job WHERE id = %s" },

    /* reconciliation (atr_recon_store.c): who created a Group; resources whose stored body
     * contains a string (narrowed in SQL, checked on the parsed body); one member's entries */
    { "atr_rec_owner_insert",
      "INSERT INTO atr_rec_owner (group_id, client_id, created) VALUES (%s, %s, %lld) ON CONFLICT DO NOTHING" },
    { "atr_rec_owner_get", "SELECT 1 FROM atr_rec_owner WHERE group_id = %s AND client_id = %s" },
    { "atr_rec_find_like",
      "SELECT c.id, r.body FROM atr_current c JOIN atr_resource r ON r.rtype = c.rtype AND r.id = c.id"
      " AND r.version = c.version WHERE c.rtype = %s AND c.deleted = 0 AND r.body LIKE %s ESCAPE '\\'"
      " ORDER BY c.id LIMIT %d" },
    { "atr_rec_mem_by_entity",
      "SELECT body FROM atr_group_member WHERE group_id = %s AND version = %d AND entity_ref = %s ORDER BY seq" },
    /* roster apply: coverage references that name no current Coverage */
    { "atr_rec_ros_cov_unknown",
      "SELECT r.line, r.coverage_ref FROM atr_roster_row r WHERE r.coverage_ref IS NOT NULL AND NOT EXISTS"
      " (SELECT 1 FROM atr_current c WHERE c.rtype = 'Coverage' AND c.id = substr(r.coverage_ref, 10)"
      " AND c.deleted = 0) ORDER BY r.line LIMIT %d" },
    { "atr_rec_ros_cov_unknown_count",
      "SELECT COUNT(*) FROM atr_roster_row r WHERE r.coverage_ref IS NOT NULL AND NOT EXISTS"
      " (SELECT 1 FROM atr_current c WHERE c.rtype = 'Coverage' AND c.id = substr(r.coverage_ref, 10)"
      " AND c.deleted = 0)" },

    /* list-change Subscriptions (atr_subscription.c); times are ms since the epoch */
    { "atr_sub_get",
      "SELECT id, client_id, group_id, endpoint, headers, base_url, status, body, notified_version, events,"
      " attempts, error FROM atr_sub_subscription WHERE id = %s" },
    { "atr_sub_insert",
      "INSERT INTO atr_sub_subscription (id, client_id, group_id, endpoint, headers, base_url, status, body,"
      " notified_version, created, updated) VALUES (%s, %s, %s, %s, %s, %s, 'active', %s, %d, %lld, %lld)" },
    { "atr_sub_update",
      "UPDATE atr_sub_subscription SET group_id = %s, endpoint = %s, headers = %s, base_url = %s,"
      " status = 'active', body = %s, notified_version = %d, attempts = 0, next_try = 0, error = NULL,"
      " updated = %lld WHERE id = %s AND client_id = %s" },
    /* active Subscriptions whose Group has a version above the one last notified, due now
     * and not claimed by a running attempt (args: now, stale limit, limit) */
    { "atr_sub_due",
      "SELECT s.id, c.version FROM atr_sub_subscription s JOIN atr_current c ON c.rtype = 'Group'"
      " AND c.id = s.group_id WHERE s.status = 'active' AND c.version > s.notified_version"
      " AND s.next_try <= %lld AND (s.claim IS NULL OR s.claimed_at < %lld) ORDER BY s.next_try LIMIT %d" },
    /* one attempt at a time; a claim older than the stale limit is taken over. The due
     * condition is checked again here: another worker may have delivered (and released its
     * claim) since this one read atr_sub_due. (args: claim, now, id, stale limit, now) */
    { "atr_sub_claim",
      "UPDATE atr_sub_subscription SET claim = %s, claimed_at = %lld WHERE id = %s AND status = 'active'"
      " AND (claim IS NULL OR claimed_at < %lld) AND next_try <= %lld AND notified_version <"
      " (SELECT c.version FROM atr_current c WHERE c.rtype = 'Group' AND c.id = atr_sub_subscription.group_id)" },
    { "atr_sub_delivered",
      "UPDATE atr_sub_subscription SET notified_version = %d, events = events + 1, attempts = 0, next_try = 0,"
      " error = NULL, claim = NULL, claimed_at = 0 WHERE id = %s AND claim = %s" },
    { "atr_sub_failed",
      "UPDATE atr_sub_subscription SET attempts = attempts + 1, next_try = %lld, error = %s, status = %s,"
      " claim = NULL, claimed_at = 0 WHERE id = %s AND claim = %s" },

    { NULL, NULL }
};

const atr_sql_stmt_t *atr_sql_statements(const char *driver)
{
    /* pgsql: everything; sqlite3 (no FOR UPDATE, no advisory locks): all but the first */
    return driver && !strcmp(driver, "pgsql") ? statements : statements + PGSQL_ONLY;
}
