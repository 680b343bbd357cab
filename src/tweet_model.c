/*
 * tweet_model.c - the synthetic tweet model behind tweetlake.generate_tweets(), load_generated()
 * and the Kafka generator worker.  Plain C (see tweet_model.h): a tweet is drawn into a struct
 * by the model (tg_make), then written either by the fast serializer (tg_next) or through
 * json-c objects (tg_next_json, the reference it is checked and benchmarked against).
 * tg_next_message mixes in updates and tombstones of recent tweets (generate_messages()).
 * The model is described in the README ("The generator").
 */
#include "tweet_model.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <json.h>

/* ------------------------------------------------------------------------
 * Vocabulary.  Every string here is plain JSON-safe text (no quotes, backslashes or
 * control characters); the serializer still escapes whatever it writes from text.
 * ------------------------------------------------------------------------ */

#define N(a) ((int) (sizeof(a) / sizeof((a)[0])))

typedef struct Region
{
	const char *name;
	int			weight;			/* share of users, percent */
	const char *langs[6];
	int			lang_weights[6];
	const char *cities[8];
} Region;

static const Region regions[] = {
	{"North America", 30, {"en", "es", "fr"}, {85, 12, 3}, {"New York", "Los Angeles", "Toronto", "Chicago", "Mexico City", "Vancouver", "Austin", "Seattle"}},
	{"Europe", 25, {"en", "de", "fr", "es", "it", "pt"}, {35, 20, 18, 14, 9, 4}, {"London", "Berlin", "Paris", "Madrid", "Rome", "Lisbon", "Amsterdam", "Dublin"}},
	{"Asia", 25, {"ja", "en", "ko", "hi", "id", "zh"}, {30, 25, 15, 12, 10, 8}, {"Tokyo", "Seoul", "Mumbai", "Jakarta", "Singapore", "Osaka", "Delhi", "Bangkok"}},
	{"South America", 10, {"pt", "es", "en"}, {50, 45, 5}, {"Sao Paulo", "Buenos Aires", "Rio de Janeiro", "Bogota", "Lima", "Santiago", "Quito", "Montevideo"}},
	{"Africa", 5, {"en", "fr", "ar"}, {55, 30, 15}, {"Lagos", "Nairobi", "Cairo", "Johannesburg", "Accra", "Dakar", "Casablanca", "Kampala"}},
	{"Oceania", 3, {"en"}, {100}, {"Sydney", "Melbourne", "Auckland", "Brisbane", "Perth", "Wellington", "Adelaide", "Hobart"}},
	{"Middle East", 2, {"ar", "tr", "en"}, {50, 30, 20}, {"Dubai", "Istanbul", "Riyadh", "Doha", "Tel Aviv", "Amman", "Beirut", "Ankara"}},
};

/* Words by language: neutral, positive, negative.  Languages without lists use English. */
typedef struct Lexicon
{
	const char *lang;
	const char *space;			/* word separator: none in Japanese */
	const char *neutral[24];
	const char *positive[12];
	const char *negative[12];
} Lexicon;

static const Lexicon lexicons[] = {
	{"en", " ",
		{"today", "the", "new", "update", "about", "people", "just", "watching", "game", "news", "team", "city", "week", "think", "really", "time", "launch", "match", "release", "talk", "tonight", "everyone", "stream", "thread"},
		{"love", "great", "amazing", "awesome", "happy", "best", "win", "excited", "brilliant", "fantastic", "wonderful", "proud"},
		{"hate", "terrible", "awful", "worst", "sad", "angry", "broken", "fail", "disappointed", "annoying", "disaster", "ugly"}
	},
	{"es", " ",
		{"hoy", "el", "nuevo", "partido", "gente", "semana", "equipo", "ciudad", "noticias", "tiempo", "ahora", "todos", "mirando", "juego", "lanzamiento", "noche", "hablar", "mundo", "casa", "vida", "cosas", "momento", "tema", "serie"},
		{"genial", "increible", "feliz", "mejor", "encanta", "excelente", "bonito", "orgulloso", "ganamos", "brutal", "maravilloso", "alegria"},
		{"odio", "terrible", "peor", "triste", "enojado", "horrible", "fracaso", "roto", "decepcionado", "malo", "desastre", "molesto"}
	},
	{"pt", " ",
		{"hoje", "o", "novo", "jogo", "gente", "semana", "time", "cidade", "noticias", "tempo", "agora", "todos", "assistindo", "partida", "lancamento", "noite", "falar", "mundo", "casa", "vida", "coisas", "momento", "tema", "serie"},
		{"amo", "otimo", "incrivel", "feliz", "melhor", "lindo", "excelente", "orgulho", "vencemos", "demais", "maravilhoso", "alegria"},
		{"odeio", "terrivel", "pior", "triste", "bravo", "horrivel", "fracasso", "quebrado", "decepcionado", "ruim", "desastre", "chato"}
	},
	{"fr", " ",
		{"aujourd'hui", "le", "nouveau", "match", "gens", "semaine", "equipe", "ville", "infos", "temps", "maintenant", "tous", "regarder", "jeu", "sortie", "soir", "parler", "monde", "maison", "vie", "choses", "moment", "sujet", "serie"},
		{"adore", "super", "genial", "heureux", "meilleur", "magnifique", "excellent", "fier", "victoire", "top", "formidable", "joie"},
		{"deteste", "terrible", "pire", "triste", "fache", "horrible", "echec", "casse", "decu", "nul", "catastrophe", "penible"}
	},
	{"de", " ",
		{"heute", "das", "neue", "spiel", "leute", "woche", "team", "stadt", "nachrichten", "zeit", "jetzt", "alle", "schauen", "runde", "start", "abend", "reden", "welt", "haus", "leben", "sachen", "moment", "thema", "serie"},
		{"liebe", "toll", "grossartig", "gluecklich", "beste", "super", "klasse", "stolz", "gewonnen", "wunderbar", "fantastisch", "freude"},
		{"hasse", "schrecklich", "schlimmste", "traurig", "wuetend", "furchtbar", "versagen", "kaputt", "enttaeuscht", "mies", "katastrophe", "nervig"}
	},

	/*
	 * three characters as universal character names: pg_bsd_indent garbles a
	 * 0x80 byte
	 */
	{"ja", "",
		{"今日", "新しい", "試合", "みんな", "今\u9031", "チーム", "街", "ニュース", "時間", "今", "配信", "発表", "夜", "話", "世界", "家", "生活", "瞬間", "話題", "シリーズ", "\u9031末", "写真", "動画", "イベント"},
		{"\u6700高", "嬉しい", "素晴らしい", "大好き", "楽しい", "感動", "勝利", "おめでとう", "幸せ", "すごい", "ありがとう", "誇り"},
		{"\u6700悪", "悲しい", "\u6012り", "残念", "ひどい", "失敗", "壊れた", "がっかり", "つらい", "嫌い", "災難", "うるさい"}
	},
};

