//! `kubectl pave new TEMPLATE`: runs a Backstage Software Template from the command
//! line, without a Backstage backend — parameters, skeleton, a pushed repository, a
//! registered Component and, with `pave:environment`, an environment.
//!
//! A run reads → checks → runs → reports:
//! 1. the template and the parameters (`--values`, `--set`, defaults, questions on a
//!    terminal), checked against the pages' JSON Schemas;
//! 2. every step, before the first runs: its action exists, its inputs are there,
//!    each `${{ }}` names something (later steps see earlier steps' outputs as they
//!    will be), every skeleton file renders, and the cluster answers when a step
//!    will write to it. Each problem names `FILE:LINE`;
//! 3. the steps in order, in a workspace (a temporary directory, or `--output`); the
//!    first that fails stops the run;
//! 4. what was done and what was not, then the template's `output` (links, text), or
//!    all of it as JSON with `-o json`.
//!
//! `--dry-run` runs the checks and the steps that only write into the workspace (in
//! a temporary one, removed after), shows the files and the steps that would change
//! something outside, and changes nothing.

mod act;
mod actions;
mod fetch;
mod git;
mod parameters;
mod register;
mod render;
mod report;
mod run;
mod template;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{Map, Value as Json, json};

use crate::lines::FieldPath;
use git::Remotes;
use parameters::Page;
use register::Target;
use render::Engine;
use report::Report;
use run::{Mode, Run};
use template::{Step, Template};

/// `kubectl pave new`'s command line.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A template file, or a directory holding template.yaml and its skeleton.
    #[arg(value_name = "TEMPLATE")]
    pub template: PathBuf,
    /// A parameter, as NAME=VALUE (read as the parameter's type); repeatable.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub sets: Vec<String>,
    /// Parameters from a YAML or JSON file of NAME: VALUE.
    #[arg(long, value_name = "FILE")]
    pub values: Option<PathBuf>,
    /// Check everything and show the files and steps, changing nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The workspace: this directory (new or empty) instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// The namespace Components and environments go to (default: the kubeconfig's).
    #[arg(short = 'n', long, value_name = "NS", value_parser = crate::import::parse_namespace)]
    pub namespace: Option<String>,
    /// The git remote a hosted publish action pushes to, as HOST=URL with {owner}
    /// and {repo}; overrides pave's config file. Repeatable.
    #[arg(long = "remote", value_name = "HOST=URL")]
    pub remotes: Vec<String>,
    /// pave's config file (default: $PAVE_CONFIG, else ~/.config/pave/config.yaml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Output format of the report.
    #[arg(short = 'o', long, value_enum, default_value_t = report::Format::Text)]
    pub format: report::Format,
}

/// Runs `kubectl pave new`; 0 when every step that should run ran.
pub fn run(args: Args) -> ExitCode {
    let mut report = Report::new(args.dry_run);
    let outcome = execute(&args, &mut report);
    if let Err(problems) = outcome {
        report.problems = problems;
    }
    report.print(args.format)
}

fn execute(args: &Args, report: &mut Report) -> Result<(), Vec<String>> {
    let template = Template::load(&args.template).map_err(|e| vec![e.to_string()])?;
    report.template = template.name.clone();
    let config = args.config.clone().or_else(git::default_config_path);
    let remotes = Remotes::load(config.as_deref(), args.config.is_some(), &args.remotes)
        .map_err(|e| vec![e])?;

    // The cluster, when a step will write to it; reached before anything runs.
    let needs_cluster = template.steps.iter().any(writes_to_cluster);
    let target = if needs_cluster && !args.dry_run {
        let kinds: Vec<&str> = template
            .steps
            .iter()
            .filter(|s| writes_to_cluster(s))
            .map(|s| {
                if s.action == "catalog:register" {
                    "Component"
                } else {
                    "DeveloperEnvironment"
                }
            })
            .collect();
        Some(
            Target::connect(args.namespace.as_deref(), &kinds)
                .map_err(|e| vec![format!("{e} (the template registers in the cluster)")])?,
        )
    } else {
        None
    };
    let namespace = args
        .namespace
        .clone()
        .or_else(|| target.as_ref().map(|t| t.namespace().to_owned()))
        .unwrap_or_else(|| "default".to_owned());

    let values = gather(&template.pages, args, target.as_ref())?;
    report.parameters = values.clone();

    let mut run = Run {
        template: &template,
        engine: Engine::new(),
        parameters: values,
        user: user(),
        namespace,
        remotes,
        target,
        outputs: Map::new(),
        published: Vec::new(),
    };
    // Every step checked before the first runs.
    let problems = run.steps(Mode::Check, Path::new("."), &mut Vec::new());
    if !problems.is_empty() {
        return Err(problems);
    }
    run.outputs.clear();
    run.published.clear();

    let (workspace, temporary) = workspace(args).map_err(|e| vec![e])?;
    let mode = if args.dry_run {
        Mode::DryRun
    } else {
        Mode::Run
    };
    let problems = run.steps(mode, &workspace, &mut report.steps);
    if args.dry_run {
        report.files = files_of(&workspace);
    } else {
        report.workspace = Some(workspace.display().to_string());
    }
    if !problems.is_empty() {
        // What a failed run wrote stays, to look at.
        if let (Some(temporary), false) = (temporary, args.dry_run) {
            let _ = temporary.keep();
        }
        return Err(problems);
    }
    let context = run.context();
    let output = run
        .engine
        .render_value(&template.output, &context)
        .map_err(|e| {
            vec![format!(
                "{}: output: {e}",
                template.at(&FieldPath::of(&["spec", "output"]))
            )]
        })?;
    report.output = output.unwrap_or(Json::Null);
    Ok(())
}

