#!/usr/bin/env bash
# Formats src/*.c and src/*.h the way PostgreSQL's pgindent does (`make indent`), or with
# --check only shows what it would change and exits 1 if anything.  pgindent itself is a
# perl script in PostgreSQL's source tree that is not packaged: this runs the same
# pg_bsd_indent (Debian's pg-bsd-indent) with the same flags and the same pre- and
# post-processing as src/tools/pgindent/pgindent, with a typedefs list built here from the
# installed server headers, the librdkafka and json-c headers, libc and our own sources.
#   scripts/indent.sh [--check] [FILE...]      (default: src/*.c src/*.h)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
INDENT=${PGINDENT:-pg_bsd_indent}
PG_CONFIG=${PG_CONFIG:-pg_config}
# pgindent's $indent_opts
OPTS="-bad -bap -bbb -bc -bl -cli1 -cp33 -cdb -nce -d0 -di12 -nfc1 -i4 -l79 -lp -lpl -nip -npro -sac -tpg -ts4"

check=0
if [ "${1:-}" = --check ]; then check=1; shift; fi
case "${1:-}" in -*) echo "usage: indent.sh [--check] [FILE...]" >&2; exit 2 ;; esac
if ! command -v "$INDENT" >/dev/null; then
  echo "indent.sh: $INDENT not found (apt-get install pg-bsd-indent)" >&2
  exit 2
fi

cd "$ROOT"
if [ $# -gt 0 ]; then files=("$@"); else files=(src/*.c src/*.h); fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- typedefs -------------------------------------------------------------------------
# pgindent uses the buildfarm's typedefs.list (every typedef name in a PostgreSQL build,
# libc's included).  Ours: every name declared with typedef in the server headers, in the
# librdkafka and json-c headers, in the libc headers our sources include, and in src/.
server=$("$PG_CONFIG" --includedir-server)
printf '%s\n' '#include <stdarg.h>' '#include <stdbool.h>' '#include <stddef.h>' \
  '#include <stdint.h>' '#include <stdio.h>' '#include <stdlib.h>' '#include <string.h>' \
  '#include <time.h>' '#include <math.h>' '#include <float.h>' '#include <locale.h>' \
  '#include <wctype.h>' '#include <signal.h>' '#include <unistd.h>' '#include <sys/stat.h>' \
  '#include <sys/types.h>' '#include <pthread.h>' > "$tmp/libc.c"
${CC:-cc} -E "$tmp/libc.c" > "$tmp/libc.i"
shopt -s nullglob
find "$server" -name '*.h' -print0 |
  xargs -0 perl -e '
    my %kw = map { $_ => 1 } qw(auto break case char const continue default do double else
      enum extern float for goto if inline int long register restrict return short signed
      sizeof static struct switch typedef union unsigned void volatile while _Bool
      __extension__ __restrict __inline __const __signed__ __volatile__);
    local $/;
    for my $f (@ARGV) {
      open(my $fh, "<", $f) or die "$f: $!";
      my $s = <$fh>;
      # comments out, string and character literals emptied, preprocessor lines out
      $s =~ s{(/\*.*?\*/)|(//[^\n]*)|("(?:\\.|[^"\\\n])*")|(\x27(?:\\.|[^\x27\\\n])*\x27)}
             {defined $1 || defined $2 ? " " : "\"\""}gse;
      $s =~ s/^[ \t]*#(?:[^\n]*\\\n)*[^\n]*//mg;
      $s =~ s/\b(?:__attribute__|__asm__|pg_attribute_\w+)\s*(\((?:[^()]++|(?1))*\))?/ /g;
      while ($s =~ /\btypedef\b/g) {
        my ($start, $depth) = (pos($s), 0);
        my $i = $start;
        for (; $i < length($s); $i++) {
          my $c = substr($s, $i, 1);
          $depth++ if $c eq "{" || $c eq "(";
          $depth-- if $c eq "}" || $c eq ")";
          last if $c eq ";" && $depth == 0;
        }
        my $t = substr($s, $start, $i - $start);
        pos($s) = $i;
        1 while $t =~ s/\{[^{}]*\}/ /g;    # struct/union/enum bodies
        my @names;
        if ($t =~ /^([^(]*)\(\s*\**\s*(\w+)\s*\)\s*\(/) { @names = ($2); }   # (*fn)(...)
        elsif ($t =~ /^([^(]*?)(\w+)\s*\(/) { @names = ($2); }                # fn(...)
        else {
          for my $d (split /,/, $t) {
            $d =~ s/\[[^\]]*\]//g;
            push @names, $1 if $d =~ /(\w+)\s*$/;
          }
        }
        print "$_\n" for grep { /^[A-Za-z_]\w*$/ && !$kw{$_} } @names;
      }
    }' "$tmp/libc.i" /usr/include/librdkafka/*.h /usr/include/json-c/*.h src/*.h src/*.c \
  > "$tmp/typedefs.raw"
# as pgindent: "bool" is one (a macro in <stdbool.h>), and these never are
{ cat "$tmp/typedefs.raw"; echo bool; } | sort -u |
  grep -vxE 'ANY|FD_SET|U|abs|allocfunc|boolean|date|digit|ilist|interval|iterator|other|pointer|printfunc|reference|string|timestamp|type|wrap' \
  > "$tmp/typedefs.list"

# --- indent ---------------------------------------------------------------------------
status=0
for f in "${files[@]}"; do
  # pgindent's pre_indent: // comments to /* */, dash-protected block comments kept,
  # extern "C" braces and CATALOG() lines hidden from indent
  perl -0777 -pe '
    s!^([ \t]*)//(.*)$!$1/* $2 */!gm;
    s!/\* +---!/*---X_X!g;
    s!(^#ifdef[ \t]+__cplusplus.*\nextern[ \t]+"C"[ \t]*\n)\{[ \t]*$!$1/* Open extern "C" */!gm;
    s!(^#ifdef[ \t]+__cplusplus.*\n)\}[ \t]*$!$1/* Close extern "C" */!gm;
    s!^(CATALOG\(.*)$!/*$1*/!gm;' "$f" > "$tmp/src.c"
  # shellcheck disable=SC2086
  if ! err=$("$INDENT" $OPTS "-U$tmp/typedefs.list" "$tmp/src.c" "$tmp/out.c" 2>&1) || [ -n "$err" ]; then
    echo "indent.sh: $f: ${err:-pg_bsd_indent failed}" >&2
    status=2
    continue
  fi
  # pgindent's post_indent
  perl -0777 -pe '
    s!^/\*(CATALOG\(.*)\*/$!$1!gm;
    s!^/\* Open extern "C" \*/$!{!gm;
    s!^/\* Close extern "C" \*/$!}!gm;
    s!/\*---X_X!/* ---!g;
    s!\*/(/\*.*\*/)$!*/\t$1!gm;
    s!^([A-Za-z_]\S*)[ \t]+\*$!$1 *!gm;' "$tmp/out.c" > "$tmp/indented.c"
  if ! cmp -s "$f" "$tmp/indented.c"; then
    if [ $check = 1 ]; then
      diff -u --label "$f" --label "$f (indented)" "$f" "$tmp/indented.c" || true
      [ $status = 0 ] && status=1
    else
      cp "$tmp/indented.c" "$f"
      echo "indented $f"
    fi
  fi
done
exit $status
