# script/lib.sh: shell helpers shared by script/server and script/bench (sourced, not run).
# shellcheck shell=bash

ATR_TOP="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC2034  # used by the scripts that source this file
ATR_ATRCTL="$ATR_TOP/atrctl/atrctl"
ATR_MODULE="$ATR_TOP/mod_atr/.libs/mod_atr.so"
ATR_HTTPD="${ATR_HTTPD:-/usr/sbin/apache2}"
ATR_APACHE_MODULES="${ATR_APACHE_MODULES:-/usr/lib/apache2/modules}"
# httpd's children never run as root; when we are root they run as this user.
ATR_HTTPD_USER="${ATR_HTTPD_USER:-www-data}"

atr_die() {
    echo "error: $*" >&2
    exit 1
}

# atr_abspath PATH: PATH made absolute against the current directory.
atr_abspath() {
    case "$1" in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s/%s\n' "$(pwd)" "$1" ;;
    esac
}

# atr_port_free PORT: true when nothing listens on 127.0.0.1:PORT.
atr_port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# atr_pid_running PID: true when PID runs (a zombie waiting to be reaped does not count).
atr_pid_running() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [ "${stat%% *}" != Z ]
}

# atr_pid_alive PIDFILE: true when the process named in PIDFILE runs.
atr_pid_alive() {
    local pid
    [ -s "$1" ] || return 1
    pid="$(cat "$1")"
    [ -n "$pid" ] && atr_pid_running "$pid"
}

# atr_stop_pidfile NAME PIDFILE: SIGTERM the process, wait up to 15 s, then SIGKILL.
atr_stop_pidfile() {
    local name="$1" pidfile="$2" pid i
    if ! atr_pid_alive "$pidfile"; then
        rm -f "$pidfile"
        return 0
    fi
    pid="$(cat "$pidfile")"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        atr_pid_running "$pid" || break
        sleep 0.1
    done
    if atr_pid_running "$pid"; then
        echo "$name (pid $pid) did not stop in 15 s: killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    echo "stopped $name (pid $pid)"
}

# atr_hand_to_httpd_user PATH...: when root, give these files/directories (not recursively)
# to httpd's children; SQLite in WAL mode writes -wal/-shm files beside the database.
atr_hand_to_httpd_user() {
    if [ "$(id -u)" -eq 0 ]; then
        chown "$ATR_HTTPD_USER:" "$@"
    fi
}

# atr_write_httpd_conf STATE_DIR PORT DB EXTRA [LDAP_URI PASSWORD_FILE TOKEN_KEY_FILE]: render
# conf/httpd-demo.conf.in into STATE_DIR/httpd.conf. DB is the store as atrctl --db takes it
# (sqlite3:FILE or pgsql:PARAMS; a bare path means sqlite3): DBDriver and DBDParams. The registry is ATR_LDAP_CLIENTS on
# LDAP_URI (default ldap://127.0.0.1:3890/), bound as ATR_LDAP_READER with the password in
# PASSWORD_FILE (default STATE_DIR/registry.secret); access tokens are signed with
# TOKEN_KEY_FILE (default STATE_DIR/token.key). Export files go to STATE_DIR/export (made
# here, handed to httpd's user). @ADMIN@ becomes $ATR_ADMIN_INCLUDE (the admin form's Include
# line, see atr_admin_setup) or nothing.
atr_write_httpd_conf() {
    local dir="$1" port="$2" db="$3" extra="$4" user_group=""
    local ldap_uri="${5:-ldap://127.0.0.1:3890/}" pw_file="${6:-$1/registry.secret}"
    local token_key="${7:-$1/token.key}" driver=sqlite3
    case "$db" in
        sqlite3:* | pgsql:*) driver="${db%%:*}"; db="${db#*:}" ;;
    esac
    if [ "$(id -u)" -eq 0 ]; then
        user_group="User $ATR_HTTPD_USER\\nGroup $(id -gn "$ATR_HTTPD_USER")"
    fi
    mkdir -p "$dir/export"
    atr_hand_to_httpd_user "$dir/export"
    sed -e "s|@STATE_DIR@|$dir|g" -e "s|@PORT@|$port|g" -e "s|@MODULE@|$ATR_MODULE|g" \
        -e "s|@APACHE_MODULES@|$ATR_APACHE_MODULES|g" -e "s|@DBDRIVER@|$driver|g" \
        -e "s|@DB@|$db|g" -e "s|@USER_GROUP@|$user_group|g" \
        -e "s|@LDAP_URI@|$ldap_uri|g" -e "s|@LDAP_BASE@|$ATR_LDAP_CLIENTS|g" \
        -e "s|@LDAP_BIND_DN@|$ATR_LDAP_READER|g" -e "s|@LDAP_PW_FILE@|$pw_file|g" \
        -e "s|@TOKEN_KEY@|$token_key|g" -e "s|@EXPORT_DIR@|$dir/export|g" -e "s|@EXTRA@|$extra|g" \
        -e "s|@ADMIN@|${ATR_ADMIN_INCLUDE:-}|g" \
        "$ATR_TOP/conf/httpd-demo.conf.in" > "$dir/httpd.conf"
}

