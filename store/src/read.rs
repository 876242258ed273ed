//! Reading records back: by cursor (the staff pull) and by id, whether queued or dead-lettered.

use hotline_protocol::RecordId;

use crate::engine::Table;
use crate::values::{seq_key, seq_of, Location};
use crate::{corrupt, Store, StoreError, StoredRecord};

impl Store {
    /// Up to `limit` queued records with seq > `cursor`, oldest first (cursor 0 = from the
    /// start). A record that cannot be opened fails the call with an error naming it.
    pub fn read_after(&self, cursor: u64, limit: usize) -> Result<Vec<StoredRecord>, StoreError> {
        let mut raw = Vec::new();
        if limit > 0 {
            self.engine
                .scan(Table::Queue, Some(&seq_key(cursor)), &mut |k, v| {
                    raw.push((k.to_vec(), v.to_vec()));
                    Ok(raw.len() < limit)
                })?;
        }
        raw.into_iter()
            .map(|(k, v)| {
                let seq = seq_of(&k).map_err(corrupt(Table::Queue, hex::encode(&k)))?;
                self.open_queue_entry(seq, &v)
            })
            .collect()
    }

    /// One record by id, whether queued or dead-lettered.
    pub fn get(&self, id: &RecordId) -> Result<Option<StoredRecord>, StoreError> {
        let Some(idx) = self.index_entry(id)? else {
            return Ok(None);
        };
        match idx.loc {
            Location::Dead => {
                let Some(v) = self.engine.get(Table::Dead, id.as_bytes())? else {
                    return Ok(None);
                };
                self.open_dead(id.clone(), &v).map(|d| Some(d.record))
            }
            Location::Queue => {
                let Some(v) = self.engine.get(Table::Queue, &seq_key(idx.seq))? else {
                    return Ok(None);
                };
                self.open_queue_entry(idx.seq, &v).map(Some)
            }
        }
    }
}
