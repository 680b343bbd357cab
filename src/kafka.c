/*
 * kafka.c - the Kafka client pieces shared by the generator (generator_worker.c), the consumers
 * (consumer.c) and tweetlake.produce(): where the brokers of the worker's source are
 * (source.c: tweetlake.brokers or the embedded broker for the default source), the
 * configuration from tweetlake.kafka_config and the source's properties file, the error
 * callback that reports into a worker's status slot, the check that the topic exists, noticing changed settings, redaction of secrets in
 * anything that reaches the log or tweetlake.status, and librdkafka's threads kept away
 * from the server's signals.
 */
#include "tweetlake.h"

#include <librdkafka/rdkafka.h>

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(tweetlake_bootstrap_servers);

/*
 * The bootstrap list the clients should use: tweetlake.brokers, or the embedded broker's
 * address; NULL while the embedded broker is not up (yet).
 */
const char *
tl_bootstrap_servers(bool wait)
{
	static char buf[sizeof(((TlShared *) 0)->bootstrap)];

	(void) wait;
	if (tl_source_brokers()[0] != '\0')
		return tl_source_brokers();
	if (tl_shared == NULL)
		return NULL;
	LWLockAcquire(tl_shared->lock, LW_SHARED);
	strlcpy(buf, tl_shared->bootstrap, sizeof(buf));
	LWLockRelease(tl_shared->lock);
	return buf[0] ? buf : NULL;
}

/* A key whose value must never be shown. */
static bool
is_secret_key(const char *key)
{
	return strstr(key, "password") != NULL || strstr(key, "secret") != NULL ||
		strstr(key, "sasl.jaas") != NULL || strstr(key, ".key.pem") != NULL ||
		strstr(key, "token") != NULL || strstr(key, "sasl.oauthbearer.config") != NULL;
}

/* Where the value of a secret-looking key starting at p ends: a quoted string or a word. */
static const char *
secret_value_end(const char *p)
{
	if (*p == '"' || *p == '\'')
	{
		const char *close = strchr(p + 1, *p);

		return close ? close + 1 : p + strlen(p);
	}
	while (*p && *p != ';' && *p != ',' && *p != ' ' && *p != '\n')
		p++;
	return p;
}

/*
 * A copy of text with the value after any "<secret-looking key>=" replaced by "***", and
 * the value in librdkafka's 'Invalid value "<v>" for configuration property "<secret key>"'
 * too.  For librdkafka error strings and configuration echoes.
 */
const char *
tl_redact(const char *text)
{
	static char out[512];
	const char *p = text;
	char	   *o = out;
	char	   *end = out + sizeof(out) - 4;
	const char *prop = strstr(text, "for configuration property \"");
	const char *hide_from = NULL;
	const char *hide_to = NULL;

	/* Invalid value "<v>" for configuration property "<key>" */
	if (prop != NULL)
	{
		const char *k = prop + strlen("for configuration property \"");
		const char *kend = strchr(k, '"');
		char		key[128];

		if (kend != NULL && kend - k < (long) sizeof(key))
		{
			memcpy(key, k, kend - k);
			key[kend - k] = '\0';
			if (is_secret_key(key))
			{
				hide_from = strchr(text, '"');
				hide_to = prop - 1;
				while (hide_to > hide_from && *hide_to != '"')
					hide_to--;
				if (hide_from == NULL || hide_to <= hide_from)
					hide_from = hide_to = NULL;
			}
		}
	}

	while (*p && o < end)
	{
		const char *eq;
		const char *k;
		char		key[128];
		size_t		klen;

		if (hide_from != NULL && p > hide_from && p < hide_to)
		{
			/*
			 * inside the quoted value of a secret property: "***" once, then
			 * skip it
			 */
			if (o + 3 < end)
			{
				memcpy(o, "***", 3);
				o += 3;
			}
			p = hide_to;
			continue;
		}
		eq = strchr(p, '=');
		if (hide_from != NULL && p <= hide_from && (eq == NULL || eq > hide_from))
		{
			/* copy up to and including the opening quote of the hidden value */
			while (p <= hide_from && o < end)
				*o++ = *p++;
			continue;
		}
		if (eq == NULL)
		{
			strlcpy(o, p, end - o + 1);
			o += strlen(o);
			break;
		}
		/* the key is the run of non-separators before '=' */
		k = eq;
		while (k > p && k[-1] != ' ' && k[-1] != ';' && k[-1] != ',' && k[-1] != '\n')
			k--;
		klen = Min((size_t) (eq - k), sizeof(key) - 1);
		memcpy(key, k, klen);
		key[klen] = '\0';
		while (p <= eq && o < end)
			*o++ = *p++;
		if (is_secret_key(key))
		{
			p = secret_value_end(p);
			if (o + 3 < end)
			{
				memcpy(o, "***", 3);
				o += 3;
			}
		}
	}
	*o = '\0';
	return out;
}