# atr_secret_file PATH [BYTES]: a new file of BYTES (default 32) random bytes, mode 0600,
# owned by httpd's user when we are root (httpd reads it; nobody else may).
atr_secret_file() {
    rm -f "$1"
    ( umask 077; head -c "${2:-32}" /dev/urandom > "$1" )
    atr_hand_to_httpd_user "$1"
}

# atr_httpd_start STATE_DIR PORT: start httpd on STATE_DIR/httpd.conf and wait until
# /fhir/metadata answers 200 (30 s).
atr_httpd_start() {
    local dir="$1" port="$2" i
    [ -f "$ATR_MODULE" ] || atr_die "$ATR_MODULE is missing: run script/setup (make) first"
    atr_port_free "$port" || atr_die "port $port is in use (set another one)"
    "$ATR_HTTPD" -t -f "$dir/httpd.conf" >/dev/null 2>&1 \
        || { "$ATR_HTTPD" -t -f "$dir/httpd.conf"; atr_die "httpd config test failed"; }
    "$ATR_HTTPD" -f "$dir/httpd.conf" -k start || atr_die "httpd did not start (see $dir/error_log)"
    for ((i = 0; i < 300; i++)); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/fhir/metadata")" = 200 ]; then
            return 0
        fi
        sleep 0.1
    done
    tail -n 20 "$dir/error_log" >&2 || true
    atr_die "httpd on port $port did not answer /fhir/metadata with 200 within 30 s"
}

# atr_httpd_check_access DB: when root, check that httpd's user can reach the store.
atr_httpd_check_access() {
    if [ "$(id -u)" -eq 0 ] && ! runuser -u "$ATR_HTTPD_USER" -- test -r "$1"; then
        atr_die "$ATR_HTTPD_USER cannot read $1 (a parent directory is private?): choose a state directory it can reach, e.g. ATR_DEMO_DIR=/var/tmp/atr-demo"
    fi
}

# atr_group_npi GROUP_NDJSON GROUP_ID: print the first us-npi identifier value of that Group.
atr_group_npi() {
    /usr/bin/python3 - "$1" "$2" <<'PY'
import json, sys
with open(sys.argv[1], encoding='utf-8') as f:
    for line in f:
        if ('"' + sys.argv[2] + '"') not in line:
            continue
        # a big Group's line is mostly members: parse what precedes them when they come last
        cut = line.find(',"member":[')
        try:
            g = json.loads(line[:cut] + '}') if cut > 0 else json.loads(line)
        except ValueError:
            g = json.loads(line)
        if g.get('id') != sys.argv[2]:
            continue
        for ident in g.get('identifier', []):
            if ident.get('system') == 'http://hl7.org/fhir/sid/us-npi':
                print(ident['value'])
                sys.exit(0)
PY
}

# atr_group_ids GROUP_NDJSON: print the id of every Group in the file, one a line, in order.
atr_group_ids() {
    /usr/bin/python3 - "$1" <<'PY'
import json, sys
with open(sys.argv[1], encoding='utf-8') as f:
    for line in f:
        if line.strip():
            g = json.loads(line)
            if g.get('resourceType') == 'Group':
                print(g['id'])
PY
}

