#ifndef CHECK_ATR_H
#define CHECK_ATR_H
#include <check.h>
Suite *json_suite(void);
Suite *store_suite(void);
Suite *search_suite(void);
Suite *auth_suite(void);
Suite *token_suite(void);
Suite *demo_suite(void);
Suite *registry_suite(void);
Suite *entitle_suite(void);
Suite *export_suite(void);
Suite *roster_suite(void);
Suite *bulk_params_suite(void);
Suite *job_suite(void);
Suite *recon_suite(void);
Suite *consumer_suite(void);
#endif