/* A property name as librdkafka spells them: letters, digits, '.', '_' and '-'. */
static bool
is_property_name(const char *key)
{
	if (*key == '\0')
		return false;
	for (const char *c = key; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			  (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == '-'))
			return false;
	return true;
}

/*
 * Applies one "key=value" item (modified in place) to conf for role; false with a
 * (secret-free) message in errbuf, which names where the item came from.
 */
static bool
apply_property(rd_kafka_conf_t *conf, const char *role, char *item, const char *where,
			   char *errbuf, size_t errlen)
{
	size_t		rolelen = strlen(role);
	char	   *eq = strchr(item, '=');
	char	   *key = item;
	char	   *value;
	char		err[256];

	while (*key == ' ' || *key == '\t')
		key++;
	if (*key == '\0' || *key == '#' || *key == '\r')
		return true;

	/*
	 * never echo the item: a line in another syntax ("sasl.password: x") may
	 * hold a secret
	 */
	if (eq == NULL)
	{
		snprintf(errbuf, errlen, "%s: expected key=value", where);
		return false;
	}
	*eq = '\0';
	value = eq + 1;
	for (char *t = eq - 1; t >= key && (*t == ' ' || *t == '\t'); t--)
		*t = '\0';
	while (*value == ' ' || *value == '\t')
		value++;
	for (char *t = value + strlen(value) - 1; t >= value && (*t == ' ' || *t == '\t' || *t == '\r'); t--)
		*t = '\0';

	if (!is_property_name(key))
	{
		snprintf(errbuf, errlen, "%s: expected key=value with a property name before \"=\"", where);
		return false;
	}

	/* producer.x / consumer.x: only for that client */
	if (strncmp(key, "producer.", 9) == 0 || strncmp(key, "consumer.", 9) == 0)
	{
		if (strncmp(key, role, rolelen) != 0 || key[rolelen] != '.')
			return true;
		key += rolelen + 1;
	}
	if (rd_kafka_conf_set(conf, key, value, err, sizeof(err)) != RD_KAFKA_CONF_OK)
	{
		snprintf(errbuf, errlen, "%s: %s: %s", where, key,
				 is_secret_key(key) ? "invalid value" : err);
		return false;
	}
	return true;
}

/* What names the properties file in messages: the setting, or the source's column. */
static const char *
config_file_setting(void)
{
	static char buf[TL_SOURCE_NAMELEN + 64];

	if (tl_source.is_default)
		return "tweetlake.kafka_config_file";
	snprintf(buf, sizeof(buf), "kafka_config_file of source \"%s\"", tl_source.name);
	return buf;
}

/* The contents of the source's properties file (palloc'd), or NULL with errbuf set. */
static char *
read_config_file(char *errbuf, size_t errlen)
{
	FILE	   *f = AllocateFile(tl_source_kafka_config_file(), "r");
	StringInfoData buf;
	char		chunk[1024];
	size_t		n;

	if (f == NULL)
	{
		snprintf(errbuf, errlen, "could not open %s \"%s\": %s",
				 config_file_setting(), tl_source_kafka_config_file(), strerror(errno));
		return NULL;
	}
	initStringInfo(&buf);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		appendBinaryStringInfo(&buf, chunk, n);
	FreeFile(f);
	return buf.data;
}

/* A consumer's prefetch, queued.max.messages.kbytes: a batch's bytes, 8 MB at least. */
static int
consumer_prefetch_kbytes(void)
{
	return Max(tweetlake_batch_max_bytes / 1024, 8192);
}

/*
 * A new librdkafka configuration for role ("producer" or "consumer") with the bootstrap
 * list, tweetlake.kafka_config (the default source) and then the source's properties file
 * (tweetlake.kafka_config_file or its kafka_config_file) applied; NULL with a
 * (secret-free) message in errbuf if a property is refused or no broker is known.
 */
