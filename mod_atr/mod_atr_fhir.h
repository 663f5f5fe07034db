#ifndef MOD_ATR_FHIR_H
#define MOD_ATR_FHIR_H
#endif
