//! What each action does, in each [`Mode`]: its outputs, and its effect on the
//! workspace, a remote or the cluster.

use std::path::Path;

use serde_json::{Map, Value as Json, json};

use super::git::Publish;
use super::report::{Status, StepReport};
use super::run::{Mode, Published, Run};
use super::template::Step;
use super::{fetch, files_of, git, register};
use crate::import::{Entity, Source, import};

impl Run<'_> {
    /// Runs (or checks, or shows) one action; its outputs.
    pub(super) fn act(
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
                    let count = written.len();
                    entry
                        .notes
                        .push(format!("{count} file{}", if count == 1 { "" } else { "s" }));
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
            let entities = convert(
                &catalog_info_url,
                std::fs::read_to_string(&file).map_err(|e| e.to_string()),
                &self.namespace,
            )?;
            let references: Vec<String> = entities
                .iter()
                .map(|e| e.reference(&self.namespace))
                .collect();
            outputs.insert(
                "entityRef".into(),
                Json::String(main_reference(&references).to_owned()),
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
        let entities = convert(&catalog_info_url, text, &self.namespace)?;
        let target = self
            .target
            .as_ref()
            .expect("connected before the first step");
        let registered = target
            .register(&entities)
            .map_err(|e| vec![format!("{e}; nothing was registered")])?;
        for (reference, status) in &registered {
            entry.notes.push(format!("{reference}: {status}"));
        }
        let references: Vec<String> = registered.into_iter().map(|(r, _)| r).collect();
        outputs.insert(
            "entityRef".into(),
            Json::String(main_reference(&references).to_owned()),
        );
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

/// A catalog-info.yaml as pave objects of every kind it holds, through `kubectl pave
/// import`'s conversion. The file is read from a commit, not from disk, so a Location
/// in it is not followed: this step registers what the file itself holds.
fn convert(
    name: &str,
    text: Result<String, String>,
    namespace: &str,
) -> Result<Vec<Entity>, Vec<String>> {
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
    if outcome.entities.is_empty() {
        return Err(vec![format!("{name} holds no entity to register")]);
    }
    let mut entities = outcome.entities;
    for entity in &mut entities {
        entity
            .metadata_mut()
            .namespace
            .get_or_insert_with(|| namespace.to_owned());
    }
    Ok(entities)
}

/// The `entityRef` output: the first Component's reference, else the first entity's,
/// as Backstage's `catalog:register` chooses it.
fn main_reference(references: &[String]) -> &str {
    references
        .iter()
        .find(|r| r.starts_with("component:"))
        .or(references.first())
        .map_or("", String::as_str)
}
