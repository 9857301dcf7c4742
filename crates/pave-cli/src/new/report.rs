//! What `kubectl pave new` tells at the end: each step and what became of it, the
//! problems that stopped the run, and the template's `output` (links and text); or
//! all of that as one JSON object with `-o json`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use serde::Serialize;
use serde_json::{Map, Value as Json};

use super::template::Step;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Status {
    Done,
    /// Its `if` did not hold.
    Skipped,
    /// `--dry-run`: it would change something outside the workspace.
    WouldRun,
    Failed,
    NotRun,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepReport {
    pub id: String,
    pub name: String,
    pub action: String,
    pub status: Status,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(skip_serializing_if = "Json::is_null")]
    pub input: Json,
    #[serde(skip_serializing_if = "Json::is_null")]
    pub output: Json,
}

impl StepReport {
    pub fn new(step: &Step) -> Self {
        StepReport {
            id: step.id.clone(),
            name: step.name.clone(),
            action: step.action.clone(),
            status: Status::NotRun,
            message: String::new(),
            notes: Vec::new(),
            input: Json::Null,
            output: Json::Null,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub template: String,
    pub dry_run: bool,
    pub succeeded: bool,
    pub parameters: Map<String, Json>,
    pub steps: Vec<StepReport>,
    /// `--dry-run`: the files the steps would write into the workspace.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    #[serde(skip_serializing_if = "Json::is_null")]
    pub output: Json,
}

impl Report {
    pub fn new(dry_run: bool) -> Self {
        Report {
            template: String::new(),
            dry_run,
            succeeded: false,
            parameters: Map::new(),
            steps: Vec::new(),
            files: Vec::new(),
            workspace: None,
            problems: Vec::new(),
            output: Json::Null,
        }
    }

    /// Prints the report (text: the summary on stdout, problems on stderr) and gives
    /// the exit code: 1 when anything went wrong.
    pub fn print(mut self, format: Format) -> ExitCode {
        self.succeeded = self.problems.is_empty();
        let code = if self.succeeded {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
        let (stdout, stderr) = match format {
            Format::Json => (
                serde_json::to_string_pretty(&self).expect("a report serialises") + "\n",
                String::new(),
            ),
            Format::Text => self.text(),
        };
        let _ = std::io::stderr().write_all(stderr.as_bytes());
        let _ = std::io::stdout().write_all(stdout.as_bytes());
        code
    }

    fn text(&self) -> (String, String) {
        let mut out = String::new();
        let mut err = String::new();
        for problem in &self.problems {
            let _ = writeln!(err, "kubectl-pave: {problem}");
        }
        if self.steps.is_empty() {
            if !self.problems.is_empty() {
                let _ = writeln!(err, "kubectl-pave: nothing was run");
            }
            return (out, err);
        }
        let title = if self.dry_run {
            "Dry run of"
        } else {
            "Template"
        };
        let _ = writeln!(out, "{title} {}:", self.template);
        for step in &self.steps {
            let status = match step.status {
                Status::Done => "done",
                Status::Skipped => "skipped",
                Status::WouldRun => "would run",
                Status::Failed => "FAILED",
                Status::NotRun => "not run",
            };
            let _ = writeln!(out, "  {status:<9} {} ({})", step.id, step.action);
            if step.status == Status::WouldRun {
                let _ = writeln!(out, "            input: {}", step.input);
            }
            for note in &step.notes {
                let _ = writeln!(out, "            {note}");
            }
            if !step.message.is_empty() {
                let _ = writeln!(out, "            {}", step.message);
            }
        }
        if !self.files.is_empty() {
            let _ = writeln!(out, "Files it would write:");
            for file in &self.files {
                let _ = writeln!(out, "  {file}");
            }
        }
        for link in self.output["links"].as_array().into_iter().flatten() {
            let title = link["title"].as_str().unwrap_or("link");
            let target = link["url"]
                .as_str()
                .or_else(|| link["entityRef"].as_str())
                .unwrap_or("");
            let _ = writeln!(out, "{title}: {target}");
        }
        for text in self.output["text"].as_array().into_iter().flatten() {
            if let Some(title) = text["title"].as_str() {
                let _ = writeln!(out, "{title}:");
            }
            let _ = writeln!(out, "{}", text["content"].as_str().unwrap_or(""));
        }
        if !self.problems.is_empty() && !self.dry_run {
            let done: Vec<&str> = self
                .steps
                .iter()
                .filter(|s| s.status == Status::Done)
                .map(|s| s.id.as_str())
                .collect();
            let not_run: Vec<&str> = self
                .steps
                .iter()
                .filter(|s| s.status == Status::NotRun)
                .map(|s| s.id.as_str())
                .collect();
            let _ = writeln!(
                err,
                "kubectl-pave: the run stopped; done: {}; not run: {}",
                if done.is_empty() {
                    "nothing".to_owned()
                } else {
                    done.join(", ")
                },
                if not_run.is_empty() {
                    "nothing".to_owned()
                } else {
                    not_run.join(", ")
                }
            );
            if let Some(workspace) = &self.workspace {
                let _ = writeln!(err, "kubectl-pave: the workspace was {workspace}");
            }
        }
        (out, err)
    }
}
