//! The operator's configuration: what a platform team decides once for every
//! environment (allowed regions and database classes, compute profiles, AMIs, the
//! address pool, limits, intervals, GitOps restrictions).
//!
//! It is a YAML file with camelCase keys (later a Helm value rendered into that file).
//! Every field has a default, so an empty file is a working configuration, and
//! [`OperatorConfig::default()`] is exactly what an empty file parses to. Unknown keys
//! are rejected so a typo (`maxTTL`) fails loudly at start-up instead of silently
//! leaving a guardrail at its default. `examples/operator-config.yaml` shows every
//! field with its default.
//!
//! Durations are Go-style strings (`72h`, `1h30m`, `1.5h`), the same grammar as the
//! environment's `spec.ttl`, parsed by [`parse_duration`].
//!
//! Pure: parsing only, no file or network access; the operator reads the file.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::plan::{Ipv4Cidr, SUBNET_PREFIX_EXTRA};

/// An AMI that moto (the AWS emulator of the test bed, 5.2.5) loads into every region,
/// so the demo and tests run without configuring one. It does not exist in a real AWS
/// account: production configurations must set [`OperatorConfig::amis`] or
/// [`OperatorConfig::default_ami`].
pub const EMULATOR_AMI: &str = "ami-03cf127a";

/// The whole operator configuration. See each field for its default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct OperatorConfig {
    /// Regions environments may use. Empty (the default) allows any region; an entry
    /// ending in `*` matches by prefix (`eu-*`).
    pub allowed_regions: Vec<String>,

    /// RDS instance classes `dbSize` may name. An entry ending in `*` matches by prefix
    /// (`db.t4g.*`); empty allows any class. Default: the burstable classes up to
    /// `large` and `db.m5.large`, enough for development databases while keeping a
    /// forgotten environment cheap.
    pub allowed_db_classes: Vec<String>,

    /// The longest `spec.ttl` an environment may ask for, and the ttl of one that asks
    /// for none (otherwise leaving `ttl` out would bypass the limit). Default `168h` (a
    /// week); `null` removes the limit, and then environments without a ttl live until
    /// deleted.
    #[serde(with = "optional_duration")]
    pub max_ttl: Option<Duration>,

    /// How many environments one namespace may have. Default 5; 0 removes the limit.
    pub environments_per_namespace: u32,

    /// The IPv4 block every environment's VPC is carved from. Default `10.64.0.0/10`:
    /// inside RFC 1918 space but away from the `10.0.0.0/16` that AWS default VPCs and
    /// most tutorials use, so peering with an existing network is less likely to clash.
    pub cidr_pool: String,

    /// Prefix length of each environment's VPC block. Default 20 (4096 addresses), which
    /// gives 1024 environments in the default pool. Must lie between the pool's prefix
    /// and 26: AWS allows VPCs up to /28 and each subnet is a quarter of the VPC.
    pub vpc_prefix_length: u8,

    /// Compute profiles by `clusterSize` name. Default `small` = 1 × t3.small,
    /// `medium` = 2 × t3.medium, `large` = 3 × t3.large. `none` is implicit (no
    /// instances) and cannot be defined. Setting this replaces the defaults entirely,
    /// so list every profile you want to offer.
    pub profiles: BTreeMap<String, Profile>,

    /// AMI per region for the instances. Default empty: every region uses
    /// [`default_ami`](Self::default_ami).
    pub amis: BTreeMap<String, String>,

    /// AMI for regions [`amis`](Self::amis) does not list. Default [`EMULATOR_AMI`],
    /// which only the test bed's emulator knows; `null` makes an environment with
    /// instances in an unlisted region fail with a message saying what to configure.
    pub default_ami: Option<String>,

    /// How often every environment is reconciled even when nothing changed, to notice
    /// drift in the cloud. Default `10m`.
    #[serde(with = "duration")]
    pub resync_interval: Duration,

    /// How often the sweeper looks for tagged cloud resources whose environment no
    /// longer exists. Default `5m`.
    #[serde(with = "duration")]
    pub sweep_interval: Duration,

    /// How long a tagged cloud resource must have been seen without a living
    /// environment before the sweeper deletes it. Default `5m`. The sweeper decides from
    /// the API server itself, read after the cloud was listed, so this is a second
    /// guard: a resource is never deleted the first time it looks ownerless. (A
    /// Background deletion this operator carried out itself is swept without waiting.)
    #[serde(with = "duration")]
    pub sweep_grace_period: Duration,

    /// Restrictions on environments' Argo CD Applications.
    pub gitops: GitOpsConfig,

    /// Master username of every database. Default `pave` (RDS: 1–16 letters, digits or
    /// underscores, starting with a letter).
    pub db_username: String,

    /// Availability zones of the two subnets, as suffixes of the region. Default
    /// `[a, b]`, which every AWS region has. At least two distinct suffixes: an RDS
    /// subnet group needs subnets in two zones. Only the first two are used.
    pub availability_zone_suffixes: Vec<String>,
}

