//! The report per-topic figures travel in, between the breaker filter's meter on every
//! node (`proxy::filters::breaker::meter`, which writes them) and the Raft leader judging
//! breaker rules fleet-wide (`cluster::breakers`, which reads them). Keys are
//! `<measure>:<topic>`; Kafka topic names cannot contain `:`.

/// The gossip report's name.
pub const KIND: &str = "breaker-topics";

/// What is measured of a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Produce bytes forwarded to the brokers.
    Bytes,
    /// Produce partition responses from the brokers.
    Responses,
    /// Produce partition responses with an error.
    Errors,
}

impl Measure {
    pub(crate) const ALL: [Measure; 3] = [Measure::Bytes, Measure::Responses, Measure::Errors];

    fn prefix(self) -> &'static str {
        match self {
            Measure::Bytes => "bytes",
            Measure::Responses => "responses",
            Measure::Errors => "errors",
        }
    }

    /// The gossip key of this measure of `topic`.
    pub fn key(self, topic: &str) -> String {
        format!("{}:{topic}", self.prefix())
    }

    /// The measure and topic of a gossip key.
    pub fn parse(key: &str) -> Option<(Measure, &str)> {
        let (prefix, topic) = key.split_once(':')?;
        let measure = Measure::ALL.into_iter().find(|m| m.prefix() == prefix)?;
        Some((measure, topic))
    }
}