/* Topical hashtags as people type them; popularity falls with the position (Zipf). */
static const char *const hashtags[] = {
	"#AI", "#WorldCup", "#Bitcoin", "#ClimateChange", "#NBA", "#Music", "#Tech", "#Breaking",
	"#ChatGPT", "#Crypto", "#Election2026", "#Gaming", "#Netflix", "#Football", "#Movies", "#Health",
	"#Fitness", "#Travel", "#Food", "#Fashion", "#StartUp", "#MachineLearning", "#Python", "#OpenSource",
	"#SpaceX", "#NASA", "#Olympics", "#F1", "#Tennis", "#Cricket", "#Anime", "#KPop",
	"#Photography", "#Art", "#Books", "#Science", "#Economy", "#Stocks", "#RealEstate", "#Jobs",
	"#Education", "#Covid", "#MentalHealth", "#Sustainability", "#Cybersecurity", "#Cloud", "#DataScience", "#Blockchain",
	"#NFT", "#Marketing", "#Design", "#UX", "#JavaScript", "#Rust", "#Kubernetes", "#DevOps",
	"#Postgres", "#Kafka", "#BigData", "#IoT", "#5G", "#Apple", "#Android", "#Samsung",
	"#Tesla", "#EV", "#Energy", "#Solar", "#Weather", "#Nature", "#Wildlife", "#Ocean",
	"#Coffee", "#Vegan", "#Recipe", "#Wine", "#Beer", "#Yoga", "#Running", "#Cycling",
	"#Marathon", "#Boxing", "#UFC", "#MLB", "#NFL", "#NHL", "#PremierLeague", "#LaLiga",
	"#Bundesliga", "#SerieA", "#ChampionsLeague", "#Eurovision", "#Oscars", "#Grammys", "#Coachella", "#Festival",
	"#Concert", "#NewMusic", "#HipHop", "#Jazz", "#Rock", "#Pop", "#Classical", "#Podcast",
	"#Comedy", "#Memes", "#TBT", "#MondayMotivation", "#FridayFeeling", "#WeekendVibes", "#Love", "#Family",
	"#Friends", "#Pets", "#Dogs", "#Cats", "#Parenting", "#Wedding", "#Birthday", "#Holiday",
	"#Christmas", "#NewYear", "#Summer", "#Winter", "#Spring", "#Autumn", "#Beach", "#Mountains",
	"#RoadTrip", "#Hiking", "#Camping", "#Sunset", "#Sunrise", "#CityLife", "#Architecture", "#History",
	"#Politics", "#Democracy", "#HumanRights", "#Equality", "#Pride", "#Women", "#Innovation", "#Leadership",
	"#Productivity", "#RemoteWork", "#Entrepreneur", "#SmallBusiness", "#Finance", "#Investing", "#Fintech", "#Banking",
	"#Insurance", "#Healthcare", "#Medicine", "#Nutrition", "#Sleep", "#Wellness", "#Robotics", "#Drones",
	"#VR", "#AR", "#Metaverse", "#Quantum", "#Semiconductors", "#Nvidia", "#OpenAI", "#LLM",
	"#DeepLearning", "#ComputerVision", "#NLP", "#Linux", "#Windows", "#MacOS", "#iPhone", "#Pixel",
	"#Esports", "#Twitch", "#YouTube", "#TikTok", "#Instagram", "#Streaming", "#Minecraft", "#Fortnite",
	"#Zelda", "#Pokemon", "#Nintendo", "#PlayStation", "#Xbox", "#IndieGame", "#GameDev", "#Unity",
	"#Tokyo", "#London", "#Paris", "#NYC", "#Berlin", "#Madrid", "#SaoPaulo", "#Mumbai",
	"#Lagos", "#Sydney", "#Dubai", "#Seoul", "#Toronto", "#MexicoCity", "#Cairo", "#Istanbul",
	"#Futebol", "#Copa", "#Fußball", "#Été", "#日本", "#サッカー", "#音楽", "#アニメ",
};

static const char *const first_names[] = {
	"Ana", "Liam", "Sofia", "Noah", "Emma", "Mateo", "Olivia", "Lucas", "Mia", "Hugo", "Yuki", "Haruto",
	"Aarav", "Priya", "Chen", "Mei", "Omar", "Layla", "Kwame", "Amara", "Lars", "Ingrid", "José", "Zoë",
	"Chloé", "Björn", "Renée", "Andrés", "Min-jun", "Ji-woo", "Fatima", "Ahmed", "Isabela", "Thiago", "Léa", "Jonas",
};
static const char *const last_names[] = {
	"Smith", "García", "Müller", "Silva", "Rossi", "Dubois", "Tanaka", "Kim", "Patel", "Wang", "Nguyen", "Khan",
	"Okafor", "Mensah", "Johansson", "Novak", "López", "Martin", "Sato", "Park", "Singh", "Haddad", "Costa", "Berg",
};
static const char *const syllables[] = {
	"ka", "ri", "no", "vel", "ta", "mi", "zor", "lu", "ben", "sa", "do", "ra", "kin", "te", "ola", "fi",
	"mar", "jo", "nex", "pi", "dan", "el", "ko", "ty", "vi", "su", "ga", "ren", "ly", "max", "zo", "ae",
};
static const char *const bio_words[] = {
	"coffee", "lover", "engineer", "dad", "mom", "runner", "writer", "gamer", "fan", "traveler", "student", "artist",
	"founder", "photographer", "music", "data", "science", "opinions", "mine", "dogs", "cats", "books", "football", "tech",
	"dreamer", "builder", "teacher", "nurse", "chef", "film", "nerd", "husband", "wife", "views", "own", "optimist",
};
static const char *const sources[] = {"Twitter for iPhone", "Twitter for Android", "Twitter Web App", "TweetDeck"};
static const int source_weights[] = {45, 35, 15, 5};

static const char *const emoji_pos[] = {"\xF0\x9F\x94\xA5", "\xF0\x9F\x98\x82", "\xE2\x9D\xA4\xEF\xB8\x8F", "\xF0\x9F\x8E\x89"};
static const char *const emoji_neg[] = {"\xF0\x9F\x98\xA1", "\xF0\x9F\x98\xA2", "\xF0\x9F\x92\x94"};
static const char *const emoji_neu[] = {"\xF0\x9F\x91\x80", "\xF0\x9F\xA4\x94"};

/* ------------------------------------------------------------------------
 * Randomness: splitmix64 for seeding and hashing, xoshiro256** for the stream.
 * ------------------------------------------------------------------------ */

typedef struct Rng
{
	uint64_t	s[4];
} Rng;

static inline uint64_t
mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* A hash of two words: per-user attributes are pure functions of (seed, user). */
static inline uint64_t
hash2(uint64_t a, uint64_t b)
{
	return mix64(a * 0x9E3779B97F4A7C15ULL + mix64(b + 0x632BE59BD9B4E019ULL));
}

static inline uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t
rng_next(Rng *r)
{
	uint64_t   *s = r->s;
	uint64_t	result = rotl(s[1] * 5, 7) * 9;
	uint64_t	t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

static void
rng_seed(Rng *r, uint64_t seed)
{
	uint64_t	x = seed;

	for (int i = 0; i < 4; i++)
	{
		x += 0x9E3779B97F4A7C15ULL;
		r->s[i] = mix64(x);
	}
}

/* uniform in [0, 1) */
static inline double
unit(uint64_t x)
{
	return (double) (x >> 11) * (1.0 / 9007199254740992.0); /* 2^-53 */
}

static inline double
rng_unit(Rng *r)
{
	return unit(rng_next(r));
}

static inline uint32_t
rng_below(Rng *r, uint32_t n)
{
	return (uint32_t) (((rng_next(r) >> 32) * (uint64_t) n) >> 32);
}

/* Standard normal from two uniforms (Box-Muller). */
static double
normal_from(double u1, double u2)
{
	if (u1 < 1e-300)
		u1 = 1e-300;
	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static int
pick_weighted(const int *weights, int n, double u)
{
	int			total = 0;
	double		x;

	for (int i = 0; i < n; i++)
		total += weights[i];
	x = u * total;
	for (int i = 0; i < n; i++)
	{
		if (x < weights[i])
			return i;
		x -= weights[i];
	}
	return n - 1;
}

/* ------------------------------------------------------------------------
 * Zipf sampling by rejection-inversion (Hormann & Derflinger 1996): O(1) per draw.
 * ------------------------------------------------------------------------ */

typedef struct Zipf
{
	int			n;
	double		exponent;
	double		h_x1;
	double		h_n;
	double		s;
} Zipf;

static double
helper1(double x)
{
	return fabs(x) > 1e-8 ? log1p(x) / x : 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
}

static double
helper2(double x)
{
	return fabs(x) > 1e-8 ? expm1(x) / x : 1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x));
}

