//! Reader of `testdata/ua_vectors.txt` (unit tests only).

use std::collections::BTreeMap;

const UA_VECTORS: &str = include_str!("../../testdata/ua_vectors.txt");

/// One `[name]` section.
pub(crate) struct Vector {
    name: String,
    fields: BTreeMap<String, String>,
}

impl Vector {
    /// A field that must exist.
    pub(crate) fn get(&self, key: &str) -> &str {
        match self.fields.get(key) {
            Some(v) => v,
            None => panic!("vector [{}] has no {key}", self.name),
        }
    }
}

/// Every section of the file, by name.
pub(crate) fn all() -> BTreeMap<String, Vector> {
    let mut out = BTreeMap::new();
    let mut current: Option<Vector> = None;
    for raw in UA_VECTORS.lines() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if let Some(v) = current.take() {
                out.insert(v.name.clone(), v);
            }
            current = Some(Vector {
                name: name.to_owned(),
                fields: BTreeMap::new(),
            });
            continue;
        }
        let (k, v) = line.split_once('=').expect("key = value");
        current
            .as_mut()
            .expect("a [section] before the first field")
            .fields
            .insert(k.trim().to_owned(), v.trim().to_owned());
    }
    if let Some(v) = current.take() {
        out.insert(v.name.clone(), v);
    }
    out
}

/// A section that must exist.
pub(crate) fn vector(name: &str) -> Vector {
    match all().remove(name) {
        Some(v) => v,
        None => panic!("no vector [{name}]"),
    }
}

/// gba.md §10 "Ua digest example".
pub(crate) fn ua_digest_example() -> Vector {
    vector("ua_digest_example")
}
