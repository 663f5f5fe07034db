/* Which Groups a client may see (CS-GRP-08), and whether a non-Group resource belongs to one.
 * A client may see a Group when the Group's id is linked to it (atrGroupId) or when one of
 * the Group's identifiers (system|value) is among its contract ids (atrContractId).
 * Non-Group resources: Patient, Coverage and RelatedPerson are member data: visible only when
 * they belong to a member of a visible Group's current version (Patient = member entity,
 * Coverage = member coverage reference or beneficiary, RelatedPerson = its patient).
 * Practitioner, PractitionerRole, Organization and Location are provider-directory data:
 * visible to every authenticated client with the read scope. */
#ifndef ATR_ENTITLE_H
#define ATR_ENTITLE_H
#include <apr_pools.h>
#include <apr_tables.h>
#include "atr_db.h"
#include "atr_registry.h"

/* The ids (const char *, sorted, unique) of existing Groups the client may see. */
apr_status_t atr_entitle_groups(apr_array_header_t **pids, atr_db_t *db, const atr_client_t *client,
                                apr_pool_t *p);
/* 1 if id is in the sorted id list from atr_entitle_groups. */
int atr_entitle_has(const apr_array_header_t *ids, const char *id);
/* Keep only entitled ids of a sorted id list (search results), in order. */
apr_array_header_t *atr_entitle_filter(const apr_array_header_t *ids, const apr_array_header_t *entitled,
                                       apr_pool_t *p);
/* For a non-Group resource (type, id, stored body): *pvisible = 1 when the rule above lets the
 * client see it, given the entitled Group ids. */
apr_status_t atr_entitle_resource(int *pvisible, atr_db_t *db, const apr_array_header_t *entitled,
                                  const char *type, const char *id, const char *body, apr_pool_t *p);
/* 1 for the types whose visibility depends on the entitled Groups (Group, Patient, Coverage,
 * RelatedPerson): callers compute atr_entitle_groups only for those. */
int atr_entitle_is_member_data(const char *type);

#endif