static double
zipf_h(const Zipf *z, double x)
{
	return exp(-z->exponent * log(x));
}

static double
zipf_hint(const Zipf *z, double x)
{
	double		lx = log(x);

	return helper2((1.0 - z->exponent) * lx) * lx;
}

static double
zipf_hint_inv(const Zipf *z, double x)
{
	double		t = x * (1.0 - z->exponent);

	if (t < -1.0)
		t = -1.0;
	return exp(helper1(t) * x);
}

static void
zipf_init(Zipf *z, int n, double exponent)
{
	z->n = n;
	z->exponent = exponent;
	z->h_x1 = zipf_hint(z, 1.5) - 1.0;
	z->h_n = zipf_hint(z, n + 0.5);
	z->s = 2.0 - zipf_hint_inv(z, zipf_hint(z, 2.5) - zipf_h(z, 2.0));
}

/* 0-based rank: 0 is the most popular. */
static int
zipf_draw(const Zipf *z, Rng *r)
{
	for (;;)
	{
		double		u = z->h_n + rng_unit(r) * (z->h_x1 - z->h_n);
		double		x = zipf_hint_inv(z, u);
		int			k = (int) (x + 0.5);

		if (k < 1)
			k = 1;
		else if (k > z->n)
			k = z->n;
		if (k - x <= z->s || u >= zipf_hint(z, k + 0.5) - zipf_h(z, k))
			return k - 1;
	}
}

/* ------------------------------------------------------------------------
 * The model
 * ------------------------------------------------------------------------ */

#define TEXT_MAX_CHARS	280
#define TEXT_BUF		(TEXT_MAX_CHARS * 4 + 8)
#define RING_SIZE		2048
#define MAX_TAGS		4
#define MAX_MENTIONS	3
#define TREND_TAGS		3
#define CDF_MAX_POINTS	(1 << 20)

enum
{
	T_ORIGINAL, T_RETWEET, T_REPLY, T_QUOTE
};
static const char *const type_names[] = {"original", "retweet", "reply", "quote"};

typedef struct User
{
	int			k;				/* popularity rank, 0 = tweets most */
	uint64_t	id;
	char		username[16];
	char		display_name[48];
	int64_t		followers;
	int64_t		following;
	bool		verified;
	int64_t		created_us;
	const Region *region;
	const char *lang;
	const char *location;
	char		description[160];
} User;

typedef struct Original
{
	char		id[37];
	int			user;			/* rank k */
	char		username[16];
	uint32_t	likes;
	uint16_t	body_len;
	char		body[TEXT_BUF];
} Original;

typedef struct Tweet
{
	char		id[37];
	int64_t		created_us;
	int			type;
	User		user;
	char		body[TEXT_BUF];
	int			body_len;
	int			ntags;
	const char *tags[MAX_TAGS + 1];
	char		lowered_tag[64];	/* the occasional lower-cased duplicate */
	int			nmentions;
	char		mentions[MAX_MENTIONS][16];
	int64_t		retweets,
				likes,
				replies,
				quotes;
	bool		has_media;
	bool		has_url;
	int			sentiment_milli;	/* score * 1000 */
	int64_t		engagement_e4;	/* engagement score * 10000 */
	int64_t		reach;
	int			reach_per_retweet;
	const char *source;
	const Original *ref;		/* retweeted, replied-to or quoted tweet */
} Tweet;

/* A recent new tweet as last sent, for updates and tombstones (tg_next_message). */
typedef struct Recent
{
	Tweet		t;				/* counts of the last version */
	Original	ref;			/* t.ref points here: the ring of originals
								 * moves on */
	int64_t		last_ms;		/* its created_at or last updated_at, in ms */
	bool		deleted;		/* a tombstone was sent */
} Recent;

struct TweetGenerator
{
	TgOptions	opt;
	Rng			rng;
	Zipf		users;
	Zipf		tags;
	int64_t		count;
	int64_t		messages;		/* places taken on the timeline */
	tg_alloc_fn alloc;
	/* timeline: CDF of the daily-cycle intensity on a grid */
	int			cdf_points;
	double		cdf_step_us;
	double	   *cdf;
	/* trending tags of the hour last asked about */
	int64_t		trend_hour;
	int			trend[TREND_TAGS];
	/* recent originals, for retweets, replies and quotes */
	int			ring_len;
	int			ring_next;
	Original   *ring;
	Tweet		t;				/* the tweet being made */
	/* updates and tombstones, drawn from a random stream of their own */
	double		update_share;
	double		delete_share;
	Rng			mrng;
	int			recent_len;
	int			recent_next;
	Recent	   *recent;			/* TG_RECENT, allocated once a share is set */
};

static double
daily_intensity(int64_t unix_us)
{
	double		hour = fmod((double) unix_us / 3600e6, 24.0);

	if (hour < 0)
		hour += 24.0;
	return 1.0 + 0.6 * cos(2.0 * M_PI * (hour - 18.0) / 24.0);
}

static void
timeline_init(TweetGenerator *g, tg_alloc_fn alloc)
{
	double		step = 60e6;
	int			points;

	if (g->opt.span_us / step > CDF_MAX_POINTS)
		step = (double) g->opt.span_us / CDF_MAX_POINTS;
	points = (int) ceil(g->opt.span_us / step);
	if (points < 1)
		points = 1;
	g->cdf_points = points;
	g->cdf_step_us = (double) g->opt.span_us / points;
	g->cdf = alloc(sizeof(double) * (points + 1));
	g->cdf[0] = 0;
	for (int i = 0; i < points; i++)
		g->cdf[i + 1] = g->cdf[i] +
			daily_intensity(g->opt.start_us + (int64_t) ((i + 0.5) * g->cdf_step_us));
	for (int i = 1; i <= points; i++)
		g->cdf[i] /= g->cdf[points];
}

/* Inverse of the timeline's CDF at q in [0, 1]. */
static int64_t
timeline_at(const TweetGenerator *g, double q)
{
	int			lo = 0,
				hi = g->cdf_points;
	double		frac;

	if (q >= 1.0)
		return g->opt.start_us + g->opt.span_us - 1;
	while (hi - lo > 1)
	{
		int			mid = (lo + hi) / 2;

		if (g->cdf[mid] <= q)
			lo = mid;
		else
			hi = mid;
	}
	frac = (q - g->cdf[lo]) / (g->cdf[lo + 1] - g->cdf[lo]);
	return g->opt.start_us + (int64_t) ((lo + frac) * g->cdf_step_us);
}

