//! The software catalog graph: entity references, relations, group membership,
//! cycles and impact. Pure: no I/O, no Kubernetes types; the operator feeds it and
//! writes its answers.

mod derive;
pub use derive::Limits;
pub mod entity_ref;
pub mod graph;
mod refs;
mod relation;
#[doc(hidden)]
pub mod sample;

pub use entity_ref::{EntityRef, Kind, RefError};
pub use graph::{Catalog, EntityView, Unresolved};
pub use refs::Refs;
pub use relation::{Relation, RelationType};
