//! Going through a template's steps: checking them all, showing them (`--dry-run`)
//! or running them, with the context each one's templates see.

use std::path::{Path, PathBuf};

use minijinja::Value;
use serde_json::{Map, Value as Json, json};

use super::actions;
use super::git::Remotes;
use super::register::Target;
use super::render::{Engine, value};
use super::report::{Status, StepReport};
use super::template::{Step, Template};

/// How the steps are gone through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Everything checked, nothing written; outputs are what they will be.
    Check,
    /// Workspace steps run in a temporary workspace; the others are shown.
    DryRun,
    Run,
}

/// A publish of this run: what `catalog:register` may register.
pub(super) struct Published {
    pub(super) repo_contents_url: String,
    pub(super) remote: String,
    pub(super) branch: String,
    pub(super) commit: String,
    pub(super) repository: PathBuf,
}

pub(super) struct Run<'a> {
    pub(super) template: &'a Template,
    pub(super) engine: Engine,
    pub(super) parameters: Map<String, Json>,
    pub(super) user: Json,
    pub(super) namespace: String,
    pub(super) remotes: Remotes,
    pub(super) target: Option<Target>,
    /// `steps.<id>.output` of the steps so far.
    pub(super) outputs: Map<String, Json>,
    pub(super) published: Vec<Published>,
}

impl Run<'_> {
    pub(super) fn context(&self) -> Value {
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
    pub(super) fn steps(
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
}
