//! The grammar of names, tags and entity references, shared by the schemas (as
//! OpenAPI patterns the API server checks) and by the catalog (which parses them).
//!
//! They follow Backstage's rules so a `catalog-info.yaml` that Backstage accepts is
//! accepted here, and nothing Backstage would refuse slips in.

/// A Backstage name: 1–63 characters of `[a-zA-Z0-9]` in runs separated by one of `-_.`.
pub const NAME_PATTERN: &str = "^[a-zA-Z0-9]+([-_.][a-zA-Z0-9]+)*$";

/// A Backstage tag: `[a-z0-9:+#]` in runs separated by `-`, at most 63 characters.
pub const TAG_PATTERN: &str = "^[a-z0-9:+#]+(-[a-z0-9:+#]+)*$";

/// An entity reference, `[kind:][namespace/]name`, matched case-insensitively as
/// Backstage does. Kinds are letters; namespaces and names follow [`NAME_PATTERN`].
pub const ENTITY_REF_PATTERN: &str = "^([a-zA-Z][a-zA-Z0-9]*:)?([a-zA-Z0-9]+([-_.][a-zA-Z0-9]+)*/)?[a-zA-Z0-9]+([-_.][a-zA-Z0-9]+)*$";

/// The same, but an empty string (meaning "not set", as Backstage files often write
/// `subcomponentOf: ""`) is accepted too.
pub const OPTIONAL_ENTITY_REF_PATTERN: &str = "^$|^([a-zA-Z][a-zA-Z0-9]*:)?([a-zA-Z0-9]+([-_.][a-zA-Z0-9]+)*/)?[a-zA-Z0-9]+([-_.][a-zA-Z0-9]+)*$";

/// A Kubernetes namespace name (RFC 1123 label).
pub const NAMESPACE_PATTERN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// An AWS region such as `ap-northeast-2` or `us-gov-west-1`.
pub const REGION_PATTERN: &str = "^[a-z]{2}(-[a-z]+)+-[0-9]+$";

/// An RDS instance class such as `db.t3.medium` or `db.r6g.2xlarge`.
pub const DB_CLASS_PATTERN: &str = "^db\\.[a-z][a-z0-9-]*\\.[a-z0-9]+$";

/// A Go duration as `ttl` takes it (`72h`, `1h30m`, `90m`), in hours, minutes and
/// seconds only: sub-second lifetimes make no sense for an environment.
pub const DURATION_PATTERN: &str = "^([0-9]+(\\.[0-9]+)?(h|m|s))+$";
