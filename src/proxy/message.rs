//! A request or response as filters see it: the bytes as they arrived, decoded only when a
//! filter first asks for the body, and encoded again only if a filter changed it. A
//! message no filter edits leaves as the bytes it came as, record data included.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::protocol::decode::{self, DecodeError};
use crate::protocol::header::RequestMeta;

/// A client request on its way to the broker.
#[derive(Debug)]
pub struct Request {
    meta: RequestMeta,
    /// Header and body as the client sent them.
    frame: Bytes,
    /// Boxed: a request no filter decodes must stay a few words to move.
    body: Option<Box<RequestKind>>,
    edited: bool,
}

impl Request {
    pub fn new(meta: RequestMeta, frame: Bytes) -> Request {
        Request {
            meta,
            frame,
            body: None,
            edited: false,
        }
    }

    pub fn api_key(&self) -> ApiKey {
        self.meta.api_key
    }

    pub fn version(&self) -> i16 {
        self.meta.api_version
    }

    pub fn correlation_id(&self) -> i32 {
        self.meta.correlation_id
    }

    pub fn client_id(&self) -> Option<&StrBytes> {
        self.meta.client_id.as_ref()
    }

    /// The request as the client sent it, header included.
    pub fn frame(&self) -> &Bytes {
        &self.frame
    }

    /// The decoded body; decoded on first use, with every length checked first.
    pub fn body(&mut self) -> Result<&RequestKind, DecodeError> {
        self.decoded().map(|body| &*body)
    }

    /// The decoded body, to change it; the request is encoded again before it is sent.
    pub fn body_mut(&mut self) -> Result<&mut RequestKind, DecodeError> {
        self.edited = true;
        self.decoded()
    }

    fn decoded(&mut self) -> Result<&mut RequestKind, DecodeError> {
        if self.body.is_none() {
            let body = self.frame.slice(self.meta.header_len..);
            let decoded = decode::decode_request(self.meta.api_key, self.meta.api_version, &body)?;
            self.body = Some(Box::new(decoded));
        }
        Ok(self.body.as_mut().expect("decoded above"))
    }

    /// The bytes to send: the original frame, or the client's own header followed by the
    /// edited body.
    pub fn into_frame(self) -> Result<Bytes, String> {
        let (true, Some(body)) = (self.edited, &self.body) else {
            return Ok(self.frame);
        };
        let mut out = BytesMut::from(&self.frame[..self.meta.header_len]);
        body.encode(&mut out, self.meta.api_version).map_err(|e| {
            format!(
                "cannot encode the edited {:?} request: {e}",
                self.meta.api_key
            )
        })?;
        Ok(out.freeze())
    }
}

/// A broker response on its way to the client.
#[derive(Debug)]
pub struct Response {
    api_key: ApiKey,
    version: i16,
    /// Header and body as the broker sent them (or as a filter replaced them).
    frame: Bytes,
    /// Boxed: a response no filter decodes must stay a few words to move.
    decoded: Option<Box<(ResponseHeader, ResponseKind)>>,
    edited: bool,
}

impl Response {
    pub fn new(api_key: ApiKey, version: i16, frame: Bytes) -> Response {
        Response {
            api_key,
            version,
            frame,
            decoded: None,
            edited: false,
        }
    }

    pub fn api_key(&self) -> ApiKey {
        self.api_key
    }

    pub fn version(&self) -> i16 {
        self.version
    }

    /// The correlation id of the request it answers.
    pub fn correlation_id(&self) -> Option<i32> {
        crate::protocol::header::response_correlation_id(&self.frame)
    }

    /// The response as the broker sent it, header included; for filters that can tell
    /// from the bytes alone that they have nothing to change.
    pub fn frame(&self) -> &Bytes {
        &self.frame
    }

    /// Decodes the body (once) and lets `change` edit it; `change` returns whether it
    /// changed anything, and only a changed response is encoded again.
    pub fn edit(&mut self, change: impl FnOnce(&mut ResponseKind) -> bool) -> Result<(), String> {
        if self.decoded.is_none() {
            self.decoded = Some(Box::new(self.decode()?));
        }
        let (_, body) = &mut **self.decoded.as_mut().expect("decoded above");
        self.edited |= change(body);
        Ok(())
    }

    /// Replaces the whole response (header included) with bytes a filter built.
    pub fn replace(&mut self, frame: Bytes) {
        self.frame = frame;
        self.decoded = None;
        self.edited = false;
    }

    fn header_version(&self) -> i16 {
        self.api_key.response_header_version(self.version)
    }

    fn decode(&self) -> Result<(ResponseHeader, ResponseKind), String> {
        let mut buf = self.frame.clone();
        let header =
            ResponseHeader::decode(&mut buf, self.header_version()).map_err(|e| e.to_string())?;
        let body = ResponseKind::decode(self.api_key, &mut buf, self.version)
            .map_err(|e| e.to_string())?;
        if !buf.is_empty() {
            return Err(format!("{} bytes left after the body", buf.len()));
        }
        Ok((header, body))
    }

    /// The bytes to send to the client.
    pub fn into_frame(self) -> Result<Bytes, String> {
        let (true, Some(decoded)) = (self.edited, &self.decoded) else {
            return Ok(self.frame);
        };
        let (header, body) = &**decoded;
        let mut out = BytesMut::new();
        header
            .encode(&mut out, self.header_version())
            .map_err(|e| e.to_string())?;
        body.encode(&mut out, self.version)
            .map_err(|e| e.to_string())?;
        Ok(out.freeze())
    }
}
