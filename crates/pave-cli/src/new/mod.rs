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

mod actions;
mod fetch;
mod git;
mod parameters;
mod register;
mod render;
mod report;
mod template;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use minijinja::Value;
use serde_json::{Map, Value as Json, json};

use crate::import::{Source, import};
use crate::lines::FieldPath;
use git::{Publish, Remotes};
use parameters::Page;
use register::Target;
use render::{Engine, value};
use report::{Report, Status, StepReport};
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

/// How the steps are gone through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Everything checked, nothing written; outputs are what they will be.
    Check,
    /// Workspace steps run in a temporary workspace; the others are shown.
    DryRun,
    Run,
}

/// A publish of this run: what `catalog:register` may register.
struct Published {
    repo_contents_url: String,
    remote: String,
    branch: String,
    commit: String,
    repository: PathBuf,
}

struct Run<'a> {
    template: &'a Template,
    engine: Engine,
    parameters: Map<String, Json>,
    user: Json,
    namespace: String,
    remotes: Remotes,
    target: Option<Target>,
    /// `steps.<id>.output` of the steps so far.
    outputs: Map<String, Json>,
    published: Vec<Published>,
}

impl Run<'_> {
    fn context(&self) -> Value {
        // Parameters not given are `none`, so that naming them is not naming nothing.
        let mut parameters = self.parameters.clone();
        for page in &self.template.pages {
            for (name, _) in page.properties() {
                parameters.entry(name.clone()).or_insert(Json::Null);
            }
        }
        value(json!({
            "parameters": parameters,
            "steps": self.outputs,
            "user": self.user,
        }))
    }

    /// Goes through every step; returns the problems (in `Check`, all of them; else
    /// the failure that stopped the run).
    fn steps(
        &mut self,
        mode: Mode,
        workspace: &Path,
        reports: &mut Vec<StepReport>,
    ) -> Vec<String> {
        let mut problems = Vec::new();
        let mut failed: Vec<String> = Vec::new();
        let steps = &self.template.steps;
        for (index, step) in steps.iter().enumerate() {
            let mut entry = StepReport::new(step);
            let result = self.step(mode, workspace, step, &mut entry);
            match result {
                Ok(()) => reports.push(entry),
                Err(step_problems) => {
                    if mode == Mode::Check {
                        // A later step's use of this one's outputs is not a second problem.
                        let used = |p: &String| {
                            failed.iter().any(|id: &String| {
                                p.contains(&format!("steps.{id}."))
                                    || p.contains(&format!("steps['{id}']"))
                            })
                        };
                        problems.extend(step_problems.into_iter().filter(|p| !used(p)));
                        failed.push(step.id.clone());
                        continue;
                    }
                    entry.status = Status::Failed;
                    entry.message = step_problems.join("; ");
                    reports.push(entry);
                    reports.extend(steps[index + 1..].iter().map(StepReport::new));
                    return step_problems;
                }
            }
        }
        problems
    }

    fn step(
        &mut self,
        mode: Mode,
        workspace: &Path,
        step: &Step,
        entry: &mut StepReport,
    ) -> Result<(), Vec<String>> {
        let at = |keys: &[&str]| self.template.at(&step.path(keys));
        let Some(spec) = actions::spec(&step.action) else {
            let known: Vec<&str> = actions::ACTIONS.iter().map(|a| a.name).collect();
            return Err(vec![format!(
                "{}: step `{}`: unknown action `{}` (pave runs {})",
                at(&["action"]),
                step.id,
                step.action,
                known.join(", ")
            )]);
        };
        if step.each.is_some() {
            return Err(vec![format!(
                "{}: step `{}`: `each` is not supported",
                at(&["each"]),
                step.id
            )]);
        }
        let context = self.context();
        if let Some(condition) = &step.condition {
            let holds = self
                .engine
                .condition(condition, &context)
                .map_err(|e| vec![format!("{}: step `{}`: if: {e}", at(&["if"]), step.id)])?;
            if !holds && mode != Mode::Check {
                entry.status = Status::Skipped;
                return Ok(());
            }
        }
        let input = self.render_input(step, &context)?;
        let missing = actions::missing(spec, &input);
        if !missing.is_empty() {
            return Err(missing
                .iter()
                .map(|key| {
                    format!(
                        "{}: step `{}`: {} needs the input {}",
                        at(&["input"]),
                        step.id,
                        step.action,
                        key.replace('|', " or ")
                    )
                })
                .collect());
        }
        let ignored: Vec<&str> = input
            .keys()
            .map(String::as_str)
            .filter(|k| spec.ignored.contains(k))
            .collect();
        if !ignored.is_empty() {
            entry.notes.push(format!(
                "{} is mapped to publish:git; ignored: {}",
                step.action,
                ignored.join(", ")
            ));
        }
        entry.input = Json::Object(input.clone());
        let outputs = self
            .act(mode, workspace, step, &input, entry)
            .map_err(|problems| {
                problems
                    .into_iter()
                    .map(|p| format!("{}: step `{}` ({}): {p}", at(&[]), step.id, step.action))
                    .collect::<Vec<_>>()
            })?;
        entry.output = Json::Object(outputs.clone());
        if entry.status == Status::NotRun {
            entry.status = Status::Done;
        }
        self.outputs
            .insert(step.id.clone(), json!({ "output": outputs }));
        Ok(())
    }

    /// The step's input rendered; a problem names the field's line.
    fn render_input(&self, step: &Step, context: &Value) -> Result<Map<String, Json>, Vec<String>> {
        let Json::Object(fields) = &step.input else {
            return Err(vec![format!(
                "{}: input must be a mapping",
                self.template.at(&step.path(&["input"]))
            )]);
        };
        let mut rendered = Map::new();
        let mut problems = Vec::new();
        for (key, value) in fields {
            match self.render_field(step, &["input", key], value, context) {
                Ok(Some(value)) => {
                    rendered.insert(key.clone(), value);
                }
                Ok(None) => {}
                Err(p) => problems.extend(p),
            }
        }
        if problems.is_empty() {
            Ok(rendered)
        } else {
            Err(problems)
        }
    }

    /// One field, looking one level into mappings (such as `values`) so that a
    /// problem is placed at its own line.
    fn render_field(
        &self,
        step: &Step,
        path: &[&str],
        value: &Json,
        context: &Value,
    ) -> Result<Option<Json>, Vec<String>> {
        if let (Json::Object(fields), 2) = (value, path.len()) {
            let mut rendered = Map::new();
            let mut problems = Vec::new();
            for (key, field) in fields {
                let inner = [path[0], path[1], key.as_str()];
                match self.render_field(step, &inner, field, context) {
                    Ok(v) => {
                        rendered.insert(key.clone(), v.unwrap_or(Json::Null));
                    }
                    Err(p) => problems.extend(p),
                }
            }
            return if problems.is_empty() {
                Ok(Some(Json::Object(rendered)))
            } else {
                Err(problems)
            };
        }
        self.engine.render_value(value, context).map_err(|e| {
            let line =
                self.template.line_of(&step.path(path)) + e.line.map_or(0, |l| l.saturating_sub(1));
            vec![format!(
                "{}:{line}: step `{}`: {}: {e}",
                self.template.file.display(),
                step.id,
                path[1..].join(".")
            )]
        })
    }

    /// Runs (or checks, or shows) one action; its outputs.
    fn act(
        &mut self,
        mode: Mode,
        workspace: &Path,
        step: &Step,
        input: &Map<String, Json>,
        entry: &mut StepReport,
    ) -> Result<Map<String, Json>, Vec<String>> {
        let text = |key: &str| input.get(key).and_then(Json::as_str);
        let writes = mode != Mode::Check;
        match step.action.as_str() {
            "fetch:template" | "fetch:plain" | "fetch:template:file" => {
                let url = text("url").unwrap_or_default();
                let source = fetch::source(&self.template.dir, url).map_err(|e| vec![e])?;
                let target = fetch::target(text("targetPath")).map_err(|e| vec![e])?;
                let planned = match step.action.as_str() {
                    "fetch:plain" => fetch::plan_plain(&source, &target).map_err(|e| vec![e])?,
                    "fetch:template:file" => {
                        fetch::plan_template_file(&self.engine, &source, &target, input)?
                    }
                    _ => fetch::plan_template(&self.engine, &source, &target, input)?,
                };
                if writes {
                    let replace = input.get("replace") == Some(&Json::Bool(true));
                    let written =
                        fetch::write(workspace, &planned, replace).map_err(|e| vec![e])?;
                    entry.notes.push(format!("{} files", written.len()));
                }
                Ok(Map::new())
            }
            "debug:log" => {
                if writes {
                    if let Some(message) = input.get("message") {
                        let message = message
                            .as_str()
                            .map_or_else(|| message.to_string(), str::to_owned);
                        entry.notes.push(message);
                    }
                    if input.get("listWorkspace") == Some(&Json::Bool(true)) {
                        entry.notes.extend(files_of(workspace));
                    }
                }
                Ok(Map::new())
            }
            "catalog:write" => {
                let path = fetch::target(Some(text("filePath").unwrap_or("catalog-info.yaml")))
                    .map_err(|e| vec![e])?;
                let yaml =
                    serde_yaml::to_string(&input["entity"]).map_err(|e| vec![e.to_string()])?;
                if writes {
                    let planned = [fetch::Planned {
                        path,
                        contents: yaml.into_bytes(),
                        executable: false,
                    }];
                    fetch::write(workspace, &planned, true).map_err(|e| vec![e])?;
                }
                Ok(Map::new())
            }
            "publish:git" | "publish:github" => {
                let publish =
                    Publish::from_input(&step.action, input, &self.remotes).map_err(|e| vec![e])?;
                if step.action != "publish:git" {
                    entry.notes.push(format!(
                        "{} pushes with git to {}",
                        step.action, publish.remote
                    ));
                }
                let commit = match mode {
                    Mode::Run => publish.push(workspace).map_err(|e| vec![e])?,
                    Mode::DryRun => {
                        entry.status = Status::WouldRun;
                        "(dry run: not pushed)".to_owned()
                    }
                    Mode::Check => "(the commit of the push)".to_owned(),
                };
                let outputs = publish.outputs(&commit);
                self.published.push(Published {
                    repo_contents_url: outputs["repoContentsUrl"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    remote: publish.remote.clone(),
                    branch: publish.branch.clone(),
                    commit,
                    repository: workspace.join(&publish.source),
                });
                Ok(outputs)
            }
            "catalog:register" => self.register(mode, input, entry),
            "pave:environment" => self.environment(mode, workspace, input, entry),
            other => unreachable!("{other} has a spec but no implementation"),
        }
    }

    /// `catalog:register`: only a repository this run pushed, read at the pushed
    /// commit, converted as `kubectl pave import` converts it.
    fn register(
        &mut self,
        mode: Mode,
        input: &Map<String, Json>,
        entry: &mut StepReport,
    ) -> Result<Map<String, Json>, Vec<String>> {
        let text = |key: &str| input.get(key).and_then(Json::as_str).map(str::to_owned);
        let (contents_url, path) = match (text("catalogInfoUrl"), text("repoContentsUrl")) {
            (Some(url), _) => match self
                .published
                .iter()
                .find(|p| url.starts_with(&p.repo_contents_url))
            {
                Some(p) => (
                    p.repo_contents_url.clone(),
                    url[p.repo_contents_url.len()..].to_owned(),
                ),
                None => (url.clone(), String::new()),
            },
            (None, Some(url)) => (
                url,
                text("catalogInfoPath").unwrap_or_else(|| "/catalog-info.yaml".to_owned()),
            ),
            (None, None) => unreachable!("the spec requires one"),
        };
        let path = if path.is_empty() {
            "/catalog-info.yaml".to_owned()
        } else {
            path
        };
        let catalog_info_url = format!("{contents_url}:{path}");
        let Some(published) = self
            .published
            .iter()
            .find(|p| p.repo_contents_url == contents_url)
        else {
            let known: Vec<&str> = self
                .published
                .iter()
                .map(|p| p.repo_contents_url.as_str())
                .collect();
            return Err(vec![format!(
                "`{contents_url}` is not a repository this run published ({}); pave registers \
                 only what it pushed",
                if known.is_empty() {
                    "it published none before this step".to_owned()
                } else {
                    known.join(", ")
                }
            )]);
        };
        let mut outputs = Map::new();
        outputs.insert(
            "catalogInfoUrl".into(),
            Json::String(catalog_info_url.clone()),
        );
        if mode == Mode::Check {
            outputs.insert(
                "entityRef".into(),
                Json::String(format!("component:{}/(from {path})", self.namespace)),
            );
            return Ok(outputs);
        }
        if mode == Mode::DryRun {
            entry.status = Status::WouldRun;
            let file = published.repository.join(path.trim_start_matches('/'));
            let components = convert(
                &catalog_info_url,
                std::fs::read_to_string(&file).map_err(|e| e.to_string()),
                &self.namespace,
            )?;
            outputs.insert(
                "entityRef".into(),
                Json::String(entity_ref(&components[0], &self.namespace)),
            );
            return Ok(outputs);
        }
        let holds = git::remote_holds(&published.remote, &published.branch, &published.commit)
            .map_err(|e| vec![e])?;
        if !holds {
            return Err(vec![format!(
                "{} does not hold the pushed commit {} on {}; nothing was registered",
                published.remote, published.commit, published.branch
            )]);
        }
        let text = git::show(&published.repository, &published.commit, &path);
        let components = convert(&catalog_info_url, text, &self.namespace)?;
        let target = self
            .target
            .as_ref()
            .expect("connected before the first step");
        let registered = target
            .register(&components)
            .map_err(|e| vec![format!("{e}; nothing was registered")])?;
        for (reference, status) in &registered {
            entry.notes.push(format!("{reference}: {status}"));
        }
        outputs.insert("entityRef".into(), Json::String(registered[0].0.clone()));
        Ok(outputs)
    }

    /// `pave:environment`: a DeveloperEnvironment written into the workspace
    /// (`targetPath`, default `environment.yaml`) or, with `apply: true`, applied.
    /// With `manifestPath` instead of `name` and `parameters`, the manifest is the one
    /// an earlier step wrote: after a publish, it is read from the pushed commit, so
    /// what is applied is what the repository holds.
    fn environment(
        &mut self,
        mode: Mode,
        workspace: &Path,
        input: &Map<String, Json>,
        entry: &mut StepReport,
    ) -> Result<Map<String, Json>, Vec<String>> {
        let environment = match input.get("manifestPath").and_then(Json::as_str) {
            Some(path) => self.written_environment(mode, workspace, path)?,
            None => register::environment(input, &self.namespace).map_err(|e| vec![e])?,
        };
        let reference = format!(
            "{}/{}",
            environment
                .metadata
                .namespace
                .as_deref()
                .unwrap_or(&self.namespace),
            environment.metadata.name.as_deref().unwrap_or_default()
        );
        let mut outputs = Map::new();
        outputs.insert("environment".into(), Json::String(reference));
        let apply = match input.get("apply") {
            None | Some(Json::Bool(false)) => false,
            Some(Json::Bool(true)) => true,
            Some(other) => return Err(vec![format!("apply must be true or false, not {other}")]),
        };
        if input.contains_key("manifestPath") && !apply {
            return Err(vec![
                "manifestPath is for applying a manifest already written; set apply: true"
                    .to_owned(),
            ]);
        }
        if apply {
            match mode {
                Mode::Check => {}
                Mode::DryRun => entry.status = Status::WouldRun,
                Mode::Run => {
                    let target = self
                        .target
                        .as_ref()
                        .expect("connected before the first step");
                    let uid = target
                        .apply_environment(&environment)
                        .map_err(|e| vec![e])?;
                    entry.notes.push(format!("applied, uid {uid}"));
                }
            }
            return Ok(outputs);
        }
        let path = fetch::target(Some(
            input
                .get("targetPath")
                .and_then(Json::as_str)
                .unwrap_or("environment.yaml"),
        ))
        .map_err(|e| vec![e])?;
        if mode != Mode::Check {
            let yaml = serde_yaml::to_string(&environment).map_err(|e| vec![e.to_string()])?;
            let planned = [fetch::Planned {
                path: path.clone(),
                contents: yaml.into_bytes(),
                executable: false,
            }];
            fetch::write(workspace, &planned, true).map_err(|e| vec![e])?;
        }
        outputs.insert(
            "manifestPath".into(),
            Json::String(path.display().to_string()),
        );
        Ok(outputs)
    }
}

