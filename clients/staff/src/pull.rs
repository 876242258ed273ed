//! `pull`: page through the staff list, keep each report durably, and ack
//! only what was kept.
//!
//! Safe to run again at any time, and on several machines at once: a report
//! already in the archive is acked without being written again, and a report
//! that did not open stays on the gateway.

use std::path::PathBuf;
use std::time::Duration;

use hotline_https::Transport;
use hotline_protocol::{AckAnswer, AckRequest, HpkeSecretKey, StaffList};
use hyper::Method;

use crate::archive::{valid_id, Archive, Kept, Meta};
use crate::StaffError;

/// What `pull` needs.
#[derive(Debug)]
pub struct PullOptions {
    /// Gateway base URL (`https://host:port`).
    pub url: String,
    /// The staff bearer token.
    pub token: String,
    /// The hotline private key.
    pub key: HpkeSecretKey,
    /// Where reports go.
    pub out: PathBuf,
    /// Certificate to trust instead of the web PKI.
    pub ca: Option<PathBuf>,
    /// Records per page (1 to 1000).
    pub page: usize,
    /// Also take dead-lettered records (`GET /v1/staff/dead`).
    pub dead: bool,
}

/// What a pull did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PullSummary {
    /// Reports opened and written now.
    pub written: u64,
    /// Reports that were already in the archive (acked again).
    pub already: u64,
    /// Records that did not open (kept in `undecryptable/`, not acked).
    pub undecryptable: u64,
    /// Records with an id this tool refuses (not acked).
    pub refused: u64,
    /// Records the gateway deleted on our ack.
    pub acked: u64,
}

/// Runs one pull to the end of the queue. Progress goes to stdout, one line
/// per record (`stored ID`, `duplicate ID`), and problems to stderr.
pub async fn pull(opts: &PullOptions) -> Result<PullSummary, StaffError> {
    let transport = Transport::new(&opts.url, opts.ca.as_deref())?.timeout(Duration::from_secs(60));
    let archive = Archive::open(&opts.out)?;
    let auth = format!("Bearer {}", opts.token.trim());
    let page = opts.page.clamp(1, 1000);
    let mut summary = PullSummary::default();
    let mut after = 0u64;
    loop {
        let path = if opts.dead {
            format!("/v1/staff/dead?limit={page}")
        } else {
            format!("/v1/staff/reports?after={after}&limit={page}")
        };
        let answer = transport
            .send(Method::GET, &path, &[("authorization", &auth)], Vec::new())
            .await?;
        if answer.status != 200 {
            return Err(StaffError::gateway(&answer));
        }
        let list = StaffList::decode(&answer.body)?;
        let mut to_ack = Vec::new();
        for item in &list.reports {
            if !valid_id(&item.id) {
                summary.refused += 1;
                eprintln!(
                    "refused record id {:?}: not an id this tool accepts; not acked",
                    item.id.chars().take(80).collect::<String>()
                );
                continue;
            }
            let meta = Meta {
                id: item.id.clone(),
                received_at: Some(item.received_at),
                channel: Some(item.channel.clone()),
            };
            let kept = {
                let archive = archive.clone();
                let key = opts.key.clone();
                let envelope = item.envelope.clone();
                tokio::task::spawn_blocking(move || archive.keep(&meta, &envelope, &key))
                    .await
                    .map_err(|e| StaffError::Usage(format!("write task failed: {e}")))??
            };
            match &kept {
                Kept::Written => {
                    summary.written += 1;
                    println!("stored {}", item.id);
                }
                Kept::AlreadyPresent => {
                    summary.already += 1;
                    println!("duplicate {}", item.id);
                }
                Kept::Undecryptable(why) => {
                    summary.undecryptable += 1;
                    eprintln!(
                        "undecryptable {}: {why}; kept in {}/undecryptable/{}.cbor and NOT acked",
                        item.id,
                        opts.out.display(),
                        item.id
                    );
                }
            }
            if kept.may_ack() {
                to_ack.push(item.id.clone());
            }
        }
        if !to_ack.is_empty() {
            summary.acked += ack(&transport, &auth, to_ack).await?;
        }
        if opts.dead {
            // Dead records have no cursor: acked ones leave the list. Stop
            // when a page brought nothing new to ack.
            if list.reports.len() < page || summary.acked == 0 {
                return Ok(summary);
            }
            continue;
        }
        match list.next {
            Some(next) => {
                after = next.parse().map_err(|_| {
                    StaffError::Usage(format!("the gateway sent a bad cursor {next:?}"))
                })?;
            }
            None => return Ok(summary),
        }
    }
}

/// `POST /v1/staff/ack`; returns how many records the gateway deleted.
pub async fn ack(transport: &Transport, auth: &str, ids: Vec<String>) -> Result<u64, StaffError> {
    let body = AckRequest { ids }.encode();
    let answer = transport
        .send(
            Method::POST,
            "/v1/staff/ack",
            &[
                ("authorization", auth),
                ("content-type", hotline_protocol::MEDIA_TYPE),
            ],
            body,
        )
        .await?;
    if answer.status != 200 {
        return Err(StaffError::gateway(&answer));
    }
    Ok(AckAnswer::decode(&answer.body)?.acked)
}
