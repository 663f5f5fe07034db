#!/bin/sh
# Turn conf/sql/schema-<driver>.sql into C strings: atr_schema_sql(driver) returns the script.
# Comments and blank lines stay out; each statement ends with ';' at the end of a line.
set -e
dir=$1
echo '/* Generated from conf/sql by build-aux/sql2c.sh: edit the .sql files, not this. */'
echo '#include <string.h>'
echo 'const char *atr_schema_sql(const char *driver);'
for drv in sqlite3 pgsql; do
  printf 'static const char schema_%s[] =\n' "$drv"
  sed -e 's/--.*$//' -e '/^[[:space:]]*$/d' -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$/\\n"/' "$dir/schema-$drv.sql"
  echo ';'
done
cat <<'EOC'
const char *atr_schema_sql(const char *driver)
{
    if (driver && !strcmp(driver, "sqlite3")) return schema_sqlite3;
    if (driver && !strcmp(driver, "pgsql")) return schema_pgsql;
    return NULL;
}
EOC
