/*
 * guc.c - tweetlake.* settings.  Each is documented in the README ("Settings"); the
 * limits here decide what parse.c sends to bronze.dead_letters.
 */
#include "tweetlake.h"

#include "utils/guc.h"

int			tweetlake_batch_size = 10000;
int			tweetlake_max_text_length = 1000;
int			tweetlake_max_message_bytes = 1024 * 1024;

void
tweetlake_define_gucs(void)
{
	DefineCustomIntVariable("tweetlake.batch_size",
							"Rows per bronze batch written by load_generated and the consumers.",
							"Each batch is one INSERT into bronze.tweets, so one run of the silver/gold triggers.",
							&tweetlake_batch_size,
							10000, 1, 1000000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tweetlake.max_text_length",
							"Longest tweet text, in characters, accepted into silver.",
							"Longer messages go to bronze.dead_letters.",
							&tweetlake_max_text_length,
							1000, 1, 1000000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tweetlake.max_message_bytes",
							"Largest message, in bytes, accepted into silver.",
							"Larger messages go to bronze.dead_letters.",
							&tweetlake_max_message_bytes,
							1024 * 1024, 1024, 64 * 1024 * 1024,
							PGC_SIGHUP, GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("tweetlake");
}
