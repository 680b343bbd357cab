/*
 * source.c - the Kafka source a worker serves (tweetlake.sources), and the launcher's reading
 * of that table.  The source "default" is postgresql.conf's tweetlake.* settings, read live
 * so that a reload applies as it always did; any other source is its row, read once when its
 * worker starts: the launcher restarts a source's workers when the row changes.  Schemas
 * older than 0.12.0 have no table, and only the default source.
 */
#include "tweetlake.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

TlSource	tl_source = {TL_DEFAULT_SOURCE, true};

void
tl_source_use_default(void)
{
	memset(&tl_source, 0, sizeof(tl_source));
	strlcpy(tl_source.name, TL_DEFAULT_SOURCE, sizeof(tl_source.name));
	tl_source.is_default = true;
}

static char *
column_text(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NULL : MemoryContextStrdup(TopMemoryContext, TextDatumGetCString(d));
}

/*
 * Makes name the source this worker serves.  Another source than "default" is read from
 * tweetlake.sources in a transaction of its own; it is an error for it not to exist (it was
 * dropped since the launcher started the worker, which then stops).
 */
void
tl_source_load(const char *name)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	tl_source_use_default();
	if (strcmp(name, TL_DEFAULT_SOURCE) == 0 || name[0] == '\0')
		return;
	strlcpy(tl_source.name, name, sizeof(tl_source.name));
	tl_source.is_default = false;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "reading tweetlake.sources");
	values[0] = CStringGetTextDatum(name);
	if (SPI_execute_with_args("SELECT brokers, topic, kafka_config_file, consumers, generator_rate "
							  "FROM tweetlake.sources WHERE name OPERATOR(pg_catalog.=) $1",
							  1, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read tweetlake.sources");
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("source \"%s\" does not exist", name),
				 errdetail("It was dropped after its worker was started.")));
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		tl_source.brokers = column_text(tup, desc, 1);
		tl_source.topic = column_text(tup, desc, 2);
		tl_source.kafka_config_file = column_text(tup, desc, 3);
		tl_source.consumers = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
		tl_source.generator_rate = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
	}
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/* bootstrap.servers as configured: "" for the embedded broker (the default source only) */
const char *
tl_source_brokers(void)
{
	if (tl_source.is_default)
		return tweetlake_brokers ? tweetlake_brokers : "";
	return tl_source.brokers ? tl_source.brokers : "";
}

const char *
tl_source_topic(void)
{
	if (tl_source.is_default)
		return tweetlake_topic;
	return tl_source.topic;
}

/* tweetlake.kafka_config applies to the default source only: another has its file */
const char *
tl_source_kafka_config(void)
{
	if (tl_source.is_default)
		return tweetlake_kafka_config ? tweetlake_kafka_config : "";
	return "";
}

const char *
tl_source_kafka_config_file(void)
{
	if (tl_source.is_default)
		return tweetlake_kafka_config_file ? tweetlake_kafka_config_file : "";
	return tl_source.kafka_config_file ? tl_source.kafka_config_file : "";
}

int
tl_source_generator_rate(void)
{
	return tl_source.is_default ? tweetlake_generator_rate : tl_source.generator_rate;
}

/* Whether this worker's source is the embedded broker (the default source, no brokers). */
bool
tl_source_embedded(void)
{
	return tl_source.is_default && tl_source_brokers()[0] == '\0';
}

/*
 * The sources the launcher runs, in *specs (allocated in cxt), and how many, called inside
 * a transaction.  The default source takes its consumers and generator rate from
 * postgresql.conf.  A schema without tweetlake.sources (older than 0.12.0) has the default
 * source alone.
 */
int
tl_sources_read(TlSourceSpec **specs, MemoryContext cxt)
{
	int			n;
	TlSourceSpec *out;

	if (!OidIsValid(get_relname_relid("sources", get_namespace_oid("tweetlake", true))))
	{
		out = MemoryContextAllocZero(cxt, sizeof(TlSourceSpec));
		strlcpy(out->name, TL_DEFAULT_SOURCE, sizeof(out->name));
		out->enabled = true;
		out->consumers = tweetlake_consumers;
		out->generator_rate = tweetlake_generator_rate;
		out->settings = MemoryContextStrdup(cxt, "");
		*specs = out;
		return 1;
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT name, enabled, consumers, generator_rate, "
					"pg_catalog.concat_ws('|', brokers, topic, consumers, kafka_config_file, generator_rate, "
					"NULLIF(pg_catalog.to_jsonb(s) OPERATOR(pg_catalog.->>) 'tenant', 'default')) "
					"FROM tweetlake.sources s ORDER BY name", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read tweetlake.sources");
	n = (int) SPI_processed;
	out = MemoryContextAllocZero(cxt, sizeof(TlSourceSpec) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *name = TextDatumGetCString(SPI_getbinval(tup, desc, 1, &isnull));
		bool		is_default = strcmp(name, TL_DEFAULT_SOURCE) == 0;
		Datum		d;

		strlcpy(out[i].name, name, sizeof(out[i].name));
		out[i].enabled = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));
		d = SPI_getbinval(tup, desc, 3, &isnull);
		out[i].consumers = (is_default || isnull) ? tweetlake_consumers : DatumGetInt32(d);
		d = SPI_getbinval(tup, desc, 4, &isnull);
		out[i].generator_rate = (is_default || isnull) ? tweetlake_generator_rate : DatumGetInt32(d);
		d = SPI_getbinval(tup, desc, 5, &isnull);
		out[i].settings = MemoryContextStrdup(cxt, isnull ? "" : TextDatumGetCString(d));
	}
	SPI_finish();
	*specs = out;
	return n;
}
