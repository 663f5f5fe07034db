-- A small dataset as mod_atr schema version 1 stored it (tests/integration/test_db_migrate.py):
-- two Patients, an Organization and a Group of two members with its search index rows.
-- Plain SQL both stores take.
INSERT INTO atr_resource VALUES('Group','mig-grp-1',1,'2025-06-01T00:00:00.000Z',0,'{"resourceType":"Group","id":"mig-grp-1","identifier":[{"system":"http://example.org/contract","value":"MIG-CONTRACT-1"}],"active":true,"type":"person","actual":true,"name":"Migrated attribution list","quantity":2,"managingEntity":{"reference":"Organization/mig-org-1"},"characteristic":[{"code":{"coding":[{"system":"http://hl7.org/fhir/us/davinci-atr/CodeSystem/atr-characteristic-codes","code":"attributed-to"}]},"valueReference":{"reference":"Organization/mig-org-1"},"exclude":false}]}');
INSERT INTO atr_resource VALUES('Organization','mig-org-1',1,'2025-06-01T00:00:00.000Z',0,'{"resourceType":"Organization","id":"mig-org-1","identifier":[{"system":"http://hl7.org/fhir/sid/us-npi","value":"1999999984"}],"name":"Migrated Clinic"}');
INSERT INTO atr_resource VALUES('Patient','mig-pat-1',1,'2025-06-01T00:00:00.000Z',0,'{"resourceType":"Patient","id":"mig-pat-1","identifier":[{"system":"http://example.org/member","value":"M-1"}],"name":[{"family":"Older","given":["Ada"]}],"gender":"female","birthDate":"1970-01-01"}');
INSERT INTO atr_resource VALUES('Patient','mig-pat-2',1,'2025-06-01T00:00:00.000Z',0,'{"resourceType":"Patient","id":"mig-pat-2","identifier":[{"system":"http://example.org/member","value":"M-2"}],"name":[{"family":"Older","given":["Bob"]}],"gender":"male","birthDate":"1971-02-02"}');
INSERT INTO atr_current VALUES('Group','mig-grp-1',1,'2025-06-01T00:00:00.000Z',0);
INSERT INTO atr_current VALUES('Organization','mig-org-1',1,'2025-06-01T00:00:00.000Z',0);
INSERT INTO atr_current VALUES('Patient','mig-pat-1',1,'2025-06-01T00:00:00.000Z',0);
INSERT INTO atr_current VALUES('Patient','mig-pat-2',1,'2025-06-01T00:00:00.000Z',0);
INSERT INTO atr_group_member VALUES('mig-grp-1',1,1,'Patient/mig-pat-1',NULL,NULL,NULL,0,'2025-01-01','2025-12-31','{"entity":{"reference":"Patient/mig-pat-1"},"period":{"start":"2025-01-01","end":"2025-12-31"}}');
INSERT INTO atr_group_member VALUES('mig-grp-1',1,2,'Patient/mig-pat-2',NULL,NULL,NULL,0,'2025-01-01','2025-12-31','{"entity":{"reference":"Patient/mig-pat-2"},"period":{"start":"2025-01-01","end":"2025-12-31"}}');
INSERT INTO atr_group_index VALUES('mig-grp-1','Migrated attribution list','migrated attribution list',NULL,NULL,NULL,2);
INSERT INTO atr_group_identifier VALUES('mig-grp-1','http://example.org/contract','MIG-CONTRACT-1','','');
INSERT INTO atr_group_characteristic VALUES('mig-grp-1','http://hl7.org/fhir/us/davinci-atr/CodeSystem/atr-characteristic-codes','attributed-to','Organization/mig-org-1','','');