/* A user's attributes: a pure function of (seed, k). */
static void
user_make(const TweetGenerator *g, int k, User *u)
{
	uint64_t	h = hash2(g->opt.seed, (uint64_t) k);
	uint64_t	h2 = mix64(h + 1),
				h3 = mix64(h + 2),
				h4 = mix64(h + 3),
				h5 = mix64(h + 4);
	int			region_weights[N(regions)];
	int			nsyl = 2 + (int) (h2 % 2);
	char	   *p = u->username;
	int			kk = k;
	char		suffix[8];
	int			slen = 0;
	double		z;

	u->k = k;
	u->id = 1000000000000ULL + (uint64_t) k * 1000 + h % 1000;

	/*
	 * username: syllables + '_' + base 36 of k, unique per user, <= 15
	 * characters
	 */
	for (int i = 0; i < nsyl; i++)
	{
		const char *s = syllables[(h2 >> (8 * i)) % N(syllables)];
		size_t		l = strlen(s);

		memcpy(p, s, l);
		p += l;
	}
	*p++ = '_';
	do
	{
		int			d = kk % 36;

		suffix[slen++] = (char) (d < 10 ? '0' + d : 'a' + d - 10);
		kk /= 36;
	} while (kk > 0);
	while (slen > 0)
		*p++ = suffix[--slen];
	*p = '\0';

	snprintf(u->display_name, sizeof(u->display_name), "%s %s",
			 first_names[h3 % N(first_names)], last_names[(h3 >> 16) % N(last_names)]);

	/*
	 * followers: lognormal (median ~300), the most active accounts larger
	 * still
	 */
	z = normal_from(unit(h4), unit(mix64(h4)));
	u->followers = (int64_t) exp(log(300.0) + 1.8 * z);
	if (k < 100)
		u->followers = (int64_t) (u->followers * (1.0 + 100.0 / (k + 1.0)));
	if (u->followers > 150000000)
		u->followers = 150000000;
	u->following = (int64_t) exp(log(250.0) + 1.0 * normal_from(unit(h5), unit(mix64(h5))));
	{
		double		pv = (u->followers >= 1000000 ? 0.9 : u->followers >= 100000 ? 0.5 :
						  u->followers >= 10000 ? 0.1 : 0.005);

		u->verified = unit(mix64(h + 5)) < pv;
	}
	/* accounts opened 2008-01-01 .. 2025-01-01 */
	u->created_us = 1199145600000000LL + (int64_t) (unit(mix64(h + 6)) * 536112000.0) * 1000000LL;

	for (int i = 0; i < N(regions); i++)
		region_weights[i] = regions[i].weight;
	u->region = &regions[pick_weighted(region_weights, N(regions), unit(mix64(h + 7)))];
	{
		int			nl = 0;

		while (nl < 6 && u->region->langs[nl])
			nl++;
		u->lang = u->region->langs[pick_weighted(u->region->lang_weights, nl, unit(mix64(h + 8)))];
	}
	u->location = u->region->cities[mix64(h + 9) % 8];
	{
		int			nw = 3 + (int) (mix64(h + 10) % 5);
		char	   *d = u->description;
		char	   *end = u->description + sizeof(u->description) - 1;

		for (int i = 0; i < nw; i++)
		{
			const char *w = bio_words[mix64(h + 11 + i) % N(bio_words)];
			size_t		l = strlen(w);

			if (d + l + 1 >= end)
				break;
			if (i > 0)
				*d++ = ' ';
			memcpy(d, w, l);
			d += l;
		}
		*d = '\0';
	}
}

/* Only the username of user k (mentions, referenced authors). */
static void
username_of(const TweetGenerator *g, int k, char *out)
{
	User		u;

	user_make(g, k, &u);
	memcpy(out, u.username, sizeof(u.username));
}

static const Lexicon *
lexicon_for(const char *lang)
{
	for (int i = 0; i < N(lexicons); i++)
		if (strcmp(lexicons[i].lang, lang) == 0)
			return &lexicons[i];
	return &lexicons[0];
}

static void
trend_for_hour(TweetGenerator *g, int64_t created_us)
{
	int64_t		hour = created_us / 3600000000LL;

	if (hour == g->trend_hour)
		return;
	g->trend_hour = hour;
	/* from the middle and the tail of the vocabulary, so trends are visible */
	for (int i = 0; i < TREND_TAGS; i++)
		g->trend[i] = 20 + (int) (hash2(g->opt.seed ^ 0x7472656EULL, (uint64_t) hour * 4 + i) % (N(hashtags) - 20));
}

/* Appends up to n bytes of s to the text, keeping within 280 characters. */
typedef struct TextBuf
{
	char	   *buf;
	int			len;
	int			chars;
	int			limit;			/* characters allowed now (room kept for what
								 * must follow) */
} TextBuf;

static int
utf8_chars(const char *s, int len)
{
	int			c = 0;

	for (int i = 0; i < len; i++)
		if (((unsigned char) s[i] & 0xC0) != 0x80)
			c++;
	return c;
}

static bool
text_add(TextBuf *tb, const char *sep, const char *s, int len)
{
	int			seplen = (tb->len > 0 && sep) ? (int) strlen(sep) : 0;
	int			chars = utf8_chars(s, len) + seplen;

	if (tb->chars + chars > tb->limit)
		return false;
	if (seplen > 0)
		memcpy(tb->buf + tb->len, sep, seplen);
	memcpy(tb->buf + tb->len + seplen, s, len);
	tb->len += seplen + len;
	tb->chars += chars;
	return true;
}

/* The first n characters of s (never splitting a code point): its byte length. */
static int
utf8_prefix(const char *s, int len, int nchars)
{
	int			c = 0;

	for (int i = 0; i < len; i++)
		if (((unsigned char) s[i] & 0xC0) != 0x80)
		{
			if (c == nchars)
				return i;
			c++;
		}
	return len;
}

static void
uuid7(Rng *r, int64_t created_us, char *out)
{
	static const char hex[] = "0123456789abcdef";
	uint64_t	ms = (uint64_t) (created_us / 1000);
	uint64_t	a = rng_next(r);
	uint64_t	b = rng_next(r);
	unsigned char bytes[16];
	int			o = 0;

	for (int i = 0; i < 6; i++)
		bytes[i] = (unsigned char) (ms >> (40 - 8 * i));
	bytes[6] = (unsigned char) (0x70 | ((a >> 60) & 0x0F));
	bytes[7] = (unsigned char) (a >> 52);
	bytes[8] = (unsigned char) (0x80 | ((b >> 58) & 0x3F));
	for (int i = 9; i < 16; i++)
		bytes[i] = (unsigned char) (b >> (8 * (15 - i)));
	for (int i = 0; i < 16; i++)
	{
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[bytes[i] >> 4];
		out[o++] = hex[bytes[i] & 0x0F];
	}
	out[o] = '\0';
}

static void
make_sentiment(Tweet *t, Rng *r)
{
	double		u = rng_unit(r);
	double		s;

	if (u < 0.45)
		s = 0.06 * normal_from(rng_unit(r), rng_unit(r));
	else if (u < 0.80)
		s = 0.15 + 0.85 * pow(rng_unit(r), 1.4);
	else
		s = -(0.15 + 0.85 * pow(rng_unit(r), 1.4));
	if (s > 1.0)
		s = 1.0;
	if (s < -1.0)
		s = -1.0;
	t->sentiment_milli = (int) lround(s * 1000.0);
}

