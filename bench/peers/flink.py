"""bench/peers/flink.py - the Flink SQL peer of bench/peers/run.sh (issue 19): PyFlink's
local cluster (PyPI `apache-flink`, on the JDK here) runs one streaming SQL job, parallelism
1, mini-batch aggregation, exactly-once checkpoints every 10 s, that reads the Kafka topic from its earliest to its
latest offsets (bounded: the job ends when it has read the end offsets it found at its
start) and keeps tweetlake's gold tables as upserts into PostgreSQL through Flink's JDBC
connector, as a Flink user would serve them. The connectors' jars come from Maven Central
(bench/peers/flink-pom.xml).

  python flink.py BROKERS TOPIC JDBC_URL JARS_DIR CHECKPOINT_DIR
Prints "flink_version V", "flink_seconds S" (from the job's submission to its end, the
sinks flushed) and "flink_rss_peak_kb K" (this Python process and the cluster's JVM).

With PEERS_FLINK_LIVE=FILE (bench/peers/freshness.sh) the source is not bounded: the job
runs, "flink_started" is printed once it is submitted, and it is cancelled once FILE exists.
"""
import glob
import os
import resource
import sys
import time

import pyflink
from pyflink.table import EnvironmentSettings, TableEnvironment

CHECKPOINT = os.environ.get("PEERS_FLINK_CHECKPOINT", "10 s")
LIVE = os.environ.get("PEERS_FLINK_LIVE")


# A tag as src/parse.c's normalise_tag stores it: surrounding blanks and the leading
# markers gone, lower case ('' is no tag and is filtered out).
def tag(col, marker):
    return (f"LOWER(REGEXP_REPLACE(REGEXP_REPLACE({col}, '^[ \\t\\n\\r]*{marker}*', ''), "
            f"'[ \\t\\n\\r]*$', ''))")


def descendants_hwm_kb(pid):
    """The largest VmHWM among the processes below pid (the gateway's JVM)."""
    children = {}
    for st in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(st) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(st.split("/")[2]))
        except (OSError, IndexError, ValueError):
            pass
    best, todo = 0, list(children.get(pid, []))
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        best = max(best, int(line.split()[1]))
        except OSError:
            pass
    return best


