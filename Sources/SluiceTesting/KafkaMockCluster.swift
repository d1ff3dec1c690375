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

    /// Makes `topic` with `partitions` partitions, each on `replicas` brokers.
    public func createTopic(_ topic: String, partitions: Int32, replicas: Int32 = 1) throws {
        try check(rd_kafka_mock_topic_create(cluster, topic, partitions, replicas), "making mock topic \(topic)")
    }

    /// Makes broker `broker` (ids start at 1) the leader of `partition` of `topic`: clients that ask the old
    /// leader are told it is not the leader any more.
    public func moveLeader(of topic: String, partition: Int32, to broker: Int32) throws {
        try check(rd_kafka_mock_partition_set_leader(cluster, topic, partition, broker), "moving the leader of \(topic)-\(partition)")
    }

    /// Kafka's request kinds the fault methods name.
    public enum Request: Int16, Sendable {
        case fetch = 1
        case listOffsets = 2
    }

    /// Delays the answers to the next `count` requests of `kind` that broker `broker` gets by `milliseconds`
    /// each (a slow broker), then answers as usual.
    public func delay(next count: Int, _ kind: Request, on broker: Int32 = 1, by milliseconds: Int32) throws {
        for _ in 0..<count {
            try check(
                sluice_mock_push_request_error_rtt(cluster, broker, kind.rawValue, RD_KAFKA_RESP_ERR_NO_ERROR, milliseconds),
                "delaying a request of broker \(broker)")
        }
    }

    /// The next `count` requests of `kind` (to any broker) fail with Kafka's `error` code.
    public func fail(next count: Int, _ kind: Request, with error: Int32) {
        let errors = [rd_kafka_resp_err_t](repeating: rd_kafka_resp_err_t(rawValue: error), count: count)
        rd_kafka_mock_push_request_errors_array(cluster, kind.rawValue, count, errors)
    }

    private func check(_ err: rd_kafka_resp_err_t, _ what: String) throws {
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw StreamingError(.internalFailure, "\(what): \(String(cString: rd_kafka_err2str(err)))")
        }
    }
}