/// One `clusterSize` profile: how many instances of which type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Profile {
    /// EC2 instance type, e.g. `t3.small`.
    pub instance_type: String,
    /// Number of instances.
    pub count: u32,
}

/// Restrictions on environments' Argo CD Applications: which Argo CD project and
/// which repositories an environment in a given namespace may use. Closed by default:
/// each namespace may use only the project named after it, and no repository until the
/// platform team allows one, so a tenant cannot deploy from an arbitrary repository
/// through pave.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct GitOpsConfig {
    /// Namespace the Application objects are created in (Argo CD's own). Default
    /// `argocd`.
    pub namespace: String,
    /// Argo CD project for environments that name none. Empty (the default): the
    /// project named after the environment's namespace.
    pub default_project: String,
    /// Whether every namespace may use the Argo CD project named after it (the usual
    /// one-project-per-team layout). Default `true`. Never the project `default`,
    /// Argo CD's unrestricted one: that must be listed to be used.
    pub project_per_namespace: bool,
    /// Projects environments in any namespace may name.
    pub allowed_projects: Vec<String>,
    /// Repository URLs environments in any namespace may deploy from, as prefixes.
    /// Empty (the default): none. A prefix matches whole path segments:
    /// `https://github.com/my-org` allows `https://github.com/my-org/envs` but not
    /// `https://github.com/my-org-evil/x`.
    pub allowed_repo_prefixes: Vec<String>,
    /// More projects and repositories for the environments of one namespace, by
    /// namespace name.
    pub namespaces: BTreeMap<String, GitOpsTenant>,
}

/// What environments in one namespace may use besides [`GitOpsConfig`]'s lists.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct GitOpsTenant {
    /// Projects this namespace's environments may name.
    pub allowed_projects: Vec<String>,
    /// Repository URL prefixes this namespace's environments may deploy from.
    pub allowed_repo_prefixes: Vec<String>,
}

impl GitOpsConfig {
    /// The project of an environment in `namespace` that names none.
    pub fn default_project_for<'a>(&'a self, namespace: &'a str) -> &'a str {
        if self.default_project.is_empty() {
            namespace
        } else {
            &self.default_project
        }
    }

    /// The projects environments in `namespace` may use.
    pub fn projects_for<'a>(&'a self, namespace: &'a str) -> Vec<&'a str> {
        let own = (self.project_per_namespace && namespace != "default").then_some(namespace);
        let tenant = self.namespaces.get(namespace);
        own.into_iter()
            .chain(self.allowed_projects.iter().map(String::as_str))
            .chain(
                tenant
                    .into_iter()
                    .flat_map(|t| t.allowed_projects.iter().map(String::as_str)),
            )
            .collect()
    }

    /// The repository prefixes environments in `namespace` may deploy from.
    pub fn repo_prefixes_for(&self, namespace: &str) -> Vec<&str> {
        let tenant = self.namespaces.get(namespace);
        self.allowed_repo_prefixes
            .iter()
            .chain(
                tenant
                    .into_iter()
                    .flat_map(|t| t.allowed_repo_prefixes.iter()),
            )
            .map(String::as_str)
            .collect()
    }
}

