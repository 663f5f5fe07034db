-- mod_atr store schema for PostgreSQL (apr_dbd pgsql). Schema version 2.
-- Created by `atrctl db init`; a store of an earlier version is brought here by `atrctl db
-- migrate` (conf/sql/migrate/pgsql-N.sql takes it from N-1 to N). mod_atr and atrctl refuse
-- to run against another version.
-- Timestamps are FHIR instants in UTC with millisecond precision
-- ('2024-01-31T12:00:00.000Z'): fixed width, so text order is time order.
-- Each statement ends with ';' at the end of a line (build-aux/sql2c.sh splits on that).
-- Every text column is COLLATE "C": ids, references and instants compare and sort byte by
-- byte, as on SQLite, whatever locale the database was created with (keyset paging, the
-- order of search results and export files are then the same on both stores; "C" also
-- lets LIKE 'prefix%' use the b-tree indexes).


CREATE TABLE atr_schema_version (
  version INTEGER NOT NULL
);

-- Every version of every resource. body is the resource JSON as loaded, without
-- meta.versionId/meta.lastUpdated (added when rendered) and, for Group, without member
-- (members are rows in atr_group_member, so a Group is never one big blob).
CREATE TABLE atr_resource (
  rtype TEXT COLLATE "C" NOT NULL,
  id TEXT COLLATE "C" NOT NULL,
  version INTEGER NOT NULL,
  last_updated TEXT COLLATE "C" NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0,
  body TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (rtype, id, version)
);

-- The current version of each resource.
CREATE TABLE atr_current (
  rtype TEXT COLLATE "C" NOT NULL,
  id TEXT COLLATE "C" NOT NULL,
  version INTEGER NOT NULL,
  last_updated TEXT COLLATE "C" NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (rtype, id)
);
CREATE INDEX atr_current_updated ON atr_current (rtype, last_updated);

-- Group members of every Group version, in document order (seq from 1).
-- body is the member element JSON; the other columns are extracted for queries.
CREATE TABLE atr_group_member (
  group_id TEXT COLLATE "C" NOT NULL,
  version INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  entity_ref TEXT COLLATE "C" NOT NULL,
  provider_ref TEXT COLLATE "C",
  coverage_ref TEXT COLLATE "C",
  change_type TEXT COLLATE "C",
  inactive INTEGER NOT NULL DEFAULT 0,
  period_start TEXT COLLATE "C",
  period_end TEXT COLLATE "C",
  body TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (group_id, version, seq)
);
CREATE INDEX atr_group_member_entity ON atr_group_member (group_id, version, entity_ref);
-- Coverage visibility (atr_entitle.c): is this Coverage the coverage reference of a member.
CREATE INDEX atr_group_member_coverage ON atr_group_member (group_id, version, coverage_ref);

-- Search index over the current version of each Group.
CREATE TABLE atr_group_index (
  group_id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  name TEXT COLLATE "C",
  name_norm TEXT COLLATE "C",
  status TEXT COLLATE "C",
  period_start TEXT COLLATE "C",
  period_end TEXT COLLATE "C",
  member_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX atr_group_index_name ON atr_group_index (name_norm);

-- Group.identifier of current versions; '' where a part is absent.
CREATE TABLE atr_group_identifier (
  group_id TEXT COLLATE "C" NOT NULL,
  system TEXT COLLATE "C" NOT NULL DEFAULT '',
  value TEXT COLLATE "C" NOT NULL DEFAULT '',
  type_system TEXT COLLATE "C" NOT NULL DEFAULT '',
  type_code TEXT COLLATE "C" NOT NULL DEFAULT ''
);
CREATE INDEX atr_group_identifier_sv ON atr_group_identifier (system, value);
CREATE INDEX atr_group_identifier_v ON atr_group_identifier (value);
CREATE INDEX atr_group_identifier_t ON atr_group_identifier (type_system, type_code, value);
CREATE INDEX atr_group_identifier_g ON atr_group_identifier (group_id);

-- Group.characteristic of current versions: code and, when the value is a Reference,
-- its reference; when a CodeableConcept, its first coding.
CREATE TABLE atr_group_characteristic (
  group_id TEXT COLLATE "C" NOT NULL,
  code_system TEXT COLLATE "C" NOT NULL DEFAULT '',
  code TEXT COLLATE "C" NOT NULL DEFAULT '',
  value_ref TEXT COLLATE "C" NOT NULL DEFAULT '',
  value_system TEXT COLLATE "C" NOT NULL DEFAULT '',
  value_code TEXT COLLATE "C" NOT NULL DEFAULT ''
);
CREATE INDEX atr_group_characteristic_c ON atr_group_characteristic (code, code_system);
CREATE INDEX atr_group_characteristic_g ON atr_group_characteristic (group_id);

-- Client assertion ids seen by the token endpoint (replay protection, SMART-TOK-04):
-- kept until expires (unix seconds: the assertion's exp + clock skew), shared by every
-- process and node.
CREATE TABLE atr_jti (
  client_id TEXT COLLATE "C" NOT NULL,
  jti TEXT COLLATE "C" NOT NULL,
  expires BIGINT NOT NULL,
  PRIMARY KEY (client_id, jti)
);
CREATE INDEX atr_jti_expires ON atr_jti (expires);

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

INSERT INTO atr_schema_version (version) VALUES (2);