/// Whether a step writes to the cluster: `catalog:register`, or `pave:environment`
/// with `apply` (anything but a literal false).
fn writes_to_cluster(step: &Step) -> bool {
    match step.action.as_str() {
        "catalog:register" => true,
        "pave:environment" => !matches!(step.input.get("apply"), None | Some(Json::Bool(false))),
        _ => false,
    }
}

/// The parameters: `--values`, then `--set`, then defaults, then questions; checked.
fn gather(
    pages: &[Page],
    args: &Args,
    target: Option<&Target>,
) -> Result<Map<String, Json>, Vec<String>> {
    let mut values = Map::new();
    if let Some(file) = &args.values {
        let text = std::fs::read_to_string(file)
            .map_err(|e| vec![format!("{}: cannot read: {e}", file.display())])?;
        match serde_yaml::from_str::<Json>(&text) {
            Ok(Json::Object(given)) => values.extend(given),
            Ok(_) => {
                return Err(vec![format!(
                    "{}: must map parameter names to values",
                    file.display()
                )]);
            }
            Err(e) => return Err(vec![format!("{}: not YAML: {e}", file.display())]),
        }
    }
    let mut problems = Vec::new();
    for set in &args.sets {
        match parameters::parse_set(pages, set) {
            Ok((name, value)) => {
                values.insert(name, value);
            }
            Err(e) => problems.push(e),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    parameters::apply_defaults(pages, &mut values);
    parameters::ask(pages, &mut values, || {
        target.map(Target::owners).unwrap_or_default()
    })
    .map_err(|p| p.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    let problems = parameters::validate(pages, &values);
    if problems.is_empty() {
        Ok(values)
    } else {
        Err(problems.iter().map(ToString::to_string).collect())
    }
}

/// The workspace, and the temporary directory to remove after, when it is one.
fn workspace(args: &Args) -> Result<(PathBuf, Option<tempfile::TempDir>), String> {
    match (&args.output, args.dry_run) {
        (Some(dir), false) => {
            if dir.exists() && std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_some()) {
                return Err(format!(
                    "--output {}: exists and is not empty",
                    dir.display()
                ));
            }
            std::fs::create_dir_all(dir).map_err(|e| format!("--output {}: {e}", dir.display()))?;
            Ok((dir.clone(), None))
        }
        _ => {
            let temporary = tempfile::Builder::new()
                .prefix("pave-new-")
                .tempdir()
                .map_err(|e| format!("cannot create a workspace: {e}"))?;
            Ok((temporary.path().to_owned(), Some(temporary)))
        }
    }
}

/// The files under `dir`, relative, sorted; `.git` left out.
pub(super) fn files_of(dir: &Path) -> Vec<String> {
    fetch::files(dir)
        .unwrap_or_default()
        .into_iter()
        .map(|(relative, _)| relative.display().to_string())
        .collect()
}

/// `user` in templates: who runs the command, as git and the login name say.
fn user() -> Json {
    let git = git::config;
    let login = std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned());
    json!({
        "ref": format!("user:default/{login}"),
        "entity": {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "User",
            "metadata": {"name": login, "namespace": "default"},
            "spec": {"profile": {"displayName": git("user.name"), "email": git("user.email")}},
        },
    })
}
