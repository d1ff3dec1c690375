// librdkafka (Debian librdkafka-dev): the Kafka client the Kafka streams use, and its in-process mock cluster.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
