#include <string.h>
#include "atr_fhir.h"

const char *const atr_fhir_types[] = {
    "Group", "Patient", "Coverage", "RelatedPerson", "Practitioner", "PractitionerRole",
    "Organization", "Location", NULL
};

static const char *const profiles[] = {
    ATR_SD "atr-group", ATR_SD "atr-patient", ATR_SD "atr-coverage", ATR_SD "atr-relatedperson",
    ATR_SD "atr-practitioner", ATR_SD "atr-practitionerrole", ATR_SD "atr-organization",
    ATR_SD "atr-location"
};

static int type_index(const char *type)
{
    int i;
    for (i = 0; type && atr_fhir_types[i]; i++) {
        if (!strcmp(atr_fhir_types[i], type)) return i;
    }
    return -1;
}

int atr_fhir_is_type(const char *type)
{
    return type_index(type) >= 0;
}

const char *atr_fhir_profile(const char *type)
{
    int i = type_index(type);
    return i >= 0 ? profiles[i] : NULL;
}

int atr_fhir_is_id(const char *s)
{
    size_t n = 0;
    if (!s) return 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return 0;
    }
    return n >= 1 && n <= 64;
}

/* Base letters for U+00C0..U+00FF; 0 = keep the character as is. */
static const char latin1_fold[64] = {
    'a','a','a','a','a','a', 0 ,'c','e','e','e','e','i','i','i','i',
     0 ,'n','o','o','o','o','o', 0 ,'o','u','u','u','u','y', 0 , 0 ,
    'a','a','a','a','a','a', 0 ,'c','e','e','e','e','i','i','i','i',
     0 ,'n','o','o','o','o','o', 0 ,'o','u','u','u','u','y', 0 ,'y'
};

const char *atr_fhir_name_norm(const char *s, apr_pool_t *p)
{
    size_t n = strlen(s), i = 0, o = 0;
    char *r = apr_palloc(p, n + 1);

    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0xC3 && i + 1 < n) {
            unsigned char c2 = (unsigned char)s[i + 1];
            if (c2 >= 0x80 && c2 <= 0xBF && latin1_fold[c2 - 0x80]) {
                r[o++] = latin1_fold[c2 - 0x80];
                i += 2;
                continue;
            }
        }
        r[o++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : (char)c;
        i++;
    }
    r[o] = '\0';
    return r;
}
