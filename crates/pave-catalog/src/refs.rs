//! The reference fields of a catalog entity, and what each one means: the relation
//! it writes and the kind a reference without one names.

use crate::entity_ref::Kind;
use crate::relation::RelationType;

/// What the catalog reads from one entity: its reference fields as written. Each
/// kind fills the fields it has and leaves the others empty; an empty string is
/// "not set", as Backstage files write `subcomponentOf: ""`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Refs {
    /// Component, System, Domain, API, Resource.
    pub owner: String,
    /// Component, API, Resource.
    pub system: Option<String>,
    /// System.
    pub domain: Option<String>,
    /// Component.
    pub subcomponent_of: Option<String>,
    /// Domain.
    pub subdomain_of: Option<String>,
    /// Group.
    pub parent: Option<String>,
    /// Group.
    pub children: Vec<String>,
    /// Group.
    pub members: Vec<String>,
    /// User.
    pub member_of: Vec<String>,
    /// Component, Resource.
    pub depends_on: Vec<String>,
    /// Component, Resource.
    pub dependency_of: Vec<String>,
    /// Component.
    pub provides_apis: Vec<String>,
    /// Component.
    pub consumes_apis: Vec<String>,
}

/// One field: where it is written, the relation it makes and the kind a reference
/// in it names when it does not say.
pub(crate) struct Field<'a> {
    pub name: &'static str,
    pub relation: RelationType,
    pub default_kind: Kind,
    pub texts: Vec<&'a String>,
}

impl Refs {
    /// Every field with its references, skipping "not set".
    pub(crate) fn fields(&self) -> Vec<Field<'_>> {
        fn one(text: &Option<String>) -> Vec<&String> {
            text.iter().collect()
        }
        fn field<'a>(
            name: &'static str,
            relation: RelationType,
            default_kind: Kind,
            texts: Vec<&'a String>,
        ) -> Field<'a> {
            Field {
                name,
                relation,
                default_kind,
                texts: texts.into_iter().filter(|t| !t.trim().is_empty()).collect(),
            }
        }
        use RelationType as R;
        vec![
            field("spec.owner", R::OwnedBy, Kind::Group, vec![&self.owner]),
            field("spec.system", R::PartOf, Kind::System, one(&self.system)),
            field("spec.domain", R::PartOf, Kind::Domain, one(&self.domain)),
            field(
                "spec.subcomponentOf",
                R::PartOf,
                Kind::Component,
                one(&self.subcomponent_of),
            ),
            field(
                "spec.subdomainOf",
                R::PartOf,
                Kind::Domain,
                one(&self.subdomain_of),
            ),
            field("spec.parent", R::ChildOf, Kind::Group, one(&self.parent)),
            field(
                "spec.children",
                R::ParentOf,
                Kind::Group,
                self.children.iter().collect(),
            ),
            field(
                "spec.members",
                R::HasMember,
                Kind::User,
                self.members.iter().collect(),
            ),
            field(
                "spec.memberOf",
                R::MemberOf,
                Kind::Group,
                self.member_of.iter().collect(),
            ),
            field(
                "spec.dependsOn",
                R::DependsOn,
                Kind::Component,
                self.depends_on.iter().collect(),
            ),
            field(
                "spec.dependencyOf",
                R::DependencyOf,
                Kind::Component,
                self.dependency_of.iter().collect(),
            ),
            field(
                "spec.providesApis",
                R::ProvidesApi,
                Kind::Api,
                self.provides_apis.iter().collect(),
            ),
            field(
                "spec.consumesApis",
                R::ConsumesApi,
                Kind::Api,
                self.consumes_apis.iter().collect(),
            ),
        ]
    }
}

/// The field a forward relation from a `source` kind to a `target` kind was written
/// in, for naming it in a message.
pub(crate) fn field_of(relation: RelationType, source: &Kind, target: &Kind) -> &'static str {
    use RelationType as R;
    match relation {
        R::OwnedBy => "spec.owner",
        R::PartOf => match (source, target) {
            (_, Kind::Component) => "spec.subcomponentOf",
            (Kind::Domain, _) => "spec.subdomainOf",
            (Kind::System, _) => "spec.domain",
            _ => "spec.system",
        },
        R::ChildOf => "spec.parent",
        R::ParentOf => "spec.children",
        R::HasMember => "spec.members",
        R::MemberOf => "spec.memberOf",
        R::DependsOn => "spec.dependsOn",
        R::DependencyOf => "spec.dependencyOf",
        R::ProvidesApi => "spec.providesApis",
        R::ConsumesApi => "spec.consumesApis",
        R::OwnerOf | R::ApiProvidedBy | R::ApiConsumedBy | R::HasPart => "spec",
    }
}
