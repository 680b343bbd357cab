"""bench/peers/producer.py - the steady producer of bench/peers/freshness.sh: sends the
"key TAB message" lines of a file to a Kafka topic at RATE messages a second (confluent-kafka,
idempotent, librdkafka's default linger of 5 ms), the same lines and pace for every engine.

  python producer.py BROKERS TOPIC RATE FILE
Prints "producer_start S" (Unix seconds of the first send), "producer_messages N" and
"producer_seconds S".
"""
import sys
import time

from confluent_kafka import Producer


def main():
    brokers, topic, rate, path = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    p = Producer({"bootstrap.servers": brokers, "enable.idempotence": True, "linger.ms": 5})
    sent = 0
    t0 = time.time()
    print(f"producer_start {t0:.6f}", flush=True)
    with open(path, "rb") as f:
        for line in f:
            key, _, value = line.rstrip(b"\n").partition(b"\t")
            while True:
                try:
                    p.produce(topic, value=value, key=key)
                    break
                except BufferError:
                    p.poll(0.01)
            sent += 1
            if sent % 50 == 0:
                p.poll(0)
                ahead = t0 + sent / rate - time.time()
                if ahead > 0:
                    time.sleep(ahead)
    p.flush(60)
    print(f"producer_messages {sent}")
    print(f"producer_seconds {time.time() - t0:.3f}")


if __name__ == "__main__":
    main()
