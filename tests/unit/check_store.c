#include "check_atr.h"
Suite *store_suite(void) { return suite_create("store"); }
