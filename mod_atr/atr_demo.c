/* A deterministic synthetic payer dataset (see docs/demo-data.md).
 *
 * Every value is a pure function of (seed, resource kind, resource number): each resource
 * seeds its own splitmix64 stream, so a Group's member entries are recomputed from the
 * patient numbers instead of being remembered, and memory stays flat at any member count.
 * All strings come from fixed ASCII lists without quotes or backslashes, so the JSON is
 * written with plain stdio and needs no escaping. */
#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include <errno.h>
#include <apr_strings.h>
#include <apr_file_io.h>
#include <apr_file_info.h>
#include "atr_demo.h"
#include "atr_fhir.h"
#include "atr_log.h"

#define DEMO_YEAR "2025"
#define DEMO_PAYER_NAME "Example Health Plan"
#define SYS_MEMBER_ID "http://example.org/payer/member-id"
#define SYS_SUBSCRIBER_ID "http://example.org/payer/subscriber-id"
#define SYS_PAYER_ID "http://example.org/payer/payer-id"
#define SYS_CONTRACT "http://example.org/payer/contract"
#define SYS_SETTLEMENT "http://example.org/payer/settlement-entity"
#define SYS_LOCATION_ID "http://example.org/payer/location-id"
#define SYS_ROLE_ID "http://example.org/payer/practitioner-role-id"
#define SYS_ORG_TYPE "http://terminology.hl7.org/CodeSystem/organization-type"
#define SYS_COVERAGE_CLASS "http://terminology.hl7.org/CodeSystem/coverage-class"
#define SYS_SUBSCRIBER_REL "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
#define SYS_ROLE_CODE "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
#define SYS_PRODUCT_TYPE "http://hl7.org/fhir/us/davinci-pdex-plan-net/CodeSystem/InsuranceProductTypeCS"
#define SYS_NUCC "http://nucc.org/provider-taxonomy"
#define EXT_RECIPIENT ATR_SD "atr-intended-recipient-identifier-extension"
#define EXT_PRODUCT_TYPE ATR_SD "ext-insuranceProductType"

#define V2_TYPE(code, display) \
    "\"type\":{\"coding\":[{\"system\":\"" ATR_SYS_V2_0203 "\",\"code\":\"" code \
    "\",\"display\":\"" display "\"}]}"
#define TYPE_NPI V2_TYPE("NPI", "National Provider Identifier")
#define TYPE_TAX V2_TYPE("TAX", "Tax ID number")
#define TYPE_MB V2_TYPE("MB", "Member Number")

/* Indexes into atr_fhir_types (Group, Patient, Coverage, RelatedPerson, Practitioner,
 * PractitionerRole, Organization, Location). */
enum { T_GROUP, T_PATIENT, T_COVERAGE, T_RP, T_PRAC, T_ROLE, T_ORG, T_LOC, T_COUNT };

/* Independent random streams, one per kind of thing we draw for. */
enum { S_MEMBER = 1, S_PRAC, S_ORG, S_GROUP, S_SALT };

