"""The baseline for the generator benchmark: tweets of the same shape as tweetlake's
generator, written the usual Python way (random + uuid + json.dumps), one per call.
    python3 bench/generator_baseline.py N    ->  generator_python_tweets_per_s <v>
"""
import json
import random
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

WORDS = ("today the new update about people just watching game news team city week think "
         "really time launch match release talk tonight everyone stream thread").split()
POS = "love great amazing awesome happy best win excited brilliant fantastic".split()
NEG = "hate terrible awful worst sad angry broken fail disappointed annoying".split()
TAGS = ["#AI", "#WorldCup", "#Bitcoin", "#ClimateChange", "#NBA", "#Music", "#Tech",
        "#Breaking", "#Gaming", "#Netflix", "#Football", "#Movies", "#Health", "#Travel"]
REGIONS = ["North America", "Europe", "Asia", "South America", "Africa", "Oceania", "Middle East"]
LANGS = ["en", "es", "pt", "fr", "de", "ja", "ko", "hi", "ar", "id"]
START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def tweet(rng, i, n):
    user = int(rng.paretovariate(1.07)) % 100000
    followers = int(rng.lognormvariate(5.7, 1.8))
    score = max(-1.0, min(1.0, rng.gauss(0.1, 0.4)))
    words = [rng.choice(POS if score > 0.1 and rng.random() < 0.5 else
                        NEG if score < -0.1 and rng.random() < 0.5 else WORDS)
             for _ in range(rng.randint(6, 20))]
    tags = rng.sample(TAGS, rng.choice([0, 1, 1, 2, 2, 3]))
    likes = int(0.05 * (followers + 1) ** 0.8 * rng.lognormvariate(0, 1.1))
    created = START + timedelta(seconds=7 * 86400 * (i + rng.random()) / n)
    return json.dumps({
        "tweet_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "text": " ".join(words + tags)[:280],
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "tweet_type": "original", "language": rng.choice(LANGS), "region": rng.choice(REGIONS),
        "hashtags": tags, "mentions": [], "retweet_count": likes // 5, "like_count": likes,
        "reply_count": likes // 20, "quote_count": likes // 50, "is_retweet": False,
        "is_reply": False, "is_quote": False, "has_media": rng.random() < 0.2,
        "has_url": rng.random() < 0.15, "sentiment_score": round(score, 3),
        "engagement_score": round(likes * 100 / max(followers, 1), 4),
        "reach_estimate": followers + likes * 40, "source": "Twitter for iPhone",
        "user": {"user_id": str(1000000000000 + user), "username": f"user_{user}",
                 "display_name": f"User {user}", "followers_count": followers,
                 "following_count": int(rng.lognormvariate(5.5, 1.0)), "verified": followers > 100000,
                 "created_at": "2015-01-01T00:00:00.000Z", "location": "London",
                 "description": "coffee lover engineer"},
    }, ensure_ascii=False, separators=(",", ":"))


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    rng = random.Random(7)
    t0 = time.perf_counter()
    size = 0
    for i in range(n):
        size += len(tweet(rng, i, n))
    dt = time.perf_counter() - t0
    print(f"generator_python_tweets_per_s {n / dt:.0f}")
    print(f"generator_python_bytes_per_tweet {size / n:.0f}")


if __name__ == "__main__":
    main()