rd_kafka_conf_t *
tl_kafka_conf(const char *role, char *errbuf, size_t errlen)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const char *bootstrap = tl_bootstrap_servers(false);
	char		client_id[64];
	char	   *list;
	char	   *save = NULL;
	int			nitem = 0;

	if (bootstrap == NULL)
	{
		snprintf(errbuf, errlen, "embedded Kafka broker is not running yet");
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	snprintf(client_id, sizeof(client_id), "tweetlake-%s", role);
	if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errbuf, errlen) != RD_KAFKA_CONF_OK ||
		rd_kafka_conf_set(conf, "client.id", client_id, errbuf, errlen) != RD_KAFKA_CONF_OK)
	{
		rd_kafka_conf_destroy(conf);
		return NULL;
	}

	/*
	 * Memory bounds (README "Settings"), set before the user's properties so
	 * those can change them.  A consumer prefetches at most
	 * tweetlake.batch_max_bytes (16 MB by default, 8 MB at least;
	 * librdkafka's default is 64 MB): under a backlog that, a full batch and
	 * its trigger are what a consumer holds (at most 123 MB in a drain). Less
	 * starves it: with 8 MB, less than a batch, the consumer waited for each
	 * batch's last messages to be fetched, and a partition whose queue was
	 * full was not fetched again for fetch.error.backoff.ms (500 ms by
	 * default in librdkafka 2.0), a quarter of a drain spent waiting
	 * (bench/RESULTS.md).  A producer queues at most 16 MB: while the broker
	 * is away the generator waits instead (200,000 tweets were ~130 MB).
	 */
	if (strcmp(role, "consumer") == 0)
	{
		char		kbytes[32];

		snprintf(kbytes, sizeof(kbytes), "%d", consumer_prefetch_kbytes());
		rd_kafka_conf_set(conf, "queued.max.messages.kbytes", kbytes, errbuf, errlen);
		rd_kafka_conf_set(conf, "fetch.error.backoff.ms", "50", errbuf, errlen);
	}
	else
	{
		rd_kafka_conf_set(conf, "queue.buffering.max.messages", "200000", errbuf, errlen);
		rd_kafka_conf_set(conf, "queue.buffering.max.kbytes", "16384", errbuf, errlen);
	}

	list = pstrdup(tl_source_kafka_config());
	for (char *item = strtok_r(list, ";\n", &save); item; item = strtok_r(NULL, ";\n", &save))
	{
		char		where[64];

		snprintf(where, sizeof(where), "tweetlake.kafka_config item %d", ++nitem);
		if (!apply_property(conf, role, item, where, errbuf, errlen))
		{
			rd_kafka_conf_destroy(conf);
			return NULL;
		}
	}
	pfree(list);

	if (tl_source_kafka_config_file()[0] != '\0')
	{
		char	   *contents = read_config_file(errbuf, errlen);
		char	   *line = contents;
		int			lineno = 0;

		if (contents == NULL)
		{
			rd_kafka_conf_destroy(conf);
			return NULL;
		}
		while (line != NULL && *line != '\0')
		{
			char	   *next = strchr(line, '\n');
			char		where[MAXPGPATH + 64];

			if (next)
				*next++ = '\0';
			snprintf(where, sizeof(where), "%s \"%s\" line %d",
					 config_file_setting(), tl_source_kafka_config_file(), ++lineno);
			if (!apply_property(conf, role, line, where, errbuf, errlen))
			{
				pfree(contents);
				rd_kafka_conf_destroy(conf);
				return NULL;
			}
			line = next;
		}
		pfree(contents);
	}
	return conf;
}

/*
 * Everything a client is built from, to notice a reload that changes it: the settings,
 * the identity of the properties file (path, inode, size, modification time), so an
 * edited file takes effect at the next reload, and the embedded broker's generation, so a
 * restarted embedded broker (same settings, new log) is noticed too, and for a
 * consumer's client (its slot's role) its prefetch (from tweetlake.batch_max_bytes).
 * Holds no secret.
 */
static char *
kafka_settings(const TlKafkaClient *client)
{
	struct stat st;
	const char *file = tl_source_kafka_config_file();
	char		fid[128] = "";
	bool		embedded = tl_source_embedded();

	if (file[0] != '\0' && stat(file, &st) == 0)
		snprintf(fid, sizeof(fid), "%lu:%lld:%lld.%09ld", (unsigned long) st.st_ino,
				 (long long) st.st_size, (long long) st.st_mtim.tv_sec, (long) st.st_mtim.tv_nsec);
	return psprintf("%s|%s|%s|%s|%s|%s|%u|%d", tl_source_brokers(), tl_source_topic(),
					tl_source_kafka_config(), file, fid,
					tl_bootstrap_servers(false) ? tl_bootstrap_servers(false) : "",
					(embedded && tl_shared) ? tl_shared->broker_generation : 0,
					client->slot != NULL && client->slot->role == TL_ROLE_CONSUMER ?
					consumer_prefetch_kbytes() : 0);
}

/* Notes what client is about to be built from (call before building it). */
void
tl_kafka_remember_settings(TlKafkaClient *client)
{
	char	   *now = kafka_settings(client);

	if (client->settings)
		pfree(client->settings);
	client->settings = MemoryContextStrdup(TopMemoryContext, now);
	pfree(now);
	client->broker_generation = tl_shared ? tl_shared->broker_generation : 0;
}

/* Whether a reload (or a restarted embedded broker) changed what client was built from. */
bool
tl_kafka_settings_changed(const TlKafkaClient *client)
{
	char	   *now = kafka_settings(client);
	bool		changed = client->settings == NULL || strcmp(client->settings, now) != 0;

	pfree(now);
	return changed;
}

