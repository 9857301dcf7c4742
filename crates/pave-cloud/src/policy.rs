//! Guardrails and tenancy: whether an environment may be provisioned at all, decided
//! before anything is created.
//!
//! Two kinds of refusal, because they ask different people for different things:
//! - `PolicyViolation`: the spec exceeds a limit the platform team configured (region,
//!   database class, ttl, environments per namespace). The message names the limit and
//!   the operator-configuration key that sets it.
//! - `Forbidden`: the spec would make the operator act outside the tenant's namespace
//!   without the other side's consent (connection secret into another namespace, an
//!   Argo CD project, repository or destination namespace). The message says exactly
//!   what to change, and where, to allow it.
//!
//! [`check`] returns every refusal at once, so a user fixes the spec in one round trip
//! rather than one error per reconcile. Pure: the operator looks up what the cluster
//! knows (other environments, namespace annotations and owners) into a
//! [`PolicyContext`] first.

use std::fmt;

use crate::config::{OperatorConfig, allowed_by, format_duration, parse_duration};

/// The annotation a namespace carries to accept connection secrets from environments in
/// other namespaces: a comma-separated list of source namespaces.
pub const ACCEPT_CONNECTION_SECRETS_FROM: &str = "platform.pave.dev/accept-connection-secrets-from";

/// A database engine RDS runs; the name is RDS's engine identifier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DbEngine {
    #[default]
    Postgres,
    Mysql,
}

impl DbEngine {
    /// RDS's `Engine` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            DbEngine::Postgres => "postgres",
            DbEngine::Mysql => "mysql",
        }
    }

    /// The port the engine listens on by default, which RDS keeps unless told otherwise.
    pub fn port(self) -> u16 {
        match self {
            DbEngine::Postgres => 5432,
            DbEngine::Mysql => 3306,
        }
    }
}

impl fmt::Display for DbEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an environment asks for, as plain data (the operator copies it from the
/// `DeveloperEnvironment`; this crate does not depend on the API types).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvironmentRequest {
    pub namespace: String,
    pub name: String,
    /// `metadata.uid`: every cloud name and tag derives from it.
    pub uid: String,
    pub region: String,
    /// RDS instance class; `None` for no database.
    pub db_size: Option<String>,
    pub db_engine: DbEngine,
    pub db_engine_version: Option<String>,
    pub db_storage_gib: i32,
    /// A profile name from the operator configuration, or `none`.
    pub cluster_size: String,
    /// `spec.ttl` as written (`72h`).
    pub ttl: Option<String>,
    /// `spec.writeConnectionSecretsToNamespace`; `None` means the own namespace.
    pub connection_secret_namespace: Option<String>,
    pub gitops: Option<GitOpsRequest>,
}

/// What an environment asks of Argo CD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitOpsRequest {
    pub repo_url: String,
    /// `None`: the configured default project.
    pub project: Option<String>,
    /// `None`: the environment's name.
    pub destination_namespace: Option<String>,
}

impl EnvironmentRequest {
    /// Where the connection secret goes.
    pub fn secret_namespace(&self) -> &str {
        self.connection_secret_namespace
            .as_deref()
            .unwrap_or(&self.namespace)
    }

    /// The Argo CD project the Application uses, the configured default when unset.
    pub fn gitops_project<'a>(&'a self, config: &'a OperatorConfig) -> Option<&'a str> {
        self.gitops.as_ref().map(|g| {
            g.project
                .as_deref()
                .unwrap_or_else(|| config.gitops.default_project_for(&self.namespace))
        })
    }

    /// The namespace the Application deploys into, the environment's name when unset.
    pub fn destination_namespace(&self) -> Option<&str> {
        self.gitops
            .as_ref()
            .map(|g| g.destination_namespace.as_deref().unwrap_or(&self.name))
    }
}

