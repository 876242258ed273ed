//! The small messages around the envelope: answers, errors and the staff API.

use crate::cbor::{head_len, DecodeError, Limits, Reader, Writer};
use crate::reason::Reason;
use crate::values::{Channel, ReceiptState, RecordId};

/// The answer to an accepted report: `201 {"id", "receipt"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitAnswer {
    /// The gateway's id for the record.
    pub id: RecordId,
    /// The code the reporter keeps to check on the report.
    pub receipt: String,
}

/// Every rejection's body: a machine-readable reason and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    /// A stable snake_case reason, listed in SPEC.md.
    pub error: Reason,
    /// An explanation in English.
    pub message: String,
}

/// One record in a staff list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffItem {
    /// The record id, to ack.
    pub id: RecordId,
    /// Unix time of receipt, rounded down to the hour.
    pub received_at: u64,
    /// How it came in.
    pub channel: Channel,
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

/// One dead-lettered record in a [`DeadList`]: a staff item and why the
/// backend refused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadItem {
    /// The record as the staff list shows it.
    pub item: StaffItem,
    /// The backend's refusal as the gateway recorded it (status and error
    /// body), for people.
    pub reason: String,
}

/// `GET /v1/staff/dead` answer: records the push backend refused for good.
/// There is no cursor: acking a record removes it, so the next request
/// shows the next ones (`next` is always null on the wire).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadList {
    /// Dead-lettered records, by id.
    pub reports: Vec<DeadItem>,
}

