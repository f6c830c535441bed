//! A store in memory, the scratch space `reproduce` recomputes into before anything reaches disk.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{RefKind, RefRead, Store};
use crate::digest::Id;
use crate::error::{Error, Result};

/// A store in memory: scratch space for `reproduce`, so nothing reaches disk before it is verified.
#[derive(Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<Id, Vec<u8>>>,
    refs: Mutex<BTreeMap<(RefKind, Id), Id>>,
}

impl MemoryStore {
    pub fn objects(&self) -> BTreeMap<Id, Vec<u8>> {
        self.objects.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

impl Store for MemoryStore {
    fn put(&self, bytes: &[u8]) -> Result<Id> {
        let id = Id::of_bytes(bytes);
        self.objects
            .lock()
            .map_err(|_| Error::internal("memory store poisoned"))?
            .insert(id, bytes.to_vec());
        Ok(id)
    }

    fn get(&self, id: &Id) -> Result<Vec<u8>> {
        self.objects
            .lock()
            .map_err(|_| Error::internal("memory store poisoned"))?
            .get(id)
            .cloned()
            .ok_or_else(|| Error::internal(format!("object {id} not in scratch store")))
    }

    fn contains(&self, id: &Id) -> Result<bool> {
        Ok(self
            .objects
            .lock()
            .map_err(|_| Error::internal("memory store poisoned"))?
            .contains_key(id))
    }

    fn read_ref(&self, kind: RefKind, key: &Id) -> Result<RefRead> {
        Ok(self
            .refs
            .lock()
            .map_err(|_| Error::internal("memory store poisoned"))?
            .get(&(kind, *key))
            .copied()
            .map_or(RefRead::Missing, RefRead::Target))
    }

    fn set_ref(&self, kind: RefKind, key: &Id, target: &Id) -> Result<()> {
        self.refs
            .lock()
            .map_err(|_| Error::internal("memory store poisoned"))?
            .insert((kind, *key), *target);
        Ok(())
    }
}
