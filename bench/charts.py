#!/usr/bin/env python3
"""bench/charts.py - chart queries for bench/run.sh (P6).

A chart file has lines "-- chart N: <name>" each followed by one SELECT ending in ";"
(superset/dashboard_queries.sql, bench/silver_queries.sql).

  charts.py time-script FILE REPS          psql script: each chart once to warm up, then REPS
                                           timed runs (\\timing, results to /dev/null)
  charts.py time-parse                     reads that script's output on stdin, prints
                                           "N median_ms" per chart
  charts.py compare-script GOLD SILVER     one SELECT per chart present in both files giving
                                           "N|rows_only_in_gold|rows_only_in_silver", both
                                           queries without their LIMIT (so ties at the cut
                                           cannot differ) and compared as multisets of rows;
                                           a gold view that keeps only its first rows
                                           (CUT_VIEWS) has the silver side cut the same way
"""
import re
import statistics
import sys

MARK = re.compile(r"^-- chart (\d+): (.*)$")

# Gold views that hold only the first rows of a ranking, with the view's own order and cut:
# the silver query of the same chart answers for every row, so it is compared cut alike.
CUT_VIEWS = {
    "gold.top_users_by_engagement": ("total_engagement DESC, user_id", 100),
}


def charts(path):
    out, cur = [], None
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = MARK.match(line.rstrip("\n"))
            if m:
                cur = [int(m.group(1)), m.group(2).strip(), []]
                out.append(cur)
            elif cur is not None:
                cur[2].append(line)
    result = []
    for n, name, lines in out:
        sql = "".join(lines).strip()
        sql = sql[: sql.rindex(";")] if ";" in sql else sql
        result.append((n, name, sql.strip()))
    return result


def main():
    cmd = sys.argv[1]
    if cmd == "time-script":
        reps = int(sys.argv[3])
        print("\\o /dev/null")
        for n, _, sql in charts(sys.argv[2]):
            print(f"{sql};")  # warm-up: plan, caches
            print(f"\\echo chart {n}")
            print("\\timing on")
            for _ in range(reps):
                print(f"{sql};")
            print("\\timing off")
    elif cmd == "time-parse":
        times, cur = {}, None
        for line in sys.stdin:
            m = re.match(r"^chart (\d+)$", line.strip())
            if m:
                cur = int(m.group(1))
                times[cur] = []
                continue
            m = re.match(r"^Time: ([0-9.]+) ms", line.strip())
            if m and cur is not None:
                times[cur].append(float(m.group(1)))
        for n, ts in times.items():
            if ts:
                print(f"{n} {statistics.median(ts):.2f}")
    elif cmd == "compare-script":
        gold = {n: sql for n, _, sql in charts(sys.argv[2])}
        silver = {n: sql for n, _, sql in charts(sys.argv[3])}
        for n in sorted(set(gold) & set(silver)):
            g = re.sub(r"\bLIMIT\s+\d+\s*$", "", gold[n], flags=re.I)
            s = re.sub(r"\bLIMIT\s+\d+\s*$", "", silver[n], flags=re.I)
            for view, (order, cut) in CUT_VIEWS.items():
                if view in g:
                    s = f"SELECT * FROM (\n{s}\n) q ORDER BY {order} LIMIT {cut}"
            g = re.sub(r"\n", "\n    ", g)
            s = re.sub(r"\n", "\n    ", s)
            print(f"WITH g AS MATERIALIZED (\n    {g}\n), s AS MATERIALIZED (\n    {s}\n)\n"
                  f"SELECT {n}, (SELECT count(*) FROM (TABLE g EXCEPT ALL TABLE s) x),\n"
                  f"       (SELECT count(*) FROM (TABLE s EXCEPT ALL TABLE g) y);")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
