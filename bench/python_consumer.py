#!/usr/bin/env python3
"""bench/python_consumer.py - the P1 baseline: a plain Python Kafka consumer into Postgres.

What a small hand-written ingester would do instead of tweetlake's consumer worker: read the
topic with confluent-kafka (librdkafka), and write each batch's messages as bronze rows (raw
text + topic, partition, offset, Kafka timestamp) with psycopg's COPY into TABLE, committing
the next offsets to OFFSETS_TABLE in the same transaction (offsets in Postgres, as tweetlake
keeps them). No parsing, no silver, no gold: this is only the cost of getting messages from
Kafka into a table from Python.

  python_consumer.py --bootstrap HOST:PORT --topic T --dsn DSN --table T --offsets-table T
                     --count N [--batch 10000] [--batch-timeout-ms 100] [--idle-s 10]

Reads every partition from the start of the log (assign, no group rebalance) until COUNT
messages are stored or nothing arrived for IDLE_S seconds. Prints
  python_consumer_msgs N
  python_consumer_seconds S         (from assign to the last commit)
  python_consumer_msgs_per_s R
"""
import argparse
import datetime
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
import psycopg

UTC = datetime.timezone.utc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--table", required=True)
    ap.add_argument("--offsets-table", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--batch", type=int, default=10000)
    ap.add_argument("--batch-timeout-ms", type=int, default=100)
    ap.add_argument("--idle-s", type=float, default=10.0)
    a = ap.parse_args()

    consumer = Consumer({
        "bootstrap.servers": a.bootstrap,
        "group.id": "bench-python-consumer",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "queued.max.messages.kbytes": 16384,  # as tweetlake's consumer
    })
    md = consumer.list_topics(a.topic, timeout=30)
    parts = sorted(md.topics[a.topic].partitions)
    if not parts:
        sys.exit(f"python_consumer: topic {a.topic} has no partitions")

    conn = psycopg.connect(a.dsn, autocommit=False)
    copy_sql = (f"COPY {a.table} (raw, kafka_topic, kafka_partition, kafka_offset, kafka_timestamp)"
                " FROM STDIN")
    offsets_sql = (f"INSERT INTO {a.offsets_table} (topic, partition, next_offset) VALUES (%s, %s, %s)"
                   " ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset")

    t0 = time.monotonic()
    consumer.assign([TopicPartition(a.topic, p, OFFSET_BEGINNING) for p in parts])
    stored = bad = 0
    last_msg = time.monotonic()
    t_end = t0
    while stored < a.count:
        want = min(a.batch, a.count - stored)
        batch = []
        deadline = time.monotonic() + a.batch_timeout_ms / 1000.0
        while len(batch) < want:
            left = deadline - time.monotonic()
            if left <= 0 and batch:
                break
            msgs = consumer.consume(num_messages=want - len(batch), timeout=max(left, 0.01))
            for m in msgs:
                if m.error():
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        print(f"python_consumer: {m.error()}", file=sys.stderr)
                    continue
                batch.append(m)
            if msgs:
                last_msg = time.monotonic()
            elif time.monotonic() - last_msg > a.idle_s:
                break
        if not batch:
            break
        next_offsets = {}
        with conn.cursor() as cur:
            with cur.copy(copy_sql) as cp:
                for m in batch:
                    try:
                        raw = m.value().decode("utf-8")
                    except (UnicodeDecodeError, AttributeError):
                        bad += 1  # tweetlake sends these to dead letters; not counted here
                        continue
                    _, ts = m.timestamp()
                    cp.write_row((raw, m.topic(), m.partition(), m.offset(),
                                  datetime.datetime.fromtimestamp(ts / 1000.0, UTC)))
                    next_offsets[m.partition()] = m.offset() + 1
            cur.executemany(offsets_sql, [(a.topic, p, o) for p, o in sorted(next_offsets.items())])
        conn.commit()
        stored += len(batch) - bad
        bad = 0
        t_end = time.monotonic()
    consumer.close()
    conn.close()
    secs = max(t_end - t0, 1e-9)
    print(f"python_consumer_msgs {stored}")
    print(f"python_consumer_seconds {secs:.3f}")
    print(f"python_consumer_msgs_per_s {stored / secs:.0f}")


if __name__ == "__main__":
    main()
