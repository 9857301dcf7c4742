//! Relation types as Backstage names them, each with its reverse.

use crate::entity_ref::EntityRef;

/// A relation type; each has its reverse. The order (which sorts relations in a
/// status) is the order they were added to pave, so statuses written before a new
/// type existed keep theirs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RelationType {
    OwnedBy,
    OwnerOf,
    DependsOn,
    DependencyOf,
    ProvidesApi,
    ApiProvidedBy,
    ConsumesApi,
    ApiConsumedBy,
    PartOf,
    HasPart,
    ChildOf,
    ParentOf,
    MemberOf,
    HasMember,
}

impl RelationType {
    pub fn as_str(self) -> &'static str {
        match self {
            RelationType::OwnedBy => "ownedBy",
            RelationType::OwnerOf => "ownerOf",
            RelationType::DependsOn => "dependsOn",
            RelationType::DependencyOf => "dependencyOf",
            RelationType::ProvidesApi => "providesApi",
            RelationType::ApiProvidedBy => "apiProvidedBy",
            RelationType::ConsumesApi => "consumesApi",
            RelationType::ApiConsumedBy => "apiConsumedBy",
            RelationType::PartOf => "partOf",
            RelationType::HasPart => "hasPart",
            RelationType::ChildOf => "childOf",
            RelationType::ParentOf => "parentOf",
            RelationType::MemberOf => "memberOf",
            RelationType::HasMember => "hasMember",
        }
    }

    /// The same relation seen from the other end.
    pub fn reverse(self) -> RelationType {
        match self {
            RelationType::OwnedBy => RelationType::OwnerOf,
            RelationType::OwnerOf => RelationType::OwnedBy,
            RelationType::DependsOn => RelationType::DependencyOf,
            RelationType::DependencyOf => RelationType::DependsOn,
            RelationType::ProvidesApi => RelationType::ApiProvidedBy,
            RelationType::ApiProvidedBy => RelationType::ProvidesApi,
            RelationType::ConsumesApi => RelationType::ApiConsumedBy,
            RelationType::ApiConsumedBy => RelationType::ConsumesApi,
            RelationType::PartOf => RelationType::HasPart,
            RelationType::HasPart => RelationType::PartOf,
            RelationType::ChildOf => RelationType::ParentOf,
            RelationType::ParentOf => RelationType::ChildOf,
            RelationType::MemberOf => RelationType::HasMember,
            RelationType::HasMember => RelationType::MemberOf,
        }
    }

    /// Whether the relation says something about group hierarchy or membership,
    /// which moves the transitive members of every group above it.
    pub(crate) fn is_org(self) -> bool {
        matches!(
            self,
            RelationType::ChildOf
                | RelationType::ParentOf
                | RelationType::MemberOf
                | RelationType::HasMember
        )
    }
}

/// One relation of an entity.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Relation {
    pub relation: RelationType,
    pub target: EntityRef,
    /// Whether the other end exists.
    pub resolved: bool,
}