/* Original text: words whose sentiment follows the score, with the tags and mentions. */
static void
make_text(TweetGenerator *g, Tweet *t, TextBuf *tb)
{
	Rng		   *r = &g->rng;
	const Lexicon *lx = lexicon_for(t->user.lang);
	double		s = t->sentiment_milli / 1000.0;
	int			nwords = 6 + (int) rng_below(r, 15);
	const char *sep = lx->space;
	int			reserve = 0;

	/* the words fill what the mentions, tags, emoji and link leave free */
	for (int i = 0; i < t->ntags; i++)
		reserve += 1 + utf8_chars(t->tags[i], (int) strlen(t->tags[i]));
	for (int i = t->type == T_REPLY ? 1 : 0; i < t->nmentions; i++)
		reserve += 2 + (int) strlen(t->mentions[i]);
	reserve += 3 + (t->has_url ? 24 : 0);

	/* a reply's first mention already opens its text */
	for (int i = t->type == T_REPLY ? 1 : 0; i < t->nmentions; i++)
	{
		char		m[20];
		int			l = snprintf(m, sizeof(m), "@%s", t->mentions[i]);

		text_add(tb, " ", m, l);
	}
	tb->limit = TEXT_MAX_CHARS - reserve + (tb->chars);
	if (tb->limit > TEXT_MAX_CHARS)
		tb->limit = TEXT_MAX_CHARS;
	for (int i = 0; i < nwords; i++)
	{
		const char *w;
		double		u = rng_unit(r);

		if (s > 0.1 && u < 0.25 + 0.6 * s)
			w = lx->positive[rng_below(r, 12)];
		else if (s < -0.1 && u < 0.25 - 0.6 * s)
			w = lx->negative[rng_below(r, 12)];
		else
			w = lx->neutral[rng_below(r, 24)];
		if (!text_add(tb, sep[0] ? sep : NULL, w, (int) strlen(w)))
			break;
	}
	tb->limit = TEXT_MAX_CHARS;
	if (rng_unit(r) < 0.10)
	{
		const char *e = (s > 0.1 ? emoji_pos[rng_below(r, N(emoji_pos))] :
						 s < -0.1 ? emoji_neg[rng_below(r, N(emoji_neg))] : emoji_neu[rng_below(r, N(emoji_neu))]);

		text_add(tb, " ", e, (int) strlen(e));
	}
	for (int i = 0; i < t->ntags; i++)
		text_add(tb, " ", t->tags[i], (int) strlen(t->tags[i]));
	if (t->has_url)
	{
		char		url[32] = "https://t.co/";
		static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

		for (int i = 0; i < 10; i++)
			url[13 + i] = alnum[rng_below(r, 62)];
		url[23] = '\0';
		text_add(tb, " ", url, 23);
	}
}

/* The engagement score from the counts: weighted interactions per 100 followers. */
static int64_t
engagement_e4_of(const Tweet *t)
{
	int64_t		weighted = t->likes + 2 * t->retweets + 3 * t->replies + 2 * t->quotes;
	int64_t		followers = t->user.followers > 0 ? t->user.followers : 1;

	return (int64_t) ((double) weighted * 100.0 * 10000.0 / (double) followers + 0.5);
}

static void
make_engagement(Tweet *t, Rng *r)
{
	double		f = (double) (t->user.followers > 0 ? t->user.followers : 0);
	double		mean = (0.05 * pow(f + 1.0, 0.8) * (1.0 + 0.8 * fabs(t->sentiment_milli / 1000.0)) *
						(t->has_media ? 1.5 : 1.0) * (t->type == T_RETWEET ? 0.05 : 1.0));
	double		z = normal_from(rng_unit(r), rng_unit(r));
	double		likes = mean * exp(1.1 * z - 0.605);

	t->likes = (int64_t) likes;
	t->retweets = (int64_t) (likes * (0.08 + 0.22 * rng_unit(r)));
	t->replies = (int64_t) (likes * (0.02 + 0.06 * rng_unit(r)));
	t->quotes = (int64_t) (likes * (0.005 + 0.025 * rng_unit(r)));
	t->engagement_e4 = engagement_e4_of(t);
	t->reach_per_retweet = 150 + (int) rng_below(r, 150);
	t->reach = t->user.followers + t->retweets * t->reach_per_retweet;
}

/* Draws the next tweet into g->t. */
static void
tg_make(TweetGenerator *g, int64_t created_at_us)
{
	Tweet	   *t = &g->t;
	Rng		   *r = &g->rng;
	TextBuf		tb = {t->body, 0, 0, TEXT_MAX_CHARS};
	double		u;

	if (created_at_us == TG_TIMELINE)
		created_at_us = timeline_at(g, ((double) g->messages + rng_unit(r)) / (double) g->opt.n);
	t->created_us = created_at_us;
	uuid7(r, created_at_us, t->id);
	user_make(g, zipf_draw(&g->users, r), &t->user);

	u = rng_unit(r);
	t->type = u < 0.65 ? T_ORIGINAL : u < 0.85 ? T_RETWEET : u < 0.95 ? T_REPLY : T_QUOTE;
	t->ref = NULL;
	if (t->type != T_ORIGINAL)
	{
		if (g->ring_len == 0)
			t->type = T_ORIGINAL;
		else
		{
			/*
			 * the better liked of two recent originals: popular tweets draw
			 * the replies
			 */
			const Original *a = &g->ring[rng_below(r, g->ring_len)];
			const Original *b = &g->ring[rng_below(r, g->ring_len)];

			t->ref = a->likes >= b->likes ? a : b;
		}
	}
	make_sentiment(t, r);
	t->has_media = rng_unit(r) < 0.20;
	t->has_url = rng_unit(r) < 0.15;
	t->source = sources[pick_weighted(source_weights, N(sources), rng_unit(r))];

	/* hashtags: 0-4, Zipf over the vocabulary, the hour's trends boosted */
	t->ntags = 0;
	if (t->type != T_RETWEET)
	{
		static const int tag_counts[] = {15, 40, 30, 10, 5};
		int			n = pick_weighted(tag_counts, 5, rng_unit(r));

		trend_for_hour(g, created_at_us);
		while (t->ntags < n)
		{
			int			idx = rng_unit(r) < 0.25 ? g->trend[rng_below(r, TREND_TAGS)] : zipf_draw(&g->tags, r);
			bool		dup = false;

			for (int j = 0; j < t->ntags; j++)
				dup |= t->tags[j] == hashtags[idx];
			if (!dup)
				t->tags[t->ntags++] = hashtags[idx];
		}

		/*
		 * now and then the same tag typed twice, differently: downstream
		 * folds case
		 */
		if (t->ntags > 0 && t->ntags < MAX_TAGS + 1 && rng_unit(r) < 0.01)
		{
			const char *src = t->tags[0];
			size_t		l = strlen(src);

			for (size_t i = 0; i <= l && i < sizeof(t->lowered_tag); i++)
				t->lowered_tag[i] = (src[i] >= 'A' && src[i] <= 'Z') ? src[i] + 32 : src[i];
			t->tags[t->ntags++] = t->lowered_tag;
		}
	}

	/* mentions: 0-3 users, popular accounts more often */
	{
		static const int mention_counts[] = {60, 28, 9, 3};
		int			n = t->type == T_RETWEET ? 0 : pick_weighted(mention_counts, 4, rng_unit(r));

		t->nmentions = 0;
		if (t->type == T_REPLY)
			memcpy(t->mentions[t->nmentions++], t->ref->username, 16);
		while (t->nmentions < n && t->nmentions < MAX_MENTIONS)
			username_of(g, zipf_draw(&g->users, r), t->mentions[t->nmentions++]);
	}

	/* text */
	if (t->type == T_RETWEET)
	{
		char		head[40];
		int			hl = snprintf(head, sizeof(head), "RT @%s: ", t->ref->username);
		int			room = TEXT_MAX_CHARS - hl;

		text_add(&tb, NULL, head, hl);
		text_add(&tb, NULL, t->ref->body, utf8_prefix(t->ref->body, t->ref->body_len, room));
	}
	else
	{
		if (t->type == T_REPLY)
		{
			char		head[20];
			int			hl = snprintf(head, sizeof(head), "@%s", t->ref->username);

			text_add(&tb, NULL, head, hl);
		}
		make_text(g, t, &tb);
	}
	t->body_len = tb.len;
	t->body[t->body_len] = '\0';

	make_engagement(t, r);

	/* remember originals for later retweets, replies and quotes */
	if (t->type == T_ORIGINAL)
	{
		Original   *o = &g->ring[g->ring_next];

		memcpy(o->id, t->id, sizeof(o->id));
		o->user = t->user.k;
		memcpy(o->username, t->user.username, sizeof(o->username));
		o->likes = (uint32_t) (t->likes > UINT32_MAX ? UINT32_MAX : t->likes);
		o->body_len = (uint16_t) t->body_len;
		memcpy(o->body, t->body, t->body_len + 1);
		g->ring_next = (g->ring_next + 1) % RING_SIZE;
		if (g->ring_len < RING_SIZE)
			g->ring_len++;
	}
	g->count++;
	g->messages++;
}

