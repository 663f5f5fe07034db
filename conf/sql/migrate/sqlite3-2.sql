-- Migration to schema version 2 (SQLite): the tables of bulk export jobs, roster apply,
-- reconciliation (Groups created by Consumers) and list-change Subscriptions.
-- Run by `atrctl db migrate` in one transaction with the version change; the result is the
-- schema `atrctl db init` creates (conf/sql/schema-sqlite3.sql), which the tests check.
-- Each statement ends with ';' at the end of a line (build-aux/sql2c.sh splits on that).

-- Roster rows staged by `atrctl roster apply` (atr_roster.c) and the identifiers it
-- resolves member ids / NPIs / TINs with. Both are filled and emptied inside the one
-- transaction of an apply, so they are empty outside it. m_type: 'Patient' (m_val = id) or
-- 'MB' (member identifier value); p_type: a provider type (p_val = id), 'NPI' or 'TIN'.
CREATE TABLE atr_roster_row (
  line INTEGER NOT NULL PRIMARY KEY,
  m_type TEXT NOT NULL,
  m_val TEXT NOT NULL,
  p_type TEXT NOT NULL,
  p_val TEXT NOT NULL,
  payer_id TEXT NOT NULL,
  contract_id TEXT NOT NULL,
  plan_id TEXT NOT NULL,
  period_start TEXT,
  period_end TEXT,
  coverage_ref TEXT,
  entity_ref TEXT,
  provider_ref TEXT
);
CREATE INDEX atr_roster_row_ep ON atr_roster_row (entity_ref, provider_ref);
CREATE TABLE atr_roster_ident (
  kind TEXT NOT NULL,
  value TEXT NOT NULL,
  ref TEXT NOT NULL
);
CREATE INDEX atr_roster_ident_kv ON atr_roster_ident (kind, value);

-- Bulk export scratch (atr_export.c): the references one export run collected, keyed by a
-- per-run id, so dedupe and paging happen in the store whatever the Group size. Rows live
-- only while that export runs.
CREATE TABLE atr_export_ref (
  export_id TEXT NOT NULL,
  rtype TEXT NOT NULL,
  id TEXT NOT NULL,
  PRIMARY KEY (export_id, rtype, id)
) WITHOUT ROWID;

-- Bulk export jobs ($davinci-data-export, $export; docs/bulk-export.md): the state every
-- process and node answers status requests from, and the queue the export workers claim
-- from. state: queued | running | done | failed | deleted. Times are milliseconds since the
-- epoch. claim: the running attempt's random key (also its atr_export_ref run id and its
-- directory <ATRExportDir>/<id>/<claim>); prev_claim: the attempt it replaced, whose leftovers
-- the new one removes. At most one queued or running job per client and Group (BULK-KO-09).
CREATE TABLE atr_export_job (
  id TEXT NOT NULL PRIMARY KEY,
  client_id TEXT NOT NULL,
  group_id TEXT NOT NULL,
  request TEXT NOT NULL,
  params TEXT NOT NULL,
  state TEXT NOT NULL,
  created BIGINT NOT NULL,
  tx_time TEXT NOT NULL,
  node TEXT,
  claim TEXT,
  prev_claim TEXT,
  heartbeat BIGINT NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  progress BIGINT NOT NULL DEFAULT 0,
  outdir TEXT,
  files TEXT,
  error_code TEXT,
  error TEXT,
  finished BIGINT,
  expires BIGINT,
  last_poll BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX atr_export_job_active ON atr_export_job (client_id, group_id)
  WHERE state IN ('queued', 'running');
CREATE INDEX atr_export_job_state ON atr_export_job (state, created);
CREATE INDEX atr_export_job_claim ON atr_export_job (claim);

-- Groups created by Consumers (POST Group, docs/reconciliation.md) and who created them: the
-- creator reaches its Group's operations before every process's registry cache sees the LDAP
-- link (atrGroupId). created: milliseconds since the epoch.
CREATE TABLE atr_rec_owner (
  group_id TEXT NOT NULL,
  client_id TEXT NOT NULL,
  created BIGINT NOT NULL,
  PRIMARY KEY (group_id, client_id)
);

-- list-change Subscriptions (docs/subscriptions.md): one Group each. A notification is due
-- when the Group's current version is above notified_version; claim marks the attempt in
-- progress (one at a time, any process). status: active | error | off. Times in ms.
CREATE TABLE atr_sub_subscription (
  id TEXT NOT NULL PRIMARY KEY,
  client_id TEXT NOT NULL,
  group_id TEXT NOT NULL,
  endpoint TEXT NOT NULL,
  headers TEXT,
  base_url TEXT NOT NULL,
  status TEXT NOT NULL,
  body TEXT NOT NULL,
  notified_version INTEGER NOT NULL,
  events BIGINT NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_try BIGINT NOT NULL DEFAULT 0,
  claim TEXT,
  claimed_at BIGINT NOT NULL DEFAULT 0,
  error TEXT,
  created BIGINT NOT NULL,
  updated BIGINT NOT NULL
);
CREATE INDEX atr_sub_subscription_group ON atr_sub_subscription (group_id);