impl Default for OperatorConfig {
    fn default() -> Self {
        let profile = |instance_type: &str, count| Profile {
            instance_type: instance_type.to_owned(),
            count,
        };
        OperatorConfig {
            allowed_regions: Vec::new(),
            allowed_db_classes: [
                "db.t3.micro",
                "db.t3.small",
                "db.t3.medium",
                "db.t3.large",
                "db.t4g.micro",
                "db.t4g.small",
                "db.t4g.medium",
                "db.t4g.large",
                "db.m5.large",
            ]
            .map(String::from)
            .to_vec(),
            max_ttl: Some(Duration::from_secs(168 * 3600)),
            environments_per_namespace: 5,
            cidr_pool: "10.64.0.0/10".to_owned(),
            vpc_prefix_length: 20,
            profiles: BTreeMap::from([
                ("small".to_owned(), profile("t3.small", 1)),
                ("medium".to_owned(), profile("t3.medium", 2)),
                ("large".to_owned(), profile("t3.large", 3)),
            ]),
            amis: BTreeMap::new(),
            default_ami: Some(EMULATOR_AMI.to_owned()),
            resync_interval: Duration::from_secs(10 * 60),
            sweep_interval: Duration::from_secs(5 * 60),
            sweep_grace_period: Duration::from_secs(5 * 60),
            gitops: GitOpsConfig::default(),
            db_username: "pave".to_owned(),
            availability_zone_suffixes: vec!["a".to_owned(), "b".to_owned()],
        }
    }
}

impl Default for GitOpsConfig {
    fn default() -> Self {
        GitOpsConfig {
            namespace: "argocd".to_owned(),
            default_project: String::new(),
            project_per_namespace: true,
            allowed_projects: Vec::new(),
            allowed_repo_prefixes: Vec::new(),
            namespaces: BTreeMap::new(),
        }
    }
}

/// A configuration file the operator cannot start with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Not YAML, a wrong type, or an unknown key; the message names the field and line.
    #[error("operator configuration: {0}")]
    Parse(String),
    /// Well-formed but unusable.
    #[error("operator configuration: {field}: {message}")]
    Invalid { field: String, message: String },
}