def main():
    brokers, topic, jdbc_url, jars, checkpoints = sys.argv[1:6]
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    conf = env.get_config()
    conf.set("pipeline.jars", ";".join("file://" + j for j in sorted(glob.glob(os.path.join(jars, "*.jar")))))
    conf.set("parallelism.default", "1")
    conf.set("execution.checkpointing.interval", CHECKPOINT)
    conf.set("execution.checkpointing.mode", "EXACTLY_ONCE")
    # checkpoints to files: the job manager's memory takes at most 5 MB of state
    conf.set("execution.checkpointing.storage", "filesystem")
    conf.set("execution.checkpointing.dir", "file://" + os.path.abspath(checkpoints))
    # a failure ends the run with an error rather than restarting the job from its last
    # checkpoint, over and over, inside the measured time
    conf.set("restart-strategy.type", "none")
    conf.set("table.local-time-zone", "UTC")
    # the usual throughput settings of a Flink SQL aggregation: mini-batches (fewer state
    # accesses and fewer updates sent to the sink); PEERS_FLINK_MINIBATCH=0 turns them off
    if os.environ.get("PEERS_FLINK_MINIBATCH", "1") == "1":
        conf.set("table.exec.mini-batch.enabled", "true")
        conf.set("table.exec.mini-batch.allow-latency", "1 s")
        conf.set("table.exec.mini-batch.size", "5000")

    env.execute_sql(f"""
        CREATE TABLE tweets (
          tweet_id STRING,
          created_at TIMESTAMP_LTZ(3),
          region STRING,
          `language` STRING,
          hashtags ARRAY<STRING>,
          mentions ARRAY<STRING>,
          `user` ROW<user_id STRING>
        ) WITH (
          'connector' = 'kafka',
          'topic' = '{topic}',
          'properties.bootstrap.servers' = '{brokers}',
          'properties.group.id' = 'peers-flink',
          'scan.startup.mode' = 'earliest-offset',
          {"" if LIVE else "'scan.bounded.mode' = 'latest-offset',"}
          'format' = 'json',
          'json.timestamp-format.standard' = 'ISO-8601',
          'json.fail-on-missing-field' = 'false',
          'json.ignore-parse-errors' = 'false'
        )""")
    # silver's facts: the UTC hour, 'unknown' for a missing region or language
    env.execute_sql("""
        CREATE TEMPORARY VIEW facts AS
        SELECT tweet_id, CAST(FLOOR(created_at TO HOUR) AS TIMESTAMP(3)) AS `hour`,
               COALESCE(region, 'unknown') AS region, COALESCE(`language`, 'unknown') AS `language`,
               `user`.user_id AS user_id, hashtags, mentions
        FROM tweets""")
    # one row per tweet and distinct normalised hashtag
    env.execute_sql(f"""
        CREATE TEMPORARY VIEW tweet_tags AS
        SELECT DISTINCT tweet_id, `hour`, user_id, hashtag
        FROM (SELECT tweet_id, `hour`, user_id, {tag('h', '#')} AS hashtag
              FROM facts CROSS JOIN UNNEST(hashtags) AS t(h))
        WHERE hashtag <> ''""")

    def sink(name, cols, key):
        env.execute_sql(f"""
            CREATE TABLE {name} ({cols}, PRIMARY KEY ({key}) NOT ENFORCED) WITH (
              'connector' = 'jdbc', 'url' = '{jdbc_url}', 'table-name' = '{name}',
              'username' = 'postgres', 'password' = 'trust-auth')""")

    sink("popular_hashtags_by_hour",
         "`hour` TIMESTAMP(3), hashtag STRING, tweet_count BIGINT, unique_users BIGINT", "`hour`, hashtag")
    sink("popular_hashtags_mentions",
         "`hour` TIMESTAMP(3), hashtag STRING, unique_mentions BIGINT", "`hour`, hashtag")
    sink("tweet_volume_by_region",
         "`hour` TIMESTAMP(3), region STRING, `language` STRING, tweet_count BIGINT, unique_users BIGINT",
         "`hour`, region, `language`")
    sink("hourly_activity_summary",
         "`hour` TIMESTAMP(3), total_tweets BIGINT, unique_users BIGINT", "`hour`")

    stmts = env.create_statement_set()
    stmts.add_insert_sql("""
        INSERT INTO popular_hashtags_by_hour
        SELECT `hour`, hashtag, COUNT(*), COUNT(DISTINCT user_id) FROM tweet_tags GROUP BY `hour`, hashtag""")
    stmts.add_insert_sql(f"""
        INSERT INTO popular_hashtags_mentions
        SELECT `hour`, hashtag, COUNT(DISTINCT mention)
        FROM (SELECT `hour`, {tag('h', '#')} AS hashtag, {tag('m', '@')} AS mention
              FROM facts CROSS JOIN UNNEST(hashtags) AS t(h) CROSS JOIN UNNEST(mentions) AS u(m))
        WHERE hashtag <> '' AND mention <> ''
        GROUP BY `hour`, hashtag""")
    stmts.add_insert_sql("""
        INSERT INTO tweet_volume_by_region
        SELECT `hour`, region, `language`, COUNT(*), COUNT(DISTINCT user_id)
        FROM facts GROUP BY `hour`, region, `language`""")
    stmts.add_insert_sql("""
        INSERT INTO hourly_activity_summary
        SELECT `hour`, COUNT(*), COUNT(DISTINCT user_id) FROM facts GROUP BY `hour`""")

    t0 = time.time()
    result = stmts.execute()
    if LIVE:
        print("flink_started", flush=True)
        while not os.path.exists(LIVE):
            time.sleep(0.2)
        result.get_job_client().cancel().result()
    else:
        result.wait()
    t1 = time.time()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + descendants_hwm_kb(os.getpid())
    print(f"flink_version {pyflink.version.__version__}")
    print(f"flink_seconds {t1 - t0:.3f}")
    print(f"flink_rss_peak_kb {rss}")


if __name__ == "__main__":
    main()