/*
 * Whether the brokers client was built for are still there: false once the embedded broker
 * it used withdrew its address (it is stopping) or was replaced by a new one.
 */
bool
tl_kafka_broker_alive(const TlKafkaClient *client)
{
	bool		alive;

	if (!tl_source_embedded())
		return true;
	if (tl_shared == NULL)
		return false;
	LWLockAcquire(tl_shared->lock, LW_SHARED);
	alive = tl_shared->bootstrap[0] != '\0' &&
		tl_shared->broker_generation == client->broker_generation;
	LWLockRelease(tl_shared->lock);
	return alive;
}

/*
 * librdkafka's error callback for every worker's client: the reason (redacted) goes to the
 * worker's status slot.  librdkafka calls it from rd_kafka_poll() or the consume calls,
 * in the worker's own thread.
 */
static void
client_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	TlKafkaClient *client = (TlKafkaClient *) opaque;

	client->error_seen = true;
	if (!client->quiet && client->slot != NULL)
		tl_slot_error(client->slot, "kafka: %s", tl_redact(reason));
}

/* Makes conf report its client's errors into client (set its slot first). */
void
tl_kafka_set_error_cb(TlKafkaClient *client, rd_kafka_conf_t *conf)
{
	client->error_seen = false;
	client->quiet = false;
	rd_kafka_conf_set_opaque(conf, client);
	rd_kafka_conf_set_error_cb(conf, client_error_cb);
}

/*
 * Asks the brokers for topic: its partition count, or 0 when it cannot be used (yet), with
 * the reason in the client's last_error and its state "waiting for the topic" or "waiting
 * for a broker".  A missing topic is named with the brokers asked; otherwise the error
 * callback's own reason (say, failed authentication) is kept when there is one.
 */
int
tl_kafka_topic_partitions(rd_kafka_t *rk, TlKafkaClient *client, const char *topic)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	rd_kafka_resp_err_t err;
	int			npartitions = 0;
	const char *where = tl_bootstrap_servers(false) ? tl_bootstrap_servers(false) : "?";

	client->error_seen = false;
	err = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
	rd_kafka_topic_destroy(rkt);

	/*
	 * serve the error callback now: it has the cause (say, failed
	 * authentication)
	 */
	rd_kafka_poll(rk, 0);
	if (!err)
	{
		if (md->topic_cnt != 1)
			err = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
		else if (md->topics[0].err)
			err = md->topics[0].err;
		else if (md->topics[0].partition_cnt == 0)
			err = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
		else
			npartitions = md->topics[0].partition_cnt;
	}
	if (md)
		rd_kafka_metadata_destroy(md);
	if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
	{
		tl_slot_error(client->slot, "topic \"%s\" does not exist on %s (create it; tweetlake does not create topics)",
					  topic, where);
		tl_slot_set_state(client->slot, "waiting for the topic");
	}
	else if (err)
	{
		/*
		 * keep the broker's own reason in last_error when the callback gave
		 * one
		 */
		if (!client->error_seen)
			tl_slot_error(client->slot, "topic \"%s\" on %s: %s", topic, where, rd_kafka_err2str(err));
		tl_slot_set_state(client->slot, "waiting for a broker");
	}
	return npartitions;
}

/* tweetlake.bootstrap_servers(): where outside Kafka clients (kcat, ...) connect. */
Datum
tweetlake_bootstrap_servers(PG_FUNCTION_ARGS)
{
	const char *b = tl_bootstrap_servers(false);

	if (b == NULL)
	{
		if (tl_shared == NULL)
			tl_require_shared();
		PG_RETURN_NULL();
	}
	PG_RETURN_TEXT_P(cstring_to_text(b));
}

/*
 * librdkafka's threads inherit the signal mask of the thread that starts them.  Started with
 * every signal blocked, they never take the postmaster's SIGTERM, a query cancel or a latch
 * wakeup meant for the backend's own thread (whose handlers would then run on a librdkafka
 * thread, and whose poll() there returns EINTR: the embedded broker's mock cluster gave up on
 * that, and destroying it at exit hung the server's shutdown).
 */
void
tl_block_signals(sigset_t *saved)
{
	sigset_t	all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, saved);
}

void
tl_restore_signals(const sigset_t *saved)
{
	pthread_sigmask(SIG_SETMASK, saved, NULL);
}

/* rd_kafka_new(), its threads started with every signal blocked. */
rd_kafka_t *
tl_kafka_new(int type, rd_kafka_conf_t *conf, char *errbuf, size_t errlen)
{
	sigset_t	saved;
	rd_kafka_t *rk;

	tl_block_signals(&saved);
	rk = rd_kafka_new((rd_kafka_type_t) type, conf, errbuf, errlen);
	tl_restore_signals(&saved);
	return rk;
}
