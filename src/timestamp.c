/*
 * timestamp.c - UTC time helpers: a strict ISO 8601 parser for message timestamps (used
 * by parse.c) and tweetlake.utc_hour() / tweetlake.utc_day(), the grain of the gold tables.
 * Message time never depends on the session's TimeZone: no offset means UTC.
 */
#include "tweetlake.h"

#include "fmgr.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(tweetlake_utc_hour);
PG_FUNCTION_INFO_V1(tweetlake_utc_day);

/* Reads exactly n digits at *p; false if any is not a digit. */
static bool
read_digits(const char **p, const char *end, int n, int *value)
{
	int			v = 0;

	if (end - *p < n)
		return false;
	for (int i = 0; i < n; i++)
	{
		char		c = (*p)[i];

		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*value = v;
	return true;
}

/*
 * YYYY-MM-DD[(T|t| )HH:MM[:SS[.fraction]][Z|z|(+|-)HH[[:]MM]]]
 * Fractions beyond microseconds are rounded.  Out-of-range fields are rejected rather
 * than normalised (2026-02-30 is an error, not March 2nd).
 */
bool
tl_parse_timestamp(const char *s, size_t len, TimestampTz *result)
{
	const char *p = s;
	const char *end = s + len;
	int			year,
				month,
				day,
				hour = 0,
				minute = 0,
				second = 0;
	int64		usec = 0;
	int			offset_sec = 0;
	int64		days;
	TimestampTz ts;

	if (!read_digits(&p, end, 4, &year) || p >= end || *p++ != '-' ||
		!read_digits(&p, end, 2, &month) || p >= end || *p++ != '-' ||
		!read_digits(&p, end, 2, &day))
		return false;
	if (year < 1 || month < 1 || month > 12 || day < 1 ||
		day > day_tab[isleap(year)][month - 1])
		return false;

	if (p < end)
	{
		if (*p != 'T' && *p != 't' && *p != ' ')
			return false;
		p++;
		if (!read_digits(&p, end, 2, &hour) || p >= end || *p++ != ':' ||
			!read_digits(&p, end, 2, &minute))
			return false;
		if (p < end && *p == ':')
		{
			p++;
			if (!read_digits(&p, end, 2, &second))
				return false;
			if (p < end && (*p == '.' || *p == ','))
			{
				int			ndigits = 0;
				int64		scale = USECS_PER_SEC;

				p++;
				while (p < end && *p >= '0' && *p <= '9')
				{
					if (ndigits < 6)
					{
						scale /= 10;
						usec += (*p - '0') * scale;
					}
					else if (ndigits == 6 && *p >= '5')
						usec++;
					ndigits++;
					p++;
				}
				if (ndigits == 0)
					return false;
			}
		}
		if (hour > 23 || minute > 59 || second > 59)
			return false;

		if (p < end)
		{
			if (*p == 'Z' || *p == 'z')
				p++;
			else if (*p == '+' || *p == '-')
			{
				int			sign = (*p == '-') ? -1 : 1;
				int			oh,
							om = 0;

				p++;
				if (!read_digits(&p, end, 2, &oh))
					return false;
				if (p < end && *p == ':')
					p++;
				if (p < end && !read_digits(&p, end, 2, &om))
					return false;
				if (oh > 15 || om > 59)
					return false;
				offset_sec = sign * (oh * SECS_PER_HOUR + om * SECS_PER_MINUTE);
			}
			else
				return false;
		}
		if (p != end)
			return false;
	}

	days = date2j(year, month, day) - POSTGRES_EPOCH_JDATE;
	ts = days * USECS_PER_DAY +
		((int64) (hour * SECS_PER_HOUR + minute * SECS_PER_MINUTE + second - offset_sec)) * USECS_PER_SEC +
		usec;
	if (!IS_VALID_TIMESTAMP(ts))
		return false;
	*result = ts;
	return true;
}

/* Start of the UTC hour containing ts (floor, also before 2000-01-01). */
TimestampTz
tl_utc_hour(TimestampTz ts)
{
	int64		r;

	if (TIMESTAMP_NOT_FINITE(ts))
		return ts;
	r = ts % USECS_PER_HOUR;
	if (r < 0)
		r += USECS_PER_HOUR;
	return ts - r;
}

Datum
tweetlake_utc_hour(PG_FUNCTION_ARGS)
{
	PG_RETURN_TIMESTAMPTZ(tl_utc_hour(PG_GETARG_TIMESTAMPTZ(0)));
}

/* The UTC date (a DateADT) of ts (floor, also before 2000-01-01). */
int32
tl_utc_day(TimestampTz ts)
{
	int64		d;

	if (TIMESTAMP_IS_NOBEGIN(ts))
		return DATEVAL_NOBEGIN;
	if (TIMESTAMP_IS_NOEND(ts))
		return DATEVAL_NOEND;
	d = ts / USECS_PER_DAY;
	if (ts % USECS_PER_DAY < 0)
		d--;
	return (int32) d;
}

Datum
tweetlake_utc_day(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATEADT((DateADT) tl_utc_day(PG_GETARG_TIMESTAMPTZ(0)));
}
