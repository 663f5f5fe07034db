-- mod_atr store schema for SQLite (apr_dbd sqlite3). Schema version 1.
-- Created by `atrctl db init`; mod_atr and atrctl refuse to run against another version.
-- Timestamps are FHIR instants in UTC with millisecond precision
-- ('2024-01-31T12:00:00.000Z'): fixed width, so text order is time order.
-- Each statement ends with ';' at the end of a line (build-aux/sql2c.sh splits on that).

PRAGMA journal_mode=WAL;

CREATE TABLE atr_schema_version (
  version INTEGER NOT NULL
);

-- Every version of every resource. body is the resource JSON as loaded, without
-- meta.versionId/meta.lastUpdated (added when rendered) and, for Group, without member
-- (members are rows in atr_group_member, so a Group is never one big blob).
CREATE TABLE atr_resource (
  rtype TEXT NOT NULL,
  id TEXT NOT NULL,
  version INTEGER NOT NULL,
  last_updated TEXT NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0,
  body TEXT NOT NULL,
  PRIMARY KEY (rtype, id, version)
) WITHOUT ROWID;

-- The current version of each resource.
CREATE TABLE atr_current (
  rtype TEXT NOT NULL,
  id TEXT NOT NULL,
  version INTEGER NOT NULL,
  last_updated TEXT NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (rtype, id)
) WITHOUT ROWID;
CREATE INDEX atr_current_updated ON atr_current (rtype, last_updated);

-- Group members of every Group version, in document order (seq from 1).
-- body is the member element JSON; the other columns are extracted for queries.
CREATE TABLE atr_group_member (
  group_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  entity_ref TEXT NOT NULL,
  provider_ref TEXT,
  coverage_ref TEXT,
  change_type TEXT,
  inactive INTEGER NOT NULL DEFAULT 0,
  period_start TEXT,
  period_end TEXT,
  body TEXT NOT NULL,
  PRIMARY KEY (group_id, version, seq)
) WITHOUT ROWID;
CREATE INDEX atr_group_member_entity ON atr_group_member (group_id, version, entity_ref);
-- Coverage visibility (atr_entitle.c): is this Coverage the coverage reference of a member.
CREATE INDEX atr_group_member_coverage ON atr_group_member (group_id, version, coverage_ref);

-- Search index over the current version of each Group.
CREATE TABLE atr_group_index (
  group_id TEXT NOT NULL PRIMARY KEY,
  name TEXT,
  name_norm TEXT,
  status TEXT,
  period_start TEXT,
  period_end TEXT,
  member_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX atr_group_index_name ON atr_group_index (name_norm);

-- Group.identifier of current versions; '' where a part is absent.
CREATE TABLE atr_group_identifier (
  group_id TEXT NOT NULL,
  system TEXT NOT NULL DEFAULT '',
  value TEXT NOT NULL DEFAULT '',
  type_system TEXT NOT NULL DEFAULT '',
  type_code TEXT NOT NULL DEFAULT ''
);
CREATE INDEX atr_group_identifier_sv ON atr_group_identifier (system, value);
CREATE INDEX atr_group_identifier_v ON atr_group_identifier (value);
CREATE INDEX atr_group_identifier_t ON atr_group_identifier (type_system, type_code, value);
CREATE INDEX atr_group_identifier_g ON atr_group_identifier (group_id);

-- Group.characteristic of current versions: code and, when the value is a Reference,
-- its reference; when a CodeableConcept, its first coding.
CREATE TABLE atr_group_characteristic (
  group_id TEXT NOT NULL,
  code_system TEXT NOT NULL DEFAULT '',
  code TEXT NOT NULL DEFAULT '',
  value_ref TEXT NOT NULL DEFAULT '',
  value_system TEXT NOT NULL DEFAULT '',
  value_code TEXT NOT NULL DEFAULT ''
);
CREATE INDEX atr_group_characteristic_c ON atr_group_characteristic (code, code_system);
CREATE INDEX atr_group_characteristic_g ON atr_group_characteristic (group_id);

-- Client assertion ids seen by the token endpoint (replay protection, SMART-TOK-04):
-- kept until expires (unix seconds: the assertion's exp + clock skew), shared by every
-- process and node.
CREATE TABLE atr_jti (
  client_id TEXT NOT NULL,
  jti TEXT NOT NULL,
  expires INTEGER NOT NULL,
  PRIMARY KEY (client_id, jti)
);
CREATE INDEX atr_jti_expires ON atr_jti (expires);

INSERT INTO atr_schema_version (version) VALUES (1);
