// librdkafka (Debian librdkafka-dev): the Kafka client the Kafka streams use, and its in-process mock cluster.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

// rd_kafka_mock_broker_push_request_error_rtts is variadic, so out of Swift's reach: one (error, RTT) entry.
static inline rd_kafka_resp_err_t sluice_mock_push_request_error_rtt(
    rd_kafka_mock_cluster_t *cluster, int32_t broker, int16_t api_key, rd_kafka_resp_err_t error, int rtt_ms) {
    return rd_kafka_mock_broker_push_request_error_rtts(cluster, broker, api_key, 1, error, rtt_ms);
}