/// Who owns the Argo CD destination namespace. The operator decides ownership when it
/// creates the namespace (for example a label carrying the environment's UID) and
/// reports it here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NamespaceState {
    /// Does not exist: the environment may create and own it.
    #[default]
    Absent,
    /// Exists and was created for this environment.
    OwnedByThis,
    /// Exists and belongs to another environment.
    OwnedByOther,
    /// Exists and belongs to no environment (someone else's namespace).
    Unowned,
}

/// What the cluster knows that the spec does not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyContext {
    /// Environments in the same namespace that count before this one. The operator
    /// should count only those created earlier (creation timestamp, then name), so that
    /// when a namespace has too many the newest are refused, each environment's verdict
    /// is stable, and lowering the limit never refuses one that was admitted earlier
    /// while the newer ones are still around.
    pub other_environments_in_namespace: u32,
    /// The value of [`ACCEPT_CONNECTION_SECRETS_FROM`] on the secret's target
    /// namespace; `None` when the annotation (or the namespace) is missing. Only read
    /// when the target is another namespace.
    pub secret_namespace_accepts: Option<String>,
    /// The Argo CD destination namespace. Only read when the spec has `gitops`.
    pub destination_namespace: NamespaceState,
}

/// Why an environment is refused; becomes the `Ready` condition's reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RefusalReason {
    /// Over a guardrail the platform team configured.
    PolicyViolation,
    /// Would act outside the tenant's namespace without consent.
    Forbidden,
    /// The spec itself cannot be read (a ttl that is not a duration). The API server's
    /// validation normally stops this first; this guards objects written before it.
    InvalidSpec,
}

impl RefusalReason {
    /// As the condition's `reason` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::PolicyViolation => "PolicyViolation",
            RefusalReason::Forbidden => "Forbidden",
            RefusalReason::InvalidSpec => "InvalidSpec",
        }
    }
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reason not to provision, with a message saying how to resolve it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub reason: RefusalReason,
    pub message: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

/// Whether environments may use `region` (`allowedRegions`; empty allows any).
pub fn region_allowed(config: &OperatorConfig, region: &str) -> bool {
    allowed_by(&config.allowed_regions, region)
}

