//! Untyped DDS readers and writers that carry serialized CDR payloads unchanged.
//!
//! The gateway and the zero-copy path move payloads without decoding them into Rust values:
//! a [`RawCdr`] is the CDR body plus its byte order, exactly as it crossed the wire. RustDDS is
//! plugged in through its serializer/deserializer adapter traits, so fragmentation, reliability
//! and discovery are RustDDS's own; the topics use the ROS 2 names (`rt/<topic>`,
//! `pkg::msg::dds_::Type_`), so every ROS 2 node on the domain sees them as ordinary topics.

use std::collections::HashSet;
use std::time::Duration;

use ros2_client::dds::rustdds::{
    self, bytes::Bytes, mio1, no_key, DomainParticipant, QosPolicies, RTPSEntity,
    RepresentationIdentifier, StatusEvented, Topic, TopicKind, GUID,
};
use rtfuse_msgs::cdr::{self, CDR_BE_HEADER, CDR_LE_HEADER};

use crate::error::PluginError;
use crate::names;
use crate::qos::QosConfig;

/// A serialized ROS 2 message: the CDR body and its byte order (the 4-byte encapsulation header
/// is implied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawCdr {
    big_endian: bool,
    body: Bytes,
}

impl RawCdr {
    /// Wraps a complete payload (encapsulation header + body), copying it once.
    ///
    /// # Errors
    /// [`cdr::DecodeError`] for a payload shorter than the header or not plain CDR.
    pub fn from_payload(payload: &[u8]) -> Result<RawCdr, cdr::DecodeError> {
        let (big_endian, body) = cdr::split_header(payload)?;
        Ok(RawCdr {
            big_endian,
            body: Bytes::copy_from_slice(body),
        })
    }

    /// Encodes a typed message (`CDR_LE`).
    ///
    /// # Errors
    /// [`cdr::EncodeError`] if the message cannot be represented in CDR.
    pub fn encode<M: serde::Serialize>(msg: &M) -> Result<RawCdr, cdr::EncodeError> {
        let payload = cdr::encode(msg)?;
        Ok(RawCdr {
            big_endian: false,
            body: Bytes::from(payload).slice(4..),
        })
    }

    /// The CDR body (after the encapsulation header).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Whether the body is big-endian (`CDR_BE`).
    pub fn is_big_endian(&self) -> bool {
        self.big_endian
    }

    /// Length of the complete payload (header + body).
    pub fn payload_len(&self) -> usize {
        4 + self.body.len()
    }

    /// Writes the complete payload (header + body) to the start of `dst` and returns its length,
    /// or `None` if `dst` is too small.
    pub fn write_payload(&self, dst: &mut [u8]) -> Option<usize> {
        let n = self.payload_len();
        let dst = dst.get_mut(..n)?;
        dst[..4].copy_from_slice(if self.big_endian {
            &CDR_BE_HEADER
        } else {
            &CDR_LE_HEADER
        });
        dst[4..].copy_from_slice(&self.body);
        Some(n)
    }

    /// The complete payload as a new vector.
    pub fn to_payload(&self) -> Vec<u8> {
        let mut v = vec![0; self.payload_len()];
        let _ = self.write_payload(&mut v);
        v
    }

    /// Decodes into a typed message.
    ///
    /// # Errors
    /// See [`cdr::DecodeError`].
    pub fn decode<M: serde::de::DeserializeOwned>(&self) -> Result<M, cdr::DecodeError> {
        cdr::decode(&self.to_payload())
    }
}

/// Error of the RustDDS adapter (an encoding we do not carry).
#[derive(Debug, thiserror::Error)]
#[error("unsupported CDR representation {0:?}")]
pub struct RawAdapterError(RepresentationIdentifier);

/// RustDDS adapter that moves [`RawCdr`] payloads without interpreting them.
pub struct RawCdrAdapter;

const RAW_ENCODINGS: [RepresentationIdentifier; 2] = [
    RepresentationIdentifier::CDR_LE,
    RepresentationIdentifier::CDR_BE,
];

