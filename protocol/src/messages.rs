//! The small messages around the envelope: answers, errors and the staff API.

use crate::cbor::{DecodeError, Limits, Reader, Writer};

/// The answer to an accepted report: `201 {"id", "receipt"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitAnswer {
    /// The gateway's id for the record.
    pub id: String,
    /// The code the reporter keeps to check on the report.
    pub receipt: String,
}

/// Every rejection's body: a machine-readable reason and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    /// A stable snake_case reason, listed in SPEC.md.
    pub error: String,
    /// An explanation in English.
    pub message: String,
}

/// One record in a staff list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffItem {
    /// The record id, to ack.
    pub id: String,
    /// Unix time of receipt, rounded down to the hour.
    pub received_at: u64,
    /// How it came in: `api`, `web` (sealed in the browser) or `web-nojs`.
    pub channel: String,
    /// The envelope's CBOR bytes as received.
    pub envelope: Vec<u8>,
}

/// `GET /v1/staff/reports` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffList {
    /// Records after the cursor, oldest first.
    pub reports: Vec<StaffItem>,
    /// Cursor for the next page, or `None` at the end of the queue.
    pub next: Option<String>,
}

/// `POST /v1/staff/ack` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckRequest {
    /// Ids whose reports the hotline has stored safely.
    pub ids: Vec<String>,
}

/// `POST /v1/staff/ack` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckAnswer {
    /// How many records were deleted.
    pub acked: u64,
}

fn text_map(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut w = Writer::new();
    w.map(pairs.len());
    for (k, v) in pairs {
        w.text(k).text(v);
    }
    w.into_bytes()
}

/// Reads a map of known fields with `visit`, skipping unknown ones.
fn read_map<'b>(
    input: &'b [u8],
    limits: Limits,
    name: &'static str,
    mut visit: impl FnMut(&mut Reader<'b>, &'b str) -> Result<bool, DecodeError>,
) -> Result<(), DecodeError> {
    let mut r = Reader::new(input, limits)?;
    r.for_each_entry(name, |r, key| {
        if !visit(r, key)? {
            r.raw_value()?;
        }
        Ok(())
    })?;
    r.finish()
}

impl SubmitAnswer {
    /// Encodes the answer.
    pub fn encode(&self) -> Vec<u8> {
        text_map(&[("id", &self.id), ("receipt", &self.receipt)])
    }