/// Every guardrail and tenancy rule the request breaks; empty means it may proceed.
/// Guardrails come first, then tenancy, in spec order.
pub fn check(
    request: &EnvironmentRequest,
    config: &OperatorConfig,
    ctx: &PolicyContext,
) -> Vec<Refusal> {
    let mut refusals = Vec::new();
    let mut refuse = |reason, message: String| refusals.push(Refusal { reason, message });

    // Guardrails.
    if !region_allowed(config, &request.region) {
        refuse(
            RefusalReason::PolicyViolation,
            format!(
                "region {:?} is not allowed; allowed regions: {} (allowedRegions in the operator configuration)",
                request.region,
                config.allowed_regions.join(", ")
            ),
        );
    }
    if let Some(class) = &request.db_size
        && !allowed_by(&config.allowed_db_classes, class)
    {
        refuse(
            RefusalReason::PolicyViolation,
            format!(
                "database class {class:?} is not allowed; allowed classes: {} (allowedDbClasses in the operator configuration)",
                config.allowed_db_classes.join(", ")
            ),
        );
    }
    if let Some(ttl) = &request.ttl {
        match parse_duration(ttl) {
            Err(e) => refuse(RefusalReason::InvalidSpec, format!("spec.ttl: {e}")),
            Ok(ttl_duration) => {
                if let Some(max) = config.max_ttl
                    && ttl_duration > max
                {
                    refuse(
                        RefusalReason::PolicyViolation,
                        format!(
                            "ttl {ttl} is longer than the maximum of {} (maxTtl in the operator configuration)",
                            format_duration(max)
                        ),
                    );
                }
            }
        }
    }
    let limit = config.environments_per_namespace;
    if limit > 0 && ctx.other_environments_in_namespace >= limit {
        refuse(
            RefusalReason::PolicyViolation,
            format!(
                "namespace {} already has {} environments, the maximum is {limit} (environmentsPerNamespace in the operator configuration); delete one to make room",
                request.namespace, ctx.other_environments_in_namespace
            ),
        );
    }

    // Tenancy.
    let secret_namespace = request.secret_namespace();
    if secret_namespace != request.namespace {
        let accepted = ctx
            .secret_namespace_accepts
            .as_deref()
            .is_some_and(|value| accepts(value, &request.namespace));
        if !accepted {
            refuse(
                RefusalReason::Forbidden,
                format!(
                    "namespace {secret_namespace} does not accept connection secrets from namespace {source}; to allow it, add {source} to the annotation {ACCEPT_CONNECTION_SECRETS_FROM} on namespace {secret_namespace} (a comma-separated list), e.g. kubectl annotate namespace {secret_namespace} {ACCEPT_CONNECTION_SECRETS_FROM}={source}",
                    source = request.namespace
                ),
            );
        }
    }
    if let Some(gitops) = &request.gitops {
        let namespace = &request.namespace;
        let project = request.gitops_project(config).unwrap_or_default();
        let projects = config.gitops.projects_for(namespace);
        if !projects.contains(&project) {
            let allowed = if projects.is_empty() {
                "none is allowed in this namespace".to_owned()
            } else {
                format!("use one of {}", projects.join(", "))
            };
            refuse(
                RefusalReason::Forbidden,
                format!(
                    "Argo CD project {project:?} is not allowed for namespace {namespace}: {allowed}, or ask the platform team to add it to gitops.allowedProjects (or gitops.namespaces.{namespace}.allowedProjects) in the operator configuration"
                ),
            );
        }
        let prefixes = config.gitops.repo_prefixes_for(namespace);
        if !prefixes
            .iter()
            .any(|prefix| repo_matches(&gitops.repo_url, prefix))
        {
            let allowed = if prefixes.is_empty() {
                "no repository is allowed for this namespace yet".to_owned()
            } else {
                format!("use a repository under {}", prefixes.join(", "))
            };
            refuse(
                RefusalReason::Forbidden,
                format!(
                    "repository {} is not allowed for namespace {namespace}: {allowed}; ask the platform team to add its prefix to gitops.allowedRepoPrefixes (or gitops.namespaces.{namespace}.allowedRepoPrefixes) in the operator configuration",
                    gitops.repo_url
                ),
            );
        }
        let destination = request.destination_namespace().unwrap_or_default();
        match ctx.destination_namespace {
            NamespaceState::Absent | NamespaceState::OwnedByThis => {}
            NamespaceState::OwnedByOther => refuse(
                RefusalReason::Forbidden,
                format!(
                    "destination namespace {destination} belongs to another environment; set spec.gitops.destinationNamespace to a namespace that does not exist yet"
                ),
            ),
            NamespaceState::Unowned => refuse(
                RefusalReason::Forbidden,
                format!(
                    "destination namespace {destination} already exists and was not created for this environment; set spec.gitops.destinationNamespace to a namespace that does not exist yet, and pave creates it"
                ),
            ),
        }
    }
    refusals
}

/// Whether an annotation value (comma-separated namespaces) lists `namespace`. Exact
/// names only, no wildcard: consent is given to namespaces one by one.
pub fn accepts(annotation_value: &str, namespace: &str) -> bool {
    annotation_value
        .split(',')
        .map(str::trim)
        .any(|entry| entry == namespace)
}

/// Whether `url` is under `prefix`, on a path-segment boundary so that
/// `https://github.com/my-org` does not admit `https://github.com/my-org-evil/x`. A
/// trailing `.git` on the repository is ignored.
pub fn repo_matches(url: &str, prefix: &str) -> bool {
    let url = url.strip_suffix(".git").unwrap_or(url);
    let prefix = prefix.strip_suffix(".git").unwrap_or(prefix);
    match url.strip_prefix(prefix) {
        None => false,
        Some(rest) => rest.is_empty() || prefix.ends_with(['/', ':']) || rest.starts_with('/'),
    }
}