TweetGenerator *
tg_create(const TgOptions *opt, tg_alloc_fn alloc)
{
	TweetGenerator *g = alloc(sizeof(TweetGenerator));

	memset(g, 0, sizeof(*g));
	g->opt = *opt;
	if (g->opt.n < 1)
		g->opt.n = 1;
	if (g->opt.span_us <= 0)
		g->opt.span_us = 1;
	if (g->opt.n_users <= 0)
		g->opt.n_users = 100000;
	rng_seed(&g->rng, g->opt.seed);
	rng_seed(&g->mrng, hash2(g->opt.seed, 0x7570646174657321ULL));
	g->alloc = alloc;
	zipf_init(&g->users, g->opt.n_users, 1.07);
	zipf_init(&g->tags, N(hashtags), 1.15);
	g->trend_hour = INT64_MIN;
	g->ring = alloc(sizeof(Original) * RING_SIZE);
	timeline_init(g, alloc);
	tg_set_shares(g, g->opt.update_share, g->opt.delete_share);
	return g;
}

int64_t
tg_count(const TweetGenerator *g)
{
	return g->count;
}

/* ------------------------------------------------------------------------
 * Fast serializer: straight into the caller's buffer, no allocation, no printf.
 * ------------------------------------------------------------------------ */

typedef struct Out
{
	char	   *p;
} Out;

#define PUT(o, lit) (memcpy((o)->p, (lit), sizeof(lit) - 1), (o)->p += sizeof(lit) - 1)

static inline void
put_bytes(Out *o, const char *s, size_t n)
{
	memcpy(o->p, s, n);
	o->p += n;
}

