/* The FHIR REST handler (SetHandler atr-fhir): metadata, read, vread, history, Group search. */
#ifndef MOD_ATR_FHIR_H
#define MOD_ATR_FHIR_H
#include "httpd.h"

#define ATR_FHIR_HANDLER "atr-fhir"

int atr_fhir_handler(request_rec *r);

#endif
