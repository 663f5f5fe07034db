#!/bin/sh
# Turn conf/sql into C strings:
#   atr_schema_sql(driver)             the whole schema (conf/sql/schema-<driver>.sql);
#   atr_schema_migration(driver, N)    the step from version N-1 to N
#                                      (conf/sql/migrate/<driver>-N.sql), NULL if none.
# Comments and blank lines stay out; each statement ends with ';' at the end of a line.
set -e
dir=$1
drivers='sqlite3 pgsql'

as_c_string() {
  sed -e 's/--.*$//' -e '/^[[:space:]]*$/d' -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$/\\n"/' "$1"
}

echo '/* Generated from conf/sql by build-aux/sql2c.sh: edit the .sql files, not this. */'
echo '#include <string.h>'
echo 'const char *atr_schema_sql(const char *driver);'
echo 'const char *atr_schema_migration(const char *driver, int version);'
for drv in $drivers; do
  printf 'static const char schema_%s[] =\n' "$drv"
  as_c_string "$dir/schema-$drv.sql"
  echo ';'
  for f in "$dir"/migrate/"$drv"-*.sql; do
    [ -e "$f" ] || continue
    n=${f##*/$drv-}; n=${n%.sql}
    case $n in ''|*[!0-9]*) echo "sql2c.sh: $f: name must be $drv-<version>.sql" >&2; exit 1;; esac
    printf 'static const char migrate_%s_%s[] =\n' "$drv" "$n"
    as_c_string "$f"
    echo ';'
  done
done
cat <<'EOC'
const char *atr_schema_sql(const char *driver)
{
    if (driver && !strcmp(driver, "sqlite3")) return schema_sqlite3;
    if (driver && !strcmp(driver, "pgsql")) return schema_pgsql;
    return NULL;
}

const char *atr_schema_migration(const char *driver, int version)
{
    if (!driver) return NULL;
EOC
for drv in $drivers; do
  for f in "$dir"/migrate/"$drv"-*.sql; do
    [ -e "$f" ] || continue
    n=${f##*/$drv-}; n=${n%.sql}
    printf '    if (!strcmp(driver, "%s") && version == %s) return migrate_%s_%s;\n' "$drv" "$n" "$drv" "$n"
  done
done
echo '    return NULL;'
echo '}'
