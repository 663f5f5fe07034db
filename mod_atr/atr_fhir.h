/* FHIR and ATR constants: the resource types we serve and their profiles. */
#ifndef ATR_FHIR_H
#define ATR_FHIR_H

#define ATR_FHIR_VERSION "4.0.1"
#define ATR_IG "http://hl7.org/fhir/us/davinci-atr"
#define ATR_SD ATR_IG "/StructureDefinition/"
#define ATR_EXT_CONTRACT_PERIOD ATR_SD "ext-contractValidityPeriod"
#define ATR_EXT_LIST_STATUS ATR_SD "ext-attributionListStatus"
#define ATR_EXT_CHANGE_TYPE ATR_SD "ext-changeType"
#define ATR_EXT_COVERAGE_REF ATR_SD "ext-coverageReference"
#define ATR_EXT_PROVIDER ATR_SD "ext-attributedProvider"
#define ATR_SYS_NPI "http://hl7.org/fhir/sid/us-npi"
#define ATR_SYS_TIN "urn:oid:2.16.840.1.113883.4.4"
#define ATR_SYS_V2_0203 "http://terminology.hl7.org/CodeSystem/v2-0203"
#define ATR_SYS_CHARACTERISTIC ATR_IG "/CodeSystem/davinci-group-characteristic-codes"
#define ATR_SUBSETTED_SYSTEM "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"

/* The 8 ATR resource types, in export order; NULL-terminated. */
extern const char *const atr_fhir_types[];
/* 1 if type is one of them (case-sensitive, as FHIR type names are). */
int atr_fhir_is_type(const char *type);
/* The ATR 2.1.0 profile canonical for a type, or NULL. */
const char *atr_fhir_profile(const char *type);
/* 1 if s is a valid FHIR id ([A-Za-z0-9\-\.]{1,64}). */
int atr_fhir_is_id(const char *s);



#include <apr_pools.h>
/* Normalized form of a string for `name` search (R4 string search: case- and
 * accent-insensitive): ASCII lower-cased, Latin-1 accented letters (as UTF-8) folded to
 * their base letter. Both the index writer and the search use this one function. */
const char *atr_fhir_name_norm(const char *s, apr_pool_t *p);
#endif