impl Run<'_> {
    /// The environment of a manifest in the workspace: from the last publish that
    /// holds it, at its pushed commit; else as the workspace holds it.
    fn written_environment(
        &self,
        mode: Mode,
        workspace: &Path,
        path: &str,
    ) -> Result<pave_api::DeveloperEnvironment, Vec<String>> {
        if mode == Mode::Check {
            // Written by an earlier step, which the check does not run.
            let mut placeholder = register::environment(
                &Map::from_iter([
                    ("name".to_owned(), json!("from-manifest")),
                    ("parameters".to_owned(), json!({"region": "us-east-1"})),
                ]),
                &self.namespace,
            )
            .map_err(|e| vec![e])?;
            placeholder.metadata.name = Some(format!("(from {path})"));
            return Ok(placeholder);
        }
        let relative = fetch::target(Some(path)).map_err(|e| vec![e])?;
        let pushed = self.published.iter().rev().find_map(|p| {
            let inside = workspace
                .join(&relative)
                .strip_prefix(&p.repository)
                .ok()?
                .to_owned();
            (mode == Mode::Run)
                .then(|| git::show(&p.repository, &p.commit, &inside.display().to_string()))
        });
        let text = match pushed {
            Some(text) => text.map_err(|e| vec![format!("manifestPath {path}: {e}")])?,
            None => std::fs::read_to_string(workspace.join(&relative))
                .map_err(|e| vec![format!("manifestPath {path}: cannot read: {e}")])?,
        };
        let environment: pave_api::DeveloperEnvironment =
            serde_yaml::from_str(&text).map_err(|e| {
                vec![format!(
                    "manifestPath {path}: not a DeveloperEnvironment: {e}"
                )]
            })?;
        Ok(environment)
    }
}