# atr_httpd_peak_rss_kb PIDFILE: sum of VmHWM (peak resident set) over httpd's parent and
# children, in kB.
atr_httpd_peak_rss_kb() {
    local parent pid ppid total=0 kb
    parent="$(cat "$1")"
    for stat in /proc/[0-9]*/stat; do
        pid="${stat#/proc/}"
        pid="${pid%/stat}"
        ppid="$(awk '{ sub(/^.*\) /, ""); print $2 }' "$stat" 2>/dev/null)" || continue
        if [ "$pid" = "$parent" ] || [ "$ppid" = "$parent" ]; then
            kb="$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)"
            total=$((total + ${kb:-0}))
        fi
    done
    echo "$total"
}

# ---- PostgreSQL (script/bench --store pgsql) ----
ATR_PG_BIN="${ATR_PG_BIN:-/usr/lib/postgresql/15/bin}"

# atr_pg_start DIR PORT: a new PostgreSQL 15 cluster in DIR/pg (initdb; as root it runs as the
# postgres user, which PostgreSQL requires) listening on 127.0.0.1:PORT only, with a database
# atr owned by the login role atr (trust on loopback: a throw-away server, never a production
# setup; see docs/operations.md). Sets ATR_PG_PARAMS to the DBDParams / atrctl --db pgsql:
# parameters. Stop it with atr_pg_stop DIR.
atr_pg_start() {
    local dir="$1/pg" port="$2" run=() su=postgres
    atr_port_free "$port" || atr_die "PostgreSQL port $port is in use (set another one)"
    [ -x "$ATR_PG_BIN/initdb" ] || atr_die "$ATR_PG_BIN/initdb is missing: run script/setup"
    if [ "$(id -u)" -eq 0 ]; then
        run=(runuser -u postgres --)
    else
        su="$(id -un)"
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    "${run[@]}" "$ATR_PG_BIN/initdb" -D "$dir/data" --locale=C --encoding=UTF8 --auth=trust \
        -U "$su" >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; atr_die "initdb failed"; }
    cat >> "$dir/data/postgresql.conf" <<CONF
# script/lib.sh atr_pg_start
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir/data'
max_connections = 260
shared_buffers = 256MB
synchronous_commit = off
CONF
    "${run[@]}" "$ATR_PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgresql.log" -w -t 60 start \
        >/dev/null || atr_die "PostgreSQL did not start (see $dir/postgresql.log)"
    psql -X -q -h 127.0.0.1 -p "$port" -U "$su" -d postgres -v ON_ERROR_STOP=1 \
        -c "CREATE ROLE atr LOGIN" -c "CREATE DATABASE atr OWNER atr TEMPLATE template0 ENCODING 'UTF8'" \
        >/dev/null || atr_die "could not create the atr role and database"
    ATR_PG_PARAMS="host=127.0.0.1 port=$port dbname=atr user=atr"
}

# atr_pg_stop DIR: stop the cluster atr_pg_start made in DIR/pg (if it runs).
atr_pg_stop() {
    local dir="$1/pg" run=()
    [ -f "$dir/data/postmaster.pid" ] || return 0
    [ "$(id -u)" -eq 0 ] && run=(runuser -u postgres --)
    "${run[@]}" "$ATR_PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    echo "stopped PostgreSQL ($dir)"
}

# ---- the Consumer registry (slapd) and Consumers ----
ATR_LDAP_SUFFIX="dc=atr,dc=example"
ATR_LDAP_ROOTDN="cn=admin,$ATR_LDAP_SUFFIX"
ATR_LDAP_CLIENTS="ou=clients,$ATR_LDAP_SUFFIX"
# httpd binds as this read-only account (never as the root DN).
ATR_LDAP_READER="cn=mod_atr,$ATR_LDAP_SUFFIX"
# The admin form's service account (writes ou=clients) and the account httpd's sign-in to
# the form searches staff and the admin group with (reads ou=staff and ou=groups); both are
# created by atr_admin_setup, their rights are in atr_slapd_start's ACL.
ATR_LDAP_ADMIN="cn=atr-admin,$ATR_LDAP_SUFFIX"
ATR_LDAP_AUTH="cn=httpd-auth,$ATR_LDAP_SUFFIX"