impl OperatorConfig {
    /// Parses and checks a configuration file. An empty file (or one with only
    /// comments) is the default configuration.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        // serde_yaml reads an empty document as `null`, which a struct refuses; an empty
        // file is the documented way to take every default.
        let value: serde_yaml::Value =
            serde_yaml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        let config = if value.is_null() {
            OperatorConfig::default()
        } else {
            // Parse from the text, not the value, so errors keep their line numbers.
            serde_yaml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?
        };
        config.validate()?;
        Ok(config)
    }

    /// The rules serde cannot express. Every message names the field to fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            field: field.to_owned(),
            message,
        };
        let pool: Ipv4Cidr = self
            .cidr_pool
            .parse()
            .map_err(|e| invalid("cidrPool", format!("{e}")))?;
        // AWS accepts VPC blocks from /16 to /28, and each subnet is a quarter of the VPC.
        let max_vpc_prefix = 28 - SUBNET_PREFIX_EXTRA;
        let min_vpc_prefix = pool.prefix().max(16);
        if !(min_vpc_prefix..=max_vpc_prefix).contains(&self.vpc_prefix_length) {
            return Err(invalid(
                "vpcPrefixLength",
                format!(
                    "{} is outside {min_vpc_prefix}..={max_vpc_prefix}: a VPC must fit in cidrPool {pool}, AWS allows /16 to /28, and each of its subnets is a quarter of it",
                    self.vpc_prefix_length
                ),
            ));
        }
        for (name, profile) in &self.profiles {
            if name == "none" {
                return Err(invalid(
                    "profiles.none",
                    "`none` is built in (no instances) and cannot be redefined".to_owned(),
                ));
            }
            if profile.instance_type.trim().is_empty() {
                return Err(invalid(
                    &format!("profiles.{name}.instanceType"),
                    "must name an EC2 instance type such as t3.small".to_owned(),
                ));
            }
        }
        for (region, ami) in &self.amis {
            if !ami.starts_with("ami-") {
                return Err(invalid(
                    &format!("amis.{region}"),
                    format!("{ami:?} is not an AMI id (ami-…)"),
                ));
            }
        }
        if let Some(ami) = &self.default_ami
            && !ami.starts_with("ami-")
        {
            return Err(invalid(
                "defaultAmi",
                format!("{ami:?} is not an AMI id (ami-…)"),
            ));
        }
        if self.resync_interval.is_zero() {
            return Err(invalid("resyncInterval", "must be positive".to_owned()));
        }
        if self.sweep_interval.is_zero() {
            return Err(invalid("sweepInterval", "must be positive".to_owned()));
        }
        let username_ok = self.db_username.len() <= 16
            && self
                .db_username
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
            && self
                .db_username
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !username_ok {
            return Err(invalid(
                "dbUsername",
                format!(
                    "{:?}: RDS needs 1 to 16 letters, digits or underscores, starting with a letter",
                    self.db_username
                ),
            ));
        }
        let zones = &self.availability_zone_suffixes;
        if zones.len() < 2 || zones[0] == zones[1] || zones.iter().any(|z| z.is_empty()) {
            return Err(invalid(
                "availabilityZoneSuffixes",
                format!(
                    "{zones:?}: needs two distinct, non-empty suffixes (an RDS subnet group spans two availability zones)"
                ),
            ));
        }
        let gitops = &self.gitops;
        if !gitops.default_project.is_empty()
            && !gitops.allowed_projects.contains(&gitops.default_project)
        {
            return Err(invalid(
                "gitops.defaultProject",
                format!(
                    "{:?} is not in gitops.allowedProjects, so every environment without a project would be refused; add it there, or leave defaultProject empty for the project named after each namespace",
                    gitops.default_project
                ),
            ));
        }
        if gitops.namespace.is_empty() {
            return Err(invalid(
                "gitops.namespace",
                "must name the namespace Argo CD watches for Applications".to_owned(),
            ));
        }
        Ok(())
    }

    /// The AMI for instances in `region`, if one is configured.
    pub fn ami_for(&self, region: &str) -> Option<&str> {
        self.amis
            .get(region)
            .or(self.default_ami.as_ref())
            .map(String::as_str)
    }
}

/// Whether `value` is allowed by a list where empty allows anything and an entry ending
/// in `*` matches by prefix.
pub(crate) fn allowed_by(list: &[String], value: &str) -> bool {
    list.is_empty()
        || list.iter().any(|entry| match entry.strip_suffix('*') {
            Some(prefix) => value.starts_with(prefix),
            None => entry == value,
        })
}

/// A duration string that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{input:?} is not a duration: {problem} (expected hours, minutes and seconds such as 72h, 1h30m or 1.5h)"
)]
pub struct DurationError {
    pub input: String,
    pub problem: &'static str,
}

/// Parses a Go-style duration made of hours, minutes and seconds: `72h`, `1h30m`,
/// `90s`, `1.5h`. The grammar matches the CRD's `spec.ttl` pattern, so anything the API
/// server accepts parses here. No sign (a negative ttl or interval means nothing), and
/// no `ms`/`us`/`ns` (nothing pave times is that short).
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let fail = |problem| DurationError {
        input: input.to_owned(),
        problem,
    };
    if input.is_empty() {
        return Err(fail("it is empty"));
    }
    let mut total_nanos: u128 = 0;
    let mut rest = input.as_bytes();
    while !rest.is_empty() {
        let int_len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let (int_digits, after_int) = rest.split_at(int_len);
        let (frac_digits, after_number) = match after_int.split_first() {
            Some((b'.', tail)) => {
                let frac_len = tail.iter().take_while(|b| b.is_ascii_digit()).count();
                if frac_len == 0 {
                    return Err(fail("a '.' must be followed by digits"));
                }
                tail.split_at(frac_len)
            }
            _ => (&[][..], after_int),
        };
        if int_digits.is_empty() {
            return Err(fail("each unit needs a number before it"));
        }
        let (unit_nanos, after_unit): (u128, _) = match after_number.split_first() {
            Some((b'h', tail)) => (3_600_000_000_000, tail),
            Some((b'm', tail)) => (60_000_000_000, tail),
            Some((b's', tail)) => (1_000_000_000, tail),
            Some(_) => return Err(fail("units are h, m and s")),
            None => return Err(fail("a number needs a unit")),
        };
        let int = digits_value(int_digits).ok_or_else(|| fail("it is too long"))?;
        let mut nanos = int
            .checked_mul(unit_nanos)
            .ok_or_else(|| fail("it is too long"))?;
        // Fractions beyond nanosecond precision are dropped, as Go does.
        let mut scale = unit_nanos;
        for &d in frac_digits {
            scale /= 10;
            nanos += u128::from(d - b'0') * scale;
        }
        total_nanos = total_nanos
            .checked_add(nanos)
            .ok_or_else(|| fail("it is too long"))?;
        rest = after_unit;
    }
    let secs = u64::try_from(total_nanos / 1_000_000_000).map_err(|_| fail("it is too long"))?;
    Ok(Duration::new(secs, (total_nanos % 1_000_000_000) as u32))
}

