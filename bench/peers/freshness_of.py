"""bench/peers/freshness_of.py - freshness from what bench/peers/freshness.sh collected: the
produce times of a topic's messages (Kafka's CreateTime in ms, a line each, from kcat) and
when an engine's results counted them ("seconds messages" lines: that many more messages
readable from that instant on).  The k-th message produced is taken as the k-th made
readable (ranks paired: an engine reading partitions side by side does not keep their order,
but a message counted earlier than its rank is one counted later than another's); its
freshness is the difference.  Only the messages produced between FROM and TO count.

  python freshness_of.py PRODUCED VISIBLE FROM TO
Prints "p50_ms p99_ms messages_in_window produced visible".
"""
import sys


def main():
    produced_path, visible_path, lo, hi = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    with open(produced_path) as f:
        produced = sorted(int(x) / 1000.0 for x in f if x.strip())
    visible = []
    with open(visible_path) as f:
        for line in f:
            if line.strip():
                t, n = line.split()
                visible.extend([float(t)] * int(n))
    visible.sort()
    lags = sorted((v - p) * 1000.0 for p, v in zip(produced, visible) if lo <= p <= hi)
    if not lags:
        print(f"nan nan 0 {len(produced)} {len(visible)}")
        return
    pick = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))]
    print(f"{pick(0.5):.1f} {pick(0.99):.1f} {len(lags)} {len(produced)} {len(visible)}")


if __name__ == "__main__":
    main()
