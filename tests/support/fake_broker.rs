//! A stand-in broker for the one edge case a real Kafka cluster cannot be made to produce
//! on demand without disturbing other tests: a broker that drops a client's connection.
//! It answers the node's Metadata refresh with itself as the only broker, and closes any
//! other connection as soon as a request arrives.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
use kafka_protocol::messages::{ApiKey, BrokerId, MetadataResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

pub struct FakeBroker {
    pub address: String,
    stopped: Arc<AtomicBool>,
    accepting: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl FakeBroker {
    pub fn start(host: &str) -> FakeBroker {
        let listener = TcpListener::bind((host, 0)).unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let stopped = Arc::new(AtomicBool::new(false));
        let (host, port) = (host.to_string(), listener.local_addr().unwrap().port());
        let flag = stopped.clone();
        let accepting = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::Relaxed) {
                    return; // dropping the listener refuses new connections
                }
                let (host, stream) = (host.clone(), stream.unwrap());
                std::thread::spawn(move || serve(stream, &host, port));
            }
        });
        FakeBroker {
            address,
            stopped,
            accepting: std::sync::Mutex::new(Some(accepting)),
        }
    }

    /// Stops accepting, and returns once the listener is closed: later connections are
    /// refused, none can still land in the accept queue.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(&self.address); // wake the accept loop
        if let Some(accepting) = self.accepting.lock().unwrap().take() {
            accepting.join().unwrap();
        }
    }
}

fn serve(mut stream: TcpStream, host: &str, port: u16) {
    while let Some(mut frame) = read_frame(&mut stream) {
        let api_key = ApiKey::try_from(i16::from_be_bytes([frame[0], frame[1]])).unwrap();
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let header =
            RequestHeader::decode(&mut frame, api_key.request_header_version(version)).unwrap();
        if api_key != ApiKey::Metadata {
            return; // the broker goes away mid-conversation
        }
        let body =
            MetadataResponse::default().with_brokers(vec![MetadataResponseBroker::default()
                .with_node_id(BrokerId(1))
                .with_host(StrBytes::from_string(host.to_string()))
                .with_port(i32::from(port))]);
        let mut out = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(header.correlation_id)
            .encode(&mut out, api_key.response_header_version(version))
            .unwrap();
        body.encode(&mut out, version).unwrap();
        let mut framed = (out.len() as i32).to_be_bytes().to_vec();
        framed.extend_from_slice(&out);
        if stream.write_all(&framed).is_err() {
            return;
        }
    }
}

fn read_frame(stream: &mut TcpStream) -> Option<Bytes> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut body).ok()?;
    Some(Bytes::from(body))
}
