-- Migration to schema version 2 (PostgreSQL): every text column of the version 1 tables
-- becomes COLLATE "C" (byte order, as on SQLite, whatever the database's locale; the indexes
-- on them are rebuilt), and the tables of bulk export jobs, roster apply, reconciliation
-- (Groups created by Consumers) and list-change Subscriptions are added.
-- Run by `atrctl db migrate` in one transaction with the version change; the result is the
-- schema `atrctl db init` creates (conf/sql/schema-pgsql.sql), which the tests check.
-- Each statement ends with ';' at the end of a line (build-aux/sql2c.sh splits on that).

ALTER TABLE atr_resource
  ALTER COLUMN rtype TYPE TEXT COLLATE "C",
  ALTER COLUMN id TYPE TEXT COLLATE "C",
  ALTER COLUMN last_updated TYPE TEXT COLLATE "C",
  ALTER COLUMN body TYPE TEXT COLLATE "C";
ALTER TABLE atr_current
  ALTER COLUMN rtype TYPE TEXT COLLATE "C",
  ALTER COLUMN id TYPE TEXT COLLATE "C",
  ALTER COLUMN last_updated TYPE TEXT COLLATE "C";
ALTER TABLE atr_group_member
  ALTER COLUMN group_id TYPE TEXT COLLATE "C",
  ALTER COLUMN entity_ref TYPE TEXT COLLATE "C",
  ALTER COLUMN provider_ref TYPE TEXT COLLATE "C",
  ALTER COLUMN coverage_ref TYPE TEXT COLLATE "C",
  ALTER COLUMN change_type TYPE TEXT COLLATE "C",
  ALTER COLUMN period_start TYPE TEXT COLLATE "C",
  ALTER COLUMN period_end TYPE TEXT COLLATE "C",
  ALTER COLUMN body TYPE TEXT COLLATE "C";
ALTER TABLE atr_group_index
  ALTER COLUMN group_id TYPE TEXT COLLATE "C",
  ALTER COLUMN name TYPE TEXT COLLATE "C",
  ALTER COLUMN name_norm TYPE TEXT COLLATE "C",
  ALTER COLUMN status TYPE TEXT COLLATE "C",
  ALTER COLUMN period_start TYPE TEXT COLLATE "C",
  ALTER COLUMN period_end TYPE TEXT COLLATE "C";
ALTER TABLE atr_group_identifier
  ALTER COLUMN group_id TYPE TEXT COLLATE "C",
  ALTER COLUMN system TYPE TEXT COLLATE "C",
  ALTER COLUMN value TYPE TEXT COLLATE "C",
  ALTER COLUMN type_system TYPE TEXT COLLATE "C",
  ALTER COLUMN type_code TYPE TEXT COLLATE "C";
ALTER TABLE atr_group_characteristic
  ALTER COLUMN group_id TYPE TEXT COLLATE "C",
  ALTER COLUMN code_system TYPE TEXT COLLATE "C",
  ALTER COLUMN code TYPE TEXT COLLATE "C",
  ALTER COLUMN value_ref TYPE TEXT COLLATE "C",
  ALTER COLUMN value_system TYPE TEXT COLLATE "C",
  ALTER COLUMN value_code TYPE TEXT COLLATE "C";
ALTER TABLE atr_jti
  ALTER COLUMN client_id TYPE TEXT COLLATE "C",
  ALTER COLUMN jti TYPE TEXT COLLATE "C";

