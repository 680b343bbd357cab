/*
 * kafka.c - librdkafka configuration shared by the producer, the consumers and
 * tweetlake.produce(): where the brokers are (tweetlake.brokers or the embedded broker),
 * the extra properties of tweetlake.kafka_config, and redaction of secrets in anything
 * that reaches the log or tweetlake.status.
 */
#include "tweetlake.h"

#include <librdkafka/rdkafka.h>

#include <sys/stat.h>

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "storage/fd.h"
#include "utils/builtins.h"

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
	if (tweetlake_brokers && tweetlake_brokers[0] != '\0')
		return tweetlake_brokers;
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
		strstr(key, "token") != NULL;
}

/*
 * A copy of text with the value after any "<secret-looking key>=" replaced by "***".
 * For librdkafka error strings and configuration echoes.
 */
const char *
tl_redact(const char *text)
{
	static char out[512];
	const char *p = text;
	char	   *o = out;
	char	   *end = out + sizeof(out) - 4;

	while (*p && o < end)
	{
		const char *eq = strchr(p, '=');
		const char *k;
		char		key[128];
		size_t		klen;

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
			while (*p && *p != ';' && *p != ',' && *p != ' ' && *p != '\n')
				p++;
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
	if (eq == NULL)
	{
		snprintf(errbuf, errlen, "%s: \"%s\" is not key=value", where, tl_redact(key));
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

/* The contents of tweetlake.kafka_config_file (palloc'd), or NULL with errbuf set. */
static char *
read_config_file(char *errbuf, size_t errlen)
{
	FILE	   *f = AllocateFile(tweetlake_kafka_config_file, "r");
	StringInfoData buf;
	char		chunk[1024];
	size_t		n;

	if (f == NULL)
	{
		snprintf(errbuf, errlen, "could not open tweetlake.kafka_config_file \"%s\": %s",
				 tweetlake_kafka_config_file, strerror(errno));
		return NULL;
	}
	initStringInfo(&buf);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		appendBinaryStringInfo(&buf, chunk, n);
	FreeFile(f);
	return buf.data;
}

/*
 * A new librdkafka configuration for role ("producer" or "consumer") with the bootstrap
 * list, tweetlake.kafka_config and then tweetlake.kafka_config_file applied; NULL with a
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

	list = pstrdup(tweetlake_kafka_config ? tweetlake_kafka_config : "");
	for (char *item = strtok_r(list, ";\n", &save); item; item = strtok_r(NULL, ";\n", &save))
		if (!apply_property(conf, role, item, "tweetlake.kafka_config", errbuf, errlen))
		{
			rd_kafka_conf_destroy(conf);
			return NULL;
		}
	pfree(list);

	if (tweetlake_kafka_config_file && tweetlake_kafka_config_file[0] != '\0')
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
			char		where[64];

			if (next)
				*next++ = '\0';
			snprintf(where, sizeof(where), "tweetlake.kafka_config_file line %d", ++lineno);
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
 * Everything a client is built from, to notice a reload that changes it: the settings
 * and the identity of the properties file (path, inode, size, modification time), so an
 * edited file takes effect at the next reload.  Holds no secret.
 */
char *
tl_kafka_settings(void)
{
	struct stat st;
	const char *file = tweetlake_kafka_config_file ? tweetlake_kafka_config_file : "";
	char		fid[128] = "";

	if (file[0] != '\0' && stat(file, &st) == 0)
		snprintf(fid, sizeof(fid), "%lu:%lld:%lld.%09ld", (unsigned long) st.st_ino,
				 (long long) st.st_size, (long long) st.st_mtim.tv_sec, (long) st.st_mtim.tv_nsec);
	return psprintf("%s|%s|%s|%s|%s|%s", tweetlake_brokers, tweetlake_topic,
					tweetlake_kafka_config, file, fid,
					tl_bootstrap_servers(false) ? tl_bootstrap_servers(false) : "");
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
