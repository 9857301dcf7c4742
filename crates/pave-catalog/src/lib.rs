//! The software catalog graph: entity references, relations, cycles and impact.
//! Pure: no I/O, no Kubernetes types; the operator feeds it and writes its answers.

mod derive;
pub use derive::Limits;
pub mod entity_ref;
pub mod graph;
#[doc(hidden)]
pub mod sample;

pub use entity_ref::{EntityRef, Kind, RefError};
pub use graph::{Catalog, ComponentRefs, ComponentView, Relation, RelationType, Unresolved};