/* ---- fixed vocabularies ---- */
static const char *const given_f[] = {
    "Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica",
    "Sarah", "Karen", "Lisa", "Nancy", "Betty", "Margaret", "Sandra", "Ashley", "Kimberly",
    "Emily", "Donna", "Michelle", "Carol", "Amanda", "Melissa", "Deborah", "Stephanie",
    "Rebecca", "Laura", "Sharon", "Cynthia", "Kathleen", "Amy", "Angela", "Anna", "Brenda",
    "Emma", "Olivia", "Sophia", "Ava", "Isabella", "Mia"
};
static const char *const given_m[] = {
    "James", "Robert", "John", "Michael", "David", "William", "Richard", "Joseph", "Thomas",
    "Charles", "Christopher", "Daniel", "Matthew", "Anthony", "Mark", "Donald", "Steven",
    "Paul", "Andrew", "Joshua", "Kenneth", "Kevin", "Brian", "George", "Timothy", "Ronald",
    "Edward", "Jason", "Jeffrey", "Ryan", "Jacob", "Gary", "Nicholas", "Eric", "Jonathan",
    "Stephen", "Larry", "Justin", "Scott", "Liam"
};
static const char *const family[] = {
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
    "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas",
    "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris",
    "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King",
    "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson",
    "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts"
};
static const char *const streets[] = {
    "Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Pine St", "Elm St", "Washington Ave",
    "Lake Rd", "Hill St", "Park Ave", "Sunset Blvd", "River Rd", "Church St", "Highland Ave",
    "Walnut St", "Spring St", "Chestnut St", "Lincoln Ave", "Jefferson St", "Franklin Rd"
};
typedef struct place_t { const char *city, *county, *state, *zip; } place_t;
static const place_t places[] = {
    {"Tulsa", "Tulsa County", "OK", "74126"}, {"Bixby", "Tulsa County", "OK", "74008"},
    {"Ann Arbor", "Washtenaw County", "MI", "48104"}, {"Columbus", "Franklin County", "OH", "43215"},
    {"Madison", "Dane County", "WI", "53703"}, {"Austin", "Travis County", "TX", "78701"},
    {"Denver", "Denver County", "CO", "80202"}, {"Raleigh", "Wake County", "NC", "27601"},
    {"Boise", "Ada County", "ID", "83702"}, {"Albany", "Albany County", "NY", "12207"},
    {"Richmond", "Richmond City", "VA", "23219"}, {"Nashville", "Davidson County", "TN", "37203"},
    {"Omaha", "Douglas County", "NE", "68102"}, {"Portland", "Multnomah County", "OR", "97204"},
    {"Tucson", "Pima County", "AZ", "85701"}, {"Des Moines", "Polk County", "IA", "50309"}
};
static const char *const org_first[] = {
    "Riverside", "Summit", "Lakeview", "Maple Grove", "Northgate", "Prairie", "Harbor",
    "Cedar Valley", "Bluewater", "Oakridge", "Sunrise", "Westfield"
};
static const char *const org_second[] = {
    "Medical Group", "Primary Care", "Health Partners", "Family Medicine", "Physicians Associates"
};
typedef struct plan_t { const char *value, *name, *product, *product_display; } plan_t;
static const plan_t plans[] = {
    {"GOLD-PPO", "Gold PPO", "commppo", "Commercial PPO"},
    {"SILVER-HMO", "Silver HMO", "commhmo", "Commercial HMO"},
    {"BRONZE-EPO", "Bronze EPO", "commepo", "Commercial EPO"},
    {"MEDICAID-BASIC", "Medicaid Basic", "medi", "Medicaid"},
    {"MA-PLUS", "Medicare Advantage Plus", "mediadv", "Medicare Advantage"}   /* age 65+ only */
};
typedef struct specialty_t { const char *code, *display; } specialty_t;
static const specialty_t specialties[] = {
    {"207Q00000X", "Family Medicine Physician"}, {"207R00000X", "Internal Medicine Physician"},
    {"208000000X", "Pediatrics Physician"}, {"363L00000X", "Nurse Practitioner"}
};
static const char *const change_codes[] = { "new", "changed", "nochange", "dropped" };
enum { CH_NEW, CH_CHANGED, CH_NOCHANGE, CH_DROPPED };
static const char *const provider_types[] = { "Practitioner", "PractitionerRole", "Organization" };
static const char *const provider_prefix[] = { "prac", "role", "org" };
enum { PV_PRAC, PV_ROLE, PV_ORG };

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- splitmix64 ---- */
typedef struct rng_t { uint64_t s; } rng_t;