# atr_slapd_start STATE_DIR PORT: a fresh LDAP database in STATE_DIR/ldap (schema
# conf/ldap/atr.schema) and slapd on ldap://127.0.0.1:PORT/ (pid file STATE_DIR/slapd.pid).
# Writes STATE_DIR/ldap/rootpw (root DN password, for atrctl client and ldapadd; root only)
# and STATE_DIR/registry.secret (ATR_LDAP_READER's password, for httpd; httpd's user only).
atr_slapd_start() {
    local dir="$1" port="$2" uri="ldap://127.0.0.1:$2/" rootpw readerpw i
    atr_port_free "$port" || atr_die "LDAP port $port is in use (set another one)"
    rm -rf "$dir/ldap" "$dir/slapd.conf" "$dir/registry.secret"
    mkdir -p "$dir/ldap/data"
    chmod 700 "$dir/ldap"
    rootpw="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
    readerpw="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
    (
        umask 077
        printf '%s' "$rootpw" > "$dir/ldap/rootpw"
        printf '%s' "$readerpw" > "$dir/registry.secret"
    )
    atr_hand_to_httpd_user "$dir/registry.secret"
    touch "$dir/slapd.conf"
    chmod 600 "$dir/slapd.conf"   # it holds the root password's hash
    cat > "$dir/slapd.conf" <<CONF
# Generated by script/lib.sh (atr_slapd_start). Root password: $dir/ldap/rootpw
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include $ATR_TOP/conf/ldap/atr.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $dir/slapd.pid
argsfile $dir/ldap/slapd.args
database mdb
maxsize 104857600
suffix "$ATR_LDAP_SUFFIX"
rootdn "$ATR_LDAP_ROOTDN"
rootpw $(slappasswd -s "$rootpw")
directory $dir/ldap/data
index objectClass eq
index atrClientId eq
index atrNpi,atrTin,atrContractId,atrGroupId eq
# Least privilege (docs/registry.md): mod_atr's account only reads the Consumers, the
# admin form's service account writes them, httpd's sign-in account reads the staff and the
# admin group (never a password); nobody else reads anything. Passwords serve binds only.
access to attrs=userPassword
    by anonymous auth
    by * none
# mod_atr links a Group a Consumer created (POST Group) to that Consumer: it may add links
# and stamp the change, nothing else
access to dn.subtree="$ATR_LDAP_CLIENTS" attrs=atrGroupId,atrChangedBy,atrChangedAt
    by dn.exact="$ATR_LDAP_ADMIN" write
    by dn.exact="$ATR_LDAP_READER" write
    by * none
access to dn.subtree="$ATR_LDAP_CLIENTS"
    by dn.exact="$ATR_LDAP_ADMIN" write
    by dn.exact="$ATR_LDAP_READER" read
    by * none
access to dn.subtree="ou=staff,$ATR_LDAP_SUFFIX"
    by dn.exact="$ATR_LDAP_AUTH" read
    by * none
access to dn.subtree="ou=groups,$ATR_LDAP_SUFFIX"
    by dn.exact="$ATR_LDAP_AUTH" read
    by * none
access to *
    by * none
CONF
    slaptest -Q -u -f "$dir/slapd.conf" || atr_die "slaptest failed on $dir/slapd.conf"
    # Own session: a Ctrl-C in the caller's terminal is for the caller, not for slapd.
    setsid /usr/sbin/slapd -f "$dir/slapd.conf" -h "$uri" || atr_die "slapd did not start"
    for ((i = 0; i < 100; i++)); do
        ldapsearch -x -H "$uri" -b "" -s base >/dev/null 2>&1 && break
        sleep 0.1
    done
    ldapadd -x -H "$uri" -D "$ATR_LDAP_ROOTDN" -y "$dir/ldap/rootpw" >/dev/null <<LDIF \
        || atr_die "could not create the registry's base entries"
dn: $ATR_LDAP_SUFFIX
objectClass: dcObject
objectClass: organization
o: mod_atr demo
dc: atr

dn: $ATR_LDAP_CLIENTS
objectClass: organizationalUnit
ou: clients

dn: $ATR_LDAP_READER
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: mod_atr
description: mod_atr (httpd) reads the Consumer registry as this account
userPassword: $(slappasswd -s "$readerpw")
LDIF
}

