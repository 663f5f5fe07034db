/* One Check runner for the portable core. */
#include <stdlib.h>
#include <apr_general.h>
#include "check_atr.h"

int main(void)
{
    SRunner *sr;
    int failed;

    apr_initialize();
    sr = srunner_create(json_suite());
    srunner_add_suite(sr, store_suite());
    srunner_add_suite(sr, search_suite());
    srunner_add_suite(sr, auth_suite());
    srunner_add_suite(sr, token_suite());
    srunner_add_suite(sr, demo_suite());
    srunner_add_suite(sr, registry_suite());
    srunner_add_suite(sr, entitle_suite());
    srunner_add_suite(sr, export_suite());
    srunner_add_suite(sr, roster_suite());
    srunner_add_suite(sr, bulk_params_suite());
    srunner_add_suite(sr, job_suite());
    srunner_add_suite(sr, recon_suite());
    srunner_add_suite(sr, consumer_suite());
    srunner_add_suite(sr, admin_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    apr_terminate();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