static uint64_t rng_next(rng_t *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void rng_init(rng_t *r, uint64_t seed, uint64_t stream, uint64_t index)
{
    r->s = seed;
    r->s = rng_next(r) ^ (stream * 0xD1B54A32D192ED03ULL);
    r->s = rng_next(r) ^ index;
}

static unsigned rng_below(rng_t *r, unsigned n)
{
    return (unsigned)(rng_next(r) % n);
}

/* ---- identifiers ---- */
int atr_demo_npi_check_digit(const char *first9)
{
    /* Luhn over "80840" + 9 digits; the prefix contributes a constant 24. Counting from
     * the right of the 9 digits (the check digit will follow), every other digit starting
     * with the last one is doubled. */
    int i, sum = 24;

    if (!first9) return -1;
    for (i = 0; i < 9; i++) {
        if (first9[i] < '0' || first9[i] > '9') return -1;
    }
    for (i = 8; i >= 0; i--) {
        int d = first9[i] - '0';
        if ((8 - i) % 2 == 0) {
            d *= 2;
            if (d > 9) d -= 9;
        }
        sum += d;
    }
    return (10 - sum % 10) % 10;
}

int atr_demo_npi_is_valid(const char *npi)
{
    int c;
    if (!npi || strlen(npi) != 10) return 0;
    c = atr_demo_npi_check_digit(npi);
    return c >= 0 && npi[9] == '0' + c;
}

int atr_demo_default_contracts(long members)
{
    long k = members / 5000;
    if (k > 20) k = 20;
    return k < 1 ? 1 : (int)k;
}

/* Distinct numbers map to distinct 8-digit bodies (48271 is coprime to 10^8), so NPIs are
 * unique within a kind; organizations lead with 1, practitioners with 2. */
static void npi_make(char out[11], int lead, long idx, uint64_t salt)
{
    unsigned long body = (unsigned long)(((uint64_t)idx * 48271ULL + salt) % 100000000ULL);
    snprintf(out, 11, "%d%08lu", lead, body);
    out[9] = (char)('0' + atr_demo_npi_check_digit(out));
    out[10] = '\0';
}

/* 9-digit TIN without a leading zero; unique per contract (7919 is coprime to 9 * 10^8). */
static void tin_make(char out[10], long idx, uint64_t salt)
{
    unsigned long v = (unsigned long)(((uint64_t)idx * 7919ULL + (salt >> 23)) % 900000000ULL) + 100000000UL;
    snprintf(out, 10, "%09lu", v);
}

/* ---- the generator ---- */
typedef struct demo_t {
    uint64_t seed;
    long n;            /* members */
    long k;            /* contracts = provider organizations = Groups */
    long np;           /* practitioners (and PractitionerRoles) */
    uint64_t salt;     /* seed-dependent offset of NPI/TIN numbering */
    FILE *f[T_COUNT];
    long counts[T_COUNT];
} demo_t;

/* Everything drawn for one member (patient n); recomputed wherever it is needed. */
typedef struct member_t {
    long n, contract;
    int female;
    const char *given, *family;
    char middle;
    int by, bm, bd;              /* birth date */
    int street_no;
    const char *street;
    const place_t *place;
    int phone;
    int rp;                      /* 0: subscriber is the patient; 1: spouse; 2: parent */
    int rp_female;
    const char *rp_given;
    const plan_t *plan;
    int cy, cm;                  /* coverage start (year, month) */
    int change;                  /* CH_* */
    int two;                     /* attributed to two providers (DM-13) */
    int pv_kind;                 /* PV_* of the (first) attributed provider */
    long pv_id, pv2_id;          /* its number; pv2: PractitionerRole of the second entry, 0 = org */
    int start_m, end_m, end_d;   /* member period in DEMO_YEAR */
} member_t;

static long contract_of(const demo_t *d, long n)
{
    return (n - 1) % d->k + 1;
}

/* Practitioners of contract c are c, c + K, c + 2K, ... <= np. */
static long contract_practitioners(const demo_t *d, long c)
{
    return (d->np - c) / d->k + 1;
}

static void member_make(member_t *m, const demo_t *d, long n)
{
    rng_t r;
    long pk;
    unsigned roll;

    rng_init(&r, d->seed, S_MEMBER, (uint64_t)n);
    memset(m, 0, sizeof(*m));
    m->n = n;
    m->contract = contract_of(d, n);
    m->female = (int)rng_below(&r, 2);
    m->given = m->female ? given_f[rng_below(&r, COUNT_OF(given_f))]
                         : given_m[rng_below(&r, COUNT_OF(given_m))];
    m->family = family[rng_below(&r, COUNT_OF(family))];
    m->middle = (char)('A' + rng_below(&r, 26));
    roll = rng_below(&r, 100);
    if (roll < 30) m->rp = rng_below(&r, 3) == 0 ? 2 : 1;
    if (m->rp == 2) m->by = 2006 + (int)rng_below(&r, 15);     /* a child on a parent's plan */
    else m->by = 1940 + (int)rng_below(&r, 64);
    m->bm = 1 + (int)rng_below(&r, 12);
    m->bd = 1 + (int)rng_below(&r, 28);
    m->rp_female = m->rp == 1 ? !m->female : (int)rng_below(&r, 2);
    m->rp_given = m->rp_female ? given_f[rng_below(&r, COUNT_OF(given_f))]
                               : given_m[rng_below(&r, COUNT_OF(given_m))];
    m->street_no = 1 + (int)rng_below(&r, 9999);
    m->street = streets[rng_below(&r, COUNT_OF(streets))];
    m->place = &places[rng_below(&r, COUNT_OF(places))];
    m->phone = (int)rng_below(&r, 10000000);
    m->plan = m->by < 1960 ? &plans[COUNT_OF(plans) - 1]
                           : &plans[rng_below(&r, COUNT_OF(plans) - 1)];
    m->cy = 2023 + (int)rng_below(&r, 3);
    m->cm = m->cy == 2025 ? 1 + (int)rng_below(&r, 6) : 1 + (int)rng_below(&r, 12);
    m->start_m = m->cy == 2025 ? m->cm : 1;

    roll = rng_below(&r, 100);
    m->change = roll < 50 ? CH_NOCHANGE : roll < 75 ? CH_NEW : roll < 95 ? CH_CHANGED : CH_DROPPED;
    if (m->change == CH_DROPPED) {
        m->end_m = m->start_m + (int)rng_below(&r, (unsigned)(13 - m->start_m));
        m->end_d = 28;
    }
    else {
        m->end_m = 12;
        m->end_d = 31;
    }
    m->two = m->change != CH_DROPPED && rng_below(&r, 100) < 5;

    pk = contract_practitioners(d, m->contract);
    roll = rng_below(&r, 100);
    m->pv_kind = m->two || roll < 50 ? PV_PRAC : roll < 80 ? PV_ROLE : PV_ORG;
    {
        long j = (long)(rng_next(&r) % (uint64_t)pk);
        m->pv_id = m->pv_kind == PV_ORG ? m->contract : m->contract + j * d->k;
        /* The second provider is another practitioner's role, or the organization. */
        m->pv2_id = pk > 1 ? m->contract + ((j + 1) % pk) * d->k : 0;
    }
}

static const char *group_status(const demo_t *d, long c)
{
    rng_t r;
    unsigned roll;
    if (c == 1) return "final";   /* the first list is always a published one */
    rng_init(&r, d->seed, S_GROUP, (uint64_t)c);
    roll = rng_below(&r, 100);
    return roll < 70 ? "final" : roll < 85 ? "open" : "draft";
}

static void org_name(char *buf, size_t len, long c)
{
    size_t a = COUNT_OF(org_first), b = COUNT_OF(org_second);
    size_t i = (size_t)(c - 1);
    if (i < a * b) snprintf(buf, len, "%s %s", org_first[i % a], org_second[(i / a) % b]);
    else snprintf(buf, len, "%s %s %ld", org_first[i % a], org_second[(i / a) % b], c);
}

static void put_meta(FILE *f, int type)
{
    fprintf(f, "\"meta\":{\"profile\":[\"%s\"]}", atr_fhir_profile(atr_fhir_types[type]));
}

static void put_address(FILE *f, const char *use, int street_no, const char *street,
                        const place_t *pl)
{
    fprintf(f, "{\"use\":\"%s\",\"line\":[\"%d %s\"],\"city\":\"%s\",\"district\":\"%s\","
            "\"state\":\"%s\",\"postalCode\":\"%s\",\"country\":\"US\"}",
            use, street_no, street, pl->city, pl->county, pl->state, pl->zip);
}

static void put_phone(FILE *f, const char *use, int phone)
{
    fprintf(f, "[{\"system\":\"phone\",\"value\":\"555-%03d-%04d\",\"use\":\"%s\"}]",
            phone / 10000 % 1000, phone % 10000, use);
}

static void write_payer(demo_t *d)
{
    FILE *f = d->f[T_ORG];
    fputs("{\"resourceType\":\"Organization\",\"id\":\"payer\",", f);
    put_meta(f, T_ORG);
    fputs(",\"identifier\":[{\"use\":\"official\",\"system\":\"" SYS_PAYER_ID "\",\"value\":\"EXHP-0001\"}],"
          "\"active\":true,\"type\":[{\"coding\":[{\"system\":\"" SYS_ORG_TYPE "\",\"code\":\"pay\","
          "\"display\":\"Payer\"}]}],\"name\":\"" DEMO_PAYER_NAME "\",\"telecom\":", f);
    put_phone(f, "work", 8001000);
    fputs(",\"address\":[", f);
    put_address(f, "work", 100, "Main St", &places[0]);
    fputs("]}\n", f);
    d->counts[T_ORG]++;
}

static void write_provider_org(demo_t *d, long c)
{
    FILE *f = d->f[T_ORG];
    char name[128], npi[11], tin[10];
    rng_t r;
    int street_no;
    const char *street;
    const place_t *pl;

    rng_init(&r, d->seed, S_ORG, (uint64_t)c);
    street_no = 1 + (int)rng_below(&r, 9999);
    street = streets[rng_below(&r, COUNT_OF(streets))];
    pl = &places[rng_below(&r, COUNT_OF(places))];
    org_name(name, sizeof(name), c);
    npi_make(npi, 1, c - 1, d->salt);
    tin_make(tin, c - 1, d->salt);

    fprintf(f, "{\"resourceType\":\"Organization\",\"id\":\"org-%ld\",", c);
    put_meta(f, T_ORG);
    fprintf(f, ",\"identifier\":[{\"use\":\"official\"," TYPE_NPI ",\"system\":\"" ATR_SYS_NPI
            "\",\"value\":\"%s\"},{\"use\":\"official\"," TYPE_TAX ",\"system\":\"" ATR_SYS_TIN
            "\",\"value\":\"%s\"}],\"active\":true,\"type\":[{\"coding\":[{\"system\":\""
            SYS_ORG_TYPE "\",\"code\":\"prov\",\"display\":\"Healthcare Provider\"}]}],"
            "\"name\":\"%s\",\"telecom\":", npi, tin, name);
    put_phone(f, "work", (int)rng_below(&r, 10000000));
    fputs(",\"address\":[", f);
    put_address(f, "work", street_no, street, pl);
    fputs("]}\n", f);
    d->counts[T_ORG]++;

    /* Its one Location, at the same address. */
    f = d->f[T_LOC];
    fprintf(f, "{\"resourceType\":\"Location\",\"id\":\"loc-%ld\",", c);
    put_meta(f, T_LOC);
    fprintf(f, ",\"identifier\":[{\"system\":\"" SYS_LOCATION_ID "\",\"value\":\"LOC-%ld\"}],"
            "\"status\":\"active\",\"name\":\"%s main clinic\",\"mode\":\"instance\",\"telecom\":",
            c, name);
    put_phone(f, "work", (int)rng_below(&r, 10000000));
    fputs(",\"address\":", f);
    put_address(f, "work", street_no, street, pl);
    fprintf(f, ",\"managingOrganization\":{\"reference\":\"Organization/org-%ld\",\"display\":\"%s\"}}\n",
            c, name);
    d->counts[T_LOC]++;
}

static void write_practitioner(demo_t *d, long i)
{
    FILE *f = d->f[T_PRAC];
    char npi[11];
    rng_t r;
    int female, street_no;
    const char *given, *fam, *street;
    const place_t *pl;
    const specialty_t *sp;
    long c = contract_of(d, i);

    rng_init(&r, d->seed, S_PRAC, (uint64_t)i);
    female = (int)rng_below(&r, 2);
    given = female ? given_f[rng_below(&r, COUNT_OF(given_f))]
                   : given_m[rng_below(&r, COUNT_OF(given_m))];
    fam = family[rng_below(&r, COUNT_OF(family))];
    street_no = 1 + (int)rng_below(&r, 9999);
    street = streets[rng_below(&r, COUNT_OF(streets))];
    pl = &places[rng_below(&r, COUNT_OF(places))];
    sp = &specialties[rng_below(&r, COUNT_OF(specialties))];
    npi_make(npi, 2, i - 1, d->salt);

    fprintf(f, "{\"resourceType\":\"Practitioner\",\"id\":\"prac-%ld\",", i);
    put_meta(f, T_PRAC);
    fprintf(f, ",\"identifier\":[{\"use\":\"official\"," TYPE_NPI ",\"system\":\"" ATR_SYS_NPI
            "\",\"value\":\"%s\"}],\"active\":true,\"name\":[{\"use\":\"official\",\"family\":\"%s\","
            "\"given\":[\"%s\"],\"prefix\":[\"Dr.\"],\"suffix\":[\"%s\"]}],\"telecom\":",
            npi, fam, given, sp->code[0] == '3' ? "NP" : "MD");
    put_phone(f, "work", (int)rng_below(&r, 10000000));
    fputs(",\"address\":[", f);
    put_address(f, "work", street_no, street, pl);
    fprintf(f, "],\"gender\":\"%s\"}\n", female ? "female" : "male");
    d->counts[T_PRAC]++;

    f = d->f[T_ROLE];
    fprintf(f, "{\"resourceType\":\"PractitionerRole\",\"id\":\"role-%ld\",", i);
    put_meta(f, T_ROLE);
    fprintf(f, ",\"identifier\":[{\"system\":\"" SYS_ROLE_ID "\",\"value\":\"ROLE-%ld\"}],"
            "\"active\":true,\"period\":{\"start\":\"2020-01-01\"},"
            "\"practitioner\":{\"reference\":\"Practitioner/prac-%ld\",\"display\":\"Dr. %s %s\"},"
            "\"organization\":{\"reference\":\"Organization/org-%ld\"},"
            "\"specialty\":[{\"coding\":[{\"system\":\"" SYS_NUCC "\",\"code\":\"%s\",\"display\":\"%s\"}]}],"
            "\"location\":[{\"reference\":\"Location/loc-%ld\"}],\"telecom\":",
            i, i, given, fam, c, sp->code, sp->display, c);
    put_phone(f, "work", (int)rng_below(&r, 10000000));
    fputs("}\n", f);
    d->counts[T_ROLE]++;
}

static void write_member_resources(demo_t *d, const member_t *m)
{
    FILE *f = d->f[T_PATIENT];
    char subj[64];

    fprintf(f, "{\"resourceType\":\"Patient\",\"id\":\"pat-%ld\",", m->n);
    put_meta(f, T_PATIENT);
    fprintf(f, ",\"identifier\":[{\"use\":\"usual\"," TYPE_MB ",\"system\":\"" SYS_MEMBER_ID
            "\",\"value\":\"M%09ld\"}],\"active\":true,\"name\":[{\"use\":\"official\","
            "\"family\":\"%s\",\"given\":[\"%s\",\"%c\"]}],\"telecom\":",
            m->n, m->family, m->given, m->middle);
    put_phone(f, "home", m->phone);
    fprintf(f, ",\"gender\":\"%s\",\"birthDate\":\"%04d-%02d-%02d\",\"address\":[",
            m->female ? "female" : "male", m->by, m->bm, m->bd);
    put_address(f, "home", m->street_no, m->street, m->place);
    fputs("]}\n", f);
    d->counts[T_PATIENT]++;

    if (m->rp) {
        f = d->f[T_RP];
        fprintf(f, "{\"resourceType\":\"RelatedPerson\",\"id\":\"rp-%ld\",", m->n);
        put_meta(f, T_RP);
        fprintf(f, ",\"identifier\":[{\"system\":\"" SYS_SUBSCRIBER_ID "\",\"value\":\"SUB%09ld\"}],"
                "\"active\":true,\"patient\":{\"reference\":\"Patient/pat-%ld\"},"
                "\"relationship\":[{\"coding\":[{\"system\":\"" SYS_ROLE_CODE "\",\"code\":\"%s\","
                "\"display\":\"%s\"}]}],\"name\":[{\"use\":\"official\",\"family\":\"%s\","
                "\"given\":[\"%s\"]}],\"telecom\":",
                m->n, m->n, m->rp == 1 ? "SPS" : "PRN", m->rp == 1 ? "spouse" : "parent",
                m->family, m->rp_given);
        put_phone(f, "home", m->phone);
        fprintf(f, ",\"gender\":\"%s\",\"address\":[", m->rp_female ? "female" : "male");
        put_address(f, "home", m->street_no, m->street, m->place);
        fputs("]}\n", f);
        d->counts[T_RP]++;
        snprintf(subj, sizeof(subj), "RelatedPerson/rp-%ld", m->n);
    }
    else {
        snprintf(subj, sizeof(subj), "Patient/pat-%ld", m->n);
    }

    f = d->f[T_COVERAGE];
    fprintf(f, "{\"resourceType\":\"Coverage\",\"id\":\"cov-%ld\",", m->n);
    put_meta(f, T_COVERAGE);
    fprintf(f, ",\"extension\":[{\"url\":\"" EXT_PRODUCT_TYPE "\",\"valueCodeableConcept\":"
            "{\"coding\":[{\"system\":\"" SYS_PRODUCT_TYPE "\",\"code\":\"%s\",\"display\":\"%s\"}]}}],"
            "\"identifier\":[{\"use\":\"usual\"," TYPE_MB ",\"system\":\"" SYS_MEMBER_ID
            "\",\"value\":\"M%09ld\"}],\"status\":\"active\","
            "\"policyHolder\":{\"reference\":\"%s\"},\"subscriber\":{\"reference\":\"%s\"},"
            "\"subscriberId\":\"SUB%09ld\",\"beneficiary\":{\"reference\":\"Patient/pat-%ld\"},"
            "\"dependent\":\"%s\",\"relationship\":{\"coding\":[{\"system\":\"" SYS_SUBSCRIBER_REL
            "\",\"code\":\"%s\",\"display\":\"%s\"}]},"
            "\"period\":{\"start\":\"%04d-%02d-01\",\"end\":\"" DEMO_YEAR "-12-31\"},"
            "\"payor\":[{\"reference\":\"Organization/payer\",\"display\":\"" DEMO_PAYER_NAME "\"}],"
            "\"class\":[{\"type\":{\"coding\":[{\"system\":\"" SYS_COVERAGE_CLASS "\",\"code\":\"plan\"}]},"
            "\"value\":\"%s\",\"name\":\"%s\"}]}\n",
            m->plan->product, m->plan->product_display, m->n, subj, subj, m->n, m->n,
            m->rp ? "01" : "00",
            m->rp == 0 ? "self" : m->rp == 1 ? "spouse" : "child",
            m->rp == 0 ? "Self" : m->rp == 1 ? "Spouse" : "Child",
            m->cy, m->cm, m->plan->value, m->plan->name);
    d->counts[T_COVERAGE]++;
}

static void put_member_entry(FILE *f, long n, const char *change, int pv_kind, long pv_id,
                             int sm, int em, int ed, int inactive)
{
    fprintf(f, "{\"extension\":[{\"url\":\"" ATR_EXT_CHANGE_TYPE "\",\"valueCode\":\"%s\"},"
            "{\"url\":\"" ATR_EXT_COVERAGE_REF "\",\"valueReference\":{\"reference\":\"Coverage/cov-%ld\"}},"
            "{\"url\":\"" ATR_EXT_PROVIDER "\",\"valueReference\":{\"reference\":\"%s/%s-%ld\"}}],"
            "\"entity\":{\"reference\":\"Patient/pat-%ld\"},"
            "\"period\":{\"start\":\"" DEMO_YEAR "-%02d-01\",\"end\":\"" DEMO_YEAR "-%02d-%02d\"},"
            "\"inactive\":%s}",
            change, n, provider_types[pv_kind], provider_prefix[pv_kind], pv_id, n, sm, em, ed,
            inactive ? "true" : "false");
}

/* Member entries of one member: two when attributed to two providers during the year. */
static int member_entries(const member_t *m)
{
    return m->two ? 2 : 1;
}

static void write_group(demo_t *d, long c, long *pentries)
{
    FILE *f = d->f[T_GROUP];
    char name[128], npi[11], tin[10];
    member_t m;
    long n, entries = 0;
    int first = 1;

    for (n = c; n <= d->n; n += d->k) {
        member_make(&m, d, n);
        entries += member_entries(&m);
    }
    org_name(name, sizeof(name), c);
    npi_make(npi, 1, c - 1, d->salt);
    tin_make(tin, c - 1, d->salt);

    fprintf(f, "{\"resourceType\":\"Group\",\"id\":\"grp-%ld\",", c);
    put_meta(f, T_GROUP);
    fprintf(f, ",\"extension\":[{\"url\":\"" ATR_EXT_CONTRACT_PERIOD "\",\"valuePeriod\":"
            "{\"start\":\"" DEMO_YEAR "-01-01\",\"end\":\"" DEMO_YEAR "-12-31\"}},"
            "{\"url\":\"" ATR_EXT_LIST_STATUS "\",\"valueCode\":\"%s\"},"
            "{\"url\":\"" EXT_RECIPIENT "\",\"valueIdentifier\":{\"system\":\"" ATR_SYS_NPI
            "\",\"value\":\"%s\"}}],"
            "\"identifier\":[{\"use\":\"official\"," TYPE_NPI ",\"system\":\"" ATR_SYS_NPI
            "\",\"value\":\"%s\"},{\"use\":\"official\"," TYPE_TAX ",\"system\":\"" ATR_SYS_TIN
            "\",\"value\":\"%s\"},{\"use\":\"official\",\"system\":\"" SYS_CONTRACT
            "\",\"value\":\"CTR-%ld\"},{\"use\":\"official\",\"type\":{\"text\":\"Settlement entity\"},"
            "\"system\":\"" SYS_SETTLEMENT "\",\"value\":\"SE-%ld\",\"assigner\":{\"display\":\"%s ACO\"}}],"
            "\"active\":true,\"type\":\"person\",\"actual\":true,"
            "\"name\":\"Attribution list %s " DEMO_YEAR "\",\"quantity\":%ld,"
            "\"managingEntity\":{\"reference\":\"Organization/payer\",\"display\":\"" DEMO_PAYER_NAME "\"},"
            "\"characteristic\":[{\"code\":{\"coding\":[{\"system\":\"" ATR_SYS_CHARACTERISTIC
            "\",\"code\":\"attributed-to\"}]},\"valueReference\":{\"reference\":\"Organization/org-%ld\","
            "\"display\":\"%s\"},\"exclude\":false}],\"member\":[",
            group_status(d, c), npi, npi, tin, c, c, name, name, entries, c, name);

    for (n = c; n <= d->n; n += d->k) {
        member_make(&m, d, n);
        if (!first) fputc(',', f);
        first = 0;
        if (m.two) {
            int change = m.change == CH_DROPPED ? CH_CHANGED : m.change;
            put_member_entry(f, n, change_codes[change], PV_PRAC, m.pv_id, m.start_m, 6, 30, 0);
            fputc(',', f);
            if (m.pv2_id) put_member_entry(f, n, "new", PV_ROLE, m.pv2_id, 7, 12, 31, 0);
            else put_member_entry(f, n, "new", PV_ORG, c, 7, 12, 31, 0);
        }
        else {
            put_member_entry(f, n, change_codes[m.change], m.pv_kind, m.pv_id,
                             m.start_m, m.end_m, m.end_d, m.change == CH_DROPPED);
        }
    }
    fputs("]}\n", f);
    d->counts[T_GROUP]++;
    *pentries = entries;
}

static apr_status_t close_all(demo_t *d, const char *const *tmp, const char *const *final,
                              int ok, const char **perr, apr_pool_t *p)
{
    apr_status_t rv = ok ? APR_SUCCESS : APR_EGENERAL;
    int i;

    for (i = 0; i < T_COUNT; i++) {
        if (!d->f[i]) continue;
        if (ferror(d->f[i]) && rv == APR_SUCCESS) {
            rv = APR_EGENERAL;
            *perr = apr_psprintf(p, "cannot write %s", tmp[i]);
        }
        if (fclose(d->f[i]) != 0 && rv == APR_SUCCESS) {
            rv = APR_FROM_OS_ERROR(errno);
            *perr = apr_psprintf(p, "cannot write %s", tmp[i]);
        }
        d->f[i] = NULL;
    }
    for (i = 0; i < T_COUNT; i++) {
        if (!tmp[i]) continue;
        if (rv == APR_SUCCESS) {
            apr_status_t r2 = apr_file_rename(tmp[i], final[i], p);
            if (r2 != APR_SUCCESS) {
                rv = r2;
                *perr = apr_psprintf(p, "cannot rename %s to %s", tmp[i], final[i]);
            }
        }
        if (rv != APR_SUCCESS) apr_file_remove(tmp[i], p);
    }
    return rv;
}

apr_status_t atr_demo_generate(atr_demo_stats_t *stats, const atr_demo_opts_t *opts,
                               const char **perr, apr_pool_t *p)
{
    apr_status_t rv = APR_SUCCESS;
    demo_t d;
    const char *tmp[T_COUNT], *final[T_COUNT];
    long i, best = 0, best_entries = -1;
    int opened = 0;
    const char *err = NULL;
    rng_t r;

    memset(&d, 0, sizeof(d));
    memset(tmp, 0, sizeof(tmp));
    memset(final, 0, sizeof(final));
    memset(stats, 0, sizeof(*stats));
    if (!opts || !opts->outdir || !*opts->outdir) {
        rv = APR_EINVAL;
        err = "no output directory given";
        goto leave;
    }
    if (opts->members < 1 || opts->members > ATR_DEMO_MAX_MEMBERS) {
        rv = APR_EINVAL;
        err = apr_psprintf(p, "members must be between 1 and %ld", ATR_DEMO_MAX_MEMBERS);
        goto leave;
    }
    if (opts->contracts < 0 || opts->contracts > opts->members) {
        rv = APR_EINVAL;
        err = "contracts must be between 1 and the number of members";
        goto leave;
    }
    d.seed = opts->seed;
    d.n = opts->members;
    d.k = opts->contracts ? opts->contracts : atr_demo_default_contracts(opts->members);
    d.np = d.n / 200 > d.k ? d.n / 200 : d.k;
    rng_init(&r, d.seed, S_SALT, 0);
    d.salt = rng_next(&r);

    rv = apr_dir_make_recursive(opts->outdir, APR_OS_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        err = apr_psprintf(p, "cannot create directory %s", opts->outdir);
        goto leave;
    }
    for (i = 0; i < T_COUNT; i++) {
        char *buf;
        final[i] = apr_psprintf(p, "%s/%s.ndjson", opts->outdir, atr_fhir_types[i]);
        tmp[i] = apr_pstrcat(p, final[i], ".tmp", NULL);
        d.f[i] = fopen(tmp[i], "wb");
        if (!d.f[i]) {
            rv = APR_FROM_OS_ERROR(errno);
            err = apr_psprintf(p, "cannot create %s", tmp[i]);
            tmp[i] = NULL;
            goto leave;
        }
        buf = apr_palloc(p, 1 << 20);
        setvbuf(d.f[i], buf, _IOFBF, 1 << 20);
    }
    opened = 1;

    write_payer(&d);
    for (i = 1; i <= d.k; i++) write_provider_org(&d, i);
    for (i = 1; i <= d.np; i++) write_practitioner(&d, i);
    for (i = 1; i <= d.n; i++) {
        member_t m;
        member_make(&m, &d, i);
        write_member_resources(&d, &m);
    }
    for (i = 1; i <= d.k; i++) {
        long entries;
        write_group(&d, i, &entries);
        stats->member_entries += entries;
        if (entries > best_entries) {
            best_entries = entries;
            best = i;
        }
    }

leave:
    if (opened || d.f[0]) {
        apr_status_t rv2 = close_all(&d, tmp, final, rv == APR_SUCCESS, &err, p);
        if (rv == APR_SUCCESS) rv = rv2;
    }
    if (rv == APR_SUCCESS) {
        memcpy(stats->counts, d.counts, sizeof(stats->counts));
        stats->largest_group = apr_psprintf(p, "grp-%ld", best);
        stats->largest_members = best_entries;
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_INFO, APR_SUCCESS, p,
                       "ATR00200: demo data: %ld members, %ld contracts, seed %llu written to %s",
                       d.n, d.k, (unsigned long long)d.seed, opts->outdir);
    }
    else {
        if (!err) err = "demo data generation failed";
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_DEBUG, rv, p, "ATR00201: demo data: %s", err);
    }
    if (perr) *perr = err;
    return rv;
}