# atr_client_keygen ALG KEY_FILE JWKS_FILE: a new client key pair for ALG (ES384: P-384,
# RS384: RSA 2048) as a PKCS#8 PEM in KEY_FILE (mode 0600) and its public JWKS in JWKS_FILE;
# prints the kid (the RFC 7638 JWK thumbprint).
atr_client_keygen() {
    local alg="$1" key="$2" jwks="$3"
    rm -f "$key"
    case "$alg" in
        ES384) ( umask 077; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$key" ) ;;
        RS384) ( umask 077; openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$key" ) ;;
        *) atr_die "atr_client_keygen: unknown algorithm $alg" ;;
    esac 2>/dev/null || atr_die "openssl genpkey failed for $alg"
    /usr/bin/python3 - "$alg" "$key" "$jwks" <<'PY' || atr_die "could not write the JWKS of $key"
import base64, hashlib, json, sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

alg, key_file, jwks_file = sys.argv[1:4]
with open(key_file, 'rb') as f:
    key = serialization.load_pem_private_key(f.read(), password=None)

def b64(n, size=None):
    raw = n.to_bytes(size or (n.bit_length() + 7) // 8, 'big')
    return base64.urlsafe_b64encode(raw).rstrip(b'=').decode()

pub = key.public_key().public_numbers()
if isinstance(key, ec.EllipticCurvePrivateKey):
    jwk = {'crv': 'P-384', 'kty': 'EC', 'x': b64(pub.x, 48), 'y': b64(pub.y, 48)}
else:
    jwk = {'e': b64(pub.e), 'kty': 'RSA', 'n': b64(pub.n)}
# RFC 7638: SHA-256 over the required members, sorted, no whitespace.
thumb = hashlib.sha256(json.dumps(jwk, sort_keys=True, separators=(',', ':')).encode()).digest()
jwk['kid'] = base64.urlsafe_b64encode(thumb).rstrip(b'=').decode()
jwk['alg'] = alg
jwk['use'] = 'sig'
with open(jwks_file, 'w', encoding='utf-8') as f:
    json.dump({'keys': [jwk]}, f, indent=2)
    f.write('\n')
print(jwk['kid'])
PY
}

# atr_client_register STATE_DIR LDAP_URI CLIENT_ID NAME JWKS_FILE "SCOPE..." "GROUP_ID...":
# register an active Consumer with an inline JWKS (atrJwks), its allowed scopes and linked
# Groups, bound as the root DN (password in STATE_DIR/ldap/rootpw): with `atrctl client add`
# (which validates the JWKS and scopes), or with ldapadd when this atrctl has no client command.
atr_client_register() {
    local dir="$1" uri="$2" id="$3" name="$4" jwks="$5" scopes="$6" groups="$7" s g
    if "$ATR_ATRCTL" --help 2>&1 | grep -qw client; then
        local args=(client add "$id" --ldap "$uri" --ldap-base "$ATR_LDAP_CLIENTS"
            --ldap-bind-dn "$ATR_LDAP_ROOTDN" --ldap-password-file "$dir/ldap/rootpw"
            --name "$name" --jwks-file "$jwks")
        for s in $scopes; do args+=(--scope "$s"); done
        for g in $groups; do args+=(--group "$g"); done
        "$ATR_ATRCTL" "${args[@]}" >/dev/null || atr_die "atrctl client add $id failed"
        return 0
    fi
    {
        echo "dn: atrClientId=$id,$ATR_LDAP_CLIENTS"
        echo "objectClass: atrConsumer"
        echo "atrClientId: $id"
        echo "atrClientStatus: active"
        echo "displayName: $name"
        # LDIF: a value that is not plain ASCII-safe text goes base64 (the JSON has no
        # newlines once compacted, but base64 keeps it simple and exact).
        echo "atrJwks:: $(/usr/bin/python3 -c 'import base64, json, sys; print(base64.b64encode(json.dumps(json.load(open(sys.argv[1])), separators=(",", ":")).encode()).decode())' "$jwks")"
        for s in $scopes; do echo "atrScope: $s"; done
        for g in $groups; do echo "atrGroupId: $g"; done
    } | ldapadd -x -H "$uri" -D "$ATR_LDAP_ROOTDN" -y "$dir/ldap/rootpw" >/dev/null \
        || atr_die "ldapadd of Consumer $id failed"
}