fn digits_value(digits: &[u8]) -> Option<u128> {
    digits.iter().try_fold(0u128, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u128::from(d - b'0'))
    })
}

/// Formats a duration the way a person would write it in the configuration: `168h`,
/// `1h30m`, `90s` → `1m30s`, zero → `0s`. Sub-second parts are written as fractional
/// seconds. [`parse_duration`] reads it back to the same value.
pub fn format_duration(duration: Duration) -> String {
    struct Formatted(Duration);
    impl fmt::Display for Formatted {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let total = self.0.as_secs();
            let nanos = self.0.subsec_nanos();
            let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
            if h > 0 {
                write!(f, "{h}h")?;
            }
            if m > 0 {
                write!(f, "{m}m")?;
            }
            if nanos > 0 {
                let frac = format!("{nanos:09}");
                write!(f, "{s}.{}s", frac.trim_end_matches('0'))
            } else if s > 0 || total == 0 {
                write!(f, "{s}s")
            } else {
                Ok(())
            }
        }
    }
    Formatted(duration).to_string()
}

/// Serde for a required duration field written as a string.
mod duration {
    use std::fmt;
    use std::time::Duration;

    use serde::Serializer;
    use serde::de::{self, Deserializer, Visitor};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_duration(*value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        deserializer.deserialize_str(DurationVisitor)
    }

    /// Parses inside the visitor rather than after deserializing a `String`: serde_yaml
    /// adds the field's path and line only to errors raised while it visits a value.
    struct DurationVisitor;

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration such as 72h or 1h30m")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
            super::parse_duration(text).map_err(E::custom)
        }
    }
}

/// Serde for an optional duration field: `null` is `None`.
mod optional_duration {
    use std::fmt;
    use std::time::Duration;

    use serde::Serializer;
    use serde::de::{self, Deserializer, Visitor};

    pub fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => serializer.serialize_str(&super::format_duration(*d)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        deserializer.deserialize_option(OptionalDurationVisitor)
    }

    struct OptionalDurationVisitor;