impl no_key::DeserializerAdapter<RawCdr> for RawCdrAdapter {
    type Error = RawAdapterError;
    type Decoded = RawCdr;

    fn supported_encodings() -> &'static [RepresentationIdentifier] {
        &RAW_ENCODINGS
    }

    fn transform_decoded(decoded: RawCdr) -> RawCdr {
        decoded
    }
}

/// The decoder behind [`RawCdrAdapter`]: copies the body.
#[derive(Clone, Copy)]
pub struct RawDecoder;

impl<'de> no_key::Decode<'de, RawCdr> for RawDecoder {
    type Error = RawAdapterError;

    fn decode_bytes(
        self,
        input_bytes: &'de [u8],
        encoding: RepresentationIdentifier,
    ) -> Result<RawCdr, Self::Error> {
        let big_endian = match encoding {
            RepresentationIdentifier::CDR_LE => false,
            RepresentationIdentifier::CDR_BE => true,
            other => return Err(RawAdapterError(other)),
        };
        Ok(RawCdr {
            big_endian,
            body: Bytes::copy_from_slice(input_bytes),
        })
    }
}

impl no_key::DefaultDecoder<RawCdr> for RawCdrAdapter {
    type Decoder = RawDecoder;
    const DECODER: RawDecoder = RawDecoder;
}

impl no_key::SerializerAdapter<RawCdr> for RawCdrAdapter {
    type Error = RawAdapterError;

    fn output_encoding() -> RepresentationIdentifier {
        RepresentationIdentifier::CDR_LE
    }

    fn to_bytes(value: &RawCdr) -> Result<Bytes, Self::Error> {
        if value.big_endian {
            // RawWriter::write converts before it gets here; never mislabel bytes.
            return Err(RawAdapterError(RepresentationIdentifier::CDR_BE));
        }
        Ok(value.body.clone())
    }
}

/// Events a reader or writer observed since the last call (matching and QoS problems).
#[derive(Debug, Default, Clone)]
pub struct EndpointEvents {
    /// Remote endpoints matched now.
    pub matched: usize,
    /// Human-readable descriptions of incompatible-QoS events (e.g. a reliable reader against
    /// our best-effort writer).
    pub incompatible_qos: Vec<String>,
}

fn describe_qos(requested: &QosPolicies, offered: &QosPolicies) -> String {
    format!(
        "requested reliability {:?} / durability {:?}, offered reliability {:?} / durability {:?}",
        requested.reliability(),
        requested.durability(),
        offered.reliability(),
        offered.durability()
    )
}

/// The DDS topic (`rt/<topic>`, `pkg::msg::dds_::Type_`) and policies of an endpoint.
fn ros_topic(
    participant: &DomainParticipant,
    topic: &str,
    ros_type: &str,
    qos: &QosConfig,
) -> Result<(Topic, QosPolicies, String), PluginError> {
    let dds_topic = names::dds_topic_name(topic)?;
    let dds_type = names::dds_type_name(ros_type)?;
    let policies = qos.to_dds();
    let t = participant
        .create_topic(dds_topic.clone(), dds_type, &policies, TopicKind::NoKey)
        .map_err(|e| PluginError::dds(&dds_topic, e))?;
    Ok((t, policies, dds_topic))
}

/// Matched remote endpoints and incompatible-QoS reports, from DDS status events.
#[derive(Default)]
struct Matching {
    matched: HashSet<GUID>,
    incompatible: Vec<String>,
}

impl Matching {
    fn on_matched(&mut self, change: i32, remote: GUID) {
        if change > 0 {
            self.matched.insert(remote);
        } else if change < 0 {
            self.matched.remove(&remote);
        }
    }

    fn on_incompatible(
        &mut self,
        topic: &str,
        remote: String,
        policy: impl std::fmt::Debug,
        requested: &QosPolicies,
        offered: &QosPolicies,
    ) {
        self.incompatible.push(format!(
            "QoS mismatch on {topic}: {remote} is incompatible in {policy:?} ({})",
            describe_qos(requested, offered)
        ));
    }