static inline void
put_u64(Out *o, uint64_t v)
{
	char		tmp[24];
	int			n = 0;

	do
	{
		tmp[n++] = (char) ('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*o->p++ = tmp[--n];
}

static inline void
put_i64(Out *o, int64_t v)
{
	if (v < 0)
	{
		*o->p++ = '-';
		put_u64(o, (uint64_t) (-(v + 1)) + 1);
	}
	else
		put_u64(o, (uint64_t) v);
}

/* v / 10^decimals with exactly that many decimals */
static void
put_fixed(Out *o, int64_t v, int decimals)
{
	int64_t		scale = 1;
	int64_t		frac;

	for (int i = 0; i < decimals; i++)
		scale *= 10;
	if (v < 0)
	{
		*o->p++ = '-';
		v = -v;
	}
	put_u64(o, (uint64_t) (v / scale));
	*o->p++ = '.';
	frac = v % scale;
	for (int64_t d = scale / 10; d >= 1; d /= 10)
	{
		*o->p++ = (char) ('0' + frac / d);
		frac %= d;
	}
}

/* A JSON string; bytes that need it are escaped. */
static void
put_str(Out *o, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";

	*o->p++ = '"';
	for (size_t i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c >= 0x20 && c != '"' && c != '\\')
			*o->p++ = (char) c;
		else if (c == '"' || c == '\\')
		{
			*o->p++ = '\\';
			*o->p++ = (char) c;
		}
		else
		{
			PUT(o, "\\u00");
			*o->p++ = hex[c >> 4];
			*o->p++ = hex[c & 0xF];
		}
	}
	*o->p++ = '"';
}

static inline void
put_cstr(Out *o, const char *s)
{
	put_str(o, s, strlen(s));
}

/* Civil date from days since 1970-01-01 (Howard Hinnant's algorithm). */
static void
civil(int64_t days, int *y, int *m, int *d)
{
	int64_t		z = days + 719468;
	int64_t		era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t		doe = z - era * 146097;
	int64_t		yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t		doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t		mp = (5 * doy + 2) / 153;

	*d = (int) (doy - (153 * mp + 2) / 5 + 1);
	*m = (int) (mp < 10 ? mp + 3 : mp - 9);
	*y = (int) (yoe + era * 400 + (*m <= 2));
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf (25 bytes with the NUL). */
static void
format_time(int64_t unix_us, char *buf)
{
	int64_t		ms = unix_us >= 0 ? unix_us / 1000 : -((-unix_us + 999) / 1000);
	int64_t		days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
	int64_t		rem = ms - days * 86400000;
	int			y,
				mo,
				d;
	int			h = (int) (rem / 3600000),
				mi = (int) (rem / 60000 % 60),
				s = (int) (rem / 1000 % 60),
				f = (int) (rem % 1000);

	civil(days, &y, &mo, &d);
	buf[0] = (char) ('0' + y / 1000 % 10);
	buf[1] = (char) ('0' + y / 100 % 10);
	buf[2] = (char) ('0' + y / 10 % 10);
	buf[3] = (char) ('0' + y % 10);
	buf[4] = '-';
	buf[5] = (char) ('0' + mo / 10);
	buf[6] = (char) ('0' + mo % 10);
	buf[7] = '-';
	buf[8] = (char) ('0' + d / 10);
	buf[9] = (char) ('0' + d % 10);
	buf[10] = 'T';
	buf[11] = (char) ('0' + h / 10);
	buf[12] = (char) ('0' + h % 10);
	buf[13] = ':';
	buf[14] = (char) ('0' + mi / 10);
	buf[15] = (char) ('0' + mi % 10);
	buf[16] = ':';
	buf[17] = (char) ('0' + s / 10);
	buf[18] = (char) ('0' + s % 10);
	buf[19] = '.';
	buf[20] = (char) ('0' + f / 100);
	buf[21] = (char) ('0' + f / 10 % 10);
	buf[22] = (char) ('0' + f % 10);
	buf[23] = 'Z';
	buf[24] = '\0';
}

static inline void
put_bool(Out *o, bool b)
{
	if (b)
		PUT(o, "true");
	else
		PUT(o, "false");
}

static void
put_ref_user(Out *o, const TweetGenerator *g, const Original *ref)
{
	User		u;

	user_make(g, ref->user, &u);
	PUT(o, "{\"user_id\":\"");
	put_u64(o, u.id);
	PUT(o, "\",\"username\":");
	put_cstr(o, u.username);
	*o->p++ = '}';
}

/* Tweet t as JSON; updated_us is its version's "updated_at", INT64_MIN for none. */
static size_t
write_fast(const TweetGenerator *g, const Tweet *t, int64_t updated_us, char *out)
{
	Out			o = {out};
	char		ts[25];

	PUT(&o, "{\"tweet_id\":\"");
	put_bytes(&o, t->id, 36);
	PUT(&o, "\",\"text\":");
	put_str(&o, t->body, t->body_len);
	PUT(&o, ",\"created_at\":\"");
	format_time(t->created_us, ts);
	put_bytes(&o, ts, 24);
	if (updated_us != INT64_MIN)
	{
		PUT(&o, "\",\"updated_at\":\"");
		format_time(updated_us, ts);
		put_bytes(&o, ts, 24);
	}
	PUT(&o, "\",\"tweet_type\":\"");
	put_bytes(&o, type_names[t->type], strlen(type_names[t->type]));
	PUT(&o, "\",\"language\":\"");
	put_bytes(&o, t->user.lang, strlen(t->user.lang));
	PUT(&o, "\",\"region\":");
	put_cstr(&o, t->user.region->name);
	PUT(&o, ",\"hashtags\":[");
	for (int i = 0; i < t->ntags; i++)
	{
		if (i)
			*o.p++ = ',';
		put_cstr(&o, t->tags[i]);
	}
	PUT(&o, "],\"mentions\":[");
	for (int i = 0; i < t->nmentions; i++)
	{
		if (i)
			*o.p++ = ',';
		put_cstr(&o, t->mentions[i]);
	}
	PUT(&o, "],\"retweet_count\":");
	put_i64(&o, t->retweets);
	PUT(&o, ",\"like_count\":");
	put_i64(&o, t->likes);
	PUT(&o, ",\"reply_count\":");
	put_i64(&o, t->replies);
	PUT(&o, ",\"quote_count\":");
	put_i64(&o, t->quotes);
	PUT(&o, ",\"is_retweet\":");
	put_bool(&o, t->type == T_RETWEET);
	PUT(&o, ",\"is_reply\":");
	put_bool(&o, t->type == T_REPLY);
	PUT(&o, ",\"is_quote\":");
	put_bool(&o, t->type == T_QUOTE);
	PUT(&o, ",\"has_media\":");
	put_bool(&o, t->has_media);
	PUT(&o, ",\"has_url\":");
	put_bool(&o, t->has_url);
	PUT(&o, ",\"sentiment_score\":");
	put_fixed(&o, t->sentiment_milli, 3);
	PUT(&o, ",\"engagement_score\":");
	put_fixed(&o, t->engagement_e4, 4);
	PUT(&o, ",\"reach_estimate\":");
	put_i64(&o, t->reach);
	PUT(&o, ",\"source\":");
	put_cstr(&o, t->source);
	PUT(&o, ",\"user\":{\"user_id\":\"");
	put_u64(&o, t->user.id);
	PUT(&o, "\",\"username\":");
	put_cstr(&o, t->user.username);
	PUT(&o, ",\"display_name\":");
	put_cstr(&o, t->user.display_name);
	PUT(&o, ",\"followers_count\":");
	put_i64(&o, t->user.followers);
	PUT(&o, ",\"following_count\":");
	put_i64(&o, t->user.following);
	PUT(&o, ",\"verified\":");
	put_bool(&o, t->user.verified);
	PUT(&o, ",\"created_at\":\"");
	format_time(t->user.created_us, ts);
	put_bytes(&o, ts, 24);
	PUT(&o, "\",\"location\":");
	put_cstr(&o, t->user.location);
	PUT(&o, ",\"description\":");
	put_cstr(&o, t->user.description);
	*o.p++ = '}';
	if (t->type == T_RETWEET)
	{
		PUT(&o, ",\"original_tweet_id\":\"");
		put_bytes(&o, t->ref->id, 36);
		PUT(&o, "\",\"original_user\":");
		put_ref_user(&o, g, t->ref);
	}
	else if (t->type == T_REPLY)
	{
		PUT(&o, ",\"reply_to_tweet_id\":\"");
		put_bytes(&o, t->ref->id, 36);
		PUT(&o, "\",\"reply_to_user\":");
		put_ref_user(&o, g, t->ref);
	}
	else if (t->type == T_QUOTE)
	{
		PUT(&o, ",\"quoted_tweet_id\":\"");
		put_bytes(&o, t->ref->id, 36);
		PUT(&o, "\",\"quoted_user\":");
		put_ref_user(&o, g, t->ref);
		PUT(&o, ",\"quoted_text\":");
		put_str(&o, t->ref->body, t->ref->body_len);
	}
	*o.p++ = '}';
	*o.p = '\0';
	return (size_t) (o.p - out);
}

size_t
tg_next(TweetGenerator *g, int64_t created_at_us, char *out)
{
	tg_make(g, created_at_us);
	return write_fast(g, &g->t, INT64_MIN, out);
}

/* ------------------------------------------------------------------------
 * Updates and tombstones of recent tweets (tg_next_message).
 * ------------------------------------------------------------------------ */

void
tg_set_shares(TweetGenerator *g, double update_share, double delete_share)
{
	double		sum;

	/* NaN and out-of-range values count as their nearest bound */
	update_share = update_share > 0 ? (update_share < 1 ? update_share : 1) : 0;
	delete_share = delete_share > 0 ? (delete_share < 1 ? delete_share : 1) : 0;
	sum = update_share + delete_share;
	if (sum > 1)
	{
		update_share /= sum;
		delete_share /= sum;
	}
	g->update_share = update_share;
	g->delete_share = delete_share;
	if (sum > 0 && g->recent == NULL)
		g->recent = g->alloc(sizeof(Recent) * TG_RECENT);
}

/* Keeps the tweet just made by tg_make as the newest of the recent ones. */
static void
remember_recent(TweetGenerator *g)
{
	Recent	   *rec = &g->recent[g->recent_next];
	const Tweet *t = &g->t;

	memcpy(&rec->t, t, sizeof(Tweet));
	for (int i = 0; i < t->ntags; i++)
		if (t->tags[i] == t->lowered_tag)
			rec->t.tags[i] = rec->t.lowered_tag;
	if (t->ref != NULL)
	{
		memcpy(&rec->ref, t->ref, sizeof(Original));
		rec->t.ref = &rec->ref;
	}
	rec->last_ms = t->created_us / 1000 - (t->created_us % 1000 < 0 ? 1 : 0);
	rec->deleted = false;
	g->recent_next = (g->recent_next + 1) % TG_RECENT;
	if (g->recent_len < TG_RECENT)
		g->recent_len++;
}

/*
 * A recent tweet not deleted yet, uniformly among the last TG_RECENT new ones; NULL when
 * a few picks find only deleted ones (or there are none).
 */
static Recent *
pick_recent(TweetGenerator *g)
{
	for (int i = 0; i < 8 && g->recent_len > 0; i++)
	{
		Recent	   *rec = &g->recent[rng_below(&g->mrng, g->recent_len)];

		if (!rec->deleted)
			return rec;
	}
	return NULL;
}

/* v grown by a factor in [1.02, 1.32) and 0-2 more, within the message format's range. */
static int64_t
grow_count(Rng *r, int64_t v)
{
	double		x = (double) v * (1.02 + 0.3 * rng_unit(r)) + (double) rng_below(r, 3);

	return x < 2147483647.0 ? (int64_t) x : (v > 2147483647 ? v : 2147483647);
}

size_t
tg_next_message(TweetGenerator *g, int64_t at_us, char *out, TgKind *kind, char *tweet_id)
{
	Recent	   *rec = NULL;
	double		u;
	int64_t		at_ms;

	*kind = TG_NEW;
	if (g->update_share + g->delete_share > 0)
	{
		u = rng_unit(&g->mrng);
		if (u < g->update_share + g->delete_share && (rec = pick_recent(g)) != NULL)
			*kind = u < g->update_share ? TG_UPDATE : TG_DELETE;
	}
	if (*kind == TG_NEW)
	{
		tg_make(g, at_us);
		if (g->recent != NULL && g->update_share + g->delete_share > 0)
			remember_recent(g);
		memcpy(tweet_id, g->t.id, 37);
		return write_fast(g, &g->t, INT64_MIN, out);
	}

	memcpy(tweet_id, rec->t.id, 37);
	if (at_us == TG_TIMELINE)
		at_us = timeline_at(g, ((double) g->messages + rng_unit(&g->mrng)) / (double) g->opt.n);
	g->messages++;
	if (*kind == TG_DELETE)
	{
		rec->deleted = true;
		return 0;
	}

	/* a version later than the last one, also as written (to the millisecond) */
	at_ms = at_us / 1000 - (at_us % 1000 < 0 ? 1 : 0);
	rec->last_ms = at_ms > rec->last_ms ? at_ms : rec->last_ms + 1;
	rec->t.likes = grow_count(&g->mrng, rec->t.likes);
	rec->t.retweets = grow_count(&g->mrng, rec->t.retweets);
	rec->t.replies = grow_count(&g->mrng, rec->t.replies);
	rec->t.quotes = grow_count(&g->mrng, rec->t.quotes);
	rec->t.engagement_e4 = engagement_e4_of(&rec->t);
	rec->t.reach = rec->t.user.followers + rec->t.retweets * rec->t.reach_per_retweet;
	return write_fast(g, &rec->t, rec->last_ms * 1000, out);
}

/* ------------------------------------------------------------------------
 * Reference serializer: the same tweet as json-c objects.
 * ------------------------------------------------------------------------ */

static json_object *
jstr(const char *s, int len)
{
	return json_object_new_string_len(s, len);
}

static json_object *
jfixed(int64_t v, int decimals)
{
	char		buf[32];
	Out			o = {buf};
	double		scale = decimals == 3 ? 1e3 : 1e4;

	put_fixed(&o, v, decimals);
	*o.p = '\0';
	/* the same decimal text the fast path writes, and its nearest double */
	return json_object_new_double_s((double) v / scale, buf);
}

static json_object *
jtime(int64_t unix_us)
{
	char		ts[25];

	format_time(unix_us, ts);
	return json_object_new_string(ts);
}

static json_object *
jref_user(const TweetGenerator *g, const Original *ref)
{
	User		u;
	char		id[24];
	json_object *o = json_object_new_object();

	user_make(g, ref->user, &u);
	snprintf(id, sizeof(id), "%llu", (unsigned long long) u.id);
	json_object_object_add(o, "user_id", json_object_new_string(id));
	json_object_object_add(o, "username", json_object_new_string(u.username));
	return o;
}

struct json_object *
tg_next_json(TweetGenerator *g, int64_t created_at_us)
{
	const Tweet *t = &g->t;
	json_object *o = json_object_new_object();
	json_object *tags = json_object_new_array();
	json_object *mentions = json_object_new_array();
	json_object *user = json_object_new_object();
	char		id[24];

	tg_make(g, created_at_us);

	json_object_object_add(o, "tweet_id", jstr(t->id, 36));
	json_object_object_add(o, "text", jstr(t->body, t->body_len));
	json_object_object_add(o, "created_at", jtime(t->created_us));
	json_object_object_add(o, "tweet_type", json_object_new_string(type_names[t->type]));
	json_object_object_add(o, "language", json_object_new_string(t->user.lang));
	json_object_object_add(o, "region", json_object_new_string(t->user.region->name));
	for (int i = 0; i < t->ntags; i++)
		json_object_array_add(tags, json_object_new_string(t->tags[i]));
	json_object_object_add(o, "hashtags", tags);
	for (int i = 0; i < t->nmentions; i++)
		json_object_array_add(mentions, json_object_new_string(t->mentions[i]));
	json_object_object_add(o, "mentions", mentions);
	json_object_object_add(o, "retweet_count", json_object_new_int64(t->retweets));
	json_object_object_add(o, "like_count", json_object_new_int64(t->likes));
	json_object_object_add(o, "reply_count", json_object_new_int64(t->replies));
	json_object_object_add(o, "quote_count", json_object_new_int64(t->quotes));
	json_object_object_add(o, "is_retweet", json_object_new_boolean(t->type == T_RETWEET));
	json_object_object_add(o, "is_reply", json_object_new_boolean(t->type == T_REPLY));
	json_object_object_add(o, "is_quote", json_object_new_boolean(t->type == T_QUOTE));
	json_object_object_add(o, "has_media", json_object_new_boolean(t->has_media));
	json_object_object_add(o, "has_url", json_object_new_boolean(t->has_url));
	json_object_object_add(o, "sentiment_score", jfixed(t->sentiment_milli, 3));
	json_object_object_add(o, "engagement_score", jfixed(t->engagement_e4, 4));
	json_object_object_add(o, "reach_estimate", json_object_new_int64(t->reach));
	json_object_object_add(o, "source", json_object_new_string(t->source));

	snprintf(id, sizeof(id), "%llu", (unsigned long long) t->user.id);
	json_object_object_add(user, "user_id", json_object_new_string(id));
	json_object_object_add(user, "username", json_object_new_string(t->user.username));
	json_object_object_add(user, "display_name", json_object_new_string(t->user.display_name));
	json_object_object_add(user, "followers_count", json_object_new_int64(t->user.followers));
	json_object_object_add(user, "following_count", json_object_new_int64(t->user.following));
	json_object_object_add(user, "verified", json_object_new_boolean(t->user.verified));
	json_object_object_add(user, "created_at", jtime(t->user.created_us));
	json_object_object_add(user, "location", json_object_new_string(t->user.location));
	json_object_object_add(user, "description", json_object_new_string(t->user.description));
	json_object_object_add(o, "user", user);

	if (t->type == T_RETWEET)
	{
		json_object_object_add(o, "original_tweet_id", jstr(t->ref->id, 36));
		json_object_object_add(o, "original_user", jref_user(g, t->ref));
	}
	else if (t->type == T_REPLY)
	{
		json_object_object_add(o, "reply_to_tweet_id", jstr(t->ref->id, 36));
		json_object_object_add(o, "reply_to_user", jref_user(g, t->ref));
	}
	else if (t->type == T_QUOTE)
	{
		json_object_object_add(o, "quoted_tweet_id", jstr(t->ref->id, 36));
		json_object_object_add(o, "quoted_user", jref_user(g, t->ref));
		json_object_object_add(o, "quoted_text", jstr(t->ref->body, t->ref->body_len));
	}
	return o;
}
