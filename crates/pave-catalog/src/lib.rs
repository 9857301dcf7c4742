//! The software catalog graph: entity references, relations, cycles and impact.
//! Pure: no I/O, no Kubernetes types; the operator feeds it and writes its answers.

pub mod entity_ref;

pub use entity_ref::{EntityRef, Kind, RefError};
