/*
 * parse.c - tweet message -> typed silver row.  tweetlake.parse_tweet(raw) is called by the
 * bronze batch trigger for every new message; it never raises an error for bad content but
 * returns the reason in the "error" column, which sends the message to
 * bronze.dead_letters.  A well-formed message is read by a one-pass scan of our own (the
 * fast scan), any other by json-c, whose errors are the reasons; both feed the same field
 * rules.  tweetlake.tweet_id_of(raw) is the cheap scan behind bronze.tweet_id;
 * parse_tweet reads the tweet_id through the same scan, or the fast scan where that finds
 * the same (bronze_tweet_id), so bronze, silver and the dead letters always agree on it.
 * tweetlake.parse_fast_path = off sends every message the json-c way; with
 * tweetlake_parse_path_counts() (the messages each way took) it lets t/043_parse_paths.pl
 * check that both ways give the same rows.
 */
#include "tweetlake.h"
#include "parse.h"

#include <float.h>
#include <locale.h>
#include <math.h>
#include <wctype.h>

/* PostgreSQL declares a SQL function json_object(); json-c owns the name here */
#define json_object pg_sql_json_object
#include "catalog/pg_collation_d.h"
#include "catalog/pg_type_d.h"
#include "common/shortest_dec.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/formatting.h"
#include "utils/timestamp.h"
#undef json_object

#include <json.h>

PG_FUNCTION_INFO_V1(tweetlake_parse_tweet);
PG_FUNCTION_INFO_V1(tweetlake_tweet_id_of);
PG_FUNCTION_INFO_V1(tweetlake_parse_path_counts);

/* What a JSON field must hold. */
typedef enum FieldKind
{
	K_TWEET_ID,					/* non-empty string, <= TL_MAX_ID_BYTES */
	K_ID,						/* the same, or an integer 0 .. INT64_MAX
								 * (user ids) */
	K_STRING,					/* string, <= TL_MAX_FIELD_BYTES */
	K_CODE,						/* string, <= TL_MAX_CODE_BYTES (a gold key
								 * column) */
	K_TEXT,						/* string, <= tweetlake.max_text_length
								 * characters */
	K_TWEET_TYPE,				/* original | retweet | reply | quote */
	K_COUNT,					/* integer 0 .. INT32_MAX */
	K_BIGCOUNT,					/* integer 0 .. INT64_MAX */
	K_BOOL,
	K_NUMBER,					/* number, |x| <= TL_MAX_ENGAGEMENT_SCORE */
	K_SENTIMENT,				/* number in [-1, 1] */
	K_TIMESTAMP,				/* ISO 8601 string */
	K_HASHTAGS,					/* array of strings, '#' stripped */
	K_MENTIONS,					/* array of strings, '@' stripped */
	K_USER,						/* the author object */
	K_REF_USER					/* {"user_id": ...} of a referenced tweet's
								 * author */
} FieldKind;

typedef struct Field
{
	const char *key;
	FieldKind	kind;
	int			attno;
} Field;

/* Sorted by key for bsearch. */
static const Field tweet_fields[] = {
	{"created_at", K_TIMESTAMP, A_CREATED_AT},
	{"engagement_score", K_NUMBER, A_ENGAGEMENT_SCORE},
	{"has_media", K_BOOL, A_HAS_MEDIA},
	{"has_url", K_BOOL, A_HAS_URL},
	{"hashtags", K_HASHTAGS, A_HASHTAGS},
	{"is_quote", K_BOOL, A_IS_QUOTE},
	{"is_reply", K_BOOL, A_IS_REPLY},
	{"is_retweet", K_BOOL, A_IS_RETWEET},
	{"language", K_CODE, A_LANGUAGE},
	{"like_count", K_COUNT, A_LIKE_COUNT},
	{"mentions", K_MENTIONS, A_MENTIONS},
	{"original_tweet_id", K_ID, A_ORIGINAL_TWEET_ID},
	{"original_user", K_REF_USER, A_ORIGINAL_USER_ID},
	{"quote_count", K_COUNT, A_QUOTE_COUNT},
	{"quoted_text", K_TEXT, A_QUOTED_TEXT},
	{"quoted_tweet_id", K_ID, A_QUOTED_TWEET_ID},
	{"quoted_user", K_REF_USER, A_QUOTED_USER_ID},
	{"reach_estimate", K_BIGCOUNT, A_REACH},
	{"region", K_CODE, A_REGION},
	{"reply_count", K_COUNT, A_REPLY_COUNT},
	{"reply_to_tweet_id", K_ID, A_REPLY_TO_TWEET_ID},
	{"reply_to_user", K_REF_USER, A_REPLY_TO_USER_ID},
	{"retweet_count", K_COUNT, A_RETWEET_COUNT},
	{"sentiment_score", K_SENTIMENT, A_SENTIMENT},
	{"text", K_TEXT, A_TEXT},
	{"tweet_id", K_TWEET_ID, A_TWEET_ID},
	{"tweet_type", K_TWEET_TYPE, A_TWEET_TYPE},
	{"updated_at", K_TIMESTAMP, A_UPDATED_AT},
	{"user", K_USER, -1},
};

static const Field user_fields[] = {
	{"created_at", K_TIMESTAMP, A_USER_CREATED_AT},
	{"description", K_STRING, A_USER_DESCRIPTION},
	{"display_name", K_STRING, A_DISPLAY_NAME},
	{"followers_count", K_COUNT, A_FOLLOWERS},
	{"following_count", K_COUNT, A_FOLLOWING},
	{"location", K_STRING, A_USER_LOCATION},
	{"user_id", K_ID, A_USER_ID},
	{"username", K_STRING, A_USERNAME},
	{"verified", K_BOOL, A_VERIFIED},
};

/* What parse_field reads of a referenced author's object: only the id (see K_REF_USER). */
static const Field ref_user_fields[] = {
	{"user_id", K_ID, -1},
};

/* One parse in progress: the output row and the first error met. */
typedef struct ParseState
{
	Datum		values[N_ATTRS];
	bool		nulls[N_ATTRS];
	char	   *error;
} ParseState;

/*
 * A JSON value as the field rules below read it.  The fast scan (fast_parse) builds these
 * straight from the message for the common case; any other message goes through json-c
 * and its objects are wrapped in JVals as the rules reach them (jv_from_json_c), so both
 * paths share one set of rules.  The scalar members hold what json-c's getters return.
 */
typedef enum JType
{
	JV_NULL, JV_BOOL, JV_INT, JV_DOUBLE, JV_STRING, JV_ARRAY, JV_OBJECT
} JType;

typedef struct JVal
{
	JType		type;
	int			len;			/* string: bytes; array, object: members */
	struct JVal *first;			/* array, object: the first member (see
								 * jv_first) */
	struct JVal *next;			/* the next member of the same array or object */
	const char *key;			/* a member of an object: its key, as a C
								 * string */
	const Field *table;			/* the fields the fast scan looked the key up
								 * in */
	const Field *field;			/* ... and what it found there (NULL: none) */
	json_object *src;			/* json-c's object, whose members are wrapped
								 * on demand */
	const char *str;			/* string: the bytes, NUL-terminated */
	bool		b;				/* json_object_get_boolean */
	int64		i;				/* json_object_get_int64 */
	uint64		u;				/* json_object_get_uint64 */
	double		d;				/* json_object_get_double */
} JVal;

