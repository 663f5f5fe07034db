/* The server's CapabilityStatement, listing exactly what this build implements. */
#ifndef ATR_CAPABILITY_H
#define ATR_CAPABILITY_H
#include <apr_pools.h>
#include <jansson.h>

/* base_url: absolute FHIR base ("https://payer.example.org/fhir"). Pool-owned. */
json_t *atr_capability_statement(const char *base_url, apr_pool_t *p);

#endif