    fn take_events(&mut self) -> EndpointEvents {
        EndpointEvents {
            matched: self.matched.len(),
            incompatible_qos: std::mem::take(&mut self.incompatible),
        }
    }
}

/// A DDS writer of raw CDR payloads on a ROS 2 topic.
pub struct RawWriter {
    writer: no_key::DataWriter<RawCdr, RawCdrAdapter>,
    topic: String,
    matching: Matching,
}

impl RawWriter {
    /// Creates a writer for ROS topic `topic` of type `ros_type` with `qos`.
    ///
    /// # Errors
    /// Bad names or a DDS creation failure.
    pub fn new(
        participant: &DomainParticipant,
        topic: &str,
        ros_type: &str,
        qos: &QosConfig,
    ) -> Result<RawWriter, PluginError> {
        let (t, policies, dds_topic) = ros_topic(participant, topic, ros_type, qos)?;
        let publisher = participant
            .create_publisher(&policies)
            .map_err(|e| PluginError::dds(&dds_topic, e))?;
        let writer = publisher
            .create_datawriter_no_key::<RawCdr, RawCdrAdapter>(&t, Some(policies))
            .map_err(|e| PluginError::dds(&dds_topic, e))?;
        Ok(RawWriter {
            writer,
            topic: dds_topic,
            matching: Matching::default(),
        })
    }

    /// Publishes one message; returns the RTPS sequence number it got.
    ///
    /// # Errors
    /// [`PluginError::Write`] if RustDDS refuses (e.g. the reliable send window stays full).
    pub fn write(&self, msg: RawCdr) -> Result<i64, PluginError> {
        let msg = if msg.big_endian {
            // Our adapter always writes CDR_LE: refuse rather than mislabel.
            return Err(PluginError::BigEndianEgress(self.topic.clone()));
        } else {
            msg
        };
        let options = rustdds::with_key::WriteOptionsBuilder::new()
            .source_timestamp(rustdds::Timestamp::now())
            .build();
        let id = self
            .writer
            .write_with_options(msg, options)
            .map_err(|e| PluginError::Write(self.topic.clone(), format!("{e:?}")))?;
        Ok(i64::from(id.sequence_number))
    }

    /// Our GUID.
    pub fn guid(&self) -> GUID {
        self.writer.guid()
    }

    /// DDS topic name (`rt/...`).
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Processes pending status events and returns the current matched readers.
    pub fn poll_events(&mut self) -> &HashSet<GUID> {
        while let Some(status) = self.writer.try_recv_status() {
            match status {
                rustdds::DataWriterStatus::PublicationMatched {
                    current, reader, ..
                } => self.matching.on_matched(current.count_change(), reader),
                rustdds::DataWriterStatus::OfferedIncompatibleQos {
                    last_policy_id,
                    reader,
                    requested_qos,
                    offered_qos,
                    ..
                } => self.matching.on_incompatible(
                    &self.topic,
                    format!("reader {reader:?}"),
                    last_policy_id,
                    &requested_qos,
                    &offered_qos,
                ),
                _ => {}
            }
        }
        &self.matching.matched
    }

    /// Matching state and QoS problems seen since the last call.
    pub fn take_events(&mut self) -> EndpointEvents {
        self.poll_events();
        self.matching.take_events()
    }
}

/// One received sample with its origin.
#[derive(Debug, Clone)]
pub struct RawSample {
    /// The payload.
    pub data: RawCdr,
    /// The DDS writer that sent it.
    pub writer: GUID,
    /// Its RTPS sequence number (per writer, from 1).
    pub sequence_number: i64,
}

/// A DDS reader of raw CDR payloads on a ROS 2 topic.
pub struct RawReader {
    reader: no_key::DataReader<RawCdr, RawCdrAdapter>,
    poll: mio1::Poll,
    events: mio1::Events,
    topic: String,
    matching: Matching,
}