static json_tokener *tokener = NULL;

/* The backend's tokener, reset for a new document (strict JSON, UTF-8 checked). */
static json_tokener *
fresh_tokener(void)
{
	if (tokener == NULL)
	{
		tokener = json_tokener_new_ex(16);
		if (tokener == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		json_tokener_set_flags(tokener, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	}
	json_tokener_reset(tokener);
	return tokener;
}

static bool parse_object(ParseState *ps, const JVal *obj, const Field *fields, int nfields,
						 const char *prefix);

static int
field_cmp(const void *key, const void *elem)
{
	const unsigned char *k = (const unsigned char *) key;
	const unsigned char *f = (const unsigned char *) ((const Field *) elem)->key;

	/* strcmp's order: most keys differ in the first byte, which spares a call */
	if (k[0] != f[0])
		return k[0] < f[0] ? -1 : 1;
	return strcmp((const char *) key, (const char *) f);
}

static const char *
json_type_label(const JVal *v)
{
	switch (v->type)
	{
		case JV_NULL:
			return "null";
		case JV_BOOL:
			return "boolean";
		case JV_DOUBLE:
		case JV_INT:
			return "number";
		case JV_OBJECT:
			return "object";
		case JV_ARRAY:
			return "array";
		case JV_STRING:
			return "string";
	}
	return "unknown";
}

/* A json-c value (NULL: JSON null) as a JVal; the members of an array or object wait. */
static JVal *
jv_from_json_c(json_object *o)
{
	JVal	   *v = palloc0(sizeof(JVal));

	switch (json_object_get_type(o))
	{
		case json_type_null:
			v->type = JV_NULL;
			break;
		case json_type_boolean:
			v->type = JV_BOOL;
			v->b = json_object_get_boolean(o);
			break;
		case json_type_int:
			v->type = JV_INT;
			v->i = json_object_get_int64(o);
			v->u = json_object_get_uint64(o);
			v->d = json_object_get_double(o);
			break;
		case json_type_double:
			v->type = JV_DOUBLE;
			v->d = json_object_get_double(o);
			break;
		case json_type_string:
			v->type = JV_STRING;
			v->str = json_object_get_string(o);
			v->len = json_object_get_string_len(o);
			break;
		case json_type_array:
			v->type = JV_ARRAY;
			v->len = (int) json_object_array_length(o);
			v->src = o;
			break;
		case json_type_object:
			v->type = JV_OBJECT;
			v->len = json_object_object_length(o);
			v->src = o;
			break;
	}
	return v;
}

/*
 * The first member of an array or object (NULL: none).  json-c's members are wrapped only
 * when a rule reads them, in json-c's order, so a huge field nobody reads costs nothing.
 */
static const JVal *
jv_first(const JVal *v)
{
	JVal	   *self = (JVal *) v;
	JVal	  **link = &self->first;

	if (v->first != NULL || v->src == NULL || v->len == 0)
		return v->first;
	if (v->type == JV_OBJECT)
	{
		json_object_object_foreach(v->src, key, val)
		{
			*link = jv_from_json_c(val);
			(*link)->key = key;
			link = &(*link)->next;
		}
	}
	else
	{
		for (int i = 0; i < v->len; i++)
		{
			*link = jv_from_json_c(json_object_array_get_idx(v->src, i));
			link = &(*link)->next;
		}
	}
	return v->first;
}

/* The value of an object's key, as json-c finds it (the last one); NULL: no such key. */
static const JVal *
jv_member(const JVal *obj, const char *key)
{
	const JVal *found = NULL;

	for (const JVal *m = jv_first(obj); m != NULL; m = m->next)
		if (strcmp(m->key, key) == 0)
			found = m;
	return found;
}

static bool fail(ParseState *ps, const char *fmt,...) pg_attribute_printf(2, 3);

static bool
fail(ParseState *ps, const char *fmt,...)
{
	va_list		args;
	StringInfoData buf;

	if (ps->error)
		return false;
	initStringInfo(&buf);
	for (;;)
	{
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	ps->error = buf.data;
	return false;
}

static bool
wrong_type(ParseState *ps, const char *prefix, const char *key, const char *expected, const JVal *v)
{
	return fail(ps, "%s%s: expected %s, got %s", prefix, key, expected, json_type_label(v));
}

/*
 * A JSON string as PostgreSQL text.  json-c decodes \u escapes, so the bytes are checked
 * again here: "\u0000" would be a NUL and a lone surrogate invalid UTF-8.
 */
static bool
get_string(ParseState *ps, const JVal *v, const char *prefix, const char *key,
		   int max_bytes, const char **str, int *len)
{
	const char *s;
	int			n;

	if (v->type != JV_STRING)
		return wrong_type(ps, prefix, key, "string", v);
	s = v->str;
	n = v->len;
	if (max_bytes > 0 && n > max_bytes)
		return fail(ps, "%s%s: longer than %d bytes (%d)", prefix, key, max_bytes, n);
	if (memchr(s, '\0', n) != NULL)
		return fail(ps, "%s%s: contains a NUL byte", prefix, key);
	if (!pg_verify_mbstr(PG_UTF8, s, n, true))
		return fail(ps, "%s%s: invalid UTF-8", prefix, key);
	*str = s;
	*len = n;
	return true;
}

static bool get_integer(ParseState *ps, const JVal *v, const char *prefix, const char *key,
						int64 max, int64 *out);

/*
 * An id: a non-empty string, or, when allow_int, an integer (user ids often travel as
 * numbers).  json-c clamps integers beyond 64 bits, so only 0 .. INT64_MAX is taken: two
 * different large numbers must not become the same id.
 */
static bool
get_id(ParseState *ps, const JVal *v, const char *prefix, const char *key, bool allow_int,
	   Datum *out)
{
	const char *s;
	int			n;

	if (allow_int && v->type == JV_INT)
	{
		int64		i;

		if (!get_integer(ps, v, prefix, key, PG_INT64_MAX, &i))
			return false;
		*out = CStringGetTextDatum(psprintf(INT64_FORMAT, i));
		return true;
	}
	if (!get_string(ps, v, prefix, key, TL_MAX_ID_BYTES, &s, &n))
		return false;
	if (n == 0)
		return fail(ps, "%s%s: empty", prefix, key);
	*out = PointerGetDatum(cstring_to_text_with_len(s, n));
	return true;
}

/*
 * An integer 0 .. max.  12.0 is an integer written by a float-minded producer and is taken;
 * 12.5, 1e400 and "12" are not.
 */
static bool
get_integer(ParseState *ps, const JVal *v, const char *prefix, const char *key,
			int64 max, int64 *out)
{
	int64		i;

	if (v->type == JV_INT)
	{
		/*
		 * json-c keeps integers above INT64_MAX as uint64 and clamps both
		 * get_int64 and, beyond 64 bits, get_uint64 (to UINT64_MAX) and
		 * negatives (to INT64_MIN)
		 */
		i = v->i;
		if (i == PG_INT64_MAX && v->u != (uint64) PG_INT64_MAX)
		{
			uint64		u = v->u;

			if (u == PG_UINT64_MAX)
				return fail(ps, "%s%s: out of range (" UINT64_FORMAT " or more)", prefix, key, u);
			return fail(ps, "%s%s: out of range (" UINT64_FORMAT ")", prefix, key, u);
		}
	}
	else if (v->type == JV_DOUBLE)
	{
		double		d = v->d;
		char		shown[DOUBLE_SHORTEST_DECIMAL_LEN];

		if (!isfinite(d))
			return fail(ps, "%s%s: not a finite number", prefix, key);
		if (d != floor(d))
			return wrong_type(ps, prefix, key, "integer", v);
		double_to_shortest_decimal_buf(d, shown);
		if (d < 0)
			return fail(ps, "%s%s: negative (%s)", prefix, key, shown);

		/*
		 * (double) max + 1 is exact for INT32_MAX and rounds to 2^63 for
		 * INT64_MAX
		 */
		if (d >= (double) max + 1.0)
			return fail(ps, "%s%s: out of range (%s)", prefix, key, shown);
		i = (int64) d;			/* -0.0 becomes 0 */
	}
	else
		return wrong_type(ps, prefix, key, "integer", v);

	if (i < 0)
		return fail(ps, "%s%s: negative (" INT64_FORMAT ")", prefix, key, i);
	if (i > max)
		return fail(ps, "%s%s: out of range (" INT64_FORMAT ")", prefix, key, i);
	*out = i;
	return true;
}

/*
 * A number in [-max, max] (or [-1, 1] for sentiment).  Infinity, NaN (json-c reads 1e400 as
 * inf) and subnormal numbers (0 < |x| < DBL_MIN) are refused: an average of a few of them
 * underflows double precision, which fails the whole batch's gold upsert.  -0 is stored as
 * 0, so silver and the numeric sums of gold agree.
 */
static bool
get_number(ParseState *ps, const JVal *v, const char *prefix, const char *key, double max,
		   double *out)
{
	double		d;
	char		shown[DOUBLE_SHORTEST_DECIMAL_LEN];

	*out = 0.0;
	if (v->type != JV_DOUBLE && v->type != JV_INT)
		return wrong_type(ps, prefix, key, "number", v);
	d = v->d;
	if (!isfinite(d))
		return fail(ps, "%s%s: not a finite number", prefix, key);
	/* the value as PostgreSQL would print it: exact, as short as possible */
	double_to_shortest_decimal_buf(d, shown);
	if (d == 0.0)
		d = 0.0;
	else if (fabs(d) < DBL_MIN)
		return fail(ps, "%s%s: %s is subnormal (0 < |x| < 2.2250738585072014e-308)",
					prefix, key, shown);
	if (d < -max || d > max)
		return fail(ps, "%s%s: %s is outside [%g, %g]", prefix, key, shown, -max, max);
	*out = d;
	return true;
}

/*
 * Unicode lower case of a UTF-8 string, the same whatever the database's locale: glibc's
 * built-in C.UTF-8 case tables, so "#ÉTÉ" and "#été" are one tag in every database.
 */
static text *
utf8_lower(const char *s, int len)
{
	static locale_t c_utf8 = (locale_t) 0;
	static bool looked_up = false;
	StringInfoData buf;
	const unsigned char *p = (const unsigned char *) s;
	const unsigned char *end = p + len;

	if (!looked_up)
	{
		c_utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t) 0);
		looked_up = true;
	}
	if (c_utf8 == (locale_t) 0)
		return cstring_to_text(str_tolower(s, len, DEFAULT_COLLATION_OID));

	initStringInfo(&buf);
	appendStringInfoSpaces(&buf, VARHDRSZ);
	while (p < end)
	{
		int			n = pg_utf_mblen(p);
		pg_wchar	c = utf8_to_unicode(p);
		unsigned char out[8];

		c = (pg_wchar) towlower_l((wint_t) c, c_utf8);
		unicode_to_utf8(c, out);
		appendBinaryStringInfo(&buf, (const char *) out, pg_utf_mblen(out));
		p += n;
	}
	SET_VARSIZE(buf.data, buf.len);
	return (text *) buf.data;
}

/* Lower case, leading marker and surrounding blanks removed; NULL when nothing is left. */
static text *
normalise_tag(const char *s, int len, char marker)
{
	const char *end = s + len;

	while (s < end && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
		s++;
	while (s < end && *s == marker)
		s++;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
		end--;
	if (s == end)
		return NULL;

	for (const char *c = s; c < end; c++)
		if ((unsigned char) *c >= 0x80)
			return utf8_lower(s, end - s);

	{
		text	   *t = (text *) palloc(VARHDRSZ + (end - s));
		char	   *d = VARDATA(t);

		SET_VARSIZE(t, VARHDRSZ + (end - s));
		for (const char *c = s; c < end; c++)
			*d++ = (*c >= 'A' && *c <= 'Z') ? *c + ('a' - 'A') : *c;
		return t;
	}
}

static bool
get_tags(ParseState *ps, const JVal *v, const char *key, char marker, Datum *out)
{
	size_t		n;
	Datum	   *items;
	int			nitems = 0;
	const JVal *e;

	if (v->type != JV_ARRAY)
		return wrong_type(ps, "", key, "array of strings", v);
	n = v->len;
	if (n > TL_MAX_TAGS)
		return fail(ps, "%s: more than %d entries (%zu)", key, TL_MAX_TAGS, n);

	items = palloc(sizeof(Datum) * (n + 1));
	e = jv_first(v);
	for (size_t i = 0; i < n; i++, e = e->next)
	{
		const char *s;
		int			len;
		text	   *tag;
		bool		seen = false;

		if (e->type != JV_STRING)
			return fail(ps, "%s[%zu]: expected string, got %s", key, i,
						json_type_label(e));
		if (!get_string(ps, e, "", key, TL_MAX_FIELD_BYTES, &s, &len))
			return false;
		tag = normalise_tag(s, len, marker);
		if (tag == NULL)
			continue;			/* "#" or "" carries no tag */

		/*
		 * The limit is on the tag as stored, a key column of gold: without
		 * the marker and in lower case, which can be longer in UTF-8 ("Ⱥ" is
		 * 2 bytes, "ⱥ" 3).
		 */
		if (VARSIZE_ANY_EXHDR(tag) > TL_MAX_TAG_BYTES)
			return fail(ps, "%s: longer than %d bytes%s (%d)", key, TL_MAX_TAG_BYTES,
						(int) VARSIZE_ANY_EXHDR(tag) > len ? " once lower-cased" : "",
						(int) VARSIZE_ANY_EXHDR(tag));
		for (int j = 0; j < nitems && !seen; j++)
		{
			text	   *o = DatumGetTextPP(items[j]);

			seen = VARSIZE_ANY_EXHDR(o) == VARSIZE_ANY_EXHDR(tag) &&
				memcmp(VARDATA_ANY(o), VARDATA_ANY(tag), VARSIZE_ANY_EXHDR(tag)) == 0;
		}
		if (!seen)
			items[nitems++] = PointerGetDatum(tag);
	}
	*out = PointerGetDatum(construct_array(items, nitems, TEXTOID, -1, false, TYPALIGN_INT));
	return true;
}

/* Converts one field's value into the output row. */
static bool
parse_field(ParseState *ps, const Field *f, const JVal *v, const char *prefix)
{
	const char *s;
	int			len;
	int64		i;
	double		d;
	TimestampTz ts;

	/* An explicit null is the same as a missing field. */
	if (v == NULL || v->type == JV_NULL)
		return true;

	switch (f->kind)
	{
		case K_TWEET_ID:
		case K_ID:
			if (!get_id(ps, v, prefix, f->key, f->kind == K_ID, &ps->values[f->attno]))
				return false;
			break;
		case K_STRING:
		case K_CODE:
			if (!get_string(ps, v, prefix, f->key,
							f->kind == K_CODE ? TL_MAX_CODE_BYTES : TL_MAX_FIELD_BYTES, &s, &len))
				return false;
			ps->values[f->attno] = PointerGetDatum(cstring_to_text_with_len(s, len));
			break;
		case K_TEXT:
			{
				int			chars;

				if (!get_string(ps, v, prefix, f->key, tweetlake_max_text_length * MAX_MULTIBYTE_CHAR_LEN,
								&s, &len))
					return false;
				chars = pg_mbstrlen_with_len(s, len);
				if (chars > tweetlake_max_text_length)
					return fail(ps, "%s%s: longer than %d characters (%d)", prefix, f->key,
								tweetlake_max_text_length, chars);
				ps->values[f->attno] = PointerGetDatum(cstring_to_text_with_len(s, len));
				if (f->attno == A_TEXT)
				{
					ps->values[A_TEXT_LENGTH] = Int32GetDatum(chars);
					ps->nulls[A_TEXT_LENGTH] = false;
				}
				break;
			}
		case K_TWEET_TYPE:
			if (!get_string(ps, v, prefix, f->key, TL_MAX_CODE_BYTES, &s, &len))
				return false;
			if (strcmp(s, "original") != 0 && strcmp(s, "retweet") != 0 &&
				strcmp(s, "reply") != 0 && strcmp(s, "quote") != 0)
				return fail(ps, "%s%s: \"%s\" is not one of original, retweet, reply, quote",
							prefix, f->key, s);
			ps->values[f->attno] = PointerGetDatum(cstring_to_text_with_len(s, len));
			break;
		case K_COUNT:
			if (!get_integer(ps, v, prefix, f->key, PG_INT32_MAX, &i))
				return false;
			ps->values[f->attno] = Int32GetDatum((int32) i);
			break;
		case K_BIGCOUNT:
			if (!get_integer(ps, v, prefix, f->key, PG_INT64_MAX, &i))
				return false;
			ps->values[f->attno] = Int64GetDatum(i);
			break;
		case K_BOOL:
			if (v->type != JV_BOOL)
				return wrong_type(ps, prefix, f->key, "boolean", v);
			ps->values[f->attno] = BoolGetDatum(v->b);
			break;
		case K_NUMBER:
		case K_SENTIMENT:
			if (!get_number(ps, v, prefix, f->key,
							f->kind == K_SENTIMENT ? 1.0 : TL_MAX_ENGAGEMENT_SCORE, &d))
				return false;
			ps->values[f->attno] = Float8GetDatum(d);
			break;
		case K_TIMESTAMP:
			if (!get_string(ps, v, prefix, f->key, 64, &s, &len))
				return false;
			if (!tl_parse_timestamp(s, len, &ts))
				return fail(ps, "%s%s: \"%s\" is not an ISO 8601 timestamp", prefix, f->key, s);
			ps->values[f->attno] = TimestampTzGetDatum(ts);
			break;
		case K_HASHTAGS:
			if (!get_tags(ps, v, f->key, '#', &ps->values[f->attno]))
				return false;
			break;
		case K_MENTIONS:
			if (!get_tags(ps, v, f->key, '@', &ps->values[f->attno]))
				return false;
			break;
		case K_USER:
			if (v->type != JV_OBJECT)
				return wrong_type(ps, prefix, f->key, "object", v);
			return parse_object(ps, v, user_fields, lengthof(user_fields), "user.");
		case K_REF_USER:
			{
				const JVal *id;

				/* a bare id is accepted for the referenced author */
				if (v->type == JV_STRING || v->type == JV_INT)
					id = v;
				else if (v->type == JV_OBJECT)
				{
					id = jv_member(v, "user_id");
					if (id == NULL || id->type == JV_NULL)
						return true;
				}
				else
					return wrong_type(ps, prefix, f->key, "object", v);
				if (!get_id(ps, id, prefix, f->key, true, &ps->values[f->attno]))
					return false;
				break;
			}
	}
	ps->nulls[f->attno] = false;
	return true;
}

static bool
parse_object(ParseState *ps, const JVal *obj, const Field *fields, int nfields, const char *prefix)
{
	for (const JVal *m = jv_first(obj); m != NULL; m = m->next)
	{
		const Field *f = m->field;

		if (m->table != fields)
			f = bsearch(m->key, fields, nfields, sizeof(Field), field_cmp);

		/* unknown fields stay in bronze.tweets.raw and are ignored here */
		if (f != NULL && !parse_field(ps, f, m, prefix))
			return false;
	}
	return true;
}

static int
hex4(const char *p)
{
	int			v = 0;

	for (int i = 0; i < 4; i++)
	{
		char		c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/*
 * json-c turns an unpaired UTF-16 surrogate escape ("\ud800") into U+FFFD without a word;
 * that would change the text, so such a message is rejected instead.  Returns the byte
 * offset of the first unpaired surrogate, or -1.
 */
static int
find_unpaired_surrogate(const char *data, int len)
{
	const char *end = data + len;
	const char *p = data;

	while ((p = memchr(p, '\\', end - p)) != NULL)
	{
		int			u;

		if (p + 1 >= end)
			break;
		if (p[1] != 'u' || p + 6 > end || (u = hex4(p + 2)) < 0)
		{
			p += 2;				/* any other escape, e.g. \\ or \" */
			continue;
		}
		if (u >= 0xDC00 && u <= 0xDFFF)
			return p - data;
		if (u >= 0xD800 && u <= 0xDBFF)
		{
			int			lo;

			if (p + 12 > end || p[6] != '\\' || p[7] != 'u' ||
				(lo = hex4(p + 8)) < 0xDC00 || lo > 0xDFFF)
				return p - data;
			p += 12;
			continue;
		}
		p += 6;
	}
	return -1;
}

/* ------------------------------------------------------------------------
 * The raw scan: the top-level object of a message, and the author objects parse_tweet
 * reads, walked straight over the bytes without json-c and without allocating, so a message
 * of any size costs one pass and no memory.  It finds
 *  - the tweet_id: tweetlake.tweet_id_of() (bronze.tweets.tweet_id) returns it and
 *    parse_tweet reports it, so bronze, silver and the dead letters agree by construction;
 *  - duplicate keys, which json-c resolves silently (the last one wins): parse_tweet
 *    refuses a message that repeats a field it reads.
 * Keys are decoded as json-c decodes them: escapes resolved ("tweet\u005fid" is tweet_id)
 * and cut at the first NUL (json-c keeps keys as C strings: "tweet_id\u0000x" is tweet_id).
 * Values are only skipped, never decoded, except the tweet_id (at most TL_MAX_ID_BYTES).
 * ------------------------------------------------------------------------ */

typedef struct RawScan
{
	int			tweet_ids;		/* top-level keys that read as tweet_id */
	const char *tweet_id;		/* the last one's value at its opening quote;
								 * NULL: no string */
	const Field *dup;			/* the first field parse_tweet reads that
								 * appears twice */
	const Field *dup_parent;	/* the author object it is in; NULL: the top
								 * level */
} RawScan;

/* Longest key worth decoding: longer ones are no field parse_tweet reads. */
#define KEY_BYTES 32

static const char *
skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* p at the opening quote; returns the position after the closing quote, or NULL. */
static const char *
skip_string(const char *p, const char *end)
{
	for (p++; p < end; p++)
	{
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

/* Skips one value of any kind, without recursion; NULL on malformed input. */
static const char *
skip_value(const char *p, const char *end)
{
	int			depth = 0;

	do
	{
		if (p >= end)
			return NULL;
		switch (*p)
		{
			case '"':
				p = skip_string(p, end);
				if (p == NULL)
					return NULL;
				break;
			case '{':
			case '[':
				depth++;
				p++;
				break;
			case '}':
			case ']':
				if (--depth < 0)
					return NULL;
				p++;
				break;
			default:
				if (depth == 0)
				{
					/* scalar: up to the next delimiter */
					while (p < end && *p != ',' && *p != '}' && *p != ']' &&
						   *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
						p++;
					return p;
				}
				p++;
		}
	} while (depth > 0);
	return p;
}

/*
 * Decodes the JSON string whose opening quote is at p as json-c does: the first cap bytes
 * go to buf, *len counts them all.  *nul is the offset of the first NUL (-1: none); *lone is
 * set when an unpaired surrogate escape was met (json-c writes U+FFFD for it, and so does
 * this).  Returns the position after the closing quote, or NULL for an unterminated string
 * or an escape JSON does not have.
 */
static const char *
decode_string(const char *p, const char *end, char *buf, int cap, int *len, int *nul,
			  bool *lone)
{
	int			n = 0;

	*nul = -1;
	*lone = false;
	for (p++; p < end;)
	{
		unsigned char one;
		unsigned char utf8[4];
		const unsigned char *out = &one;
		int			k = 1;

		if (*p == '"')
		{
			*len = n;
			return p + 1;
		}
		if (*p != '\\')
			one = (unsigned char) *p++;
		else if (end - p < 2)
			return NULL;
		else if (p[1] != 'u')
		{
			switch (p[1])
			{
				case '"':
				case '\\':
				case '/':
					one = p[1];
					break;
				case 'b':
					one = '\b';
					break;
				case 'f':
					one = '\f';
					break;
				case 'n':
					one = '\n';
					break;
				case 'r':
					one = '\r';
					break;
				case 't':
					one = '\t';
					break;
				default:
					return NULL;
			}
			p += 2;
		}
		else
		{
			int			u,
						lo;

			if (end - p < 6 || (u = hex4(p + 2)) < 0)
				return NULL;
			p += 6;
			if (u >= 0xD800 && u <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
				(lo = hex4(p + 2)) >= 0xDC00 && lo <= 0xDFFF)
			{
				u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
				p += 6;
			}
			else if (u >= 0xD800 && u <= 0xDFFF)
			{
				u = 0xFFFD;
				*lone = true;
			}
			unicode_to_utf8((pg_wchar) u, utf8);
			out = utf8;
			k = pg_utf_mblen(utf8);
		}
		for (int i = 0; i < k; i++, n++)
		{
			if (out[i] == '\0' && *nul < 0)
				*nul = n;
			if (n < cap)
				buf[n] = (char) out[i];
		}
	}
	return NULL;
}

/*
 * Scans the object at p (its opening brace) whose known keys are fields; parent is the
 * field this object is the value of (NULL: the top level).  Returns the position after
 * the closing brace, or NULL when the object is malformed.
 */
static const char *
scan_object(const char *p, const char *end, const Field *fields, int nfields,
			const Field *parent, RawScan *rs)
{
	uint64		seen = 0;

	Assert(nfields <= 64);
	p = skip_ws(p + 1, end);
	if (p < end && *p == '}')
		return p + 1;
	for (;;)
	{
		char		key[KEY_BYTES + 1];
		int			klen,
					nul;
		bool		lone;
		const Field *f = NULL;

		if (p >= end || *p != '"')
			return NULL;
		p = decode_string(p, end, key, KEY_BYTES, &klen, &nul, &lone);
		if (p == NULL)
			return NULL;
		if (nul >= 0)
			klen = nul;
		if (klen <= KEY_BYTES)
		{
			key[klen] = '\0';
			f = bsearch(key, fields, nfields, sizeof(Field), field_cmp);
		}
		p = skip_ws(p, end);
		if (p >= end || *p != ':')
			return NULL;
		p = skip_ws(p + 1, end);

		if (f != NULL)
		{
			uint64		bit = UINT64CONST(1) << (f - fields);

			if ((seen & bit) != 0 && rs->dup == NULL)
			{
				rs->dup = f;
				rs->dup_parent = parent;
			}
			seen |= bit;
			if (f->kind == K_TWEET_ID)
			{
				rs->tweet_ids++;
				rs->tweet_id = (p < end && *p == '"') ? p : NULL;
			}
		}
		if (f != NULL && (f->kind == K_USER || f->kind == K_REF_USER) && p < end && *p == '{')
		{
			if (f->kind == K_USER)
				p = scan_object(p, end, user_fields, lengthof(user_fields), f, rs);
			else
				p = scan_object(p, end, ref_user_fields, lengthof(ref_user_fields), f, rs);
		}
		else
			p = skip_value(p, end);
		if (p == NULL)
			return NULL;

		p = skip_ws(p, end);
		if (p < end && *p == ',')
			p = skip_ws(p + 1, end);
		else if (p < end && *p == '}')
			return p + 1;
		else
			return NULL;
	}
}

/* Scans a message; false when it does not start with a well-formed object. */
static bool
scan_message(const char *data, const char *end, RawScan *rs)
{
	const char *p = skip_ws(data, end);

	memset(rs, 0, sizeof(*rs));
	return p < end && *p == '{' &&
		scan_object(p, end, tweet_fields, lengthof(tweet_fields), NULL, rs) != NULL;
}

/*
 * A decoded tweet_id as bronze.tweets.tweet_id holds it (NULL: none): 1 to TL_MAX_ID_BYTES
 * bytes of UTF-8, no NUL, no unpaired surrogate, as parse_tweet would take it.
 */
static text *
bronze_tweet_id(const char *s, int n, int nul, bool lone)
{
	if (n == 0 || n > TL_MAX_ID_BYTES || nul >= 0 || lone ||
		!pg_verify_mbstr(PG_UTF8, s, n, true))
		return NULL;
	return cstring_to_text_with_len(s, n);
}

/*
 * The message's tweet_id as bronze.tweets.tweet_id holds it, from its scan (NULL: the scan
 * failed): the value of its only top-level tweet_id key, when that is a string parse_tweet
 * would take.
 */
static text *
scanned_tweet_id(const RawScan *rs, const char *end)
{
	char		buf[TL_MAX_ID_BYTES];
	int			n,
				nul;
	bool		lone;

	if (rs == NULL || rs->tweet_ids != 1 || rs->tweet_id == NULL)
		return NULL;
	if (decode_string(rs->tweet_id, end, buf, sizeof(buf), &n, &nul, &lone) == NULL)
		return NULL;
	return bronze_tweet_id(buf, n, nul, lone);
}

/* ------------------------------------------------------------------------
 * The fast scan: the common message, well-formed JSON that json-c reads without a question,
 * parsed in one pass into JVals held in two buffers the backend keeps, with no allocation
 * per value.  It takes a message only when json-c would read the same values from it and
 * the raw scan would find the same tweet_id and no repeated field; anything else (a syntax
 * error, a number json-c reads its own way: leading zeros, -0, 19 digits or more; "\u0000",
 * a surrogate escape that is not a pair, invalid UTF-8, deep nesting, a repeated field, a
 * large message) goes the json-c way, whose error messages are the dead letters' reasons.
 * ------------------------------------------------------------------------ */

#define FAST_MAX_BYTES		(64 * 1024) /* larger messages go the json-c way */
#define FAST_MAX_VALUES		512
#define FAST_MAX_DEPTH		8	/* well below the json-c tokener's 16 */

typedef struct FastScan
{
	const char *p;				/* the next byte to read */
	const char *end;
	JVal	   *vals;			/* FAST_MAX_VALUES of them */
	int			nvals;
	char	   *buf;			/* decoded strings and keys, each
								 * NUL-terminated */
	int			used;
	int			depth;
	const JVal *tweet_id;		/* the top-level tweet_id's value; NULL: none */
} FastScan;

static JVal *fast_vals = NULL;
static char *fast_buf = NULL;
static int	fast_buf_size = 0;

static JVal *fast_value(FastScan *fs, const Field *fields, int nfields);

/*
 * Decodes the string at fs->p (its opening quote) into fs->buf as json-c decodes it.  A
 * message's decoded strings never take more bytes than it has (what an escape stands for
 * is never longer than the escape, and each string's NUL takes the place of its quotes).
 */
static bool
fast_string(FastScan *fs, const char **str, int *len)
{
	const char *p = fs->p + 1;
	const char *end = fs->end;
	char	   *out = fs->buf + fs->used;
	char	   *o = out;

	for (;;)
	{
		const char *run = p;
		int			u,
					lo;

		while (p < end && *p != '"' && *p != '\\')
			p++;
		memcpy(o, run, p - run);
		o += p - run;
		if (p >= end)
			return false;
		if (*p == '"')
			break;
		if (end - p < 2)
			return false;
		switch (p[1])
		{
			case '"':
			case '\\':
			case '/':
				*o++ = p[1];
				break;
			case 'b':
				*o++ = '\b';
				break;
			case 'f':
				*o++ = '\f';
				break;
			case 'n':
				*o++ = '\n';
				break;
			case 'r':
				*o++ = '\r';
				break;
			case 't':
				*o++ = '\t';
				break;
			case 'u':
				if (end - p < 6 || (u = hex4(p + 2)) <= 0)
					return false;	/* not hex, or a NUL */
				if (u >= 0xD800 && u <= 0xDBFF)
				{
					if (end - p < 12 || p[6] != '\\' || p[7] != 'u' ||
						(lo = hex4(p + 8)) < 0xDC00 || lo > 0xDFFF)
						return false;
					u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
					p += 6;
				}
				else if (u >= 0xDC00 && u <= 0xDFFF)
					return false;
				unicode_to_utf8((pg_wchar) u, (unsigned char *) o);
				o += pg_utf_mblen((unsigned char *) o);
				p += 4;
				break;
			default:
				return false;
		}
		p += 2;
	}
	*o = '\0';
	*str = out;
	*len = o - out;
	fs->used += o - out + 1;
	fs->p = p + 1;
	return true;
}

/*
 * A number in JSON's own syntax.  json-c keeps one without '.' or exponent as an integer
 * (strtoll), the others as a double (strtod of the same text); integers of up to 18
 * digits are the only ones sure to fit.
 */
static bool
fast_number(FastScan *fs, JVal *v)
{
	const char *start = fs->p;
	const char *p = start;
	const char *end = fs->end;
	const char *digits;
	bool		neg = false;
	bool		is_double = false;

	if (*p == '-')
	{
		neg = true;
		p++;
	}
	digits = p;
	if (p >= end || *p < '0' || *p > '9')
		return false;
	if (*p == '0')
	{
		p++;
		if (p < end && *p >= '0' && *p <= '9')
			return false;		/* leading zeros */
	}
	else
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	if (p < end && *p == '.')
	{
		is_double = true;
		p++;
		if (p >= end || *p < '0' || *p > '9')
			return false;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E'))
	{
		is_double = true;
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p >= end || *p < '0' || *p > '9')
			return false;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}

	if (!is_double)
	{
		int64		i = 0;

		if (p - digits > 18 || (neg && *digits == '0'))
			return false;		/* beyond int64, or -0 */
		for (const char *d = digits; d < p; d++)
			i = i * 10 + (*d - '0');
		v->type = JV_INT;
		v->i = neg ? -i : i;
		v->u = neg ? 0 : (uint64) i;
		v->d = (double) v->i;
	}
	else
	{
		char		num[64];
		char	   *num_end;

		if (p - start >= sizeof(num))
			return false;
		memcpy(num, start, p - start);
		num[p - start] = '\0';
		v->type = JV_DOUBLE;
		v->d = strtod(num, &num_end);
		if (num_end != num + (p - start))
			return false;
	}
	fs->p = p;
	return true;
}

/*
 * The object at fs->p (its opening brace) into v; fields (NULL: none) are the fields its
 * keys are looked up in, for the field rules and to find a repeated one, as the raw scan
 * does: the top level, the author and the referenced authors.
 */
static bool
fast_object(FastScan *fs, JVal *v, const Field *fields, int nfields)
{
	uint64		seen = 0;
	JVal	  **link = &v->first;

	v->type = JV_OBJECT;
	if (++fs->depth > FAST_MAX_DEPTH)
		return false;
	fs->p = skip_ws(fs->p + 1, fs->end);
	if (fs->p < fs->end && *fs->p == '}')
	{
		fs->p++;
		fs->depth--;
		return true;
	}
	for (;;)
	{
		const char *key;
		int			klen;
		const Field *f = NULL;
		const Field *sub = NULL;
		int			nsub = 0;
		JVal	   *m;

		if (fs->p >= fs->end || *fs->p != '"' || !fast_string(fs, &key, &klen))
			return false;
		fs->p = skip_ws(fs->p, fs->end);
		if (fs->p >= fs->end || *fs->p != ':')
			return false;
		fs->p = skip_ws(fs->p + 1, fs->end);
		if (fields != NULL &&
			(f = bsearch(key, fields, nfields, sizeof(Field), field_cmp)) != NULL)
		{
			uint64		bit = UINT64CONST(1) << (f - fields);

			if ((seen & bit) != 0)
				return false;	/* a repeated field: the json-c way refuses it */
			seen |= bit;
			if (f->kind == K_USER)
			{
				sub = user_fields;
				nsub = lengthof(user_fields);
			}
			else if (f->kind == K_REF_USER)
			{
				sub = ref_user_fields;
				nsub = lengthof(ref_user_fields);
			}
		}
		m = fast_value(fs, sub, nsub);
		if (m == NULL)
			return false;
		m->key = key;
		m->table = fields;
		m->field = f;
		if (fields == tweet_fields && f != NULL && f->kind == K_TWEET_ID)
			fs->tweet_id = m;
		*link = m;
		link = &m->next;
		v->len++;

		fs->p = skip_ws(fs->p, fs->end);
		if (fs->p < fs->end && *fs->p == ',')
			fs->p = skip_ws(fs->p + 1, fs->end);
		else if (fs->p < fs->end && *fs->p == '}')
		{
			fs->p++;
			fs->depth--;
			return true;
		}
		else
			return false;
	}
}

/* The array at fs->p (its opening bracket) into v. */
static bool
fast_array(FastScan *fs, JVal *v)
{
	JVal	  **link = &v->first;

	v->type = JV_ARRAY;
	if (++fs->depth > FAST_MAX_DEPTH)
		return false;
	fs->p = skip_ws(fs->p + 1, fs->end);
	if (fs->p < fs->end && *fs->p == ']')
	{
		fs->p++;
		fs->depth--;
		return true;
	}
	for (;;)
	{
		JVal	   *e = fast_value(fs, NULL, 0);

		if (e == NULL)
			return false;
		*link = e;
		link = &e->next;
		v->len++;

		fs->p = skip_ws(fs->p, fs->end);
		if (fs->p < fs->end && *fs->p == ',')
			fs->p = skip_ws(fs->p + 1, fs->end);
		else if (fs->p < fs->end && *fs->p == ']')
		{
			fs->p++;
			fs->depth--;
			return true;
		}
		else
			return false;
	}
}

/* The value at fs->p; NULL when the message is not one for the fast scan. */
static JVal *
fast_value(FastScan *fs, const Field *fields, int nfields)
{
	const char *p = fs->p;
	int			left = fs->end - p;
	JVal	   *v;

	if (left <= 0 || fs->nvals >= FAST_MAX_VALUES)
		return NULL;
	v = &fs->vals[fs->nvals++];
	memset(v, 0, sizeof(JVal));
	switch (*p)
	{
		case '"':
			v->type = JV_STRING;
			if (!fast_string(fs, &v->str, &v->len))
				return NULL;
			break;
		case '{':
			if (!fast_object(fs, v, fields, nfields))
				return NULL;
			break;
		case '[':
			if (!fast_array(fs, v))
				return NULL;
			break;
		case 't':
			if (left < 4 || memcmp(p, "true", 4) != 0)
				return NULL;
			v->type = JV_BOOL;
			v->b = true;
			fs->p += 4;
			break;
		case 'f':
			if (left < 5 || memcmp(p, "false", 5) != 0)
				return NULL;
			v->type = JV_BOOL;
			fs->p += 5;
			break;
		case 'n':
			if (left < 4 || memcmp(p, "null", 4) != 0)
				return NULL;
			v->type = JV_NULL;
			fs->p += 4;
			break;
		default:
			if (!fast_number(fs, v))
				return NULL;
	}
	return v;
}

/* The message's top-level object; NULL when it goes the json-c way. */
static const JVal *
fast_parse(FastScan *fs, const char *data, int len)
{
	const JVal *root;

	if (len > FAST_MAX_BYTES || !pg_verify_mbstr(PG_UTF8, data, len, true))
		return NULL;
	if (fast_vals == NULL)
		fast_vals = MemoryContextAlloc(TopMemoryContext, sizeof(JVal) * FAST_MAX_VALUES);
	if (fast_buf_size < len + 1)
	{
		int			size = Max(1024, fast_buf_size);

		while (size < len + 1)
			size *= 2;
		if (fast_buf != NULL)
			pfree(fast_buf);
		fast_buf = NULL;
		fast_buf_size = 0;
		fast_buf = MemoryContextAlloc(TopMemoryContext, size);
		fast_buf_size = size;
	}
	memset(fs, 0, sizeof(*fs));
	fs->end = data + len;
	fs->vals = fast_vals;
	fs->buf = fast_buf;
	fs->p = skip_ws(data, fs->end);
	if (fs->p >= fs->end || *fs->p != '{')
		return NULL;
	root = fast_value(fs, tweet_fields, lengthof(tweet_fields));
	if (root == NULL || skip_ws(fs->p, fs->end) != fs->end)
		return NULL;
	return root;
}

/* Fills ps from the message's top-level object, by the field rules above. */
static bool
parse_tweet_object(ParseState *ps, const JVal *root)
{
	if (!parse_object(ps, root, tweet_fields, lengthof(tweet_fields), ""))
		return false;
	if (ps->nulls[A_TWEET_ID])
		return fail(ps, "missing required field tweet_id");
	if (ps->nulls[A_TEXT])
		return fail(ps, "missing required field text");
	if (ps->nulls[A_CREATED_AT])
		return fail(ps, "missing required field created_at");
	return true;
}

/*
 * Fills ps from the message with json-c; false with ps->error set when it cannot become
 * silver.  rs is the message's raw scan, NULL when that failed.  Every message the fast
 * scan does not take comes here, so every reason a message is refused comes from here or
 * from the field rules.
 */
static bool
parse_message(ParseState *ps, const char *data, int len, const RawScan *rs)
{
	json_object *root;
	enum json_tokener_error jerr;
	int			offset;
	bool		ok;

	if (len > tweetlake_max_message_bytes)
		return fail(ps, "message larger than tweetlake.max_message_bytes (%d > %d)",
					len, tweetlake_max_message_bytes);

	{
		const char *p = data;

		while (p < data + len && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
			p++;
		if (p == data + len)
			return fail(ps, "empty message");
	}

	offset = find_unpaired_surrogate(data, len);
	if (offset >= 0)
		return fail(ps, "invalid JSON: unpaired UTF-16 surrogate escape at byte %d", offset);

	root = json_tokener_parse_ex(fresh_tokener(), data, len);
	jerr = json_tokener_get_error(tokener);
	offset = (int) json_tokener_get_parse_end(tokener);
	if (root == NULL)
	{
		if (jerr == json_tokener_continue)
			return fail(ps, "invalid JSON: unexpected end of message at byte %d", len);
		return fail(ps, "invalid JSON: %s at byte %d", json_tokener_error_desc(jerr), offset);
	}

	/*
	 * json-c's objects are malloc'd: release them even if a palloc fails
	 * below
	 */
	PG_TRY();
	{
		ok = true;
		for (const char *p = data + offset; p < data + len && ok; p++)
			if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
				ok = fail(ps, "invalid JSON: unexpected data after the object at byte %d",
						  (int) (p - data));
		if (ok && !json_object_is_type(root, json_type_object))
			ok = fail(ps, "not a JSON object (got %s)", json_type_label(jv_from_json_c(root)));

		/*
		 * json-c accepted it, so the scan can only fail on something json-c
		 * allows
		 */
		if (ok && rs == NULL)
			ok = fail(ps, "invalid JSON: unexpected structure");
		if (ok && rs->dup != NULL && rs->dup_parent != NULL)
			ok = fail(ps, "duplicate key %s.%s", rs->dup_parent->key, rs->dup->key);
		else if (ok && rs->dup != NULL)
			ok = fail(ps, "duplicate key %s", rs->dup->key);
		if (ok)
			ok = parse_tweet_object(ps, jv_from_json_c(root));
	}
	PG_FINALLY();
	{
		json_object_put(root);
	}
	PG_END_TRY();
	return ok;
}

/* Derived columns: sentiment_category, total_engagement, empty tag arrays. */
static void
derive(ParseState *ps)
{
	static const int counts[] = {A_RETWEET_COUNT, A_LIKE_COUNT, A_REPLY_COUNT, A_QUOTE_COUNT};
	int64		total = 0;

	if (!ps->nulls[A_SENTIMENT])
	{
		double		s = DatumGetFloat8(ps->values[A_SENTIMENT]);

		ps->values[A_SENTIMENT_CATEGORY] =
			CStringGetTextDatum(s > 0.1 ? "positive" : (s < -0.1 ? "negative" : "neutral"));
		ps->nulls[A_SENTIMENT_CATEGORY] = false;
	}
	for (int i = 0; i < lengthof(counts); i++)
		if (!ps->nulls[counts[i]])
			total += DatumGetInt32(ps->values[counts[i]]);
	ps->values[A_TOTAL_ENGAGEMENT] = Int64GetDatum(total);
	ps->nulls[A_TOTAL_ENGAGEMENT] = false;

	if (ps->nulls[A_HASHTAGS])
	{
		ps->values[A_HASHTAGS] = PointerGetDatum(construct_empty_array(TEXTOID));
		ps->nulls[A_HASHTAGS] = false;
	}
	if (ps->nulls[A_MENTIONS])
	{
		ps->values[A_MENTIONS] = PointerGetDatum(construct_empty_array(TEXTOID));
		ps->nulls[A_MENTIONS] = false;
	}
}

/*
 * Messages this backend's parse_tweet read by the fast scan and by json-c: two increments
 * of backend-local memory, so that a test can see that both ways were really taken.
 */
static uint64 parse_path_fast = 0;
static uint64 parse_path_json_c = 0;

void
tl_parse_tweet(text *raw, Datum *values, bool *nulls)
{
	ParseState	ps;
	text	   *bronze_id = NULL;

	memset(ps.values, 0, sizeof(ps.values));
	memset(ps.nulls, true, sizeof(ps.nulls));
	ps.error = NULL;

	if (raw == NULL)
		fail(&ps, "empty message");
	else
	{
		const char *data = VARDATA_ANY(raw);
		int			len = VARSIZE_ANY_EXHDR(raw);
		FastScan	fs;
		const JVal *root = NULL;
		bool		ok;

		/*
		 * The fast scan takes a message only when it passes every check
		 * parse_message makes before the field rules; the others, and so
		 * every such reason, go the json-c way.
		 */
		if (tweetlake_parse_fast_path && len <= tweetlake_max_message_bytes)
			root = fast_parse(&fs, data, len);
		if (root != NULL)
		{
			const JVal *id = fs.tweet_id;

			parse_path_fast++;
			if (id != NULL && id->type == JV_STRING)
				bronze_id = bronze_tweet_id(id->str, id->len, -1, false);
			ok = parse_tweet_object(&ps, root);
		}
		else
		{
			RawScan		rs;
			bool		scanned = scan_message(data, data + len, &rs);

			parse_path_json_c++;
			bronze_id = scanned_tweet_id(scanned ? &rs : NULL, data + len);
			ok = parse_message(&ps, data, len, scanned ? &rs : NULL);
		}
		if (ok)
		{
			/*
			 * the field rules and the tweet_id's scan decode the same bytes:
			 * a difference is a bug here
			 */
			text	   *silver_id = DatumGetTextPP(ps.values[A_TWEET_ID]);

			if (bronze_id == NULL ||
				VARSIZE_ANY_EXHDR(bronze_id) != VARSIZE_ANY_EXHDR(silver_id) ||
				memcmp(VARDATA_ANY(bronze_id), VARDATA_ANY(silver_id),
					   VARSIZE_ANY_EXHDR(silver_id)) != 0)
				fail(&ps, "tweet_id: not the same as bronze.tweets.tweet_id");
			else
				derive(&ps);
		}
	}

	if (ps.error)
	{
		/*
		 * the dead letter carries the tweet_id bronze.tweets has for the
		 * message
		 */
		for (int i = 0; i < N_ATTRS; i++)
			ps.nulls[i] = true;
		if (bronze_id != NULL)
		{
			ps.values[A_TWEET_ID] = PointerGetDatum(bronze_id);
			ps.nulls[A_TWEET_ID] = false;
		}
		ps.values[A_ERROR] = CStringGetTextDatum(ps.error);
		ps.nulls[A_ERROR] = false;
	}
	memcpy(values, ps.values, sizeof(ps.values));
	memcpy(nulls, ps.nulls, sizeof(ps.nulls));
}

Datum
tweetlake_parse_tweet(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc = (TupleDesc) fcinfo->flinfo->fn_extra;
	Datum		values[N_ATTRS];
	bool		nulls[N_ATTRS];

	if (tupdesc == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

		if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "tweetlake.parse_tweet must return a composite type");
		tupdesc = BlessTupleDesc(CreateTupleDescCopy(tupdesc));
		MemoryContextSwitchTo(old);
		tl_check_parsed_tweet(tupdesc);
		fcinfo->flinfo->fn_extra = tupdesc;
	}
	tl_parse_tweet(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0), values, nulls);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * Errors unless tupdesc (tweetlake.parsed_tweet's) has the columns this library fills;
 * true when it has updated_at too (schema 0.5.0 on), false for an older schema's type.
 */
bool
tl_check_parsed_tweet(TupleDesc tupdesc)
{
	if (tupdesc->natts == N_ATTRS - 1)
		return false;
	if (tupdesc->natts != N_ATTRS)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tweetlake library does not match the installed extension"),
				 errdetail("Type tweetlake.parsed_tweet has %d columns, but the library expects %d.",
						   tupdesc->natts, N_ATTRS),
				 errhint("Run ALTER EXTENSION tweetlake UPDATE, or reinstall a matching library.")));
	return true;
}

/*
 * bronze.tweets.tweet_id: the raw scan's tweet_id (above).  No json-c and no allocation but
 * the result, so it costs one pass over the message whatever its size or content; the same
 * value whatever tweetlake.max_message_bytes is, as an IMMUTABLE function must be.
 */
Datum
tweetlake_tweet_id_of(PG_FUNCTION_ARGS)
{
	text	   *raw = PG_GETARG_TEXT_PP(0);
	const char *data = VARDATA_ANY(raw);
	const char *end = data + VARSIZE_ANY_EXHDR(raw);
	RawScan		rs;
	text	   *id = scan_message(data, end, &rs) ? scanned_tweet_id(&rs, end) : NULL;

	if (id == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(id);
}

/*
 * (fast, json_c): the counters above.  For tests only, so the extension does not declare
 * it; a test declares it as
 *   CREATE FUNCTION ...(OUT fast bigint, OUT json_c bigint)
 *     AS '$libdir/tweetlake', 'tweetlake_parse_path_counts' LANGUAGE C;
 */
Datum
tweetlake_parse_path_counts(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE ||
		tupdesc->natts != 2 || TupleDescAttr(tupdesc, 0)->atttypid != INT8OID ||
		TupleDescAttr(tupdesc, 1)->atttypid != INT8OID)
		elog(ERROR, "tweetlake_parse_path_counts must return (bigint, bigint)");
	tupdesc = BlessTupleDesc(tupdesc);
	values[0] = Int64GetDatum((int64) parse_path_fast);
	values[1] = Int64GetDatum((int64) parse_path_json_c);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
