#include "check_atr.h"
Suite *search_suite(void) { return suite_create("search"); }
