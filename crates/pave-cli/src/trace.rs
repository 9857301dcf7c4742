//! `kubectl pave trace devenv NAME`: a DeveloperEnvironment, each of its cloud
//! resources, its connection secret and its Argo CD application as one tree, with
//! state, id and the last error, so "why is it not ready?" is answered without
//! reading the operator's logs.
//!
//! Reading the cluster (the environment, the secret's metadata, the events) happens
//! in [`run`]; what is shown is decided by the pure [`render`] and [`report`], which
//! the unit tests drive with constructed objects.
//!
//! Decisions the design (docs/design.md) leaves to this module:
//! - Everything comes from the environment's status, written by the operator; trace
//!   never asks AWS or Argo CD itself, so it needs no cloud credentials and shows
//!   exactly what the operator last saw.
//! - The connection secret is checked with a metadata-only read: its data never
//!   leaves the API server, let alone reaches the terminal.
//! - A resource's message is shown as a failure (`✗`) unless it is a progress note
//!   (`deleting`, `creating`, `waiting …`), because the operator writes a message
//!   only for an error or for teardown progress.
//! - Every refusal or stuck step gets a note under the heading: its reason and what to
//!   do (a refusal waits for the spec or the configuration; a Terminal error for the
//!   spec, or for a permission to be granted; a blocked deletion is retried and the
//!   note gives the `kubectl annotate` that releases it; a deletion lists what is
//!   left in the cloud; a False condition besides Ready, such as Synced
//!   `DatabaseKept`, is repeated there). The tree leaves out of a note the message its
//!   heading already shows; in `-o json` each note carries its message, so it stands
//!   alone.
//! - The connection secret is looked up under the name it has or will have, so a
//!   Secret pave did not create (no `platform.pave.dev/environment-uid` label with this
//!   environment's UID, no owner reference to it), which the operator refuses to use,
//!   shows as in the way.
//! - The newest Warning event is always among the recent events, however many
//!   Normal ones came after it: a Warning is what someone must act on.
//! - Trace exits 0 whenever it could show the environment, Ready or not: it is a
//!   diagnosis, not a check. It exits 1 when the environment or the cluster cannot
//!   be read, with one line on stderr saying what failed and what to do.
//! - Problems reading the secret or the events are notes on stderr; the tree is still
//!   printed, since the status alone usually answers the question.

use std::fmt::Write as _;
use std::process::ExitCode;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::{Timestamp, Unit};
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

use crate::cluster::{chain, connect, explain};
use pave_api::DeveloperEnvironment;
use pave_api::conditions::{self, READY, RECOVERABLE, TERMINAL};
use pave_api::environment::{
    CloudResourceStatus, DeveloperEnvironmentStatus, GitOpsStatus, Phase, SecretRef,
};
use serde::Serialize;

/// How many of the most recent events are shown.
const RECENT_EVENTS: usize = 5;

use pave_api::environment::{ABANDON, ENVIRONMENT_UID_LABEL, FINALIZER};

/// AWS error codes that mean the operator's AWS identity lacks a permission.
const PERMISSION_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
];

/// What to trace.
#[derive(clap::Subcommand)]
pub enum Target {
    /// A DeveloperEnvironment: its cloud resources, connection secret, Argo CD
    /// application, conditions and recent events.
    #[command(name = "devenv", visible_alias = "developerenvironment")]
    Devenv(DevenvArgs),
}

/// `kubectl pave trace devenv NAME [-n NAMESPACE] [-o tree|json]`.
#[derive(clap::Args)]
pub struct DevenvArgs {
    /// The environment's name.
    #[arg(value_name = "NAME")]
    name: String,
    /// The environment's namespace; defaults to the kubeconfig context's namespace,
    /// else `default`.
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    namespace: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Tree)]
    output: Format,
}

/// How the trace is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Tree,
    Json,
}

/// What trace found of the connection secret, read as metadata only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretFound {
    /// No Secret of that name.
    Missing,
    /// pave's, for this environment.
    Ours,
    /// A Secret of that name that pave did not create for this environment: the
    /// operator never reads or writes it, and refuses the environment (`Forbidden`).
    Foreign,
}

/// One event about the environment, as trace shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventLine {
    /// How long before the trace the event last happened, as kubectl prints ages.
    pub age: String,
    /// When it last happened (RFC 3339), if the event says.
    pub time: Option<String>,
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: String,
    pub reason: String,
    pub message: String,
    /// How often it happened (events are deduplicated into series).
    pub count: i32,
}

/// `kubectl pave trace ...`: prints the trace, or one line on stderr and exit 1.
pub fn run(target: Target) -> ExitCode {
    let Target::Devenv(args) = target;
    // One request at a time: a current-thread runtime is all a CLI needs.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("kubectl-pave: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(trace_devenv(&args)) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("kubectl-pave: {message}");
            ExitCode::from(1)
        }
    }
}

/// Reads what the trace needs and renders it; the error is the one line to print.
async fn trace_devenv(args: &DevenvArgs) -> Result<String, String> {
    let cluster = connect(args.namespace.as_deref()).await?;
    let (client, namespace) = (cluster.client.clone(), cluster.namespace.clone());

    let environments = Api::<DeveloperEnvironment>::namespaced(client.clone(), &namespace);
    let env = environments
        .get(&args.name)
        .await
        .map_err(|e| explain_get_error(&e, &namespace, &args.name, &cluster.server))?;

    let status = env.status.clone().unwrap_or_default();
    let secret = secret_coordinates(&env, &status);
    let secret_found = match secret_found(&client, &secret, &env.uid().unwrap_or_default()).await {
        Ok(found) => Some(found),
        Err(e) => {
            eprintln!(
                "kubectl-pave: note: cannot check secret {}/{}: {}",
                secret.namespace,
                secret.name,
                chain(&e)
            );
            None
        }
    };
    let events = match events_about(&client, &env).await {
        Ok(events) => events,
        Err(e) => {
            eprintln!("kubectl-pave: note: cannot read events: {}", chain(&e));
            Vec::new()
        }
    };

    Ok(match args.output {
        Format::Tree => render(&env, secret_found, &events),
        Format::Json => {
            let json = serde_json::to_string_pretty(&report(&env, secret_found, &events))
                .expect("a trace always serialises");
            format!("{json}\n")
        }
    })
}