# atr_token TOKEN_URL CLIENT_ID KEY_FILE KID SCOPE: print an access token obtained with a
# client assertion (SMART Backend Services, client_credentials + private_key_jwt).
atr_token() {
    /usr/bin/python3 - "$@" <<'PY'
import json, sys, time, urllib.error, urllib.parse, urllib.request, uuid
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

token_url, client_id, key_file, kid, scope = sys.argv[1:6]
with open(key_file, 'rb') as f:
    key = serialization.load_pem_private_key(f.read(), password=None)
alg = 'ES384' if isinstance(key, ec.EllipticCurvePrivateKey) else 'RS384'
assertion = jwt.encode({'iss': client_id, 'sub': client_id, 'aud': token_url,
                        'exp': int(time.time()) + 300, 'jti': str(uuid.uuid4())},
                       key, algorithm=alg, headers={'kid': kid, 'typ': 'JWT'})
form = urllib.parse.urlencode({
    'grant_type': 'client_credentials',
    'client_assertion_type': 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    'client_assertion': assertion, 'scope': scope}).encode()
try:
    with urllib.request.urlopen(token_url, data=form, timeout=30) as r:
        print(json.load(r)['access_token'])
except urllib.error.HTTPError as e:
    sys.exit('token request failed: HTTP %d %s' % (e.code, e.read().decode('utf-8', 'replace')))
PY
}

# ---- the admin web form (admin-cgi, docs/admin.md) ----
ATR_ADMIN_CGI="$ATR_TOP/admin-cgi/atr-admin"

