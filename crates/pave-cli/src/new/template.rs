//! A Backstage Software Template (`scaffolder.backstage.io/v1beta3`, kind
//! `Template`) as read from its file, with the line of every field for messages.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use super::parameters::Page;
use crate::lines::{Document, FieldPath, split_documents};

pub const API_VERSION: &str = "scaffolder.backstage.io/v1beta3";

/// A template: its metadata, parameter pages, steps and output.
#[derive(Debug)]
pub struct Template {
    /// The template file, as messages name it.
    pub file: PathBuf,
    /// The directory relative `url`s (`./skeleton`) are resolved against.
    pub dir: PathBuf,
    pub name: String,
    pub title: Option<String>,
    pub pages: Vec<Page>,
    pub steps: Vec<Step>,
    /// `spec.output`: `links` and `text`, rendered after the last step.
    pub output: Json,
    text: String,
    first_line: usize,
}

/// One step: `id`, `name`, `action`, `input` and an optional `if`.
#[derive(Debug, Clone)]
pub struct Step {
    pub index: usize,
    pub id: String,
    pub name: String,
    pub action: String,
    pub input: Json,
    pub condition: Option<Json>,
    pub each: Option<Json>,
}

impl Step {
    /// Where the step's field `path` is, as `spec.steps[i].<path>`.
    pub fn path(&self, keys: &[&str]) -> FieldPath {
        let mut path = FieldPath::of(&["spec", "steps"]).index(self.index);
        for key in keys {
            path = path.key(key);
        }
        path
    }
}

/// A problem with the template file itself, at a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl Template {
    /// Reads a template file, or the `template.yaml` of a directory.
    pub fn load(path: &Path) -> Result<Template, LoadError> {
        let file = if path.is_dir() {
            path.join("template.yaml")
        } else {
            path.to_owned()
        };
        let error = |line: Option<usize>, message: String| LoadError {
            file: file.display().to_string(),
            line,
            message,
        };
        let text =
            std::fs::read_to_string(&file).map_err(|e| error(None, format!("cannot read: {e}")))?;
        let mut found = None;
        for document in split_documents(&text) {
            let value: Json = serde_yaml::from_str(document.text).map_err(|e| {
                let line = e.location().map(|l| document.first_line + l.line() - 1);
                error(
                    line.or(Some(document.start_line())),
                    format!("not YAML: {e}"),
                )
            })?;
            if value["kind"] == "Template" {
                found = Some((document.first_line, value));
                break;
            }
        }
        let Some((first_line, value)) = found else {
            return Err(error(None, "holds no `kind: Template`".to_owned()));
        };
        let mut template = Template {
            dir: file
                .parent()
                .map_or_else(|| PathBuf::from("."), Path::to_owned),
            file: file.clone(),
            name: String::new(),
            title: None,
            pages: Vec::new(),
            steps: Vec::new(),
            output: value["spec"]["output"].clone(),
            text: text.clone(),
            first_line,
        };
        if value["apiVersion"] != API_VERSION {
            return Err(error(
                Some(template.line_of(&FieldPath::of(&["apiVersion"]))),
                format!(
                    "apiVersion is {}; pave runs {API_VERSION} templates (the older \
                     backstage.io/v1beta2 ones use a different syntax)",
                    value["apiVersion"]
                ),
            ));
        }
        template.name = value["metadata"]["name"]
            .as_str()
            .ok_or_else(|| {
                error(
                    Some(template.line_of(&FieldPath::of(&["metadata"]))),
                    "metadata.name is missing".to_owned(),
                )
            })?
            .to_owned();
        template.title = value["metadata"]["title"].as_str().map(str::to_owned);
        template.pages = Page::all(value["spec"].get("parameters"));
        let steps = match &value["spec"]["steps"] {
            Json::Array(steps) => steps.clone(),
            Json::Null => Vec::new(),
            _ => {
                return Err(error(
                    Some(template.line_of(&FieldPath::of(&["spec", "steps"]))),
                    "spec.steps must be a list".to_owned(),
                ));
            }
        };
        for (index, step) in steps.into_iter().enumerate() {
            let line = Some(template.line_of(&FieldPath::of(&["spec", "steps"]).index(index)));
            let field = |key: &str| step[key].as_str().map(str::to_owned);
            let Some(action) = field("action") else {
                return Err(error(line, format!("step {} has no action", index + 1)));
            };
            let id = field("id").unwrap_or_else(|| format!("step-{}", index + 1));
            if template.steps.iter().any(|s| s.id == id) {
                return Err(error(line, format!("a second step has the id `{id}`")));
            }
            template.steps.push(Step {
                index,
                name: field("name").unwrap_or_else(|| id.clone()),
                id,
                action,
                input: step
                    .get("input")
                    .cloned()
                    .unwrap_or(Json::Object(Default::default())),
                condition: step.get("if").cloned(),
                each: step.get("each").cloned(),
            });
        }
        Ok(template)
    }

    /// The line of a field of the template document.
    pub fn line_of(&self, path: &FieldPath) -> usize {
        Document {
            text: &self.text[self.offset()..],
            first_line: self.first_line,
        }
        .line_of(path)
    }

    fn offset(&self) -> usize {
        self.text
            .split_inclusive('\n')
            .take(self.first_line - 1)
            .map(str::len)
            .sum()
    }

    /// `FILE:LINE` of a field, for messages.
    pub fn at(&self, path: &FieldPath) -> String {
        format!("{}:{}", self.file.display(), self.line_of(path))
    }
}
