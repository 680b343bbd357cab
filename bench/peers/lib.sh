# bench/peers/lib.sh - what bench/peers/run.sh (the drain) and bench/peers/freshness.sh (a
# steady rate) share: the peers' installs, cached under build/, their topics, the tweets they
# are sent, and the database the Flink job's upserts go to (the broker is scripts/lib.sh's
# bench_broker).  Sourced after scripts/lib.sh, with ROOT, HERE, W, PORT and LOG set and the
# functions say, warn and sql (tweetlake's server) defined.

# venv_for DIR REQUIREMENTS: a virtualenv in DIR holding REQUIREMENTS (made again when they change)
venv_for() {
  local venv=$1 req=$2
  cmp -s "$req" "$venv/requirements.txt" 2>/dev/null && return 0
  rm -rf "$venv"
  if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"; } >> "$LOG" 2>&1; then
    rm -rf "$venv"
    return 1
  fi
  cp "$req" "$venv/requirements.txt"
}

# PyPI's apache-flink into build/peers-flink-venv, its connectors from Maven Central into
# build/peers-flink-lib.
flink_install() {
  local lib=$ROOT/build/peers-flink-lib work
  venv_for "$ROOT/build/peers-flink-venv" "$HERE/requirements-flink.txt" || return 1
  cmp -s "$HERE/flink-pom.xml" "$lib/pom.xml" 2>/dev/null && return 0
  command -v mvn >/dev/null || { echo "no mvn on PATH" >> "$LOG"; return 1; }
  work=$(mktemp -d)
  cp "$HERE/flink-pom.xml" "$work/pom.xml"
  rm -rf "$lib"
  if ! (cd "$work" && mvn -q -B package -Dflink.lib="$lib") >> "$LOG" 2>&1; then
    rm -rf "$work" "$lib"
    return 1
  fi
  rm -rf "$work"
  cp "$HERE/flink-pom.xml" "$lib/pom.xml"
}

# peers_topic NAME: a topic of $PARTITIONS partitions; exits 0 (skipped) when it cannot be made
peers_topic() {
  if ! bash "$KAFKA" topic "$KDIR" "$1" "$PARTITIONS" >> "$LOG" 2>&1; then
    say "skipped: could not create the topic $1 (see $LOG; a broker given must not have it yet)"
    exit 0
  fi
}

# peers_tweets N SEED: N tweets of tweetlake.generate_tweets in the current hour, one
# "key TAB message" line each (the key is the tweet_id, as the generator worker keys them)
peers_tweets() {
  sql -c "COPY (SELECT tweetlake.tweet_id_of(t) || E'\t' || t
                FROM tweetlake.generate_tweets($1, $2, date_trunc('hour', now()), '1 minute') t)
          TO STDOUT WITH (FORMAT csv, DELIMITER E'\x1f', QUOTE E'\x1e')"
}

# flink_database: the database "flink" on tweetlake's server, with the tables the job upserts
# into (over TCP, as the JDBC driver needs)
fsql() { bench_sql -d flink "$@"; }
flink_database() {
  sql -c "CREATE DATABASE flink"
  fsql -c "CREATE TABLE popular_hashtags_by_hour (hour timestamp, hashtag text, tweet_count bigint, unique_users bigint, PRIMARY KEY (hour, hashtag))" \
       -c "CREATE TABLE popular_hashtags_mentions (hour timestamp, hashtag text, unique_mentions bigint, PRIMARY KEY (hour, hashtag))" \
       -c "CREATE TABLE tweet_volume_by_region (hour timestamp, region text, language text, tweet_count bigint, unique_users bigint, PRIMARY KEY (hour, region, language))" \
       -c "CREATE TABLE hourly_activity_summary (hour timestamp, total_tweets bigint, unique_users bigint, PRIMARY KEY (hour))"
}