impl RawReader {
    /// Creates a reader for ROS topic `topic` of type `ros_type` with `qos`.
    ///
    /// # Errors
    /// Bad names or a DDS creation failure.
    pub fn new(
        participant: &DomainParticipant,
        topic: &str,
        ros_type: &str,
        qos: &QosConfig,
    ) -> Result<RawReader, PluginError> {
        let (t, policies, dds_topic) = ros_topic(participant, topic, ros_type, qos)?;
        let subscriber = participant
            .create_subscriber(&policies)
            .map_err(|e| PluginError::dds(&dds_topic, e))?;
        let mut reader = subscriber
            .create_datareader_no_key::<RawCdr, RawCdrAdapter>(&t, Some(policies))
            .map_err(|e| PluginError::dds(&dds_topic, e))?;
        let poll = mio1::Poll::new().map_err(|e| PluginError::Io(dds_topic.clone(), e))?;
        poll.registry()
            .register(&mut reader, mio1::Token(0), mio1::Interest::READABLE)
            .map_err(|e| PluginError::Io(dds_topic.clone(), e))?;
        Ok(RawReader {
            reader,
            poll,
            events: mio1::Events::with_capacity(4),
            topic: dds_topic,
            matching: Matching::default(),
        })
    }

    /// Takes the next sample if one is there (non-blocking).
    ///
    /// # Errors
    /// [`PluginError::Read`] for a sample RustDDS could not deliver (e.g. an encoding we do
    /// not carry); the reader stays usable.
    pub fn take(&mut self) -> Result<Option<RawSample>, PluginError> {
        match self.reader.take_next_sample() {
            Ok(Some(sample)) => {
                let info = sample.sample_info();
                let writer = info.writer_guid();
                let sequence_number = i64::from(info.sample_identity().sequence_number);
                Ok(Some(RawSample {
                    data: sample.into_value(),
                    writer,
                    sequence_number,
                }))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(PluginError::Read(self.topic.clone(), format!("{e:?}"))),
        }
    }

    /// Waits up to `timeout` for a sample and takes it.
    ///
    /// # Errors
    /// As [`RawReader::take`].
    pub fn take_timeout(&mut self, timeout: Duration) -> Result<Option<RawSample>, PluginError> {
        if let Some(s) = self.take()? {
            return Ok(Some(s));
        }
        // Readiness is edge-triggered: anything that arrived before registration or between
        // take() and poll() is caught by the take() after the wait.
        let _ = self.poll.poll(&mut self.events, Some(timeout));
        self.take()
    }

    /// Waits up to `timeout` for the reader to signal new data (without taking it).
    pub fn wait(&mut self, timeout: Duration) {
        let _ = self.poll.poll(&mut self.events, Some(timeout));
    }

    /// DDS topic name (`rt/...`).
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Our GUID.
    pub fn guid(&self) -> GUID {
        self.reader.guid()
    }

    /// Processes pending status events and returns the currently matched writers.
    pub fn poll_events(&mut self) -> &HashSet<GUID> {
        while let Some(status) = self.reader.try_recv_status() {
            match status {
                rustdds::DataReaderStatus::SubscriptionMatched {
                    current, writer, ..
                } => self.matching.on_matched(current.count_change(), writer),
                rustdds::DataReaderStatus::RequestedIncompatibleQos {
                    last_policy_id,
                    writer,
                    requested_qos,
                    offered_qos,
                    ..
                } => self.matching.on_incompatible(
                    &self.topic,
                    format!("writer {writer:?}"),
                    last_policy_id,
                    &requested_qos,
                    &offered_qos,
                ),
                _ => {}
            }
        }
        &self.matching.matched
    }

    /// Matching state and QoS problems seen since the last call.
    pub fn take_events(&mut self) -> EndpointEvents {
        self.poll_events();
        self.matching.take_events()
    }
}
