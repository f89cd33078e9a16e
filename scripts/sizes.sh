#!/bin/bash
# Size limits of the C sources: no file over 600 lines and no function over 80 in core/,
# net/, tls/, tools/ and bench/fanout/ (issue 14). A function is what runs from a `{` alone in
# column 0 to the next `}` in column 0 (the style of every file here); tables of data open
# with `= {` and do not count.
#
#   scripts/sizes.sh [--max-file N] [--max-func N]
#
# Prints every file and function over its limit, longest first, and exits 1 when there is
# one; 0 otherwise.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
max_file=600
max_func=80
while [ $# -gt 0 ]; do
    case "$1" in
    --max-file) max_file=$2; shift 2 ;;
    --max-func) max_func=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "sizes.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

cd "$here"
mapfile -t files < <(ls core/*.c core/*.h net/*.c net/*.h tls/*.c tls/*.h tools/*.c bench/fanout/*.c bench/fanout/*.h 2>/dev/null)
over=0
while read -r n f; do
    echo "file $f: $n lines (limit $max_file)"
    over=1
done < <(wc -l "${files[@]}" | awk -v m="$max_file" '$2 != "total" && $1 > m { print $1, $2 }' | sort -rn)
while read -r n where; do
    echo "function $where: $n lines (limit $max_func)"
    over=1
done < <(awk -v m="$max_func" '
    FNR == 1 { name = ""; start = 0 }
    /^[A-Za-z_].*\(/ { sig = $0; sigline = FNR }
    /^\{$/ { start = FNR; name = sig; sub(/\(.*/, "", name); sub(/.*[ *]/, "", name) }
    /^\}/ && start { n = FNR - start + 1; if (n > m) print n, FILENAME ":" sigline " " name "()"; start = 0 }
' "${files[@]}" | sort -rn)
[ "$over" = 0 ] && echo "sizes.sh: ${#files[@]} files within $max_file lines, functions within $max_func"
exit "$over"