    impl<'de> Visitor<'de> for OptionalDurationVisitor {
        type Value = Option<Duration>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration such as 72h, or null")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(
            self,
            deserializer: D,
        ) -> Result<Self::Value, D::Error> {
            super::duration::deserialize(deserializer).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_the_default_configuration() {
        assert_eq!(
            OperatorConfig::from_yaml("").unwrap(),
            OperatorConfig::default()
        );
        assert_eq!(
            OperatorConfig::from_yaml("# nothing set\n").unwrap(),
            OperatorConfig::default()
        );
        assert_eq!(
            OperatorConfig::from_yaml("{}").unwrap(),
            OperatorConfig::default()
        );
        OperatorConfig::default().validate().unwrap();
    }

    #[test]
    fn the_defaults_are_the_documented_ones() {
        let c = OperatorConfig::default();
        assert!(c.allowed_regions.is_empty());
        assert!(c.allowed_db_classes.contains(&"db.t3.medium".to_owned()));
        assert_eq!(c.max_ttl, Some(Duration::from_secs(7 * 24 * 3600)));
        assert_eq!(c.environments_per_namespace, 5);
        assert_eq!(c.cidr_pool, "10.64.0.0/10");
        assert_eq!(c.vpc_prefix_length, 20);
        assert_eq!(c.profiles["small"].instance_type, "t3.small");
        assert_eq!(c.profiles["medium"].count, 2);
        assert_eq!(c.profiles["large"].count, 3);
        assert_eq!(c.ami_for("ap-northeast-2"), Some(EMULATOR_AMI));
        assert_eq!(c.resync_interval, Duration::from_secs(600));
        assert_eq!(c.sweep_interval, Duration::from_secs(300));
        assert_eq!(c.sweep_grace_period, Duration::from_secs(300));
        assert_eq!(
            c.gitops.default_project_for("team-payments"),
            "team-payments"
        );
        assert_eq!(c.gitops.projects_for("team-payments"), ["team-payments"]);
        assert!(c.gitops.projects_for("default").is_empty());
        assert!(c.gitops.repo_prefixes_for("team-payments").is_empty());
        assert_eq!(c.gitops.namespace, "argocd");
        assert_eq!(c.db_username, "pave");
        assert_eq!(c.availability_zone_suffixes, ["a", "b"]);
    }

    #[test]
    fn a_partial_file_keeps_the_defaults_of_what_it_does_not_set() {
        let c = OperatorConfig::from_yaml(
            "allowedRegions: [ap-northeast-2]\nmaxTtl: 72h\ngitops:\n  allowedProjects: [default, payments-team]\namis:\n  ap-northeast-2: ami-0123456789abcdef0\n",
        )
        .unwrap();
        assert_eq!(c.allowed_regions, ["ap-northeast-2"]);
        assert_eq!(c.max_ttl, Some(Duration::from_secs(72 * 3600)));
        assert_eq!(c.gitops.namespace, "argocd");
        assert_eq!(c.environments_per_namespace, 5);
        assert_eq!(c.ami_for("ap-northeast-2"), Some("ami-0123456789abcdef0"));
        assert_eq!(c.ami_for("eu-west-1"), Some(EMULATOR_AMI));
    }

    #[test]
    fn a_null_max_ttl_removes_the_limit() {
        let c = OperatorConfig::from_yaml("maxTtl: null\n").unwrap();
        assert_eq!(c.max_ttl, None);
    }

    #[test]
    fn an_unknown_field_is_rejected_with_its_name() {
        let err = OperatorConfig::from_yaml("maxTTL: 24h\n").unwrap_err();
        assert!(matches!(err, ConfigError::Parse(_)));
        assert!(err.to_string().contains("maxTTL"), "{err}");
        let err = OperatorConfig::from_yaml("gitops:\n  allowedProject: [x]\n").unwrap_err();
        assert!(err.to_string().contains("allowedProject"), "{err}");
        let err =
            OperatorConfig::from_yaml("profiles:\n  small: {instanceType: t3.small, cnt: 1}\n")
                .unwrap_err();
        assert!(err.to_string().contains("cnt"), "{err}");
    }

    #[test]
    fn a_bad_value_names_its_field() {
        let err = OperatorConfig::from_yaml("resyncInterval: 10 minutes\n").unwrap_err();
        assert!(err.to_string().contains("resyncInterval"), "{err}");
        let err = OperatorConfig::from_yaml("maxTtl: 3d\n").unwrap_err();
        assert!(err.to_string().contains("maxTtl"), "{err}");
        let err = OperatorConfig::from_yaml("environmentsPerNamespace: lots\n").unwrap_err();
        assert!(
            err.to_string().contains("environmentsPerNamespace"),
            "{err}"
        );
        let err = OperatorConfig::from_yaml("cidrPool: 10.64.0.0/33\n").unwrap_err();
        assert!(err.to_string().contains("cidrPool"), "{err}");
        let err = OperatorConfig::from_yaml("vpcPrefixLength: 8\n").unwrap_err();
        assert!(err.to_string().contains("vpcPrefixLength"), "{err}");
        let err = OperatorConfig::from_yaml("vpcPrefixLength: 27\n").unwrap_err();
        assert!(err.to_string().contains("vpcPrefixLength"), "{err}");
        let err =
            OperatorConfig::from_yaml("profiles: {none: {instanceType: t3.nano, count: 1}}\n")
                .unwrap_err();
        assert!(err.to_string().contains("profiles.none"), "{err}");
        let err = OperatorConfig::from_yaml("availabilityZoneSuffixes: [a]\n").unwrap_err();
        assert!(
            err.to_string().contains("availabilityZoneSuffixes"),
            "{err}"
        );
        let err = OperatorConfig::from_yaml("dbUsername: 1admin\n").unwrap_err();
        assert!(err.to_string().contains("dbUsername"), "{err}");
        let err = OperatorConfig::from_yaml(
            "gitops: {allowedProjects: [payments], defaultProject: shared}\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("gitops.defaultProject"), "{err}");
        let err = OperatorConfig::from_yaml("defaultAmi: ubuntu\n").unwrap_err();
        assert!(err.to_string().contains("defaultAmi"), "{err}");
    }

    #[test]
    fn durations_parse_like_go() {
        let h = |n: u64| Duration::from_secs(n * 3600);
        assert_eq!(parse_duration("72h").unwrap(), h(72));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2h0m5s").unwrap(), Duration::from_secs(7205));
        assert_eq!(parse_duration("0.5s").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        for bad in [
            "",
            "72",
            "h",
            "-1h",
            "1d",
            "1.h",
            ".5h",
            "1h 30m",
            "5ms",
            "1H",
            "99999999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} parsed");
        }
        let err = parse_duration("3 days").unwrap_err().to_string();
        assert!(err.contains("\"3 days\"") && err.contains("72h"), "{err}");
    }

    #[test]
    fn formatted_durations_read_back_the_same() {
        for (d, text) in [
            (Duration::from_secs(168 * 3600), "168h"),
            (Duration::from_secs(5400), "1h30m"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(3601), "1h1s"),
            (Duration::ZERO, "0s"),
            (Duration::from_millis(1500), "1.5s"),
        ] {
            assert_eq!(format_duration(d), text);
            assert_eq!(parse_duration(text).unwrap(), d);
        }
    }

    #[test]
    fn the_configuration_round_trips_through_yaml() {
        let c = OperatorConfig::default();
        let text = serde_yaml::to_string(&c).unwrap();
        assert_eq!(OperatorConfig::from_yaml(&text).unwrap(), c);
    }

    #[test]
    fn the_example_shows_every_field_at_its_default() {
        let example: serde_yaml::Value =
            serde_yaml::from_str(include_str!("../../../examples/operator-config.yaml")).unwrap();
        let text = example["data"]["config.yaml"]
            .as_str()
            .expect("the example is a ConfigMap with data.config.yaml");
        assert_eq!(
            OperatorConfig::from_yaml(text).unwrap(),
            OperatorConfig::default()
        );
        let keys = |v: &serde_yaml::Value| -> Vec<String> {
            let mut keys: Vec<_> = v
                .as_mapping()
                .unwrap()
                .keys()
                .map(|k| k.as_str().unwrap().to_owned())
                .collect();
            keys.sort();
            keys
        };
        let shown: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
        let all = serde_yaml::to_value(OperatorConfig::default()).unwrap();
        assert_eq!(keys(&shown), keys(&all), "the example leaves out a field");
        assert_eq!(keys(&shown["gitops"]), keys(&all["gitops"]));
    }

    #[test]
    fn allow_lists_match_exactly_or_by_trailing_star() {
        let list = ["db.t4g.*".to_owned(), "db.m5.large".to_owned()];
        assert!(allowed_by(&list, "db.t4g.micro"));
        assert!(allowed_by(&list, "db.m5.large"));
        assert!(!allowed_by(&list, "db.m5.xlarge"));
        assert!(allowed_by(&[], "anything"));
    }
}
