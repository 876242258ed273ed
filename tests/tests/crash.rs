//! Crash safety: while a loader submits reports, the gateway is killed with
//! SIGKILL at random moments and restarted. Every report that got a 201 must
//! be present and open, no record may be corrupt, and the store must open
//! every time. Run for both engines.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotline_e2e::*;
use hotline_protocol::{open_report, SubmitAnswer};

const KILLS: usize = 10;
const LOADERS: usize = 8;

fn crash_and_recover(engine: &str) {
    let mut gw = Gateway::install(|c| {
        c.store.engine = engine_named(engine);
        open_limits(c);
    });
    gw.start();
    let rt = runtime();
    // id -> description of every report answered 201.
    let acked: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let rng_seed = std::process::id() as u64;
    for round in 0..KILLS {
        let t = gw.transport().timeout(Duration::from_secs(5));
        let doc = gw.key_document();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let loaders: Vec<_> = (0..LOADERS)
            .map(|l| {
                let (t, acked, stop) = (t.clone(), acked.clone(), stop.clone());
                let pk = doc.public_key;
                rt.spawn(async move {
                    let rng = ring::rand::SystemRandom::new();
                    let mut n = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let description = format!("round {round} loader {l} report {n}");
                        n += 1;
                        let env = hotline_protocol::seal_report(
                            &sample_report(&description),
                            &pk,
                            hotline_protocol::Aead::ChaCha20Poly1305,
                            &rng,
                        )
                        .unwrap()
                        .encode();
                        match t
                            .send(
                                hyper::Method::POST,
                                "/v1/reports",
                                &[("content-type", "application/cbor")],
                                env,
                            )
                            .await
                        {
                            Ok(a) if a.status == 201 => {
                                let answer = SubmitAnswer::decode(&a.body).unwrap();
                                acked
                                    .lock()
                                    .unwrap()
                                    .insert(answer.id.to_string(), description);
                            }
                            // Killed mid-request: no answer, no promise.
                            _ => tokio::time::sleep(Duration::from_millis(20)).await,
                        }
                    }
                })
            })
            .collect();
        // A pseudo-random moment between 150 and 900 ms into the load.
        let wait = 150
            + (rng_seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(round as u64 * 1442695040888963407)
                >> 33)
                % 750;
        std::thread::sleep(Duration::from_millis(wait));
        gw.kill();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        rt.block_on(async {
            for l in loaders {
                let _ = l.await;
            }
        });
        gw.start();
    }

    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > KILLS * 5,
        "the loader got only {} reports through",
        acked.len()
    );
    let key = gw.hotline_key();
    rt.block_on(async {
        let listed = staff_list_all(&gw.transport(), &gw.staff_token()).await;
        let mut stored = HashMap::new();
        for item in &listed.reports {
            let report = open_report(&key, &item.envelope)
                .unwrap_or_else(|e| panic!("record {} is corrupt: {e}", item.id));
            stored.insert(item.id.to_string(), report.description.unwrap());
        }
        for (id, description) in &acked {
            assert_eq!(
                stored.get(id),
                Some(description),
                "report {id} was answered 201 but is missing after {KILLS} kills"
            );
        }
        eprintln!(
            "{engine}: {KILLS} kills, {} reports answered 201, {} stored (the rest were in flight when killed)",
            acked.len(),
            stored.len()
        );
    });
}

#[test]
fn redb_keeps_every_acknowledged_report_through_sigkill() {
    crash_and_recover("redb");
}

#[cfg(feature = "sled")]
#[test]
fn sled_keeps_every_acknowledged_report_through_sigkill() {
    crash_and_recover("sled");
}
