#include "check_atr.h"
Suite *json_suite(void) { return suite_create("json"); }