/// How long an environment may live: its own `spec.ttl`, or, when it names none,
/// the operator's `maxTtl` (so leaving `ttl` out does not bypass the limit). `None`:
/// no limit, or a ttl that does not parse (which [`check`] refuses).
pub fn effective_ttl(ttl: Option<&str>, config: &OperatorConfig) -> Option<std::time::Duration> {
    match ttl {
        Some(ttl) => parse_duration(ttl).ok(),
        None => config.max_ttl,
    }
}

/// When an environment created at `created_unix_secs` expires under `ttl` (Unix
/// seconds), for `status.expiresAt`. Counted from creation, not from readiness: it can
/// be computed again at any time from the object alone, a slow provision does not
/// extend it, and changing `spec.ttl` moves it predictably. Fractions of a second are
/// dropped, as creation timestamps have none.
pub fn expires_at(created_unix_secs: i64, ttl: &str) -> Result<i64, crate::config::DurationError> {
    let ttl = parse_duration(ttl)?;
    let secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
    Ok(created_unix_secs.saturating_add(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn article_request() -> EnvironmentRequest {
        EnvironmentRequest {
            namespace: "team-payments".into(),
            name: "feature-payment-v2-env".into(),
            uid: "3f2a9c1e-7b4d-4e8a-9f10-2c3d4e5f6a7b".into(),
            region: "ap-northeast-2".into(),
            db_size: Some("db.t3.medium".into()),
            db_engine: DbEngine::Postgres,
            db_engine_version: Some("16".into()),
            db_storage_gib: 20,
            cluster_size: "small".into(),
            ttl: Some("72h".into()),
            connection_secret_namespace: Some("team-payments".into()),
            gitops: Some(GitOpsRequest {
                repo_url: "https://github.com/my-org/environments".into(),
                project: Some("payments-team".into()),
                destination_namespace: Some("feature-payment-v2".into()),
            }),
        }
    }

    /// Asserts that the refusal's message says each of `parts`.
    fn mentions(r: &Refusal, parts: &[&str]) {
        for part in parts {
            assert!(r.message.contains(part), "{part:?} not in {:?}", r.message);
        }
    }

    /// What the default configuration, with the article's project and repository
    /// allowed, refuses of `request`, alone in its namespace.
    fn with_defaults(request: &EnvironmentRequest) -> Vec<Refusal> {
        check(request, &articles_gitops(), &PolicyContext::default())
    }

    /// What the default configuration itself refuses of `request`.
    fn with_closed_gitops(request: &EnvironmentRequest) -> Vec<Refusal> {
        check(
            request,
            &OperatorConfig::default(),
            &PolicyContext::default(),
        )
    }

    fn only(refusals: Vec<Refusal>) -> Refusal {
        assert_eq!(refusals.len(), 1, "{refusals:#?}");
        refusals.into_iter().next().unwrap()
    }

    #[test]
    fn the_articles_environment_passes_once_its_repository_is_allowed() {
        let refusals = with_defaults(&article_request());
        assert!(refusals.is_empty(), "{refusals:#?}");
    }

    #[test]
    fn a_region_outside_the_allowed_list_is_a_policy_violation() {
        let config = OperatorConfig {
            allowed_regions: vec!["eu-west-1".into(), "us-east-1".into()],
            ..articles_gitops()
        };
        let r = only(check(
            &article_request(),
            &config,
            &PolicyContext::default(),
        ));
        assert_eq!(r.reason, RefusalReason::PolicyViolation);
        mentions(
            &r,
            &[
                "\"ap-northeast-2\"",
                "eu-west-1, us-east-1",
                "allowedRegions in the operator configuration",
            ],
        );
    }

    #[test]
    fn a_database_class_outside_the_allowed_list_is_a_policy_violation() {
        let request = EnvironmentRequest {
            db_size: Some("db.r6g.16xlarge".into()),
            ..article_request()
        };
        let r = only(with_defaults(&request));
        assert_eq!(r.reason, RefusalReason::PolicyViolation);
        mentions(&r, &["db.r6g.16xlarge", "db.t3.medium", "allowedDbClasses"]);

        let no_db = EnvironmentRequest {
            db_size: None,
            ..article_request()
        };
        assert!(with_defaults(&no_db).is_empty());
    }

    #[test]
    fn a_ttl_beyond_the_maximum_is_a_policy_violation() {
        let request = EnvironmentRequest {
            ttl: Some("200h".into()),
            ..article_request()
        };
        let r = only(with_defaults(&request));
        assert_eq!(r.reason, RefusalReason::PolicyViolation);
        mentions(
            &r,
            &["200h", "168h", "maxTtl in the operator configuration"],
        );

        let exactly = EnvironmentRequest {
            ttl: Some("168h".into()),
            ..article_request()
        };
        assert!(with_defaults(&exactly).is_empty());
        let unlimited = OperatorConfig {
            max_ttl: None,
            ..articles_gitops()
        };
        assert!(check(&request, &unlimited, &PolicyContext::default()).is_empty());
    }

    #[test]
    fn an_unreadable_ttl_is_an_invalid_spec() {
        let request = EnvironmentRequest {
            ttl: Some("3 days".into()),
            ..article_request()
        };
        let r = only(with_defaults(&request));
        assert_eq!(r.reason, RefusalReason::InvalidSpec);
        assert!(r.message.starts_with("spec.ttl"), "{}", r.message);
    }

    #[test]
    fn too_many_environments_in_a_namespace_is_a_policy_violation() {
        let config = articles_gitops();
        let ctx = |n| PolicyContext {
            other_environments_in_namespace: n,
            ..PolicyContext::default()
        };
        assert!(check(&article_request(), &config, &ctx(4)).is_empty());
        let r = only(check(&article_request(), &config, &ctx(5)));
        assert_eq!(r.reason, RefusalReason::PolicyViolation);
        mentions(
            &r,
            &["team-payments", "maximum is 5", "environmentsPerNamespace"],
        );
        let unlimited = OperatorConfig {
            environments_per_namespace: 0,
            ..config
        };
        assert!(check(&article_request(), &unlimited, &ctx(500)).is_empty());
    }

    #[test]
    fn a_secret_in_another_namespace_needs_that_namespaces_consent() {
        let request = EnvironmentRequest {
            connection_secret_namespace: Some("shared-secrets".into()),
            ..article_request()
        };
        let config = articles_gitops();
        for annotation in [None, Some("team-orders"), Some("team-payments-2, x")] {
            let ctx = PolicyContext {
                secret_namespace_accepts: annotation.map(String::from),
                ..PolicyContext::default()
            };
            let r = only(check(&request, &config, &ctx));
            assert_eq!(r.reason, RefusalReason::Forbidden);
            mentions(
                &r,
                &[
                    "add team-payments to the annotation platform.pave.dev/accept-connection-secrets-from on namespace shared-secrets",
                ],
            );
        }
        let ctx = PolicyContext {
            secret_namespace_accepts: Some("team-orders, team-payments ,x".into()),
            ..PolicyContext::default()
        };
        assert!(check(&request, &config, &ctx).is_empty());

        // The own namespace never needs consent, however it is spelled in the spec.
        let own = EnvironmentRequest {
            connection_secret_namespace: None,
            ..article_request()
        };
        assert!(check(&own, &config, &PolicyContext::default()).is_empty());
    }

    /// A configuration that allows the article's environment its project and repository.
    fn articles_gitops() -> OperatorConfig {
        OperatorConfig::from_yaml(
            "gitops: {namespaces: {team-payments: {allowedProjects: [payments-team], allowedRepoPrefixes: ['https://github.com/my-org/environments']}}}",
        )
        .unwrap()
    }

    #[test]
    fn by_default_gitops_allows_only_the_namespaces_own_project_and_no_repository() {
        let refusals = with_closed_gitops(&article_request());
        assert_eq!(refusals.len(), 2, "{refusals:#?}");
        assert!(
            refusals
                .iter()
                .all(|r| r.reason == RefusalReason::Forbidden)
        );
        mentions(
            &refusals[0],
            &[
                "\"payments-team\"",
                "namespace team-payments",
                "use one of team-payments",
                "gitops.namespaces.team-payments.allowedProjects",
            ],
        );
        mentions(
            &refusals[1],
            &[
                "https://github.com/my-org/environments",
                "no repository is allowed",
                "gitops.allowedRepoPrefixes",
            ],
        );
        // No project in the spec means the one named after the namespace.
        let mut request = article_request();
        request.gitops.as_mut().unwrap().project = None;
        assert_eq!(
            request.gitops_project(&OperatorConfig::default()),
            Some("team-payments")
        );
        let refusals = with_closed_gitops(&request);
        assert_eq!(refusals.len(), 1, "{refusals:#?}");
        mentions(&refusals[0], &["repository"]);
    }

    #[test]
    fn argo_cds_default_project_is_never_a_namespaces_own() {
        let mut request = article_request();
        request.namespace = "default".into();
        request.connection_secret_namespace = None;
        request.gitops.as_mut().unwrap().project = None;
        let config = OperatorConfig::from_yaml(
            "gitops: {allowedRepoPrefixes: ['https://github.com/my-org']}",
        )
        .unwrap();
        let r = only(check(&request, &config, &PolicyContext::default()));
        mentions(&r, &["\"default\"", "none is allowed in this namespace"]);
    }

    #[test]
    fn gitops_projects_are_limited_by_configuration() {
        assert!(
            check(
                &article_request(),
                &articles_gitops(),
                &PolicyContext::default()
            )
            .is_empty()
        );
        // What one namespace is allowed is not another's.
        let mut request = article_request();
        request.namespace = "team-orders".into();
        request.connection_secret_namespace = None;
        let refusals = check(&request, &articles_gitops(), &PolicyContext::default());
        assert_eq!(refusals.len(), 2, "{refusals:#?}");
        // Lists for every namespace.
        let config = OperatorConfig::from_yaml(
            "gitops: {allowedProjects: [shared, payments-team], defaultProject: shared, allowedRepoPrefixes: ['https://github.com/my-org']}",
        )
        .unwrap();
        assert!(check(&request, &config, &PolicyContext::default()).is_empty());
        request.gitops.as_mut().unwrap().project = Some("orders-admin".into());
        let r = only(check(&request, &config, &PolicyContext::default()));
        assert_eq!(r.reason, RefusalReason::Forbidden);
        mentions(
            &r,
            &[
                "\"orders-admin\"",
                "team-orders, shared, payments-team",
                "gitops.allowedProjects",
            ],
        );
        request.gitops.as_mut().unwrap().project = None;
        assert_eq!(request.gitops_project(&config), Some("shared"));
    }

    #[test]
    fn gitops_repositories_are_limited_by_configuration() {
        let config = OperatorConfig::from_yaml(
            "gitops: {allowedProjects: [payments-team], allowedRepoPrefixes: ['https://github.com/my-org', 'git@github.com:my-org/']}",
        )
        .unwrap();
        assert!(check(&article_request(), &config, &PolicyContext::default()).is_empty());
        let mut request = article_request();
        request.gitops.as_mut().unwrap().repo_url = "https://github.com/my-org-evil/envs".into();
        let r = only(check(&request, &config, &PolicyContext::default()));
        assert_eq!(r.reason, RefusalReason::Forbidden);
        mentions(&r, &["my-org-evil", "gitops.allowedRepoPrefixes"]);
    }

    #[test]
    fn repository_prefixes_match_on_path_boundaries() {
        assert!(repo_matches(
            "https://github.com/my-org/envs",
            "https://github.com/my-org"
        ));
        assert!(repo_matches(
            "https://github.com/my-org/envs.git",
            "https://github.com/my-org/envs"
        ));
        assert!(repo_matches(
            "https://github.com/my-org/envs",
            "https://github.com/my-org/"
        ));
        assert!(repo_matches(
            "git@github.com:my-org/envs",
            "git@github.com:"
        ));
        assert!(!repo_matches(
            "https://github.com/my-org-evil/envs",
            "https://github.com/my-org"
        ));
        assert!(!repo_matches(
            "https://gitlab.com/my-org/envs",
            "https://github.com/my-org"
        ));
    }

    #[test]
    fn the_destination_namespace_must_be_new_or_this_environments() {
        let config = articles_gitops();
        for state in [NamespaceState::Absent, NamespaceState::OwnedByThis] {
            let ctx = PolicyContext {
                destination_namespace: state,
                ..PolicyContext::default()
            };
            assert!(
                check(&article_request(), &config, &ctx).is_empty(),
                "{state:?}"
            );
        }
        for state in [NamespaceState::OwnedByOther, NamespaceState::Unowned] {
            let ctx = PolicyContext {
                destination_namespace: state,
                ..PolicyContext::default()
            };
            let r = only(check(&article_request(), &config, &ctx));
            assert_eq!(r.reason, RefusalReason::Forbidden);
            mentions(
                &r,
                &["feature-payment-v2", "spec.gitops.destinationNamespace"],
            );
        }
        // Without gitops the destination is never looked at.
        let request = EnvironmentRequest {
            gitops: None,
            ..article_request()
        };
        let ctx = PolicyContext {
            destination_namespace: NamespaceState::Unowned,
            ..PolicyContext::default()
        };
        assert!(check(&request, &config, &ctx).is_empty());
    }

    #[test]
    fn the_destination_defaults_to_the_environments_name() {
        let mut request = article_request();
        request.gitops.as_mut().unwrap().destination_namespace = None;
        assert_eq!(
            request.destination_namespace(),
            Some("feature-payment-v2-env")
        );
    }

    #[test]
    fn every_refusal_is_reported_at_once() {
        let config = OperatorConfig {
            allowed_regions: vec!["eu-west-1".into()],
            ..articles_gitops()
        };
        let request = EnvironmentRequest {
            db_size: Some("db.x2g.large".into()),
            ttl: Some("1000h".into()),
            connection_secret_namespace: Some("elsewhere".into()),
            ..article_request()
        };
        let ctx = PolicyContext {
            other_environments_in_namespace: 9,
            destination_namespace: NamespaceState::Unowned,
            ..PolicyContext::default()
        };
        let reasons: Vec<_> = check(&request, &config, &ctx)
            .into_iter()
            .map(|r| r.reason)
            .collect();
        use RefusalReason::*;
        assert_eq!(
            reasons,
            [
                PolicyViolation,
                PolicyViolation,
                PolicyViolation,
                PolicyViolation,
                Forbidden,
                Forbidden
            ]
        );
    }

    #[test]
    fn without_a_ttl_an_environment_gets_the_maximum() {
        let config = articles_gitops();
        let week = std::time::Duration::from_secs(168 * 3600);
        assert_eq!(effective_ttl(None, &config), Some(week));
        assert_eq!(
            effective_ttl(Some("2h"), &config),
            Some(std::time::Duration::from_secs(7200))
        );
        let unlimited = OperatorConfig {
            max_ttl: None,
            ..articles_gitops()
        };
        assert_eq!(effective_ttl(None, &unlimited), None);
    }

    #[test]
    fn expiry_is_creation_plus_ttl() {
        // 2024-01-01T00:00:00Z + 72h
        assert_eq!(expires_at(1_704_067_200, "72h").unwrap(), 1_704_326_400);
        assert_eq!(expires_at(100, "1h30m").unwrap(), 100 + 5400);
        assert!(expires_at(100, "soon").is_err());
    }
}
