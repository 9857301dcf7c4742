//! Which fields of each catalog kind are entity references, as the catalog graph
//! reads them: the one place that says so, for the operator and the CLI alike.

use pave_catalog::{Kind, Refs};

use crate::{ApiEntity, Component, Domain, Group, Resource, System, User};

/// A catalog kind: its kind in the graph and its reference fields.
pub trait CatalogEntity {
    const KIND: Kind;
    fn refs(&self) -> Refs;
}

impl CatalogEntity for Component {
    const KIND: Kind = Kind::Component;
    fn refs(&self) -> Refs {
        let spec = &self.spec;
        Refs {
            owner: spec.owner.clone(),
            system: spec.system.clone(),
            subcomponent_of: spec.subcomponent_of.clone(),
            depends_on: spec.depends_on.clone(),
            dependency_of: spec.dependency_of.clone(),
            provides_apis: spec.provides_apis.clone(),
            consumes_apis: spec.consumes_apis.clone(),
            ..Default::default()
        }
    }
}

impl CatalogEntity for Group {
    const KIND: Kind = Kind::Group;
    fn refs(&self) -> Refs {
        Refs {
            parent: self.spec.parent.clone(),
            children: self.spec.children.clone(),
            members: self.spec.members.clone(),
            ..Default::default()
        }
    }
}

impl CatalogEntity for User {
    const KIND: Kind = Kind::User;
    fn refs(&self) -> Refs {
        Refs {
            member_of: self.spec.member_of.clone(),
            ..Default::default()
        }
    }
}

impl CatalogEntity for System {
    const KIND: Kind = Kind::System;
    fn refs(&self) -> Refs {
        Refs {
            owner: self.spec.owner.clone(),
            domain: self.spec.domain.clone(),
            ..Default::default()
        }
    }
}

impl CatalogEntity for Domain {
    const KIND: Kind = Kind::Domain;
    fn refs(&self) -> Refs {
        Refs {
            owner: self.spec.owner.clone(),
            subdomain_of: self.spec.subdomain_of.clone(),
            ..Default::default()
        }
    }
}

impl CatalogEntity for ApiEntity {
    const KIND: Kind = Kind::Api;
    fn refs(&self) -> Refs {
        Refs {
            owner: self.spec.owner.clone(),
            system: self.spec.system.clone(),
            ..Default::default()
        }
    }
}

impl CatalogEntity for Resource {
    const KIND: Kind = Kind::Resource;
    fn refs(&self) -> Refs {
        Refs {
            owner: self.spec.owner.clone(),
            system: self.spec.system.clone(),
            depends_on: self.spec.depends_on.clone(),
            dependency_of: self.spec.dependency_of.clone(),
            ..Default::default()
        }
    }
}