/// `POST /v1/staff/ack` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckRequest {
    /// Ids whose reports the hotline has stored safely, as sent: the gateway
    /// answers an id that is not a record id with `unknown_ids`, not with a
    /// decode error, so they are checked by [`AckRequest::record_ids`].
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
        text_map(&[("id", self.id.as_str()), ("receipt", &self.receipt)])
    }

    /// Decodes the answer.
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let (mut id, mut receipt) = (None, None);
        read_map(input, Limits::ENVELOPE, "answer", |r, k| {
            match k {
                "id" => id = Some(r.text("id")?.parse()?),
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
    pub fn new(error: Reason, message: impl Into<String>) -> Self {
        ErrorBody {
            error,
            message: message.into(),
        }
    }

    /// Encodes the body.
    pub fn encode(&self) -> Vec<u8> {
        text_map(&[("error", self.error.as_str()), ("message", &self.message)])
    }

    /// Decodes the body. A reason this version does not know is
    /// `invalid_value`: act on the HTTP status alone then (SPEC.md section 9).
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let (mut error, mut message) = (None, None);
        read_map(input, Limits::ENVELOPE, "error", |r, k| {
            match k {
                "error" => error = Some(r.text("error")?.parse()?),
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
            w.map(4);
            write_item_fields(&mut w, item);
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

/// Writes the four fields of a staff item (the caller writes the map head).
fn write_item_fields(w: &mut Writer, item: &StaffItem) {
    w.text("id")
        .text(item.id.as_str())
        .text("received_at")
        .uint(item.received_at)
        .text("channel")
        .text(item.channel.as_str())
        .text("envelope")
        .bytes(&item.envelope);
}

fn read_item(r: &mut Reader<'_>) -> Result<StaffItem, DecodeError> {
    read_item_with(r, |_, _| Ok(false))
}

/// Reads a staff item; `extra` may read a field the item does not know
/// (returning true), else it is skipped.
fn read_item_with(
    r: &mut Reader<'_>,
    mut extra: impl FnMut(&mut Reader<'_>, &str) -> Result<bool, DecodeError>,
) -> Result<StaffItem, DecodeError> {
    let (mut id, mut received_at, mut channel, mut envelope) = (None, None, None, None);
    r.for_each_entry("reports", |r, k| {
        match k {
            "id" => id = Some(r.text("id")?.parse()?),
            "received_at" => received_at = Some(r.uint("received_at")?),
            "channel" => channel = Some(r.text("channel")?.parse()?),
            "envelope" => envelope = Some(r.bytes("envelope")?.to_vec()),
            other => {
                if !extra(r, other)? {
                    r.raw_value()?;
                }
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

impl DeadList {
    /// Encodes the list (with `"next": null`, the staff list's shape).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.map(2).text("reports").array(self.reports.len());
        for dead in &self.reports {
            w.map(5);
            write_item_fields(&mut w, &dead.item);
            w.text("reason").text(&dead.reason);
        }
        w.text("next").null();
        w.into_bytes()
    }

    /// Decodes the list within [`Limits::STAFF_LIST`]; every item must
    /// carry its `reason`.
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let mut reports = Vec::new();
        read_map(input, Limits::STAFF_LIST, "dead list", |r, k| {
            if k != "reports" {
                return Ok(false);
            }
            let n = r.array("reports")?;
            for _ in 0..n {
                let mut reason = None;
                let item = read_item_with(r, |r, k| {
                    if k != "reason" {
                        return Ok(false);
                    }
                    reason = Some(r.text("reason")?.to_owned());
                    Ok(true)
                })?;
                reports.push(DeadItem {
                    item,
                    reason: reason.ok_or(DecodeError::MissingField("reason"))?,
                });
            }
            r.leave();
            Ok(true)
        })?;
        Ok(DeadList { reports })
    }
}

impl AckRequest {
    /// A request acking these records.
    pub fn new(ids: &[RecordId]) -> Self {
        AckRequest {
            ids: ids.iter().map(|id| id.as_str().to_owned()).collect(),
        }
    }

    /// The ids as record ids, or the first one that is not.
    pub fn record_ids(&self) -> Result<Vec<RecordId>, &str> {
        self.ids
            .iter()
            .map(|id| id.parse().map_err(|_| id.as_str()))
            .collect()
    }

    /// Encodes the request.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.map(1).text("ids").array(self.ids.len());
        for id in &self.ids {
            w.text(id);
        }
        w.into_bytes()
    }

    /// The largest request body: a page of ids with room to spare. The
    /// gateway refuses a longer body before decoding it.
    pub const MAX_LEN: usize = 256 * 1024;

    /// Decodes the request (at most [`Limits::STAFF_LIST`]`.max_array` ids).
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let mut ids = None;
        let limits = Limits {
            max_input: AckRequest::MAX_LEN,
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

/// The length of every encoded [`ReceiptAnswer`]: more than the longest
/// answer needs, so the padding can always make it up.
pub const RECEIPT_ANSWER_LEN: usize = 48;

/// `GET /v1/receipts/{code}` answer: what a reporter may learn, and no more.
/// Unknown, malformed and expired codes all get `unknown`, so the answer
/// says nothing about which codes exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptAnswer {
    /// What the code says.
    pub status: ReceiptState,
    /// For `delivered`: the day of delivery (days since 1970-01-01 UTC).
    pub day: Option<u64>,
}

impl ReceiptAnswer {
    /// The answer for a code nobody can learn anything about.
    pub const UNKNOWN: ReceiptAnswer = ReceiptAnswer {
        status: ReceiptState::Unknown,
        day: None,
    };

    /// The answer for a report still waiting for the hotline.
    pub const QUEUED: ReceiptAnswer = ReceiptAnswer {
        status: ReceiptState::Queued,
        day: None,
    };

    /// The answer for a report the hotline received on `day` (UTC days since 1970).
    pub fn delivered(day: u64) -> ReceiptAnswer {
        ReceiptAnswer {
            status: ReceiptState::Delivered,
            day: Some(day),
        }
    }

    /// Encodes the answer, with a `pad` field that makes every answer
    /// [`RECEIPT_ANSWER_LEN`] bytes long: queued, delivered and unknown look
    /// the same on the wire, length included.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Writer::new();
        body.text("status").text(self.status.as_str());
        if let Some(day) = self.day {
            body.text("day").uint(day);
        }
        let body = body.into_bytes();
        let entries = 2 + usize::from(self.day.is_some());
        // map head + entries + "pad" key (4 bytes) + bstr head + padding;
        // the longest answer (`delivered` with a 64-bit day) is 40 bytes.
        let fixed = head_len(entries as u64) + body.len() + 4;
        let pad = [1usize, 2]
            .into_iter()
            .find_map(|head| {
                let pad = RECEIPT_ANSWER_LEN.checked_sub(fixed + head)?;
                (head_len(pad as u64) == head).then_some(pad)
            })
            .unwrap_or(0);
        let mut w = Writer::with_capacity(RECEIPT_ANSWER_LEN);
        w.map(entries).raw(&body).text("pad").bytes(&vec![0u8; pad]);
        w.into_bytes()
    }

    /// Decodes the answer.
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let (mut status, mut day) = (None, None);
        read_map(input, Limits::ENVELOPE, "receipt", |r, k| {
            match k {
                "status" => status = Some(r.text("status")?.parse()?),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_receipt_answer_has_one_length_and_decodes_back() {
        let days = [
            0,
            23,
            24,
            255,
            256,
            20_416,
            65_536,
            u64::from(u32::MAX),
            u64::MAX,
        ];
        let answers = [ReceiptAnswer::UNKNOWN, ReceiptAnswer::QUEUED]
            .into_iter()
            .chain(days.into_iter().map(ReceiptAnswer::delivered));
        for a in answers {
            let bytes = a.encode();
            assert_eq!(bytes.len(), RECEIPT_ANSWER_LEN, "{a:?}");
            assert_eq!(ReceiptAnswer::decode(&bytes).unwrap(), a);
        }
    }
}
