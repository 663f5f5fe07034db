#include "httpd.h"
#include "http_config.h"
#include "mod_atr.h"
module AP_MODULE_DECLARE_DATA atr_module = { STANDARD20_MODULE_STUFF, NULL, NULL, NULL, NULL, NULL, NULL };
