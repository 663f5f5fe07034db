#include "mod_atr_fhir.h"