/// The one line for a failed read of the environment: not found, CRD missing,
/// refused, or unreachable, each with what to do about it.
fn explain_get_error(error: &kube::Error, namespace: &str, name: &str, server: &str) -> String {
    match error {
        kube::Error::Api(status) if status.code == 404 && status.reason == "NotFound" => {
            format!("developerenvironment {namespace}/{name} not found")
        }
        other => explain(
            other,
            &format!("get developerenvironment {namespace}/{name}"),
            "developerenvironments.platform.pave.dev",
            server,
        ),
    }
}

/// The connection secret the status names, else the one the operator will write:
/// `<name>-connection` in `writeConnectionSecretsToNamespace` or the environment's own.
fn secret_coordinates(
    env: &DeveloperEnvironment,
    status: &DeveloperEnvironmentStatus,
) -> SecretRef {
    status
        .connection_secret_ref
        .clone()
        .unwrap_or_else(|| SecretRef {
            name: format!("{}-connection", env.name_any()),
            namespace: env
                .spec
                .write_connection_secrets_to_namespace
                .clone()
                .or_else(|| env.namespace())
                .unwrap_or_default(),
        })
}

/// Whether the secret exists and is pave's for the environment `uid`, read as metadata
/// only so its data is never fetched. pave's means what the operator accepts: its
/// UID label, or an owner reference to the environment.
async fn secret_found(client: &Client, secret: &SecretRef, uid: &str) -> kube::Result<SecretFound> {
    let secrets = Api::<Secret>::namespaced(client.clone(), &secret.namespace);
    Ok(match secrets.get_metadata_opt(&secret.name).await? {
        None => SecretFound::Missing,
        Some(found) => {
            let labelled = found
                .labels()
                .get(ENVIRONMENT_UID_LABEL)
                .map(String::as_str)
                == Some(uid);
            let owned = found.owner_references().iter().any(|o| o.uid == uid);
            if labelled || owned {
                SecretFound::Ours
            } else {
                SecretFound::Foreign
            }
        }
    })
}

/// The most recent events about the environment. pave publishes events.k8s.io/v1
/// events; core/v1 events are the same objects seen through the other API, so one
/// query finds both.
async fn events_about(client: &Client, env: &DeveloperEnvironment) -> kube::Result<Vec<EventLine>> {
    let Some(uid) = env.uid() else {
        return Ok(Vec::new());
    };
    let api = Api::<Event>::namespaced(client.clone(), &env.namespace().unwrap_or_default());
    let by_uid = ListParams::default().fields(&format!("regarding.uid={uid}"));
    let events = match api.list(&by_uid).await {
        Ok(list) => list.items,
        // A server that does not know the field label answers 400; listing the
        // namespace and filtering here gives the same answer with more traffic.
        Err(kube::Error::Api(status)) if status.code == 400 => {
            api.list(&ListParams::default()).await?.items
        }
        Err(e) => return Err(e),
    };
    Ok(recent_events(events, &uid, Timestamp::now(), RECENT_EVENTS))
}

/// The last `limit` events about the object with `uid`, oldest first, with ages
/// relative to `now`; the newest Warning is always one of them. Filters by uid itself
/// as well, in case the server ignored the field selector.
fn recent_events(events: Vec<Event>, uid: &str, now: Timestamp, limit: usize) -> Vec<EventLine> {
    let mut about: Vec<(Option<Timestamp>, Event)> = events
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.uid.as_deref()) == Some(uid))
        .map(|e| (last_seen(&e), e))
        .collect();
    about.sort_by_key(|(time, _)| *time);
    let skip = about.len().saturating_sub(limit);
    let warning = about
        .iter()
        .rposition(|(_, e)| e.type_.as_deref() == Some("Warning"));
    if let Some(warning) = warning
        && warning < skip
        && limit > 0
    {
        // Older than the rest, so it goes first; the oldest of the rest makes room.
        let kept = about.remove(warning);
        about.drain(..skip);
        about.insert(0, kept);
    } else {
        about.drain(..skip);
    }
    about
        .into_iter()
        .map(|(time, e)| EventLine {
            age: time.map_or_else(|| "?".to_owned(), |t| human_age(now, t)),
            time: time.map(|t| t.round(Unit::Second).unwrap_or(t).to_string()),
            type_: e.type_.unwrap_or_default(),
            reason: e.reason.unwrap_or_default(),
            message: e.note.unwrap_or_default(),
            count: e
                .series
                .as_ref()
                .map(|s| s.count)
                .or(e.deprecated_count)
                .unwrap_or(1)
                .max(1),
        })
        .collect()
}

