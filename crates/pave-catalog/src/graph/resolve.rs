//! Whether a reference lands on something, and if not, why.
//!
//! A reference to a Component or a Resource resolves when its object exists (for a
//! `resource:`, a Resource or a DeveloperEnvironment of that name). Groups and Users,
//! Systems, Domains and APIs are *checked* in a namespace once it holds at least one
//! object of that kind (Groups, for references to Groups and Users: the org): a
//! reference into a namespace that has none is reported as unchecked rather than
//! missing, so a catalog imported without its org keeps working and says so. The
//! namespace is the reference's own (the one it names, or its writer's), because
//! namespaces are pave's tenancy boundary: one team importing its org does not turn
//! another team's owners red. Where no API is checked yet, an API resolves as before
//! APIs were a kind: when some Component provides it.

use std::collections::HashSet;

use super::{Catalog, Id};
use crate::entity_ref::Kind;

/// What a reference found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Resolution {
    Resolved,
    /// The namespace has no object of the kind yet; the reason says so.
    Unchecked(String),
    Missing(String),
}

/// The kind whose objects, once a namespace holds one, make references to `kind`
/// checked there.
fn checked_by(kind: &Kind) -> Option<Kind> {
    match kind {
        Kind::Group | Kind::User => Some(Kind::Group),
        Kind::System => Some(Kind::System),
        Kind::Domain => Some(Kind::Domain),
        Kind::Api => Some(Kind::Api),
        Kind::Component | Kind::Resource | Kind::Other(_) => None,
    }
}

impl Catalog {
    /// Counts an object of a checked kind coming or going; when its namespace starts
    /// or stops checking that kind, every reference into the namespace that the kind
    /// decides is affected.
    pub(super) fn count_object(&mut self, id: Id, exists: bool, affected: &mut HashSet<Id>) {
        let entity = &self.nodes[id as usize].entity;
        if checked_by(&entity.kind).as_ref() != Some(&entity.kind) {
            return;
        }
        let key = (entity.namespace.clone(), entity.kind.clone());
        let count = self.census.entry(key.clone()).or_insert(0);
        let before = *count;
        *count = if exists {
            *count + 1
        } else {
            count.saturating_sub(1)
        };
        let flipped = (before == 0) != (*count == 0);
        if *count == 0 {
            self.census.remove(&key);
        }
        if !flipped {
            return;
        }
        // Rare (the first Group of a namespace, or the last one gone): a scan.
        for node in &self.nodes {
            if node.entity.namespace == key.0
                && checked_by(&node.entity.kind).as_ref() == Some(&key.1)
            {
                affected.extend(node.incoming.iter().map(|e| e.other));
            }
        }
    }

    fn checks(&self, namespace: &str, kind: &Kind) -> bool {
        self.census
            .contains_key(&(namespace.to_owned(), kind.clone()))
    }

    pub(crate) fn resolution(&self, id: Id) -> Resolution {
        let node = &self.nodes[id as usize];
        if node.present() {
            return Resolution::Resolved;
        }
        let entity = &node.entity;
        let (ns, name) = (&entity.namespace, &entity.name);
        let missing = || {
            Resolution::Missing(format!(
                "no {} {name} in namespace {ns}",
                entity.kind.title()
            ))
        };
        match &entity.kind {
            Kind::Component => missing(),
            Kind::Resource => Resolution::Missing(format!(
                "no Resource or DeveloperEnvironment {name} in namespace {ns}"
            )),
            Kind::Api if self.checks(ns, &Kind::Api) => missing(),
            Kind::Api if self.providers.contains_key(&id) => Resolution::Resolved,
            Kind::Api => Resolution::Missing(format!(
                "no API {name} in namespace {ns}, and no Component there provides it"
            )),
            kind @ (Kind::Group | Kind::User | Kind::System | Kind::Domain) => {
                let by = checked_by(kind).expect("checked kinds");
                if self.checks(ns, &by) {
                    missing()
                } else if by == Kind::Group {
                    Resolution::Unchecked(format!(
                        "not checked: namespace {ns} has no Group yet (owners and members are checked once its org, Groups and Users, is imported)"
                    ))
                } else {
                    Resolution::Unchecked(format!(
                        "not checked: namespace {ns} has no {} yet",
                        by.title()
                    ))
                }
            }
            Kind::Other(kind) => {
                Resolution::Missing(format!("pave has no entities of kind {kind}"))
            }
        }
    }
}
