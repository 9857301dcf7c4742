//! Entity references as Backstage writes them: `[kind:][namespace/]name`.
//!
//! Matching is case-insensitive, so references are kept in lower case. A reference
//! that leaves out the kind or the namespace takes them from where it appears: the
//! namespace of the object that wrote it, and a kind that depends on the field
//! (`owner` → group, `dependsOn` → component, `providesApis` → api, …).

use std::fmt;

/// The kinds an entity reference can name: Backstage's catalog kinds, each a pave
/// custom resource. Any other kind (`location`, `template`, …) has nothing to resolve
/// to in pave.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Component,
    /// A Resource, or a DeveloperEnvironment of that name.
    Resource,
    Api,
    Group,
    User,
    System,
    Domain,
    Other(String),
}

impl Kind {
    fn parse(kind: &str) -> Kind {
        match kind.to_ascii_lowercase().as_str() {
            "component" => Kind::Component,
            "resource" => Kind::Resource,
            "api" => Kind::Api,
            "group" => Kind::Group,
            "user" => Kind::User,
            "system" => Kind::System,
            "domain" => Kind::Domain,
            other => Kind::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Kind::Component => "component",
            Kind::Resource => "resource",
            Kind::Api => "api",
            Kind::Group => "group",
            Kind::User => "user",
            Kind::System => "system",
            Kind::Domain => "domain",
            Kind::Other(kind) => kind,
        }
    }

    /// The kind's name as its custom resource spells it (`Component`, `API`, …).
    pub fn title(&self) -> &str {
        match self {
            Kind::Component => "Component",
            Kind::Resource => "Resource",
            Kind::Api => "API",
            Kind::Group => "Group",
            Kind::User => "User",
            Kind::System => "System",
            Kind::Domain => "Domain",
            Kind::Other(kind) => kind,
        }
    }
}

/// A fully qualified, lower-cased entity reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityRef {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

/// Why a reference could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    #[error("'{0}' is not an entity reference: it is empty")]
    Empty(String),
    #[error("'{0}' is not an entity reference of the form [kind:][namespace/]name: {1}")]
    Malformed(String, &'static str),
}

impl EntityRef {
    /// A reference to a Component.
    pub fn component(namespace: &str, name: &str) -> EntityRef {
        EntityRef::new(Kind::Component, namespace, name)
    }

    /// A reference to a Resource or DeveloperEnvironment.
    pub fn resource(namespace: &str, name: &str) -> EntityRef {
        EntityRef::new(Kind::Resource, namespace, name)
    }

    pub fn new(kind: Kind, namespace: &str, name: &str) -> EntityRef {
        EntityRef {
            kind,
            namespace: namespace.to_ascii_lowercase(),
            name: name.to_ascii_lowercase(),
        }
    }

    /// Parses `text`, filling in the kind and namespace it leaves out.
    pub fn parse(
        text: &str,
        default_kind: Kind,
        default_namespace: &str,
    ) -> Result<EntityRef, RefError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(RefError::Empty(text.to_owned()));
        }
        let malformed = |why| RefError::Malformed(text.to_owned(), why);
        let (kind, rest) = match trimmed.split_once(':') {
            Some((kind, rest)) => {
                if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(malformed("the kind before ':' must be letters and digits"));
                }
                (Kind::parse(kind), rest)
            }
            None => (default_kind, trimmed),
        };
        let (namespace, name) = match rest.split_once('/') {
            Some((namespace, name)) => (namespace, name),
            None => (default_namespace, rest),
        };
        if namespace.is_empty() {
            return Err(malformed("the namespace before '/' is empty"));
        }
        if name.is_empty() {
            return Err(malformed("the name is empty"));
        }
        if name.contains(['/', ':']) || namespace.contains(':') {
            return Err(malformed("':' and '/' may each appear once, in that order"));
        }
        Ok(EntityRef::new(kind, namespace, name))
    }
}

impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.kind.as_str(), self.namespace, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn defaults_fill_what_the_reference_leaves_out() {
        let r = EntityRef::parse("payments-team", Kind::Group, "team-payments").unwrap();
        assert_eq!(r.to_string(), "group:team-payments/payments-team");
        let r = EntityRef::parse("component:user-service", Kind::Group, "team-payments").unwrap();
        assert_eq!(r.to_string(), "component:team-payments/user-service");
        let r = EntityRef::parse("Resource:Shared/Payments-DB", Kind::Component, "x").unwrap();
        assert_eq!(r.to_string(), "resource:shared/payments-db");
    }

    #[test]
    fn matching_is_case_insensitive() {
        let a = EntityRef::parse("Component:Team/User-Service", Kind::Api, "x").unwrap();
        let b = EntityRef::parse("user-service", Kind::Component, "team").unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn malformed_references_say_why() {
        for bad in ["", "api:", ":x", "a/", "/x", "a/b/c", "k:a:b"] {
            assert!(
                EntityRef::parse(bad, Kind::Component, "ns").is_err(),
                "{bad:?} parsed"
            );
        }
    }

    fn part() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9]{1,8}([-_.][a-zA-Z0-9]{1,8}){0,2}"
    }

    proptest! {
        /// Printing a parsed reference and parsing it again gives the same reference,
        /// whatever defaults the second parse is given.
        #[test]
        fn round_trip(kind in "(component|resource|api|group|user|system|domain)",
                      namespace in part(), name in part(), explicit_kind: bool, explicit_ns: bool) {
            let text = format!(
                "{}{}{}",
                if explicit_kind { format!("{kind}:") } else { String::new() },
                if explicit_ns { format!("{namespace}/") } else { String::new() },
                name
            );
            let parsed = EntityRef::parse(&text, Kind::parse(&kind), &namespace).unwrap();
            prop_assert_eq!(&parsed.name, &name.to_ascii_lowercase());
            let again = EntityRef::parse(&parsed.to_string(), Kind::Other("zzz".into()), "elsewhere").unwrap();
            prop_assert_eq!(again, parsed);
        }
    }
}