# atr_admin_setup STATE_DIR LDAP_URI PORT: serve the admin form at /atr-admin/ in the demo.
# Adds ou=staff (the demo admin uid=atr-admin-demo, password in STATE_DIR/admin/password) and
# the group cn=atr-admins,ou=groups to the registry's directory, writes the CGI's config and
# secrets in STATE_DIR/admin/ and the httpd snippet (conf/atr-admin.conf with demo paths), and
# sets ATR_ADMIN_INCLUDE (atr_write_httpd_conf puts it where the template says @ADMIN@).
# The CGI binds as ATR_LDAP_ADMIN (password in STATE_DIR/admin/ldap.secret, httpd's user
# only), httpd's sign-in searches as ATR_LDAP_AUTH (STATE_DIR/admin/httpd-auth.secret, read
# by httpd at start): accounts of their own, with only the rights atr_slapd_start gives them.
atr_admin_setup() {
    local dir="$1" uri="$2" port="$3" adm="$1/admin" pw adminpw authpw
    [ -x "$ATR_ADMIN_CGI" ] || atr_die "$ATR_ADMIN_CGI is missing: run script/setup (make) first"
    rm -rf "$adm"
    mkdir -p "$adm"
    chmod 755 "$adm"
    pw="$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
    adminpw="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
    authpw="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
    (
        umask 077
        printf '%s' "$pw" > "$adm/password"
        printf '%s' "$adminpw" > "$adm/ldap.secret"
        printf '%s' "$authpw" > "$adm/httpd-auth.secret"
    )
    ldapadd -x -H "$uri" -D "$ATR_LDAP_ROOTDN" -y "$dir/ldap/rootpw" >/dev/null <<LDIF \
        || atr_die "could not create the demo admin account"
dn: ou=staff,$ATR_LDAP_SUFFIX
objectClass: organizationalUnit
ou: staff

dn: ou=groups,$ATR_LDAP_SUFFIX
objectClass: organizationalUnit
ou: groups

dn: uid=atr-admin-demo,ou=staff,$ATR_LDAP_SUFFIX
objectClass: inetOrgPerson
uid: atr-admin-demo
cn: ATR demo administrator
sn: administrator
userPassword: $(slappasswd -s "$pw")

dn: cn=atr-admins,ou=groups,$ATR_LDAP_SUFFIX
objectClass: groupOfNames
cn: atr-admins
member: uid=atr-admin-demo,ou=staff,$ATR_LDAP_SUFFIX

dn: $ATR_LDAP_ADMIN
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: atr-admin
description: the admin form (atr-admin CGI) writes the Consumer registry as this account
userPassword: $(slappasswd -s "$adminpw")

dn: $ATR_LDAP_AUTH
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: httpd-auth
description: httpd signs staff in to the admin form with this account (reads staff, groups)
userPassword: $(slappasswd -s "$authpw")
LDIF
    # The program itself is copied beside its config: httpd's user can reach STATE_DIR.
    cp "$ATR_ADMIN_CGI" "$adm/atr-admin"
    chmod 755 "$adm/atr-admin"
    atr_secret_file "$adm/csrf.key" 32
    : > "$adm/audit.log"
    chmod 600 "$adm/audit.log"
    cat > "$adm/admin.conf" <<CONF
# atr-admin settings for the demo (generated by script/lib.sh atr_admin_setup)
ldap_uri $uri
ldap_base $ATR_LDAP_CLIENTS
ldap_bind_dn $ATR_LDAP_ADMIN
ldap_password_file $adm/ldap.secret
store ${ATR_STORE_SPEC:-sqlite3:$dir/atr.db}
csrf_key_file $adm/csrf.key
audit_log $adm/audit.log
CONF
    chmod 600 "$adm/admin.conf"
    atr_hand_to_httpd_user "$adm/ldap.secret" "$adm/audit.log" "$adm/admin.conf"
    cat > "$adm/httpd-admin.conf" <<CONF
# The admin form for the demo: conf/atr-admin.conf with demo DNs and paths.
LoadModule cgid_module "$ATR_APACHE_MODULES/mod_cgid.so"
LoadModule alias_module "$ATR_APACHE_MODULES/mod_alias.so"
LoadModule env_module "$ATR_APACHE_MODULES/mod_env.so"
LoadModule auth_basic_module "$ATR_APACHE_MODULES/mod_auth_basic.so"
LoadModule authn_core_module "$ATR_APACHE_MODULES/mod_authn_core.so"
LoadModule ldap_module "$ATR_APACHE_MODULES/mod_ldap.so"
LoadModule authnz_ldap_module "$ATR_APACHE_MODULES/mod_authnz_ldap.so"
ScriptSock "$dir/cgid.sock"
ScriptAlias /atr-admin "$adm/atr-admin"
<Location /atr-admin>
    SetEnv ATR_ADMIN_CONF "$adm/admin.conf"
    AuthType Basic
    AuthName "ATR Consumer administration"
    AuthBasicProvider ldap
    AuthLDAPURL "${uri%/}/ou=staff,$ATR_LDAP_SUFFIX?uid?one?(objectClass=inetOrgPerson)"
    AuthLDAPBindDN "$ATR_LDAP_AUTH"
    AuthLDAPBindPassword "exec:/bin/cat $adm/httpd-auth.secret"
    AuthLDAPGroupAttribute member
    AuthLDAPGroupAttributeIsDN on
    Require ldap-group cn=atr-admins,ou=groups,$ATR_LDAP_SUFFIX
    AuthzSendForbiddenOnFailure On
    LimitRequestBody 1048576
</Location>
CONF
    ATR_ADMIN_INCLUDE="Include \"$adm/httpd-admin.conf\""
    # shellcheck disable=SC2034  # read by script/server
    ATR_ADMIN_URL="http://127.0.0.1:$port/atr-admin/"
}
