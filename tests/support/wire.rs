//! A raw Kafka-protocol client for tests that need to send exact bytes: malformed frames,
//! chosen versions, or requests a real client library would never send.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
    ProduceRequest, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

pub struct RawClient {
    stream: TcpStream,
    next_correlation_id: i32,
}

impl RawClient {
    pub fn connect(address: &str) -> RawClient {
        let stream =
            TcpStream::connect(address).unwrap_or_else(|e| panic!("connect {address}: {e}"));
        Self::over(stream)
    }

    /// Connects from `source`, a loopback address of the test's choosing, as a client on
    /// another host of that address would.
    pub fn connect_from(address: &str, source: std::net::IpAddr) -> RawClient {
        use socket2::{Domain, Socket, Type};
        let target: std::net::SocketAddr = address.parse().expect("an ip:port");
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        socket
            .bind(&std::net::SocketAddr::new(source, 0).into())
            .unwrap_or_else(|e| panic!("bind {source}: {e}"));
        socket
            .connect(&target.into())
            .unwrap_or_else(|e| panic!("connect {address} from {source}: {e}"));
        Self::over(socket.into())
    }

    fn over(stream: TcpStream) -> RawClient {
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        RawClient {
            stream,
            next_correlation_id: 1,
        }
    }

    pub fn local_port(&self) -> u16 {
        self.stream.local_addr().unwrap().port()
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    pub fn send_frame(&mut self, body: &[u8]) {
        let mut out = (body.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(body);
        self.send_raw(&out);
    }

    pub fn read_frame(&mut self) -> std::io::Result<Bytes> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size)?;
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut body)?;
        Ok(Bytes::from(body))
    }

    /// Encodes a request with a standard header, as a client library would.
    pub fn encode<R: Encodable>(&mut self, api_key: ApiKey, version: i16, body: &R) -> Vec<u8> {
        let header = RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.next_correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("raw-test-client")));
        self.next_correlation_id += 1;
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, api_key.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        buf.to_vec()
    }

    /// Sends a request and decodes its response.
    pub fn call<R: Encodable, T: Decodable>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        body: &R,
    ) -> T {
        let correlation_id = self.next_correlation_id;
        let frame = self.encode(api_key, version, body);
        self.send_frame(&frame);
        let mut response = self.read_frame().expect("a response");
        let header =
            ResponseHeader::decode(&mut response, api_key.response_header_version(version))
                .unwrap();
        assert_eq!(header.correlation_id, correlation_id);
        T::decode(&mut response, version).unwrap()
    }

    pub fn api_versions(&mut self) -> ApiVersionsResponse {
        self.call(
            ApiKey::ApiVersions,
            3,
            &ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("raw"))
                .with_client_software_version(StrBytes::from_static_str("1")),
        )
    }

    /// ApiVersions on a connection the peer may already have closed: the I/O error then.
    pub fn try_api_versions(&mut self) -> std::io::Result<ApiVersionsResponse> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("raw"))
            .with_client_software_version(StrBytes::from_static_str("1"));
        let frame = self.encode(ApiKey::ApiVersions, 3, &request);
        self.stream.write_all(&(frame.len() as i32).to_be_bytes())?;
        self.stream.write_all(&frame)?;
        let mut response = self.read_frame()?;
        ResponseHeader::decode(&mut response, 0).map_err(std::io::Error::other)?;
        ApiVersionsResponse::decode(&mut response, 3).map_err(std::io::Error::other)
    }

    pub fn metadata(&mut self) -> MetadataResponse {
        self.call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(None),
        )
    }

    /// Asserts that the peer closes the connection within `deadline`, reading and
    /// discarding anything it still sends.
    pub fn assert_closed_within(&mut self, deadline: Duration) {
        let start = Instant::now();
        self.stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e)
                    if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) =>
                {
                    return
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("unexpected read error: {e}"),
            }
            assert!(
                start.elapsed() < deadline,
                "connection still open after {deadline:?}"
            );
        }
    }
}

/// A Produce (v9) of one record with `value` to partition 0 of `topic`, at acks=all, so
/// an acknowledged record is below the high watermark at once.
pub fn produce_request(topic: &str, value: &str) -> ProduceRequest {
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now_millis(),
        key: None,
        value: Some(Bytes::from(value.to_string())),
        headers: Default::default(),
    };
    let mut batch = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut batch, [&record], &options).unwrap();
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch.freeze()))])])
}

/// The wall clock in milliseconds, for record timestamps: a record stamped in 1970 is past
/// every retention limit, so the brokers may delete it before the test reads it back.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
