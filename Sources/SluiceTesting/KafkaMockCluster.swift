import CRdKafka
import Glibc
import Sluice

/// librdkafka's in-process mock Kafka cluster: a real Kafka wire peer on 127.0.0.1, with no process to start.
/// (No taking a broker down: librdkafka 2.0.2 binds the broker's port again when it does, and aborts the whole
/// process when another test took the port meanwhile. Tests of a broker going away stop a ``NoidaBroker``.)
public final class KafkaMockCluster: @unchecked Sendable {
    // @unchecked: librdkafka's handle and mock cluster are safe to use from any thread.
    /// The `bootstrap.servers` of the cluster.
    public let bootstrapServers: String
    private let handle: OpaquePointer
    private let cluster: OpaquePointer

    /// A cluster of `brokers` brokers.
    /// - Throws: ``StreamingError`` when librdkafka cannot make one.
    public init(brokers: Int32 = 1) throws {
        var error = [CChar](repeating: 0, count: 512)
        let conf = rd_kafka_conf_new()
        // The handle that owns the cluster only hosts it; it never talks to the brokers (errors only: it has no
        // bootstrap.servers, which librdkafka would warn about).
        _ = rd_kafka_conf_set(conf, "log_level", "3", &error, error.count)
        guard let handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &error, error.count) else {
            rd_kafka_conf_destroy(conf)
            throw StreamingError(.internalFailure, "cannot make the mock cluster's client")
        }
        guard let cluster = rd_kafka_mock_cluster_new(handle, brokers), let servers = rd_kafka_mock_cluster_bootstraps(cluster) else {
            rd_kafka_destroy(handle)
            throw StreamingError(.internalFailure, "cannot make a mock Kafka cluster")
        }
        self.handle = handle
        self.cluster = cluster
        self.bootstrapServers = String(decoding: UnsafeRawBufferPointer(start: servers, count: strlen(servers)), as: UTF8.self)
    }

    deinit {
        rd_kafka_mock_cluster_destroy(cluster)
        rd_kafka_destroy(handle)
    }

    /// Makes `topic` with `partitions` partitions.
    public func createTopic(_ topic: String, partitions: Int32) throws {
        let err = rd_kafka_mock_topic_create(cluster, topic, partitions, 1)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw StreamingError(.internalFailure, "cannot make mock topic \(topic): error \(err.rawValue)")
        }
    }
}
