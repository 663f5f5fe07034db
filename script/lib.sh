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

# atr_write_httpd_conf STATE_DIR PORT DB EXTRA: render conf/httpd-demo.conf.in into
# STATE_DIR/httpd.conf.
atr_write_httpd_conf() {
    local dir="$1" port="$2" db="$3" extra="$4" user_group=""
    if [ "$(id -u)" -eq 0 ]; then
        user_group="User $ATR_HTTPD_USER\\nGroup $(id -gn "$ATR_HTTPD_USER")"
    fi
    sed -e "s|@STATE_DIR@|$dir|g" -e "s|@PORT@|$port|g" -e "s|@MODULE@|$ATR_MODULE|g" \
        -e "s|@APACHE_MODULES@|$ATR_APACHE_MODULES|g" -e "s|@DB@|$db|g" \
        -e "s|@USER_GROUP@|$user_group|g" -e "s|@EXTRA@|$extra|g" \
        "$ATR_TOP/conf/httpd-demo.conf.in" > "$dir/httpd.conf"
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
        g = json.loads(line)
        if g.get('id') != sys.argv[2]:
            continue
        for ident in g.get('identifier', []):
            if ident.get('system') == 'http://hl7.org/fhir/sid/us-npi':
                print(ident['value'])
                sys.exit(0)
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
