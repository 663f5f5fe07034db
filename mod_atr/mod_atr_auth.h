/* The authorization server's URLs under the FHIR base (SMART Backend Services):
 * /.well-known/smart-configuration, /auth/token, /auth/authorize. */
#ifndef MOD_ATR_AUTH_H
#define MOD_ATR_AUTH_H
#include "httpd.h"

#define ATR_AUTH_TOKEN_PATH "/auth/token"
#define ATR_AUTH_AUTHORIZE_PATH "/auth/authorize"
#define ATR_AUTH_DISCOVERY_PATH "/.well-known/smart-configuration"

/* path: the request path after the FHIR base ("/auth/token"). DECLINED when the path is not
 * one of ours; otherwise the request is answered (status in r->status) and OK is returned,
 * for the FHIR handler to return as is (like atr_http_oo). */
int atr_auth_handler(request_rec *r, const char *path);

#endif