-- Roster rows staged by `atrctl roster apply` (atr_roster.c) and the identifiers it
-- resolves member ids / NPIs / TINs with. Both are filled and emptied inside the one
-- transaction of an apply, so they are empty outside it. m_type: 'Patient' (m_val = id) or
-- 'MB' (member identifier value); p_type: a provider type (p_val = id), 'NPI' or 'TIN'.
CREATE TABLE atr_roster_row (
  line BIGINT NOT NULL PRIMARY KEY,
  m_type TEXT COLLATE "C" NOT NULL,
  m_val TEXT COLLATE "C" NOT NULL,
  p_type TEXT COLLATE "C" NOT NULL,
  p_val TEXT COLLATE "C" NOT NULL,
  payer_id TEXT COLLATE "C" NOT NULL,
  contract_id TEXT COLLATE "C" NOT NULL,
  plan_id TEXT COLLATE "C" NOT NULL,
  period_start TEXT COLLATE "C",
  period_end TEXT COLLATE "C",
  coverage_ref TEXT COLLATE "C",
  entity_ref TEXT COLLATE "C",
  provider_ref TEXT COLLATE "C"
);
CREATE INDEX atr_roster_row_ep ON atr_roster_row (entity_ref, provider_ref);
CREATE TABLE atr_roster_ident (
  kind TEXT COLLATE "C" NOT NULL,
  value TEXT COLLATE "C" NOT NULL,
  ref TEXT COLLATE "C" NOT NULL
);
CREATE INDEX atr_roster_ident_kv ON atr_roster_ident (kind, value);

-- Bulk export scratch (atr_export.c): the references one export run collected, keyed by a
-- per-run id, so dedupe and paging happen in the store whatever the Group size. Rows live
-- only while that export runs.
CREATE TABLE atr_export_ref (
  export_id TEXT COLLATE "C" NOT NULL,
  rtype TEXT COLLATE "C" NOT NULL,
  id TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (export_id, rtype, id)
);

-- Bulk export jobs ($davinci-data-export, $export; docs/bulk-export.md): the state every
-- process and node answers status requests from, and the queue the export workers claim
-- from. state: queued | running | done | failed | deleted. Times are milliseconds since the
-- epoch. claim: the running attempt's random key (also its atr_export_ref run id and its
-- directory <ATRExportDir>/<id>/<claim>); prev_claim: the attempt it replaced, whose leftovers
-- the new one removes. At most one queued or running job per client and Group (BULK-KO-09).
CREATE TABLE atr_export_job (
  id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  client_id TEXT COLLATE "C" NOT NULL,
  group_id TEXT COLLATE "C" NOT NULL,
  request TEXT COLLATE "C" NOT NULL,
  params TEXT COLLATE "C" NOT NULL,
  state TEXT COLLATE "C" NOT NULL,
  created BIGINT NOT NULL,
  tx_time TEXT COLLATE "C" NOT NULL,
  node TEXT COLLATE "C",
  claim TEXT COLLATE "C",
  prev_claim TEXT COLLATE "C",
  heartbeat BIGINT NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  progress BIGINT NOT NULL DEFAULT 0,
  outdir TEXT COLLATE "C",
  files TEXT COLLATE "C",
  error_code TEXT COLLATE "C",
  error TEXT COLLATE "C",
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
  group_id TEXT COLLATE "C" NOT NULL,
  client_id TEXT COLLATE "C" NOT NULL,
  created BIGINT NOT NULL,
  PRIMARY KEY (group_id, client_id)
);

-- list-change Subscriptions (docs/subscriptions.md): one Group each. A notification is due
-- when the Group's current version is above notified_version; claim marks the attempt in
-- progress (one at a time, any process). status: active | error | off. Times in ms.
CREATE TABLE atr_sub_subscription (
  id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  client_id TEXT COLLATE "C" NOT NULL,
  group_id TEXT COLLATE "C" NOT NULL,
  endpoint TEXT COLLATE "C" NOT NULL,
  headers TEXT COLLATE "C",
  base_url TEXT COLLATE "C" NOT NULL,
  status TEXT COLLATE "C" NOT NULL,
  body TEXT COLLATE "C" NOT NULL,
  notified_version INTEGER NOT NULL,
  events BIGINT NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_try BIGINT NOT NULL DEFAULT 0,
  claim TEXT COLLATE "C",
  claimed_at BIGINT NOT NULL DEFAULT 0,
  error TEXT COLLATE "C",
  created BIGINT NOT NULL,
  updated BIGINT NOT NULL
);
CREATE INDEX atr_sub_subscription_group ON atr_sub_subscription (group_id);

