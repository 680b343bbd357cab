/*
 * mock_broker.c - librdkafka's mock cluster as a standalone process, for tests that must
 * keep the broker alive while PostgreSQL crashes and restarts (the embedded broker lives
 * inside the postmaster's children and would be lost).  Same mock cluster as broker.c.
 *
 *   mock_broker TOPIC PARTITIONS ADDR_FILE
 * writes the bootstrap address to ADDR_FILE; SIGUSR1 takes the broker down (connections
 * refused and dropped), SIGUSR2 brings it back, SIGTERM/SIGINT stop it.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static volatile sig_atomic_t stop = 0;
static volatile sig_atomic_t want_down = -1;

static void on_stop(int sig) { stop = 1; }
static void on_down(int sig) { want_down = 1; }
static void on_up(int sig) { want_down = 0; }

int
main(int argc, char **argv)
{
	char		errstr[512];
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	rd_kafka_mock_cluster_t *mc;
	FILE	   *f;

	if (argc != 4)
	{
		fprintf(stderr, "usage: %s TOPIC PARTITIONS ADDR_FILE\n", argv[0]);
		return 2;
	}
	conf = rd_kafka_conf_new();
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL)
	{
		fprintf(stderr, "mock_broker: %s\n", errstr);
		return 1;
	}
	mc = rd_kafka_mock_cluster_new(rk, 1);
	if (mc == NULL || rd_kafka_mock_topic_create(mc, argv[1], atoi(argv[2]), 1) != 0)
	{
		fprintf(stderr, "mock_broker: could not start the mock cluster\n");
		return 1;
	}
	f = fopen(argv[3], "w");
	if (f == NULL)
	{
		perror(argv[3]);
		return 1;
	}
	fprintf(f, "%s\n", rd_kafka_mock_cluster_bootstraps(mc));
	fclose(f);
	printf("mock_broker: %s topic %s partitions %s\n", rd_kafka_mock_cluster_bootstraps(mc), argv[1], argv[2]);
	fflush(stdout);

	signal(SIGTERM, on_stop);
	signal(SIGINT, on_stop);
	signal(SIGUSR1, on_down);
	signal(SIGUSR2, on_up);
	while (!stop)
	{
		if (want_down >= 0)
		{
			if (want_down)
				rd_kafka_mock_broker_set_down(mc, 1);
			else
				rd_kafka_mock_broker_set_up(mc, 1);
			printf("mock_broker: broker %s\n", want_down ? "down" : "up");
			fflush(stdout);
			want_down = -1;
		}
		usleep(50 * 1000);
	}
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	return 0;
}