    /// Decodes the answer.
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let (mut id, mut receipt) = (None, None);
        read_map(input, Limits::ENVELOPE, "answer", |r, k| {
            match k {
                "id" => id = Some(r.text("id")?.to_owned()),
                "receipt" => receipt = Some(r.text("receipt")?.to_owned()),
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(SubmitAnswer {
            id: id.ok_or(DecodeError::MissingField("id"))?,
            receipt: receipt.ok_or(DecodeError::MissingField("receipt"))?,
        })
    }
}

impl ErrorBody {
    /// An error body.
    pub fn new(error: &str, message: impl Into<String>) -> Self {
        ErrorBody {
            error: error.to_owned(),
            message: message.into(),
        }
    }

    /// Encodes the body.
    pub fn encode(&self) -> Vec<u8> {
        text_map(&[("error", &self.error), ("message", &self.message)])
    }

    /// Decodes the body.
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let (mut error, mut message) = (None, None);
        read_map(input, Limits::ENVELOPE, "error", |r, k| {
            match k {
                "error" => error = Some(r.text("error")?.to_owned()),
                "message" => message = Some(r.text("message")?.to_owned()),
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(ErrorBody {
            error: error.ok_or(DecodeError::MissingField("error"))?,
            message: message.unwrap_or_default(),
        })
    }
}

impl StaffList {
    /// Encodes the list.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.map(2).text("reports").array(self.reports.len());
        for item in &self.reports {
            w.map(4)
                .text("id")
                .text(&item.id)
                .text("received_at")
                .uint(item.received_at)
                .text("channel")
                .text(&item.channel)
                .text("envelope")
                .bytes(&item.envelope);
        }
        w.text("next");
        match &self.next {
            Some(n) => w.text(n),
            None => w.null(),
        };
        w.into_bytes()
    }

    /// Decodes the list within [`Limits::STAFF_LIST`].
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let mut reports = Vec::new();
        let mut next = None;
        read_map(input, Limits::STAFF_LIST, "list", |r, k| {
            match k {
                "reports" => {
                    let n = r.array("reports")?;
                    for _ in 0..n {
                        reports.push(read_item(r)?);
                    }
                    r.leave();
                }
                "next" => {
                    if !r.null()? {
                        next = Some(r.text("next")?.to_owned());
                    }
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(StaffList { reports, next })
    }
}

fn read_item(r: &mut Reader<'_>) -> Result<StaffItem, DecodeError> {
    let (mut id, mut received_at, mut channel, mut envelope) = (None, None, None, None);
    r.for_each_entry("reports", |r, k| {
        match k {
            "id" => id = Some(r.text("id")?.to_owned()),
            "received_at" => received_at = Some(r.uint("received_at")?),
            "channel" => channel = Some(r.text("channel")?.to_owned()),
            "envelope" => envelope = Some(r.bytes("envelope")?.to_vec()),
            _ => {
                r.raw_value()?;
            }
        }
        Ok(())
    })?;
    Ok(StaffItem {
        id: id.ok_or(DecodeError::MissingField("id"))?,
        received_at: received_at.ok_or(DecodeError::MissingField("received_at"))?,
        channel: channel.ok_or(DecodeError::MissingField("channel"))?,
        envelope: envelope.ok_or(DecodeError::MissingField("envelope"))?,
    })
}

impl AckRequest {
    /// Encodes the request.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.map(1).text("ids").array(self.ids.len());
        for id in &self.ids {
            w.text(id);
        }
        w.into_bytes()
    }

    /// Decodes the request (at most [`Limits::STAFF_LIST`]`.max_array` ids).
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let mut ids = None;
        let limits = Limits {
            max_input: 256 * 1024,
            ..Limits::STAFF_LIST
        };
        read_map(input, limits, "ack", |r, k| {
            if k != "ids" {
                return Ok(false);
            }
            let n = r.array("ids")?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(r.text("ids")?.to_owned());
            }
            r.leave();
            ids = Some(v);
            Ok(true)
        })?;
        Ok(AckRequest {
            ids: ids.ok_or(DecodeError::MissingField("ids"))?,
        })
    }
}

impl AckAnswer {
    /// Encodes the answer.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.map(1).text("acked").uint(self.acked);
        w.into_bytes()
    }

    /// Decodes the answer.
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let mut acked = None;
        read_map(input, Limits::ENVELOPE, "ack answer", |r, k| {
            if k != "acked" {
                return Ok(false);
            }
            acked = Some(r.uint("acked")?);
            Ok(true)
        })?;
        Ok(AckAnswer {
            acked: acked.ok_or(DecodeError::MissingField("acked"))?,
        })
    }
}

/// `GET /v1/receipts/{code}` answer: what a reporter may learn, and no more.
/// Unknown, malformed and expired codes all get `unknown`, so the answer
/// says nothing about which codes exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptAnswer {
    /// `queued`, `delivered` or `unknown`.
    pub status: String,
    /// For `delivered`: the day of delivery (days since 1970-01-01 UTC).
    pub day: Option<u64>,
}

impl ReceiptAnswer {
    /// Encodes the answer.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.map(1 + usize::from(self.day.is_some()))
            .text("status")
            .text(&self.status);
        if let Some(day) = self.day {
            w.text("day").uint(day);
        }
        w.into_bytes()
    }

    /// Decodes the answer.
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let (mut status, mut day) = (None, None);
        read_map(input, Limits::ENVELOPE, "receipt", |r, k| {
            match k {
                "status" => status = Some(r.text("status")?.to_owned()),
                "day" => day = Some(r.uint("day")?),
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(ReceiptAnswer {
            status: status.ok_or(DecodeError::MissingField("status"))?,
            day,
        })
    }
}