/// When an event last happened: a series' last observation, else its own time, else
/// what core/v1 writers recorded, else when the object was created.
fn last_seen(event: &Event) -> Option<Timestamp> {
    event
        .series
        .as_ref()
        .map(|s| s.last_observed_time.0)
        .or(event.event_time.as_ref().map(|t| t.0))
        .or(event.deprecated_last_timestamp.as_ref().map(|t| t.0))
        .or(event.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// An age the way kubectl prints it (`45s`, `3m20s`, `2h`, `5d`).
fn human_age(now: Timestamp, then: Timestamp) -> String {
    let seconds = now.duration_since(then).as_secs();
    if seconds < 0 {
        return "0s".to_owned();
    }
    let minutes = seconds / 60;
    let hours = minutes / 60;
    let days = hours / 24;
    let with_rest = |big: i64, big_unit: &str, small: i64, small_unit: &str| {
        if small == 0 {
            format!("{big}{big_unit}")
        } else {
            format!("{big}{big_unit}{small}{small_unit}")
        }
    };
    match () {
        _ if seconds < 120 => format!("{seconds}s"),
        _ if minutes < 10 => with_rest(minutes, "m", seconds % 60, "s"),
        _ if hours < 3 => format!("{minutes}m"),
        _ if hours < 8 => with_rest(hours, "h", minutes % 60, "m"),
        _ if hours < 48 => format!("{hours}h"),
        _ if days < 8 => with_rest(days, "d", hours % 24, "h"),
        _ if days < 365 * 2 => format!("{days}d"),
        _ => format!("{}y", days / 365),
    }
}

/// The tree, conditions and events, as printed by default.
pub fn render(
    env: &DeveloperEnvironment,
    secret: Option<SecretFound>,
    events: &[EventLine],
) -> String {
    let status = env.status.clone().unwrap_or_default();
    let mut out = String::new();

    let ready_condition = conditions::find(&status.conditions, READY);
    let ready = match ready_condition {
        Some(c) if c.status == "True" => "Ready=True".to_owned(),
        Some(c) => format!("Ready={} ({})", c.status, reason_and_message(c)),
        None => "Ready=Unknown".to_owned(),
    };
    // The heading shows Ready's message unless Ready is True; notes need not repeat it.
    let shown = ready_condition
        .filter(|c| c.status != "True")
        .map(|c| c.message.as_str());
    let _ = writeln!(
        out,
        "DeveloperEnvironment {}   phase {}   {ready}",
        qualified_name(env),
        status.phase.map_or("-", phase_name)
    );
    for note in notes(env, &status, shown) {
        let _ = writeln!(out, "  {note}");
    }

    let mut rows: Vec<[String; 5]> = status.resources.iter().map(resource_row).collect();
    if rows.is_empty() {
        rows.push(row("AWS", "(no cloud resources yet)", "", "", ""));
    }
    rows.push(secret_row(env, &status, secret));
    rows.push(gitops_row(env, status.gitops.as_ref()));
    let last = rows.len() - 1;
    for (i, line) in table(&rows).into_iter().enumerate() {
        let branch = if i == last { "└─" } else { "├─" };
        let _ = writeln!(out, "{branch} {line}");
    }

    if let Some(expires) = &status.expires_at {
        let ttl = env.spec.ttl.as_deref().unwrap_or("?");
        let _ = writeln!(out, "expires: {} (ttl {ttl})", time(expires));
    }
    if let Some(checked) = &status.last_drift_check {
        let _ = writeln!(out, "last drift check: {}", time(checked));
    }

    if status.conditions.is_empty() {
        out.push_str("conditions: none\n");
    } else {
        out.push_str("conditions:\n");
        // Ready first: it is the one the question is about.
        let ordered = status
            .conditions
            .iter()
            .filter(|c| c.type_ == READY)
            .chain(status.conditions.iter().filter(|c| c.type_ != READY));
        let rows: Vec<[String; 5]> = ordered
            .map(|c| {
                [
                    condition_marker(c).to_owned(),
                    c.type_.clone(),
                    c.status.clone(),
                    c.reason.clone(),
                    c.message.clone(),
                ]
            })
            .collect();
        for line in table(&rows) {
            let _ = writeln!(out, "  {line}");
        }
    }

    if events.is_empty() {
        out.push_str("recent events: none\n");
    } else {
        out.push_str("recent events:\n");
        let rows: Vec<[String; 5]> = events
            .iter()
            .map(|e| {
                let count = if e.count > 1 {
                    format!(" (x{})", e.count)
                } else {
                    String::new()
                };
                [
                    e.age.clone(),
                    e.type_.clone(),
                    e.reason.clone(),
                    format!("{}{count}", e.message),
                    String::new(),
                ]
            })
            .collect();
        for line in table(&rows) {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

/// The lines under the heading that say what is wrong and what to do: a refusal, a
/// failure the operator will or will not retry, another condition that is False, a
/// status that lags the spec, a deletion and what holds it. A condition's message is
/// left out where `shown` (what the heading already says) contains it.
fn notes(
    env: &DeveloperEnvironment,
    status: &DeveloperEnvironmentStatus,
    shown: Option<&str>,
) -> Vec<String> {
    let mut notes = Vec::new();
    if env.status.is_none() {
        notes.push(
            "no status yet: the operator has not reconciled this environment; is pave-operator running?"
                .to_owned(),
        );
    }
    let find = |type_: &str| conditions::find(&status.conditions, type_);
    let ready = find(READY).filter(|c| c.status != "True");
    let terminal = find(TERMINAL).filter(|c| c.status == "True");
    let recoverable = find(RECOVERABLE).filter(|c| c.status == "True");
    let detail = |c: &Condition| {
        if c.message.is_empty() || shown.is_some_and(|shown| shown.contains(c.message.as_str())) {
            String::new()
        } else {
            format!(": {}", c.message)
        }
    };
    let deleting = env.metadata.deletion_timestamp.is_some();
    let release = if env.annotations().get(ABANDON).map(String::as_str) == Some("true") {
        format!(
            "{ABANDON}=true is set, so the operator releases it at its next reconcile and leaves \
             its cloud resources in place"
        )
    } else {
        format!(
            "to release it now and leave its cloud resources in place: kubectl annotate \
             developerenvironment -n {} {} {ABANDON}=true",
            env.namespace().unwrap_or_default(),
            env.name_any()
        )
    };

    if let Some(c) = ready
        && let Some(until) = refused_until(&c.reason)
    {
        let what = if status.resources.is_empty() {
            "nothing is provisioned"
        } else {
            "nothing more is provisioned (what exists stays)"
        };
        notes.push(format!(
            "✗ refused ({}){}; {what} until {until}",
            c.reason,
            detail(c)
        ));
    }
    if let Some(c) = terminal {
        let (what, next) = if deleting {
            (
                "deletion blocked",
                format!(
                    "pave retries with backoff and releases it once the cause is fixed; {release}"
                ),
            )
        } else if PERMISSION_CODES.contains(&c.reason.as_str()) {
            (
                "Terminal",
                "a permission is missing: grant the operator's AWS identity the action the \
                 message names; the operator retries when the environment next changes (any \
                 edit, an annotation will do)"
                    .to_owned(),
            )
        } else {
            (
                "Terminal",
                "the spec must change: the operator does not retry until it does".to_owned(),
            )
        };
        notes.push(format!("✗ {what} ({}){}; {next}", c.reason, detail(c)));
    }
    if let Some(c) = recoverable {
        let next = if deleting {
            format!("pave retries with backoff and releases it once this passes; {release}")
        } else {
            "the operator retries with backoff".to_owned()
        };
        notes.push(format!("↻ Recoverable ({}){}; {next}", c.reason, detail(c)));
    }
    // Any other condition that is False (Synced's DatabaseKept: a decision to make),
    // unless it repeats what the lines above say (Synced's CloudError).
    let said: Vec<&str> = [ready, terminal, recoverable]
        .into_iter()
        .flatten()
        .map(|c| c.message.as_str())
        .collect();
    for c in status.conditions.iter().filter(|c| {
        c.status == "False"
            && ![READY, TERMINAL, RECOVERABLE].contains(&c.type_.as_str())
            && !said.contains(&c.message.as_str())
    }) {
        notes.push(format!("! {}=False ({}){}", c.type_, c.reason, detail(c)));
    }
    if let (Some(observed), Some(generation)) =
        (status.observed_generation, env.metadata.generation)
        && observed < generation
    {
        notes.push(format!(
            "status describes generation {observed}, the spec is at generation {generation}: \
             the operator has not caught up yet"
        ));
    }
    if let Some(deleted) = &env.metadata.deletion_timestamp {
        let mut note = format!("deletion requested at {}", time(deleted));
        let finalizers = env.finalizers();
        if !finalizers.is_empty() {
            let _ = write!(note, "; waiting for {}", finalizers.join(", "));
        }
        // What pave's finalizer waits for: what status still records in the cloud.
        let left: Vec<String> = status
            .resources
            .iter()
            .filter(|r| r.id.is_some() && r.state.as_deref() != Some("deleted"))
            .map(|r| {
                format!(
                    "{} {} ({})",
                    r.kind,
                    r.name,
                    r.state.as_deref().unwrap_or("-")
                )
            })
            .collect();
        if finalizers.iter().any(|f| f == FINALIZER) && !left.is_empty() {
            let _ = write!(note, "; left in the cloud: {}", left.join(", "));
        }
        notes.push(note);
    }
    notes
}

/// For a Ready reason that is a refusal (`crates/pave-cloud/src/policy.rs` and the
/// connection secret check), what has to happen before anything is provisioned.
fn refused_until(reason: &str) -> Option<&'static str> {
    match reason {
        "PolicyViolation" => Some(
            "the spec keeps within the operator's guardrails, or the platform team changes \
             the configuration the message names",
        ),
        "Forbidden" => Some("what the message names is changed"),
        "InvalidSpec" => Some("the spec is fixed"),
        _ => None,
    }
}

fn reason_and_message(c: &Condition) -> String {
    match (c.reason.is_empty(), c.message.is_empty()) {
        (_, true) => c.reason.clone(),
        (true, false) => c.message.clone(),
        (false, false) => format!("{}: {}", c.reason, c.message),
    }
}

fn condition_marker(c: &Condition) -> &'static str {
    match (c.type_.as_str(), c.status.as_str()) {
        (TERMINAL, "True") => "✗",
        (RECOVERABLE, "True") => "↻",
        (READY | TERMINAL | RECOVERABLE, _) => " ",
        (_, "False") => "!",
        _ => " ",
    }
}

fn row(kind: &str, name: &str, id: &str, state: &str, message: &str) -> [String; 5] {
    [kind, name, id, state, message].map(str::to_owned)
}

fn resource_row(r: &CloudResourceStatus) -> [String; 5] {
    let message = match (&r.message, is_failure(r)) {
        (Some(m), true) => format!("✗ {m}"),
        (None, true) => format!("✗ state {}", r.state.as_deref().unwrap_or_default()),
        (Some(m), false) => m.clone(),
        (None, false) => String::new(),
    };
    row(
        &r.kind,
        &r.name,
        r.id.as_deref().unwrap_or("-"),
        r.state.as_deref().unwrap_or("-"),
        &message,
    )
}

/// Whether a resource's entry reports a failure rather than progress.
fn is_failure(r: &CloudResourceStatus) -> bool {
    // Cloud states that mean the resource is broken, whatever the message says
    // (RDS's `failed`, `incompatible-*`, `storage-full`, …).
    let failed_state = r.state.as_deref().is_some_and(|s| {
        matches!(
            s,
            "failed"
                | "error"
                | "storage-full"
                | "restore-error"
                | "inaccessible-encryption-credentials"
        ) || s.starts_with("incompatible-")
    });
    let error_message = r.message.as_deref().is_some_and(|m| {
        let m = m.trim().to_ascii_lowercase();
        let progress = ["creating", "deleting", "modifying", "pending", "waiting"]
            .iter()
            .any(|word| m.starts_with(word));
        !m.is_empty() && !progress
    });
    failed_state || error_message
}

/// What the Secret row says of a Secret pave did not create for this environment.
const FOREIGN_SECRET: &str =
    "✗ pave did not create it for this environment, so it is never read or written";

fn secret_row(
    env: &DeveloperEnvironment,
    status: &DeveloperEnvironmentStatus,
    found: Option<SecretFound>,
) -> [String; 5] {
    let secret = secret_coordinates(env, status);
    let written = status.connection_secret_ref.is_some();
    let (state, message) = match (found, written) {
        (Some(SecretFound::Foreign), _) => ("in the way", FOREIGN_SECRET),
        (Some(SecretFound::Ours), _) => ("exists", ""),
        (Some(SecretFound::Missing), true) => {
            ("missing", "✗ the status names it, but it does not exist")
        }
        (None, true) => ("unknown", ""),
        // The name it will have, so a reader knows what to look for.
        (Some(SecretFound::Missing) | None, false) => ("not written yet", ""),
    };
    row(
        "Secret",
        &format!("{}/{}", secret.namespace, secret.name),
        "-",
        state,
        message,
    )
}

fn gitops_row(env: &DeveloperEnvironment, gitops: Option<&GitOpsStatus>) -> [String; 5] {
    match (gitops, &env.spec.gitops) {
        (Some(g), _) => {
            let state = match (&g.sync, &g.health) {
                (Some(sync), Some(health)) => format!("{sync}/{health}"),
                (Some(one), None) | (None, Some(one)) => one.clone(),
                (None, None) => "-".to_owned(),
            };
            // What Argo CD last said that is not good news: an error condition, or a
            // sync operation that did not succeed.
            let message = match (&g.message, &g.operation_phase) {
                (Some(message), _) => message.clone(),
                (None, Some(phase)) if phase != "Succeeded" => format!("sync {phase}"),
                _ => String::new(),
            };
            row(
                "Argo CD",
                g.application.as_deref().unwrap_or("(unnamed application)"),
                g.revision.as_deref().unwrap_or("-"),
                &state,
                &message,
            )
        }
        (None, Some(_)) => row("Argo CD", "(application not created yet)", "", "", ""),
        (None, None) => row("Argo CD", "(no gitops)", "", "", ""),
    }
}

/// Rows as lines with every column but the last padded to its widest cell; trailing
/// blanks trimmed.
fn table(rows: &[[String; 5]]) -> Vec<String> {
    let mut widths = [0usize; 5];
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    rows.iter()
        .map(|r| {
            let mut line = String::new();
            for (i, cell) in r.iter().enumerate() {
                if i + 1 == r.len() {
                    line.push_str(cell);
                } else if widths[i] > 0 {
                    let _ = write!(line, "{cell:<width$}  ", width = widths[i]);
                }
            }
            line.trim_end().to_owned()
        })
        .collect()
}

fn qualified_name(env: &DeveloperEnvironment) -> String {
    format!("{}/{}", env.namespace().unwrap_or_default(), env.name_any())
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Provisioning => "Provisioning",
        Phase::Ready => "Ready",
        Phase::Updating => "Updating",
        Phase::Deleting => "Deleting",
        Phase::Failed => "Failed",
    }
}

fn time(t: &Time) -> String {
    t.0.round(Unit::Second).unwrap_or(t.0).to_string()
}

/// The trace as `-o json` prints it: the same facts as the tree.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// `namespace/name`.
    pub environment: String,
    pub namespace: String,
    pub name: String,
    pub generation: Option<i64>,
    pub observed_generation: Option<i64>,
    pub deletion_timestamp: Option<Time>,
    pub phase: Option<Phase>,
    /// The lines that explain the state (Terminal, Recoverable, stale status, …).
    pub notes: Vec<String>,
    pub conditions: Vec<Condition>,
    pub resources: Vec<ResourceReport>,
    pub secret: SecretReport,
    pub gitops: Option<GitOpsStatus>,
    pub expires_at: Option<Time>,
    pub last_drift_check: Option<Time>,
    pub events: Vec<EventLine>,
}

/// A cloud resource in the JSON trace: its status entry and whether it failed.
#[derive(Debug, Serialize)]
pub struct ResourceReport {
    #[serde(flatten)]
    pub status: CloudResourceStatus,
    pub failed: bool,
}

/// The connection secret in the JSON trace: the one the status names, else the name
/// it will have. `exists` is null when it could not be read.
#[derive(Debug, Serialize)]
pub struct SecretReport {
    pub name: String,
    pub namespace: String,
    pub exists: Option<bool>,
    /// A Secret of that name exists that pave did not create for this environment.
    pub foreign: bool,
    /// Whether the environment's status names the secret yet.
    pub written: bool,
}

/// The data behind `-o json`.
pub fn report(
    env: &DeveloperEnvironment,
    secret_found: Option<SecretFound>,
    events: &[EventLine],
) -> Report {
    let status = env.status.clone().unwrap_or_default();
    let coordinates = secret_coordinates(env, &status);
    let secret = SecretReport {
        name: coordinates.name,
        namespace: coordinates.namespace,
        exists: secret_found.map(|found| found != SecretFound::Missing),
        foreign: secret_found == Some(SecretFound::Foreign),
        written: status.connection_secret_ref.is_some(),
    };
    Report {
        environment: qualified_name(env),
        namespace: env.namespace().unwrap_or_default(),
        name: env.name_any(),
        generation: env.metadata.generation,
        observed_generation: status.observed_generation,
        deletion_timestamp: env.metadata.deletion_timestamp.clone(),
        phase: status.phase,
        // Nothing is shown beside the notes: each carries its message.
        notes: notes(env, &status, None),
        resources: status
            .resources
            .iter()
            .map(|r| ResourceReport {
                status: r.clone(),
                failed: is_failure(r),
            })
            .collect(),
        secret,
        gitops: status.gitops.clone(),
        expires_at: status.expires_at.clone(),
        last_drift_check: status.last_drift_check.clone(),
        conditions: status.conditions,
        events: events.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ObjectReference;
    use k8s_openapi::api::events::v1::EventSeries;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
    use pave_api::conditions::{SYNCED, Status};
    use pave_api::environment::{
        CompositeDeletePolicy, DeletionPolicy, DeveloperEnvironmentSpec, EnvironmentParameters,
    };

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    fn condition(type_: &str, status: Status, reason: &str, message: &str) -> Condition {
        conditions::new(type_, status, reason, message, Some(1), at(1_700_000_000))
    }

    fn resource(kind: &str, name: &str, id: Option<&str>, state: &str) -> CloudResourceStatus {
        CloudResourceStatus {
            kind: kind.into(),
            name: name.into(),
            id: id.map(Into::into),
            arn: None,
            state: Some(state.into()),
            message: None,
        }
    }

    fn environment(status: Option<DeveloperEnvironmentStatus>) -> DeveloperEnvironment {
        let mut env = DeveloperEnvironment::new(
            "feature-payment-v2-env",
            DeveloperEnvironmentSpec {
                parameters: EnvironmentParameters {
                    region: "ap-northeast-2".into(),
                    db_size: Some("db.t3.medium".into()),
                    db_engine: Default::default(),
                    db_engine_version: None,
                    db_storage_gib: 20,
                    cluster_size: Default::default(),
                },
                composite_delete_policy: CompositeDeletePolicy::Foreground,
                deletion_policy: DeletionPolicy::Delete,
                write_connection_secrets_to_namespace: None,
                ttl: Some("72h".into()),
                gitops: None,
            },
        );
        env.metadata.namespace = Some("team-payments".into());
        env.metadata.uid = Some("1a2b3c4d-0000".into());
        env.metadata.generation = Some(1);
        env.status = status;
        env
    }

    fn network() -> Vec<CloudResourceStatus> {
        vec![
            resource("VPC", "pave-1a2b3c4d-vpc", Some("vpc-0123"), "available"),
            resource(
                "Subnet",
                "pave-1a2b3c4d-subnet-a",
                Some("subnet-0a"),
                "available",
            ),
            resource(
                "DBSubnetGroup",
                "pave-1a2b3c4d-dbsubnets",
                Some("pave-1a2b3c4d-dbsubnets"),
                "Complete",
            ),
        ]
    }

    fn connection_secret() -> Option<SecretRef> {
        Some(SecretRef {
            name: "feature-payment-v2-env-connection".into(),
            namespace: "team-payments".into(),
        })
    }

    fn ready_env() -> DeveloperEnvironment {
        let mut resources = network();
        resources.push(resource(
            "DBInstance",
            "pave-1a2b3c4d-db",
            Some("pave-1a2b3c4d-db"),
            "available",
        ));
        environment(Some(DeveloperEnvironmentStatus {
            observed_generation: Some(1),
            phase: Some(Phase::Ready),
            conditions: vec![
                condition(READY, Status::True, "Ready", "every resource is available"),
                condition(SYNCED, Status::True, "Synced", ""),
            ],
            resources,
            connection_secret_ref: connection_secret(),
            gitops: Some(GitOpsStatus {
                application: Some("argocd/feature-payment-v2-env".into()),
                sync: Some("Synced".into()),
                health: Some("Healthy".into()),
                revision: Some("4f2a9c1".into()),
                ..GitOpsStatus::default()
            }),
            expires_at: Some(Time(at(1_700_259_200))),
            last_drift_check: None,
        }))
    }

    const DB_ERROR: &str = "CreateDBInstance pave-1a2b3c4d-db: InvalidParameterCombination: \
                            RDS does not support db.t3.medium with postgres 9.6";

    fn failed_db_env() -> DeveloperEnvironment {
        let mut resources = network();
        resources.push(CloudResourceStatus {
            message: Some(DB_ERROR.into()),
            ..resource("DBInstance", "pave-1a2b3c4d-db", None, "creating")
        });
        environment(Some(DeveloperEnvironmentStatus {
            observed_generation: Some(1),
            phase: Some(Phase::Failed),
            // Not in the operator's (alphabetical) order, so tests see Ready moved first.
            conditions: vec![
                condition(SYNCED, Status::False, "CloudError", DB_ERROR),
                condition(
                    TERMINAL,
                    Status::True,
                    "InvalidParameterCombination",
                    DB_ERROR,
                ),
                condition(READY, Status::False, "TerminalError", DB_ERROR),
            ],
            resources,
            connection_secret_ref: connection_secret(),
            ..Default::default()
        }))
    }

    fn deleting_env() -> DeveloperEnvironment {
        let mut resources = network();
        for r in &mut resources[1..] {
            r.state = Some("deleting".into());
            r.message = Some("deleting".into());
        }
        let mut env = environment(Some(DeveloperEnvironmentStatus {
            observed_generation: Some(1),
            phase: Some(Phase::Deleting),
            conditions: vec![condition(
                READY,
                Status::False,
                "Deleting",
                "waiting for 2 cloud resources to be deleted",
            )],
            resources,
            connection_secret_ref: connection_secret(),
            ..Default::default()
        }));
        env.metadata.deletion_timestamp = Some(Time(at(1_700_000_600)));
        env.metadata.finalizers = Some(vec!["platform.pave.dev/cloud-resources".into()]);
        env
    }

    fn event(reason: &str, note: &str, seconds: i64) -> EventLine {
        EventLine {
            age: human_age(at(1_700_000_000), at(1_700_000_000 - seconds)),
            time: None,
            type_: "Warning".into(),
            reason: reason.into(),
            message: note.into(),
            count: 1,
        }
    }

    /// The column at which `needle` starts on the line containing `line_marker`.
    fn column(text: &str, line_marker: &str, needle: &str) -> usize {
        let line = text.lines().find(|l| l.contains(line_marker)).unwrap();
        line[..line.find(needle).unwrap()].chars().count()
    }

    #[test]
    fn ready_environment_is_a_quiet_tree() {
        let text = render(&ready_env(), Some(SecretFound::Ours), &[]);
        let first = text.lines().next().unwrap();
        assert_eq!(
            first,
            "DeveloperEnvironment team-payments/feature-payment-v2-env   phase Ready   Ready=True"
        );
        assert!(!text.contains('✗'), "{text}");
        assert!(
            text.contains("├─ Secret         team-payments/feature-payment-v2-env-connection  -                        exists"),
            "{text}"
        );
        assert!(
            text.contains("└─ Argo CD        argocd/feature-payment-v2-env"),
            "{text}"
        );
        assert!(text.contains("4f2a9c1"), "{text}");
        assert!(text.contains("Synced/Healthy"), "{text}");
        assert!(
            text.contains("expires: 2023-11-17T22:13:20Z (ttl 72h)"),
            "{text}"
        );
        assert!(text.contains("recent events: none"), "{text}");
        // Columns line up: every resource's id and state start where the VPC's do.
        for marker in ["pave-1a2b3c4d-vpc", "subnet-a", "pave-1a2b3c4d-db "] {
            assert_eq!(
                column(&text, marker, "available"),
                column(&text, "pave-1a2b3c4d-vpc", "available"),
                "{text}"
            );
        }
        assert_eq!(
            column(&text, "subnet-a", "subnet-0a"),
            column(&text, "pave-1a2b3c4d-vpc", "vpc-0123"),
            "{text}"
        );
    }

    #[test]
    fn failed_database_says_why_and_that_the_spec_must_change() {
        let events = [event(
            "ReconcileFailed",
            "InvalidParameterCombination on DBInstance",
            120,
        )];
        let text = render(&failed_db_env(), Some(SecretFound::Ours), &events);
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            format!(
                "DeveloperEnvironment team-payments/feature-payment-v2-env   phase Failed   \
                 Ready=False (TerminalError: {DB_ERROR})"
            )
        );
        // The Terminal condition is called out, without repeating the same message.
        assert_eq!(
            lines.next().unwrap(),
            "  ✗ Terminal (InvalidParameterCombination); the spec must change: the operator \
             does not retry until it does"
        );
        let db = text
            .lines()
            .find(|l| l.starts_with("├─ DBInstance "))
            .unwrap();
        assert!(db.contains(" pave-1a2b3c4d-db  "), "{db}");
        assert!(db.contains("  -  "), "no id yet: {db}");
        assert!(db.ends_with(&format!("creating   ✗ {DB_ERROR}")), "{db}");
        // Only the failing resource is marked.
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("├─") && l.contains('✗'))
                .count(),
            1,
            "{text}"
        );
        assert!(text.contains("└─ Argo CD        (no gitops)"), "{text}");
        assert!(
            text.contains("  ✗  Terminal  True   InvalidParameterCombination  CreateDBInstance"),
            "{text}"
        );
        // Ready comes first among the conditions, whatever order the status has.
        let conditions: Vec<&str> = text
            .lines()
            .skip_while(|l| *l != "conditions:")
            .skip(1)
            .take(3)
            .collect();
        assert!(conditions[0].contains("Ready     False"), "{text}");
        assert!(
            text.ends_with(
                "recent events:\n  2m  Warning  ReconcileFailed  InvalidParameterCombination on DBInstance\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn deleting_environment_shows_progress_not_failures() {
        let text = render(&deleting_env(), Some(SecretFound::Missing), &[]);
        assert!(text.starts_with("DeveloperEnvironment team-payments/feature-payment-v2-env   phase Deleting   Ready=False (Deleting: waiting for 2 cloud resources to be deleted)\n"), "{text}");
        assert!(
            text.contains(
                "  deletion requested at 2023-11-14T22:23:20Z; waiting for platform.pave.dev/cloud-resources"
            ),
            "{text}"
        );
        // The two resources being torn down show it, and are not failures.
        let deleting: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("├─") && l.ends_with("deleting   deleting"))
            .collect();
        assert_eq!(deleting.len(), 2, "{text}");
        assert!(deleting.iter().all(|l| !l.contains('✗')), "{text}");
        // A secret the status names but that is gone is a failure worth seeing.
        let secret = text.lines().find(|l| l.contains("Secret")).unwrap();
        assert!(secret.contains("missing"), "{secret}");
        assert!(secret.contains('✗'), "{secret}");
    }

    #[test]
    fn no_status_yet_points_at_the_operator() {
        let text = render(&environment(None), None, &[]);
        assert!(
            text.starts_with("DeveloperEnvironment team-payments/feature-payment-v2-env   phase -   Ready=Unknown\n  no status yet"),
            "{text}"
        );
        assert!(text.contains("(no cloud resources yet)"), "{text}");
        assert!(
            text.contains(
                "├─ Secret   team-payments/feature-payment-v2-env-connection  -  not written yet"
            ),
            "{text}"
        );
        assert!(text.contains("conditions: none"), "{text}");
    }

    #[test]
    fn stale_status_and_recoverable_errors_are_explained() {
        let mut env = failed_db_env();
        env.metadata.generation = Some(2);
        let status = env.status.as_mut().unwrap();
        status.conditions = vec![
            condition(READY, Status::False, "RecoverableError", "throttled"),
            condition(
                RECOVERABLE,
                Status::True,
                "Throttling",
                "DescribeDBInstances: Rate exceeded",
            ),
        ];
        let text = render(&env, None, &[]);
        assert!(
            text.contains(
                "  ↻ Recoverable (Throttling): DescribeDBInstances: Rate exceeded; the operator retries with backoff"
            ),
            "{text}"
        );
        assert!(
            text.contains("status describes generation 1, the spec is at generation 2"),
            "{text}"
        );
        assert!(text.contains("unknown"), "secret not checked: {text}");
    }

    #[test]
    fn json_has_the_same_facts() {
        let events = [event("ReconcileFailed", "boom", 30)];
        let json = serde_json::to_value(report(&failed_db_env(), Some(SecretFound::Ours), &events))
            .unwrap();
        assert_eq!(json["environment"], "team-payments/feature-payment-v2-env");
        assert_eq!(json["phase"], "Failed");
        assert_eq!(json["conditions"][1]["type"], "Terminal");
        let db = &json["resources"][3];
        assert_eq!(db["kind"], "DBInstance");
        assert_eq!(db["message"], DB_ERROR);
        assert_eq!(db["failed"], true);
        assert_eq!(json["resources"][0]["failed"], false);
        assert_eq!(
            json["secret"],
            serde_json::json!({
                "name": "feature-payment-v2-env-connection",
                "namespace": "team-payments",
                "exists": true,
                "foreign": false,
                "written": true,
            })
        );
        assert!(json["gitops"].is_null());
        assert_eq!(json["events"][0]["type"], "Warning");
        assert_eq!(json["events"][0]["age"], "30s");
        assert!(json["notes"][0].as_str().unwrap().contains("Terminal"));
    }

    #[test]
    fn deletion_lists_what_is_left_and_how_to_release_it() {
        let text = render(&deleting_env(), Some(SecretFound::Ours), &[]);
        assert!(
            text.contains(
                "; waiting for platform.pave.dev/cloud-resources; left in the cloud: VPC \
                 pave-1a2b3c4d-vpc (available), Subnet pave-1a2b3c4d-subnet-a (deleting), \
                 DBSubnetGroup pave-1a2b3c4d-dbsubnets (deleting)\n"
            ),
            "{text}"
        );

        // A deletion step that keeps failing: retried, and the way out is given.
        let mut env = deleting_env();
        env.status.as_mut().unwrap().conditions = vec![
            condition(
                READY,
                Status::False,
                "Deleting",
                "DeleteSubnet on pave-1a2b3c4d-subnet-a: DependencyViolation: in use (will \
                 retry). pave keeps this environment ...",
            ),
            condition(
                RECOVERABLE,
                Status::True,
                "Deleting",
                "DeleteSubnet on pave-1a2b3c4d-subnet-a: DependencyViolation: in use (will retry)",
            ),
        ];
        let text = render(&env, Some(SecretFound::Ours), &[]);
        assert_eq!(
            text.lines().nth(1).unwrap(),
            "  ↻ Recoverable (Deleting); pave retries with backoff and releases it once this \
             passes; to release it now and leave its cloud resources in place: kubectl \
             annotate developerenvironment -n team-payments feature-payment-v2-env \
             platform.pave.dev/abandon-cloud-resources=true"
        );
        // Once annotated, trace says so instead of suggesting it again.
        env.metadata.annotations = Some(
            [(ABANDON.to_owned(), "true".to_owned())]
                .into_iter()
                .collect(),
        );
        let text = render(&env, Some(SecretFound::Ours), &[]);
        assert!(
            text.lines().nth(1).unwrap().ends_with(
                "; platform.pave.dev/abandon-cloud-resources=true is set, so the operator \
                 releases it at its next reconcile and leaves its cloud resources in place"
            ),
            "{text}"
        );
    }

    #[test]
    fn refusals_and_other_false_conditions_are_notes() {
        // A spec change refused after resources exist: they stay.
        let mut env = ready_env();
        let status = env.status.as_mut().unwrap();
        status.phase = Some(Phase::Ready);
        status.conditions = vec![
            condition(
                READY,
                Status::False,
                "InvalidSpec",
                "spec.ttl: not a duration",
            ),
            condition(
                SYNCED,
                Status::False,
                "DatabaseKept",
                "kept: set dbSize again",
            ),
        ];
        let text = render(&env, Some(SecretFound::Ours), &[]);
        let notes: Vec<&str> = text.lines().skip(1).take(2).collect();
        assert_eq!(
            notes,
            [
                "  ✗ refused (InvalidSpec); nothing more is provisioned (what exists stays) \
                 until the spec is fixed",
                "  ! Synced=False (DatabaseKept): kept: set dbSize again",
            ],
            "{text}"
        );
        assert!(
            text.contains("  !  Synced  False  DatabaseKept  kept: set dbSize again"),
            "{text}"
        );
        let json = serde_json::to_value(report(&env, Some(SecretFound::Ours), &[])).unwrap();
        assert_eq!(
            json["notes"][0],
            "✗ refused (InvalidSpec): spec.ttl: not a duration; nothing more is provisioned \
             (what exists stays) until the spec is fixed"
        );
    }

    #[test]
    fn a_foreign_secret_is_in_the_way() {
        let mut env = ready_env();
        env.status.as_mut().unwrap().connection_secret_ref = None;
        let text = render(&env, Some(SecretFound::Foreign), &[]);
        let secret = text.lines().find(|l| l.starts_with("├─ Secret ")).unwrap();
        assert!(
            secret.contains(" team-payments/feature-payment-v2-env-connection ")
                && secret.ends_with(&format!("  in the way      {FOREIGN_SECRET}")),
            "{text}"
        );
        let json = serde_json::to_value(report(&env, Some(SecretFound::Foreign), &[])).unwrap();
        assert_eq!(json["secret"]["exists"], true);
        assert_eq!(json["secret"]["foreign"], true);
        assert_eq!(json["secret"]["written"], false);
    }

    #[test]
    fn the_newest_warning_stays_among_the_recent_events() {
        let make = |name: &str, type_: &str, seconds: i64| Event {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            regarding: Some(ObjectReference {
                uid: Some("me".into()),
                ..Default::default()
            }),
            event_time: Some(MicroTime(at(seconds))),
            reason: Some(name.into()),
            type_: Some(type_.into()),
            ..Default::default()
        };
        let events = vec![
            make("OldWarning", "Warning", 10),
            make("Blocked", "Warning", 20),
            make("Drift1", "Normal", 30),
            make("Drift2", "Normal", 40),
            make("Drift3", "Normal", 50),
        ];
        let reasons = |limit| -> Vec<String> {
            recent_events(events.clone(), "me", at(100), limit)
                .into_iter()
                .map(|l| l.reason)
                .collect()
        };
        assert_eq!(reasons(2), ["Blocked", "Drift3"]);
        assert_eq!(reasons(4), ["Blocked", "Drift1", "Drift2", "Drift3"]);
        assert_eq!(reasons(5).len(), 5);
        assert!(reasons(0).is_empty());
    }

    #[test]
    fn recent_events_keeps_the_last_few_about_this_object() {
        let make = |uid: &str, reason: &str, seconds: i64, series: Option<i32>| Event {
            metadata: ObjectMeta {
                name: Some(reason.to_lowercase()),
                ..Default::default()
            },
            regarding: Some(ObjectReference {
                uid: Some(uid.into()),
                ..Default::default()
            }),
            event_time: Some(MicroTime(at(seconds))),
            series: series.map(|count| EventSeries {
                count,
                last_observed_time: MicroTime(at(seconds + 5_000)),
            }),
            reason: Some(reason.into()),
            type_: Some("Normal".into()),
            note: Some(format!("{reason} happened")),
            ..Default::default()
        };
        let now = at(10_000);
        let events = vec![
            make("me", "Third", 3_000, None),
            make("other", "NotMine", 9_999, None),
            make("me", "First", 1_000, None),
            // Happened first, but its series was last seen after everything else.
            make("me", "Repeated", 500, Some(4)),
            make("me", "Second", 2_000, None),
        ];
        let lines = recent_events(events, "me", now, 3);
        let reasons: Vec<&str> = lines.iter().map(|l| l.reason.as_str()).collect();
        assert_eq!(reasons, ["Second", "Third", "Repeated"]);
        assert_eq!(lines[2].count, 4);
        assert_eq!(lines[2].age, "75m"); // 10_000 - 5_500 s
        assert_eq!(lines[0].time.as_deref(), Some("1970-01-01T00:33:20Z"));
    }

    #[test]
    fn ages_read_like_kubectl() {
        let now = at(1_000_000);
        let ago = |s: i64| human_age(now, at(1_000_000 - s));
        assert_eq!(ago(-5), "0s");
        assert_eq!(ago(45), "45s");
        assert_eq!(ago(119), "119s");
        assert_eq!(ago(200), "3m20s");
        assert_eq!(ago(600), "10m");
        assert_eq!(ago(4 * 3600 + 60), "4h1m");
        assert_eq!(ago(30 * 3600), "30h");
        assert_eq!(ago(3 * 86400 + 3600), "3d1h");
        assert_eq!(ago(40 * 86400), "40d");
    }

    #[test]
    fn errors_say_what_failed_and_what_to_do() {
        let api = |code: u16, reason: &str| {
            kube::Error::Api(
                kube::core::Status::failure("boom", reason)
                    .with_code(code)
                    .boxed(),
            )
        };
        let explain = |e: &kube::Error| explain_get_error(e, "ns", "env", "https://k:6443/");
        assert_eq!(
            explain(&api(404, "NotFound")),
            "developerenvironment ns/env not found"
        );
        assert!(explain(&api(404, "Failed to parse error data")).contains("install pave's CRDs"));
        assert!(explain(&api(403, "Forbidden")).contains("ask for `get`"));
        assert!(explain(&api(401, "Unauthorized")).contains("log in again"));
    }
}
