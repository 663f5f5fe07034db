#include "mod_atr_http.h"