/// A catalog-info.yaml as Components, through `kubectl pave import`'s conversion.
fn convert(
    name: &str,
    text: Result<String, String>,
    namespace: &str,
) -> Result<Vec<pave_api::Component>, Vec<String>> {
    let outcome = import(
        &[Source {
            name: name.to_owned(),
            text,
        }],
        None,
    );
    if outcome.errors() > 0 {
        return Err(outcome
            .diagnostics
            .iter()
            .map(ToString::to_string)
            .collect());
    }
    if outcome.components.is_empty() {
        return Err(vec![format!("{name} holds no Component to register")]);
    }
    let mut components = outcome.components;
    for component in &mut components {
        component
            .metadata
            .namespace
            .get_or_insert_with(|| namespace.to_owned());
    }
    Ok(components)
}

fn entity_ref(component: &pave_api::Component, namespace: &str) -> String {
    format!(
        "component:{}/{}",
        component.metadata.namespace.as_deref().unwrap_or(namespace),
        component.metadata.name.as_deref().unwrap_or_default()
    )
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
fn files_of(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_name() == ".git" {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(relative) = path.strip_prefix(dir) {
                found.push(relative.display().to_string());
            }
        }
    }
    found.sort();
    found
}

/// `user` in templates: who runs the command, as git and the login name say.
fn user() -> Json {
    let git = |key: &str| {
        std::process::Command::new("git")
            .args(["config", "--get", key])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
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
